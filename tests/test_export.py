from __future__ import annotations

from pathlib import Path

import pytest

from streamguard.errors import OutputError
from streamguard.export import KEEP_RUNS, RunPublisher


def _write_run(publisher: RunPublisher, run_id: str, content: str) -> Path:
    staging = publisher.prepare(run_id)
    (staging / "anomaly_report.json").write_text(content)
    return staging


def test_commit_swaps_the_published_run(tmp_path: Path):
    publisher = RunPublisher(tmp_path / "out")
    publisher.commit(_write_run(publisher, "r1", "one"))
    assert (tmp_path / "out" / "anomaly_report.json").read_text() == "one"
    publisher.commit(_write_run(publisher, "r2", "two"))
    assert (tmp_path / "out" / "anomaly_report.json").read_text() == "two"
    assert publisher.current() == (publisher.runs_dir / "r2").resolve()


def test_a_failed_run_leaves_the_previous_output(tmp_path: Path):
    publisher = RunPublisher(tmp_path / "out")
    publisher.commit(_write_run(publisher, "good", "good"))
    staging = _write_run(publisher, "bad", "half")
    publisher.abort(staging)
    assert (tmp_path / "out" / "anomaly_report.json").read_text() == "good"
    assert not staging.exists()


def test_old_runs_are_pruned(tmp_path: Path):
    publisher = RunPublisher(tmp_path / "out")
    for i in range(KEEP_RUNS + 2):
        publisher.commit(_write_run(publisher, f"r{i}", str(i)))
    assert len([p for p in publisher.runs_dir.iterdir() if p.is_dir()]) == KEEP_RUNS


def test_refuses_a_foreign_directory_and_an_unwritable_place(tmp_path: Path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep")
    with pytest.raises(OutputError, match="not written by StreamGuard"):
        RunPublisher(foreign).prepare("r1")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="not writable"):
        RunPublisher(tmp_path / "file" / "out").prepare("r1")
