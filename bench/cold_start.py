"""Cold start: a fresh Spark session (JVM, jars) and the Spark engine's first bounded read, each in a new process.

A Spark JVM outlives ``SparkSession.stop()`` inside one Python process, so a second session there is not cold;
every cold round therefore runs in its own child process:

    >>> rounds = measure_cold(bootstrap, topic, rounds=3)       # [{"engine_init": 6.9, "first_read": 5.8, ...}]

``engine_init`` is what the pipeline's stage of that name costs the Spark engine (records before the engine seam
called it ``spark_init``); ``python -m bench.engines`` measures both engines cold as a user runs them.

Run alone, the module is that child: ``python -m bench.cold_start --bootstrap HOST:PORT --topic T`` prints one
JSON object on its last stdout line and stops its Spark session before exiting.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.topics import BenchTopic

_CHILD_TIMEOUT_S = 600
_REPO = Path(__file__).resolve().parent.parent


class ColdStartFailed(RuntimeError):
    pass


def measure_cold(bootstrap: str, topic: BenchTopic, *, rounds: int, max_events: int = 1_000) -> list[dict]:
    """``rounds`` child processes, one after the other; each result holds seconds and what was read."""
    results = []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(_REPO), os.environ.get("PYTHONPATH")]))}
    for _ in range(rounds):
        command = [sys.executable, "-m", "bench.cold_start", "--bootstrap", bootstrap, "--topic", topic.name,
                   "--max-events", str(max_events)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=_CHILD_TIMEOUT_S, check=False,
                              cwd=_REPO, env=env)
        lines = done.stdout.strip().splitlines()
        if done.returncode != 0 or not lines:
            tail = "\n".join(done.stderr.strip().splitlines()[-10:])
            raise ColdStartFailed(f"cold-start child exited with {done.returncode}:\n{tail}")
        results.append(json.loads(lines[-1]))
    return results


def _child(bootstrap: str, topic: str, max_events: int) -> dict:
    began = time.perf_counter()
    from bench.harness import SPARK_MASTER, bench_spark, stop_spark  # noqa: PLC0415 - import time is measured
    from streamguard.engines.spark import SparkEngine  # noqa: PLC0415
    from streamguard.kafka.plan import plan_read  # noqa: PLC0415

    imported = time.perf_counter()
    spark = bench_spark()
    try:
        ready = time.perf_counter()
        plan = plan_read(bootstrap, topic, max_events=max_events, strategy="bounded")
        engine = SparkEngine(bootstrap=bootstrap, master=SPARK_MASTER, session=spark)
        try:
            counts = engine.read(plan)
            read = time.perf_counter()
        finally:
            engine.close()
    finally:
        stop_spark(spark)
    return {"imports": round(imported - began, 4), "engine_init": round(ready - imported, 4),
            "first_read": round(read - ready, 4), "events_read": counts.records_read,
            "records_scanned": counts.records_fetched}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cold_start", description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--max-events", type=int, default=1_000)
    args = parser.parse_args(argv)
    print(json.dumps(_child(args.bootstrap, args.topic, args.max_events)), flush=True)


if __name__ == "__main__":
    main()
