"""A real Spark standalone cluster from the installed pyspark: a job runs Python on its executors, the CLI starts,
reports and stops a background cluster, and no JVM is left behind."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from e2e.spark_cluster_fixture import CLUSTER_DRIVER_CONF, spark_cluster  # noqa: F401 - a fixture
from streamguard.errors import ClusterError
from streamguard.spark_standalone import SparkStandalone

# Run as its own process: this one may already hold the local[2] SparkContext of the `spark` fixture.
DRIVER = """
import json, os, sys, time
import pandas as pd
from pyspark.sql import functions as F
from streamguard.spark import spark_session
from streamguard.spark_standalone import master_json

master, webui, conf = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
spark = spark_session(master=master, with_kafka=False, shuffle_partitions=4, extra_conf=conf)
try:
    sc = spark.sparkContext
    deadline = time.monotonic() + 120  # executors register asynchronously; wait for both before the job
    while sc._jsc.sc().getExecutorMemoryStatus().size() < 3 and time.monotonic() < deadline:
        time.sleep(0.5)
    df = spark.range(1000, numPartitions=4).withColumn("k", F.col("id") % 10)
    groups = df.groupBy("k").agg(F.count("*").alias("n"), F.sum("id").alias("total")).collect()

    def tag(batches):
        for pdf in batches:
            yield pd.DataFrame({"id": pdf["id"] * 2, "cwd": os.getcwd(), "python": sys.executable})

    rows = df.mapInPandas(tag, "id long, cwd string, python string").collect()
    print(json.dumps({
        "master": sc.master, "app_id": sc.applicationId,
        "executors": sc._jsc.sc().getExecutorMemoryStatus().size() - 1,
        "groups": {str(r["k"]): [r["n"], r["total"]] for r in groups},
        "rows": len(rows), "doubled_sum": sum(r["id"] for r in rows),
        "cwds": sorted({r["cwd"] for r in rows}), "pythons": sorted({r["python"] for r in rows}),
        "master_json": master_json(webui),
    }))
finally:
    spark.stop()
