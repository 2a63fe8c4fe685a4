"""Snapshots and reloading: a new run replaces the served one whole; no data means degraded, not dead."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest
from serve_fixtures import serving, write_run

from streamguard.errors import DataError
from streamguard.export import TRAINING_DATA
from streamguard.report import REPORT_FILE
from streamguard.serve import create_app
from streamguard.serve.data import DataStore, NoData, Snapshot, load_snapshot


class SteppedClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _point(output: Path, run_dir: Path) -> None:
    """Swap the output symlink the way RunPublisher.commit does: a new link renamed over the old one."""
    link = output.parent / f".{output.name}.swap"
    link.unlink(missing_ok=True)
    link.symlink_to(os.path.relpath(run_dir, output.parent))
    os.replace(link, output)


def test_a_new_run_is_picked_up_after_the_reload_interval(tmp_path: Path):
    output = tmp_path / "out"
    write_run(output, "run-a", users=40)
    clock = SteppedClock()
    store = DataStore(output, reload_interval=1.0, clock=clock)
    first = store.current()
    assert isinstance(first, Snapshot) and first.run_id == "run-a"

    write_run(output, "run-b", users=60, anomalous=("erin", "ivan", "judy", "oscar"))
    clock.now = 0.5
    assert store.current() is first, "checked the disk before the reload interval"
    clock.now = 1.0
    second = store.current()
    assert isinstance(second, Snapshot) and second.run_id == "run-b"
    assert second.users == 60 and second.report.anomalous_users == 4
    assert first.users == 40 and first.run_id == "run-a", "the old snapshot must not change"
    assert store.loads == {"ok": 2, "error": 0}


def test_an_unchanged_run_is_not_reloaded(tmp_path: Path):
    write_run(tmp_path / "out", "run-a")
    store = DataStore(tmp_path / "out", reload_interval=0)
    first = store.current()
    assert store.current() is first
    assert store.loads["ok"] == 1


def test_the_api_serves_the_new_run_after_a_swap(tmp_path: Path):
    output = tmp_path / "out"
    write_run(output, "run-a", users=40)
    with serving(create_app(output, reload_interval=0)) as url:
        assert httpx.get(url + "/api/training-data/stats").json()["run_id"] == "run-a"
        assert httpx.get(url + "/api/training-data/anomalies/user_0050").status_code == 404
        write_run(output, "run-b", users=60)
        stats = httpx.get(url + "/api/training-data/stats").json()
        assert (stats["run_id"], stats["total_users"]) == ("run-b", 60)
        assert httpx.get(url + "/api/training-data/anomalies/user_0050").status_code == 200
        assert httpx.get(url + "/api/training-data/report").json()["run"]["run_id"] == "run-b"


def test_every_snapshot_is_one_whole_run_while_the_link_flips(tmp_path: Path):
    output = tmp_path / "out"
    run_a = write_run(output, "run-a", users=30)
    run_b = write_run(output, "run-b", users=70)
    expected = {"run-a": (30, run_a.run_dir.resolve()), "run-b": (70, run_b.run_dir.resolve())}
    store = DataStore(output, reload_interval=0)
    problems: list[str] = []
    seen: set[str] = set()
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                state = store.current()
                if not isinstance(state, Snapshot):
                    problems.append(f"no data mid-swap: {state}")
                    continue
                seen.add(state.run_id)
                users, run_dir = expected[state.run_id]
                if (state.users, state.report.total_users, state.run_dir) != (users, users, run_dir):
                    problems.append(f"mixed snapshot: {state.run_id} {state.users} {state.run_dir}")
                if state.population.run_id != state.run_id or state.stats().run_id != state.run_id:
                    problems.append(f"parts of {state.run_id} from another run")
        except Exception as exc:  # reported below: an exception in a thread would otherwise be lost
            problems.append(repr(exc))

    readers = [threading.Thread(target=read) for _ in range(4)]
    for reader in readers:
        reader.start()
    flipped_to: set[str] = set()
    try:
        for i in range(20):
            target = "run-a" if i % 2 else "run-b"
            _point(output, (run_a if i % 2 else run_b).run_dir)
            # A reader may be mid-load of the previous link; the store must serve the new run soon after.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                state = store.current()
                if isinstance(state, Snapshot) and state.run_id == target:
                    flipped_to.add(target)
                    break
                time.sleep(0.005)
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    assert problems == []
    # Which runs the reader threads happen to catch depends on scheduling; the writer's own reads see both.
    assert flipped_to == {"run-a", "run-b"}
    assert seen and seen <= {"run-a", "run-b"}


def test_health_flips_when_the_data_goes_and_comes_back(tmp_path: Path):
    output = tmp_path / "out"
    run = write_run(output, "run-a")
    with serving(create_app(output, reload_interval=0)) as url:
        assert httpx.get(url + "/health").json()["status"] == "ok"
        output.unlink()
        shutil.rmtree(run.run_dir)
        gone = httpx.get(url + "/health")
        assert gone.status_code == 200
        assert (gone.json()["status"], gone.json()["data_available"]) == ("degraded", False)
        assert httpx.get(url + "/api/training-data/stats").status_code == 503
        metrics = httpx.get(url + "/metrics").text
        assert "training_data_available 0.0" in metrics
        assert "training_data_users_total" not in metrics
        write_run(output, "run-b")
        back = httpx.get(url + "/health").json()
        assert (back["status"], back["run_id"]) == ("ok", "run-b")


def test_an_empty_data_dir_is_degraded(tmp_path: Path):
    (tmp_path / "out").mkdir()
    state = DataStore(tmp_path / "out").current()
    assert isinstance(state, NoData) and "no run has been published" in state.reason


def test_a_broken_run_is_no_data_with_the_reason(tmp_path: Path):
    run = write_run(tmp_path / "out", "run-a")
    shutil.rmtree(run.run_dir / TRAINING_DATA)
    store = DataStore(tmp_path / "out")
    state = store.current()
    assert isinstance(state, NoData) and "training data" in state.reason
    assert store.loads == {"ok": 0, "error": 1}


def test_load_snapshot_rejects_a_report_that_disagrees_with_the_data(tmp_path: Path):
    run = write_run(tmp_path / "out", "run-a", users=40)
    report = (run.run_dir / REPORT_FILE).read_text().replace('"total_users": 40', '"total_users": 41')
    (run.run_dir / REPORT_FILE).write_text(report)
    with pytest.raises(DataError, match="41 users but the training data holds 40"):
        load_snapshot(run.run_dir)


def test_load_snapshot_rejects_a_file_that_is_not_a_report(tmp_path: Path):
    run = write_run(tmp_path / "out", "run-a")
    (run.run_dir / REPORT_FILE).write_text('{"total_users": 3}')
    with pytest.raises(DataError, match="not a valid anomaly report"):
        load_snapshot(run.run_dir)


def test_snapshot_rows_and_pages(tmp_path: Path):
    run = write_run(tmp_path / "out", "run-a")
    snapshot = load_snapshot(run.run_dir)
    assert snapshot.row("nobody") is None
    assert snapshot.row("erin").is_anomaly == 1  # type: ignore[union-attr]
    page = snapshot.anomaly_page(limit=1, offset=10)
    assert page.items == [] and page.total == run.report.anomalous_users
