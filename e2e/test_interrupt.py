"""Ctrl-C during a run, on either engine: exit 130 with one line, no process left behind, no output published."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from e2e.conftest import unique_topic
from streamguard.synth.seed import seed_topic

# Above the embedded engine's threshold for parsing in worker processes, so those are running when Ctrl-C comes.
EVENTS = 300_000


def _children() -> dict[int, int]:
    """pid -> parent pid of every process on the machine."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def _descendants(root: int) -> set[int]:
    parents = _children()
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


@pytest.fixture(scope="module")
def big_topic(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    topic = unique_topic("interrupt")
    seed_topic(bootstrap, topic, events=EVENTS, partitions=4, users=50, anomalous_users=2,
               truth_path=tmp_path_factory.mktemp("truth") / "truth.json", progress=False)
    return topic


@pytest.mark.parametrize("engine", ["embedded", "spark"])
def test_ctrl_c_mid_run_leaves_nothing_running_and_publishes_nothing(bootstrap, big_topic, tmp_path, engine):
    output = tmp_path / "out"
    run = subprocess.Popen(
        [sys.executable, "-m", "streamguard", "run", "-t", big_topic, "-b", bootstrap, "--max-events", str(EVENTS),
         "--engine", engine, "-o", str(output)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    seen: set[int] = set()
    try:
        # Wait (bounded) until the run has helpers of its own: parse workers, or Spark's JVM.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and run.poll() is None and len(seen) < 2:
            seen |= _descendants(run.pid)
            time.sleep(0.05)
        assert run.poll() is None, f"the run ended before it could be interrupted: {run.stderr.read()[-500:]}"
        assert seen, "the run started no helper process to leave behind"
        run.send_signal(signal.SIGINT)
        _, stderr = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 130, stderr[-1000:]
    assert stderr.strip().splitlines()[-1].startswith("error:") or "interrupted" in stderr.splitlines()[-1]
    left = {pid for pid in seen if Path(f"/proc/{pid}").exists()
            and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"}
    deadline = time.monotonic() + 30  # the JVM's own shutdown; a bound, not a timing assert
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = {pid for pid in left if Path(f"/proc/{pid}").exists()}
    assert not left, f"processes outlived the interrupted run: {sorted(left)}"
    assert not output.exists()
    runs = Path(f"{output}.runs")
    assert not runs.exists() or not any(runs.iterdir()), "the interrupted run left its staging folder"
    os.sync()
