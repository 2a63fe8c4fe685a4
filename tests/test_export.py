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


def test_kept_runs_are_the_newest(tmp_path: Path):
    publisher = RunPublisher(tmp_path / "out")
    names = [f"20260101T0000{i:02d}000Z-a" for i in range(KEEP_RUNS + 2)]
    for name in names:
        publisher.commit(_write_run(publisher, name, name))
    kept = sorted(p.name for p in publisher.runs_dir.iterdir() if p.is_dir())
    assert kept == names[-KEEP_RUNS:]


def test_a_failing_clean_up_after_publishing_keeps_the_published_run(tmp_path: Path, monkeypatch):
    publisher = RunPublisher(tmp_path / "out")

    def broken_prune(keep: Path) -> None:
        raise OSError("disk went away")

    monkeypatch.setattr(publisher, "_prune", broken_prune)
    staging = publisher.commit(_write_run(publisher, "r1", "one"))
    publisher.abort(staging)  # what a caller does if anything after commit fails
    assert (tmp_path / "out" / "anomaly_report.json").read_text() == "one"


def test_a_run_in_progress_is_not_pruned_by_another_runs_commit(tmp_path: Path):
    publisher = RunPublisher(tmp_path / "out")
    in_progress = _write_run(publisher, "20260101T000000000Z-b", "still writing")  # marker holds our live pid
    for i in range(KEEP_RUNS + 1):
        publisher.commit(_write_run(publisher, f"20260101T0000{i + 1:02d}000Z-a", str(i)))
    assert in_progress.is_dir()
    publisher.commit(in_progress)
    assert (tmp_path / "out" / "anomaly_report.json").read_text() == "still writing"


def test_an_abandoned_run_is_pruned(tmp_path: Path):
    publisher = RunPublisher(tmp_path / "out")
    abandoned = _write_run(publisher, "20260101T000000000Z-dead", "x")
    (abandoned / ".incomplete").write_text("999999999\n")  # no such process
    publisher.commit(_write_run(publisher, "20260101T000001000Z-a", "one"))
    assert not abandoned.exists()


def _older_run_and_newer_published_runs(tmp_path: Path) -> tuple[RunPublisher, Path, RunPublisher, Path]:
    """Run A (the oldest id, still being written) and another process's publisher whose newest run is published
    after KEEP_RUNS - 1 others: by age alone, that publisher's clean-up would delete A."""
    run_a, run_b = RunPublisher(tmp_path / "out"), RunPublisher(tmp_path / "out")
    staging_a = _write_run(run_a, "20260101T000000000Z-a", "run a")
    newest_b = staging_a
    for i in range(KEEP_RUNS):
        newest_b = run_b.commit(_write_run(run_b, f"20260101T0000{i + 1:02d}000Z-b", f"b{i}"))
    return run_a, staging_a, run_b, newest_b


@pytest.mark.parametrize("step", ["before_link_swap", "after_link_swap", "published"])
def test_a_concurrent_clean_up_between_the_publish_steps_keeps_the_run_being_published(tmp_path: Path, step: str):
    run_a, staging_a, run_b, newest_b = _older_run_and_newer_published_runs(tmp_path)
    cleaned_at: list[str] = []

    def concurrent_clean_up(reached: str) -> None:
        if reached == step:
            run_b._prune(keep=newest_b)
            cleaned_at.append(reached)

    run_a.on_step = concurrent_clean_up
    run_a.commit(staging_a)
    assert cleaned_at == [step], "the interleaving was not forced"
    assert staging_a.is_dir()
    assert run_a.current() == staging_a.resolve()
    assert (tmp_path / "out" / "anomaly_report.json").read_text() == "run a"

