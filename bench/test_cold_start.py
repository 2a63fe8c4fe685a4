"""Cold start, apart from the warm runs: a new Spark session (JVM and jars), and the Spark engine's first bounded
read (``engine_init`` was ``spark_init`` in records before the engine seam)."""

from __future__ import annotations

import pytest

from bench.replay import CLOCK, replay

pytestmark = pytest.mark.benchmark(timer=CLOCK)


@pytest.mark.parametrize("phase", ["engine_init", "first_read"])
def test_cold_start(benchmark, cold_runs, bench_topics, phase):
    smallest = bench_topics[min(bench_topics)]
    info = {"stage": "cold", "phase": phase, "events": smallest.events, "topic": smallest.name,
            "seconds": [run[phase] for run in cold_runs], "imports_seconds": [run["imports"] for run in cold_runs],
            "events_read": [run["events_read"] for run in cold_runs],
            "records_scanned": [run["records_scanned"] for run in cold_runs]}
    replay(benchmark, info["seconds"], info, group="cold start")
    assert set(info["events_read"]) == {1_000}
    assert set(info["records_scanned"]) == {1_000}
