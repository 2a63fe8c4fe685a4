"""Interleaved, checked measurements of the read stage and the whole pipeline, bounded against full scan.

One round runs every case once, in a fixed order (for each topic: bounded, then full scan), so the series a
ratio compares were measured side by side and a machine slowing down mid-run slows both:

    >>> cases = [Case("read", label, topic) for topic in topics for label in ("bounded", "full-scan")]
    >>> series = interleave(cases, rounds=5, warmup=1, run=lambda case: read_once(spark, bootstrap, case))
    >>> series[cases[0].key].median

Every sample carries the events it read and the records it fetched, and ``check`` refuses a sample that did not
do the work it claims: the bounded side must deliver exactly ``max_events`` events, the full scan must fetch the
whole topic. A fast wrong answer therefore fails the run instead of improving a figure.

The read stage is the Spark engine's :meth:`~streamguard.engines.spark.SparkEngine.read` on the warm session (the
pipeline's own ``kafka_read`` stage with ``--engine spark``: fetch into Spark's cache and count); planning is timed
separately and kept in ``stage_seconds``. The pipeline is :func:`streamguard.pipeline.run_pipeline` on the same
session (so the Spark engine, whatever ``--engine auto`` would pick).
"""

from __future__ import annotations

import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from bench.topics import BenchTopic
from streamguard.config import RunConfig
from streamguard.engines.spark import SparkEngine
from streamguard.errors import StreamguardError
from streamguard.kafka.plan import plan_read
from streamguard.pipeline import run_pipeline
from streamguard.spark import spark_session

log = logging.getLogger(__name__)

MAX_EVENTS = 1_000
LABELS = ("bounded", "full-scan")
SPARK_MASTER = "local[2]"
# The full scan caches the whole topic; with Spark's default 1g driver heap that dies of OutOfMemoryError from about
# 2M events. The bounded side does not need it; both sides share one session, so both get it.
ENV_DRIVER_MEMORY = "STREAMGUARD_BENCH_DRIVER_MEMORY"
DEFAULT_DRIVER_MEMORY = "4g"


class CheckFailed(RuntimeError):
    """A sample did not read what its case requires (wrong event count, or a scan that skipped records)."""


class MeasurementFailed(RuntimeError):
    """Spark failed while a case was measured (e.g. the driver ran out of memory on a full scan)."""


@dataclass(frozen=True, slots=True)
class Case:
    """One thing measured: a stage, the side it stands for (``label``) and the topic it reads.

    ``strategy`` is the read strategy actually run; it equals ``label`` except when a check of the gate forces
    both sides to one strategy.
    """

    stage: str
    label: str
    topic: BenchTopic
    max_events: int = MAX_EVENTS
    strategy: str | None = None

    @property
    def run_strategy(self) -> str:
        return self.strategy or self.label

    @property
    def key(self) -> str:
        return f"{self.stage}/{self.label}/{self.topic.events}"


@dataclass(frozen=True, slots=True)
class Sample:
    seconds: float
    events_read: int
    records_scanned: int
    stage_seconds: dict[str, float] = field(default_factory=dict)
    seq: int = -1  # position in the run's interleaved order


@dataclass(slots=True)
class Series:
    """The samples of one case; warm-up samples are kept apart and never enter the statistics."""

    case: Case
    samples: list[Sample] = field(default_factory=list)
    warmup: list[Sample] = field(default_factory=list)

    @property
    def seconds(self) -> list[float]:
        return [s.seconds for s in self.samples]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def extra_info(self) -> dict[str, Any]:
        """What pytest-benchmark stores next to its statistics for this series (see bench/README.md)."""
        case = self.case
        return {
            "stage": case.stage, "strategy": case.label, "run_strategy": case.run_strategy,
            "events": case.topic.events, "topic": case.topic.name, "max_events": case.max_events,
            "partition_sizes": list(case.topic.partition_sizes),
            "seconds": [s.seconds for s in self.samples], "seq": [s.seq for s in self.samples],
            "events_read": [s.events_read for s in self.samples],
            "records_scanned": [s.records_scanned for s in self.samples],
            "stage_seconds": [s.stage_seconds for s in self.samples],
            "warmup_seconds": [s.seconds for s in self.warmup],
        }


def driver_memory() -> str:
    return os.environ.get(ENV_DRIVER_MEMORY) or DEFAULT_DRIVER_MEMORY


def bench_spark() -> SparkSession:
    """The session every warm measurement runs in: ``local[2]`` and the bench's driver memory."""
    return spark_session(master=SPARK_MASTER, extra_conf={"spark.driver.memory": driver_memory()})


