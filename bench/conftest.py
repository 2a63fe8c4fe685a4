"""Benchmark fixtures: one broker, cached topics, one warm Spark session, and the interleaved measurements.

Run through ``python -m bench.run`` (which also writes the history record and chart), or directly:

    pytest bench --bench-events 100000,1000000 --benchmark-json out.json

Each measurement fixture runs all its rounds once per session, over every topic size, interleaved; the tests then
report one series each to pytest-benchmark (see bench/replay.py). Everything started here is stopped here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from pyspark.sql import SparkSession

from bench.cold_start import measure_cold
from bench.harness import (
    LABELS,
    MAX_EVENTS,
    SPARK_MASTER,
    Case,
    Sample,
    Series,
    bench_spark,
    cases_for,
    driver_memory,
    interleave,
    pipeline_once,
    read_once,
    stop_spark,
)
from bench.machine import machine_info, versions
from bench.topics import BenchTopic, bench_broker, broker_kind, ensure_topic
from streamguard.kafka.broker import BrokerProvider

FORMAT = 1
_RUN = pytest.StashKey[dict]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("streamguard bench")
    group.addoption("--bench-events", default="100000,1000000",
                    help="comma-separated topic sizes in events (default 100000,1000000)")
    group.addoption("--bench-rounds", type=int, default=5, help="measured rounds of the read stage (default 5)")
    group.addoption("--bench-pipeline-rounds", type=int, default=3,
                    help="measured rounds of the whole pipeline (default 3)")
    group.addoption("--bench-warmup", type=int, default=1, help="discarded warm-up rounds (default 1)")
    group.addoption("--bench-cold-rounds", type=int, default=3, help="cold starts, one process each (default 3)")


def bench_sizes(config: pytest.Config) -> list[int]:
    try:
        sizes = sorted({int(part.replace("_", "")) for part in config.getoption("--bench-events").split(",")})
    except ValueError as exc:
        raise pytest.UsageError(f"--bench-events must be comma-separated integers: {exc}") from exc
    if not sizes or sizes[0] <= MAX_EVENTS:
        raise pytest.UsageError(f"--bench-events sizes must be larger than {MAX_EVENTS}")
    return sizes


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_RUN] = {"format": FORMAT, "topics": [], "machine_start": machine_info()}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "events" in metafunc.fixturenames:
        metafunc.parametrize("events", bench_sizes(metafunc.config), ids=lambda n: f"{n}")
    if "label" in metafunc.fixturenames:
        metafunc.parametrize("label", LABELS)


def pytest_benchmark_update_json(config: pytest.Config, benchmarks: list, output_json: dict) -> None:
    """Everything the history record needs beyond pytest-benchmark's own fields (bench/README.md)."""
    run = config.stash[_RUN]
    output_json["streamguard_bench"] = {
        **run,
        "machine_end": machine_info(),
        "settings": {
            "events": bench_sizes(config), "max_events": MAX_EVENTS, "spark_master": SPARK_MASTER,
            "driver_memory": driver_memory(),
            "rounds": config.getoption("--bench-rounds"),
            "pipeline_rounds": config.getoption("--bench-pipeline-rounds"),
            "warmup_rounds": config.getoption("--bench-warmup"),
            "cold_rounds": config.getoption("--bench-cold-rounds"),
        },
        "broker": broker_kind(),
        "versions": versions(broker=broker_kind()),
    }


def _progress(config: pytest.Config):
    """Print each sample as it is measured (a 10M run takes a while); pytest would otherwise capture it."""
    capture = config.pluginmanager.get_plugin("capturemanager")
    reporter = config.pluginmanager.get_plugin("terminalreporter")

    def show(case: Case, sample: Sample, warmup: bool) -> None:
        if reporter is None or capture is None:
            return
        with capture.global_and_fixture_disabled():
            reporter.write_line(
                f"  {case.stage:<8} {case.label:<9} {case.topic.events:>11,}  {'warm-up' if warmup else 'round':<7} "
                f"{sample.seconds:8.3f} s  {sample.events_read:,} read, {sample.records_scanned:,} fetched"
            )

    return show


@pytest.fixture(scope="session")
def broker() -> Iterator[BrokerProvider]:
    with bench_broker() as provider:
        yield provider


@pytest.fixture(scope="session")
def bench_topics(broker: BrokerProvider, pytestconfig: pytest.Config) -> dict[int, BenchTopic]:
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():  # show seeding progress
        topics = {n: ensure_topic(broker.bootstrap, n) for n in bench_sizes(pytestconfig)}
    pytestconfig.stash[_RUN]["topics"] = [t.to_dict() for t in topics.values()]
    return topics


@pytest.fixture(scope="session")
def cold_runs(broker: BrokerProvider, bench_topics: dict[int, BenchTopic], pytestconfig: pytest.Config) -> list[dict]:
    """Cold starts on the smallest topic, before the warm session exists (so they do not compete with it)."""
    smallest = bench_topics[min(bench_topics)]
    return measure_cold(broker.bootstrap, smallest, rounds=pytestconfig.getoption("--bench-cold-rounds"))


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    session = bench_spark()
    try:
        yield session
    finally:
        stop_spark(session)


@pytest.fixture(scope="session")
def read_series(
    spark: SparkSession, broker: BrokerProvider, bench_topics: dict[int, BenchTopic], pytestconfig: pytest.Config
) -> dict[str, Series]:
    return interleave(
        cases_for("read", bench_topics.values()), rounds=pytestconfig.getoption("--bench-rounds"),
        warmup=pytestconfig.getoption("--bench-warmup"),
        run=lambda case: read_once(spark, broker.bootstrap, case), on_sample=_progress(pytestconfig),
    )


@pytest.fixture(scope="session")
def pipeline_series(
    spark: SparkSession, broker: BrokerProvider, bench_topics: dict[int, BenchTopic], pytestconfig: pytest.Config
) -> dict[str, Series]:
    return interleave(
        cases_for("pipeline", bench_topics.values()), rounds=pytestconfig.getoption("--bench-pipeline-rounds"),
        warmup=pytestconfig.getoption("--bench-warmup"),
        run=lambda case: pipeline_once(spark, broker.bootstrap, case), on_sample=_progress(pytestconfig),
    )
