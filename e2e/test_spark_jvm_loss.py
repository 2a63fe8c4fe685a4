"""Spark's JVM dying mid-run (killed, or dead of an OutOfMemoryError as a 4 GB driver is at 10M events in local
mode): the run ends with the stage's exit code and one line that says the JVM went away and what to do, leaves no
staging folder and no process behind, and keeps the previously published output."""

from __future__ import annotations

import os
import signal
import time

from e2e.test_interrupt import EVENTS, _descendants, big_topic  # noqa: F401 - the topic is a shared fixture
from e2e.test_terminate import _command_line, _run, assert_nothing_left, publish_a_run
from streamguard.errors import DataError, ReadError

JVM = "org.apache.spark.deploy.SparkSubmit"


def test_a_killed_spark_jvm_ends_the_run_with_one_line_and_keeps_the_previous_output(
        bootstrap, big_topic, tmp_path):  # noqa: F811 - the fixture imported above
    output = tmp_path / "out"
    published, report_before = publish_a_run(big_topic, bootstrap, output)

    run = _run(big_topic, bootstrap, output, "spark", EVENTS)
    seen: set[int] = set()
    try:
        deadline = time.monotonic() + 240  # a bound for the parse stage to begin, not a timing assert
        jvm: list[int] = []
        workers: list[int] = []
        while time.monotonic() < deadline and run.poll() is None and not (jvm and workers):
            seen |= _descendants(run.pid)
            jvm = [pid for pid in seen if JVM in _command_line(pid)]
            workers = [pid for pid in seen if "pyspark.daemon" in _command_line(pid)]
            time.sleep(0.05)
        assert run.poll() is None, f"the run ended before the JVM was killed: {run.stderr.read()[-500:]}"
        assert jvm and workers, "the Spark run never reached its parse stage"
        os.kill(jvm[0], signal.SIGKILL)
        _, stderr = run.communicate(timeout=180)
    finally:
        if run.poll() is None:
            run.kill()

    lines = [line for line in stderr.splitlines() if line.strip()]
    assert run.returncode in (ReadError.exit_code, DataError.exit_code), stderr[-2000:]
    assert lines[-1].startswith("error: ") and "Spark's JVM went away" in lines[-1], stderr[-2000:]
    assert "STREAMGUARD_SPARK_DRIVER_MEMORY" in lines[-1], lines[-1]
    assert "Traceback" not in stderr, stderr[-2000:]

    assert_nothing_left(seen, output, published, report_before)