def stop_spark(spark: SparkSession) -> None:
    """Stop ``spark``; a JVM that already died (out of memory, killed) is not an error here."""
    try:
        spark.stop()
    except Exception as exc:  # noqa: BLE001 - the session is gone either way
        log.warning("stopping Spark: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


@contextmanager
def _spark_errors(case: Case) -> Iterator[None]:
    from py4j.protocol import Py4JError  # noqa: PLC0415
    from pyspark.errors import PySparkException  # noqa: PLC0415

    try:
        yield
    except (Py4JError, PySparkException) as exc:
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise MeasurementFailed(f"{case.key}: Spark failed: {first[:300]}") from exc


def check(case: Case, sample: Sample) -> None:
    """Raise CheckFailed unless ``sample`` did the work ``case`` stands for."""
    if sample.events_read != case.max_events:
        raise CheckFailed(f"{case.key}: read {sample.events_read:,} events, expected exactly {case.max_events:,}")
    if case.label == "full-scan" and sample.records_scanned != case.topic.events:
        raise CheckFailed(f"{case.key}: the full scan fetched {sample.records_scanned:,} records, "
                          f"not the whole topic ({case.topic.events:,})")


def interleave(
    cases: list[Case], *, rounds: int, warmup: int, run: Callable[[Case], Sample],
    on_sample: Callable[[Case, Sample, bool], None] | None = None,
) -> dict[str, Series]:
    """Run ``warmup`` discarded rounds, then ``rounds`` measured ones; each round runs every case in order."""
    if rounds < 1 or warmup < 0:
        raise ValueError(f"need rounds >= 1 and warmup >= 0, not {rounds} and {warmup}")
    series = {case.key: Series(case) for case in cases}
    seq = 0
    for index in range(warmup + rounds):
        is_warmup = index < warmup
        for case in cases:
            sample = run(case)
            check(case, sample)
            sample = Sample(sample.seconds, sample.events_read, sample.records_scanned, sample.stage_seconds, seq)
            seq += 1
            (series[case.key].warmup if is_warmup else series[case.key].samples).append(sample)
            if on_sample is not None:
                on_sample(case, sample, is_warmup)
    return series


def read_once(spark: SparkSession, bootstrap: str, case: Case) -> Sample:
    """Plan, then time the Spark engine's read stage; the engine drops its cached frames before returning."""
    began = time.perf_counter()
    plan = plan_read(bootstrap, case.topic.name, max_events=case.max_events, strategy=case.run_strategy)
    planned = time.perf_counter()
    engine = SparkEngine(bootstrap=bootstrap, master=SPARK_MASTER, session=spark)
    with _spark_errors(case):
        try:
            counts = engine.read(plan)
            seconds = time.perf_counter() - planned
        finally:
            engine.close()  # unpersists; leaves the shared session running
    return Sample(round(seconds, 4), counts.records_read, counts.records_fetched,
                  {"plan": round(planned - began, 4), "kafka_read": round(seconds, 4)})


def pipeline_once(spark: SparkSession, bootstrap: str, case: Case) -> Sample:
    """Run the whole job with the Spark engine on ``spark`` into a throw-away output folder; seconds are wall time
    around ``run_pipeline``."""
    with tempfile.TemporaryDirectory(prefix="streamguard-bench-") as tmp:
        config = RunConfig(topic=case.topic.name, bootstrap=bootstrap, max_events=case.max_events,
                           read_strategy=case.run_strategy, output=Path(tmp) / "out", engine="spark",
                           spark_master=SPARK_MASTER)
        began = time.perf_counter()
        try:
            result = run_pipeline(config, spark=spark, progress=False)
        except StreamguardError as exc:
            raise MeasurementFailed(f"{case.key}: {exc}") from exc
        seconds = time.perf_counter() - began
    run = result.report.run
    if run.engine != "spark":
        raise CheckFailed(f"{case.key}: the pipeline ran the {run.engine} engine, not spark")
    return Sample(round(seconds, 4), run.records_read, run.records_scanned, run.stage_seconds.model_dump())


def cases_for(
    stage: str, topics: Iterable[BenchTopic], *, max_events: int = MAX_EVENTS, force_strategy: str | None = None
) -> list[Case]:
    """Bounded then full scan for each topic, smallest topic first."""
    return [Case(stage, label, topic, max_events, strategy=force_strategy)
            for topic in sorted(topics, key=lambda t: t.events) for label in LABELS]

