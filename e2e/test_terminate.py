"""SIGTERM during a run, on either engine, goes down Ctrl-C's path: exit 143 with one line, the run's staging folder
removed, no helper process left, the previously published output untouched. Sent to the run alone (``kill PID``,
``docker stop``) or to its whole process group (systemd's default), which ends the helpers at the same moment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from e2e.test_interrupt import EVENTS, _descendants, big_topic  # noqa: F401 - the topic is a shared fixture
from streamguard.report import REPORT_FILE

# What shows that each engine is in its read or parse stage: the embedded engine's parse workers (forked by the
# forkserver as the read starts) or the Python workers Spark starts for the parse stage.
STAGE_WORKERS = {"embedded": "multiprocessing.forkserver", "spark": "pyspark.daemon"}


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _run(topic: str, bootstrap: str, output: Path, engine: str, max_events: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "streamguard", "run", "-t", topic, "-b", bootstrap, "--max-events", str(max_events),
         "--engine", engine, "-o", str(output)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )


@pytest.mark.parametrize("target", ["process", "group"])
@pytest.mark.parametrize("engine", ["embedded", "spark"])
def test_sigterm_mid_read_exits_143_and_keeps_the_previous_output(bootstrap, big_topic, tmp_path, engine,  # noqa: F811
                                                                 target):
    output = tmp_path / "out"
    published, report_before = publish_a_run(big_topic, bootstrap, output)

    run = _run(big_topic, bootstrap, output, engine, EVENTS)
    seen: set[int] = set()
    try:
        deadline = time.monotonic() + 180  # a bound for the stage to begin, not a timing assert
        workers: list[int] = []
        while time.monotonic() < deadline and run.poll() is None and len(workers) < 2:
            seen |= _descendants(run.pid)
            workers = [pid for pid in seen if STAGE_WORKERS[engine] in _command_line(pid)]
            time.sleep(0.05)
        assert run.poll() is None, f"the run ended before the signal: {run.stderr.read()[-500:]}"
        assert workers, f"the {engine} run never reached its read/parse stage"
        if target == "group":
            os.killpg(run.pid, signal.SIGTERM)  # the run leads its own session, so its group id is its pid
        else:
            run.send_signal(signal.SIGTERM)
        _, stderr = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert run.returncode == 143, stderr[-2000:]
    assert lines[-1] == "terminated (SIGTERM)", stderr[-2000:]
    assert "Traceback" not in stderr, stderr[-2000:]

    assert_nothing_left(seen, output, published, report_before)


def publish_a_run(topic: str, bootstrap: str, output: Path) -> tuple[Path, str]:
    """Publish a small embedded run at ``output``: the run folder and report an ended run must leave as they are."""
    previous = _run(topic, bootstrap, output, "embedded", 2_000)
    _, stderr = previous.communicate(timeout=300)
    assert previous.returncode == 0, stderr[-1000:]
    return output.resolve(), (output / REPORT_FILE).read_text()


def assert_nothing_left(seen: set[int], output: Path, published: Path, report_before: str) -> None:
    """No process of the ended run outlives it, and the output is the previously published run, untouched."""
    left = {pid for pid in seen if _running(pid)}
    deadline = time.monotonic() + 30  # the JVM's own shutdown; a bound, not a timing assert
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = {pid for pid in left if _running(pid)}
    assert not left, f"processes outlived the ended run: {[(p, _command_line(p)[:80]) for p in left]}"

    assert output.resolve() == published
    assert (output / REPORT_FILE).read_text() == report_before
    runs = [p.name for p in Path(f"{output}.runs").iterdir()]
    assert runs == [published.name], f"the ended run left its staging folder: {runs}"
