"""The live status line of a run's stages: the stage's label, then what the engine says it has done so far."""

from __future__ import annotations

import io
import threading
from contextlib import AbstractContextManager, nullcontext

from rich.console import Console

from streamguard.pipeline import StageClock


class CountingEngine:
    """The part of an engine a stage's status line uses: its name, its error scope, and a progress counter."""

    name = "embedded"

    def __init__(self) -> None:
        self.polls = 0
        self.polled_twice = threading.Event()

    def errors(self, stage: str) -> AbstractContextManager[None]:
        return nullcontext()

    def progress(self) -> str | None:
        self.polls += 1
        if self.polls >= 2:
            self.polled_twice.set()
        return f"{self.polls * 1000:,} records fetched"


def _terminal() -> tuple[Console, io.StringIO]:
    screen = io.StringIO()
    return Console(file=screen, force_terminal=True, width=120, color_system=None), screen


def test_a_stage_on_a_terminal_shows_its_label_and_the_engine_progress() -> None:
    console, screen = _terminal()
    clock, engine = StageClock(console=console), CountingEngine()

    with clock.stage("kafka_read", engine):  # type: ignore[arg-type]
        assert engine.polled_twice.wait(60), "the status line never asked the engine for progress"

    shown = screen.getvalue()
    assert "reading from Kafka… 1,000 records fetched" in shown or "reading from Kafka… 2,000 records fetched" in shown
    assert clock.seconds["kafka_read"] >= 0


def test_the_status_line_stops_asking_when_its_stage_ends() -> None:
    console, _ = _terminal()
    engine = CountingEngine()
    with StageClock(console=console).stage("parse", engine):  # type: ignore[arg-type]
        engine.polled_twice.wait(60)
    polls_at_end = engine.polls
    threading.Event().wait(1.5)  # three polling periods
    assert engine.polls <= polls_at_end + 1  # one poll may have been under way as the stage ended


def test_without_a_console_no_status_line_polls_the_engine() -> None:
    engine = CountingEngine()
    with StageClock(console=None).stage("parse", engine):  # type: ignore[arg-type]
        threading.Event().wait(1.2)
    assert engine.polls == 0
