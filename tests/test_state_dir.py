"""Everything that keeps state keeps it under ``STREAMGUARD_STATE_DIR`` (default ``./.streamguard``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench import quality
from streamguard import spark_standalone
from streamguard._proc import state_dir
from streamguard.kafka import daemon
from streamguard.kafka.broker import ExternalBroker
from streamguard.kafka.local_broker import LocalBroker
from streamguard.synth.seed import default_truth_path

REPO = Path(__file__).resolve().parent.parent


def test_every_part_of_the_state_follows_the_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STREAMGUARD_STATE_DIR", str(tmp_path / "state"))
    root = tmp_path / "state"
    assert default_truth_path("events") == root / "truth" / "events.json"
    assert daemon.state_dir() == root / "kafka"
    assert spark_standalone.state_dir() == root / "spark"
    monkeypatch.delenv("STREAMGUARD_KAFKA_BOOTSTRAP", raising=False)
    bench_broker = quality._broker()
    assert isinstance(bench_broker, LocalBroker) and bench_broker.data_dir == root / "quality-kafka"


def test_an_unset_or_empty_variable_means_dot_streamguard_here(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STREAMGUARD_STATE_DIR", "")
    assert state_dir("truth") == tmp_path / ".streamguard" / "truth"
    monkeypatch.delenv("STREAMGUARD_STATE_DIR")
    assert default_truth_path("t") == tmp_path / ".streamguard" / "truth" / "t.json"


def test_the_bench_uses_an_explicit_cluster_like_every_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMGUARD_KAFKA_BOOTSTRAP", "10.9.8.7:9092")
    provider = quality._broker()
    assert isinstance(provider, ExternalBroker) and provider.bootstrap == "10.9.8.7:9092"


def test_no_module_hard_codes_the_default_state_dir() -> None:
    """Only ``streamguard._proc`` names ``.streamguard``; every writer asks it (``state_dir``)."""
    literal = re.compile(r"""["']\.streamguard["']""")
    offenders = [str(path.relative_to(REPO)) for folder in ("streamguard", "bench") for path in
                 (REPO / folder).rglob("*.py") if literal.search(path.read_text()) and path.name != "_proc.py"]
    assert offenders == []