"""


def _processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes (not zombies, not this one) that contain ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command_line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in command_line:
            found.append(f"{entry.name}: {command_line[:200]}")
    return found


def test_a_job_runs_python_on_the_executors_of_both_workers(tmp_path):
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    with SparkStandalone(workers=2) as cluster:
        base_dir = cluster.base_dir
        driver = subprocess.run(
            [sys.executable, "-c", DRIVER, cluster.master_url, cluster.webui_url, json.dumps(CLUSTER_DRIVER_CONF)],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False,
        )
        assert driver.returncode == 0, driver.stderr[-3000:]
        out = json.loads(driver.stdout.strip().splitlines()[-1])
        work_dir = cluster.work_dir
    assert re.fullmatch(r"spark://127\.0\.0\.1:\d+", out["master"]) and out["master"] == cluster.master_url
    assert out["executors"] == 2
    assert out["groups"] == {str(k): [100, sum(range(k, 1000, 10))] for k in range(10)}
    assert out["rows"] == 1000 and out["doubled_sum"] == 2 * sum(range(1000))
    # Python ran inside executor directories of this cluster's workers, with the driver's interpreter.
    assert out["cwds"] and all(Path(cwd).parent == work_dir / out["app_id"] for cwd in out["cwds"])
    assert out["pythons"] == [sys.executable]
    status = out["master_json"]
    assert status["status"] == "ALIVE"
    assert [app["id"] for app in status["activeapps"]] == [out["app_id"]]
    alive = [worker for worker in status["workers"] if worker["state"] == "ALIVE"]
    assert len(alive) == 2 and all(worker["coresused"] == 1 for worker in alive), "an executor on each worker"
    assert _processes_mentioning(str(base_dir)) == [] and _processes_mentioning(out["app_id"]) == []
    assert not base_dir.exists()


def test_start_fails_fast_with_the_log_when_the_master_port_is_taken(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ClusterError, match="master JVM exited") as raised:
            SparkStandalone(port=port, base_dir=tmp_path / "spark").start()
    assert str(tmp_path / "spark" / "logs" / "master.log") in str(raised.value)
    assert _processes_mentioning(str(tmp_path)) == []


def test_a_master_port_taken_after_it_was_picked_is_picked_again(tmp_path, monkeypatch):
    import streamguard.spark_standalone as standalone

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        # The first port "free" when picked, taken by the time the JVM binds it: what another socket can do.
        picks = iter([taken.getsockname()[1]])
        real_free_port = standalone.free_port
        monkeypatch.setattr(standalone, "free_port", lambda: next(picks, None) or real_free_port())
        with SparkStandalone(workers=1, base_dir=tmp_path / "spark") as cluster:
            assert cluster.port != taken.getsockname()[1]
            assert standalone.master_json(cluster.webui_url)["status"] == "ALIVE"
    assert _processes_mentioning(str(tmp_path)) == []


def _streamguard(*args: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streamguard", *args], capture_output=True, text=True,
                          env={**os.environ, "STREAMGUARD_STATE_DIR": str(state_dir)}, timeout=300, check=False)


def test_cli_start_status_stop_leaves_no_jvm(tmp_path):
    state_dir = tmp_path / "state"
    try:
        started = _streamguard("spark", "start", "--workers", "2", "--memory", "1g", state_dir=state_dir)
        assert started.returncode == 0, started.stderr
        url = started.stdout.strip()
        assert re.fullmatch(r"spark://127\.0\.0\.1:\d+", url)
        assert len(_processes_mentioning(str(state_dir))) == 3  # master and two workers
        status = _streamguard("spark", "status", state_dir=state_dir)
        assert status.returncode == 0 and url in status.stdout and "2 workers" in status.stdout
        again = _streamguard("spark", "start", state_dir=state_dir)
        assert again.returncode == 0 and again.stdout.strip() == url  # finds the running cluster
    finally:
        stopped = _streamguard("spark", "stop", state_dir=state_dir)
    assert stopped.returncode == 0 and url in stopped.stdout
    assert _processes_mentioning(str(state_dir)) == []
    after = _streamguard("spark", "status", state_dir=state_dir)
    assert after.returncode == 1 and "no Spark cluster runs" in after.stdout


def test_session_fixture_yields_the_url_of_a_listening_master(spark_cluster):  # noqa: F811 - the fixture
    match = re.fullmatch(r"spark://127\.0\.0\.1:(\d+)", spark_cluster)
    assert match is not None
    with socket.create_connection(("127.0.0.1", int(match.group(1))), timeout=5):
        pass


STARTER = (
    "import time\n"
    "from streamguard.spark_standalone import SparkStandalone\n"
    "cluster = SparkStandalone(workers=1).start()\n"
    "print(*cluster.pids, flush=True)\n"
    "time.sleep(600)\n"
)


def _live(pid: int) -> bool:
    """Running and not a zombie (an orphan's zombie has an empty command line until someone reaps it)."""
    try:
        return bool(Path(f"/proc/{pid}/cmdline").read_bytes())
    except OSError:
        return False


def test_the_jvms_die_with_a_killed_parent():
    parent = subprocess.Popen([sys.executable, "-c", STARTER], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True)
    pids: list[int] = []
    try:
        line = parent.stdout.readline() if parent.stdout else ""
        pids = [int(pid) for pid in line.split()]
        assert len(pids) == 2, "the cluster did not start"
        parent.kill()
        parent.wait(timeout=60)
        # A bounded wait for the JVMs' own shutdown, not a timing assert: the point is that they end at all.
        deadline = time.monotonic() + 60
        while any(_live(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_live(pid) for pid in pids), f"JVMs {pids} outlived their parent"
    finally:
        if parent.poll() is None:
            parent.kill()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
