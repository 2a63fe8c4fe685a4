"""Where ``--start resume`` begins: the next offsets a run records, and the start spec read back from its report
(the paths that need no broker; e2e/test_resume.py runs the rest against a real one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamguard.config import RunConfig
from streamguard.engines.base import ReadCounts
from streamguard.errors import ConfigError
from streamguard.kafka.accounting import PartitionAccount, ReadAccounting
from streamguard.kafka.admin import Watermarks
from streamguard.kafka.plan import PartitionRange, ReadPlan
from streamguard.pipeline import next_offsets, resume_start
from streamguard.report import REPORT_FILE


def plan(ranges: list[tuple[int, int, int]], starts: dict[int, int]) -> ReadPlan:
    return ReadPlan(topic="t", strategy="bounded", isolation_level="read_committed", start="earliest", end=None,
                    max_events=None, watermarks=tuple(Watermarks(p, 0, 100) for p in range(3)),
                    ranges=tuple(PartitionRange(*r) for r in ranges), start_offsets=starts)


def test_next_offsets_follow_the_ranges_and_keep_unread_partitions_where_they_started() -> None:
    planned = plan([(0, 10, 20), (2, 5, 9)], {0: 10, 1: 42, 2: 5})
    assert next_offsets(planned, ReadCounts(records_fetched=14, records_read=14)) == {0: 20, 1: 42, 2: 9}


def test_next_offsets_take_the_readers_final_ranges_over_the_plan() -> None:
    # A reader extended partition 0 past the plan where offsets held transaction markers.
    planned = plan([(0, 10, 20), (2, 5, 9)], {0: 10, 1: 42, 2: 5})
    accounting = ReadAccounting(
        mode="first", limit=14, isolation_level="read_committed", rounds=2, records_trimmed=0, exhausted=False,
        partitions=(PartitionAccount(partition=0, from_offset=10, until=23, planned_from=10, planned_until=20,
                                     records_fetched=10, records_read=10, at_end=False),
                    PartitionAccount(partition=2, from_offset=5, until=9, planned_from=5, planned_until=9,
                                     records_fetched=4, records_read=4, at_end=False)))
    counts = ReadCounts(records_fetched=14, records_read=14, accounting=accounting)
    assert next_offsets(planned, counts) == {0: 23, 1: 42, 2: 9}


def config(tmp_path: Path, **settings: object) -> RunConfig:
    return RunConfig(topic="events", bootstrap="127.0.0.1:1", output=tmp_path / "out", start="resume", **settings)


def test_resume_without_a_published_run_starts_at_the_earliest_offsets(tmp_path: Path) -> None:
    assert resume_start(config(tmp_path)) == ("earliest", None)


def test_other_starts_pass_through(tmp_path: Path) -> None:
    assert resume_start(RunConfig(topic="events", bootstrap="b", start="latest")) == ("latest", None)


def _previous_report(tmp_path: Path, **run: object) -> None:
    from tests.serve_fixtures import build_report, feature_frame  # noqa: PLC0415

    report = build_report(feature_frame(10, ("erin",), 1), "20260101T000000Z-aaaaaa")
    document = report.model_copy(update={"run": report.run.model_copy(update=run)})
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / REPORT_FILE).write_text(document.model_dump_json(by_alias=True))


def test_resume_refuses_a_run_of_another_topic(tmp_path: Path) -> None:
    _previous_report(tmp_path, topic="other", next_offsets={"0": 5})
    with pytest.raises(ConfigError, match="read topic 'other'"):
        resume_start(config(tmp_path))


def test_resume_refuses_a_report_without_end_offsets(tmp_path: Path) -> None:
    _previous_report(tmp_path, topic="events")
    with pytest.raises(ConfigError, match="records no end offsets"):
        resume_start(config(tmp_path))


def test_resume_needs_the_bounded_strategy_and_a_group_needs_a_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="bounded"):
        config(tmp_path, read_strategy="full-scan")
    with pytest.raises(ConfigError, match="commit_group"):
        config(tmp_path, commit_group=" ")
