"""The batch job: plan → read → parse → features → detect → export, each stage timed. No logic of its own.

    >>> result = run_pipeline(RunConfig(topic="security-events", bootstrap="127.0.0.1:9092", max_events=10_000))
    >>> result.report.anomalous_users
"""

from __future__ import annotations

import logging
import platform
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import confluent_kafka
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from rich.console import Console

from streamguard.config import RunConfig
from streamguard.detect import fit_detector, score
from streamguard.errors import (
    BrokerUnreachable,
    DataError,
    DetectionError,
    OutputError,
    ReadError,
    SetupError,
    StreamguardError,
)
from streamguard.events.parse import QUARANTINE_REASONS, classify, quarantine, valid_events
from streamguard.export import QUARANTINE, TRAINING_DATA, RunPublisher
from streamguard.features import build_features
from streamguard.kafka.plan import ReadPlan, plan_read
from streamguard.kafka.read import read_kafka
from streamguard.report import REPORT_FILE, STAGES, AnomalyReport, report_json
from streamguard.spark import spark_session

log = logging.getLogger(__name__)

RECORDS_PER_TASK = 250_000
_STAGE_ERRORS: dict[str, type[StreamguardError]] = {
    "plan": ReadError, "spark_init": SetupError, "kafka_read": ReadError, "parse": DataError,
    "features": DataError, "detection": DetectionError, "export": OutputError,
}


@dataclass
class StageClock:
    """Seconds per stage, logged as each one ends."""

    seconds: dict[str, float] = field(default_factory=dict)
    console: Console | None = None
    started: float = field(default_factory=time.perf_counter)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        begin = time.perf_counter()
        status = self.console.status(f"[bold]{name}[/]…") if self.console else nullcontext()
        try:
            with status, _translate_spark_errors(name):
                yield
        finally:
            self.seconds[name] = round(time.perf_counter() - begin, 3)
        log.info("stage %-10s %7.2f s", name, self.seconds[name])

    def totals(self) -> dict[str, float]:
        filled = {name: self.seconds.get(name, 0.0) for name in STAGES}
        filled["total"] = round(time.perf_counter() - self.started, 3)
        return filled


@contextmanager
def _translate_spark_errors(stage: str) -> Iterator[None]:
    try:
        yield
    except StreamguardError:
        raise
    except Exception as exc:
        if not _is_spark_error(exc):
            raise
        message = _spark_message(exc)
        if stage == "kafka_read" and ("TimeoutException" in message or "Timed out" in message):
            raise BrokerUnreachable(f"Kafka did not answer Spark's reads: {message}") from exc
        raise _STAGE_ERRORS.get(stage, StreamguardError)(f"{stage} failed in Spark: {message}") from exc


def _spark_message(exc: BaseException) -> str:
    """The Java exception's own first line where there is one (Py4J's is only "error calling oNNN.count")."""
    java = getattr(exc, "java_exception", None)
    text = str(java.toString()) if java is not None else str(exc)
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
    return first_line[:300]


def _is_spark_error(exc: BaseException) -> bool:
    from py4j.protocol import Py4JError  # noqa: PLC0415
    from pyspark.errors import PySparkException  # noqa: PLC0415

    return isinstance(exc, Py4JError | PySparkException)


@dataclass(frozen=True)
class RunResult:
    report: AnomalyReport
    output: Path
    run_dir: Path


def versions(spark: SparkSession) -> dict[str, str]:
    try:
        package = version("streamguard")
    except PackageNotFoundError:
        package = "0+unknown"
    return {"package": package, "python": platform.python_version(), "spark": spark.version,
            "kafka_client": confluent_kafka.__version__, "librdkafka": confluent_kafka.libversion()[0]}


def _new_run_id() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z-" + uuid.uuid4().hex[:6]


def run_pipeline(config: RunConfig, *, spark: SparkSession | None = None, progress: bool = True) -> RunResult:
    """Run the whole job; on any failure the previous published output is left as it was."""
    clock = StageClock(console=Console(stderr=True) if progress else None)
    publisher = RunPublisher(config.output)
    run_id = _new_run_id()
    staging = publisher.prepare(run_id)
    cached: list[DataFrame] = []
    owns_spark = spark is None
    try:
        with clock.stage("plan"):
            plan = plan_read(config.bootstrap, config.topic, start=config.start, max_events=config.max_events,
                             end=config.end, isolation_level=config.isolation_level, strategy=config.read_strategy)
            plan.require_records()
        log.info("plan: %s records from %s (%s of %s available) %s", f"{plan.planned_records:,}", config.topic,
                 config.read_strategy, f"{plan.available_records:,}",
                 " ".join(f"p{r.partition}[{r.start},{r.until})" for r in plan.ranges))
        with clock.stage("spark_init"):
            spark = spark or spark_session(master=config.spark_master)
        with clock.stage("kafka_read"):
            raw, records_scanned, events_read = read_records(spark, config.bootstrap, plan, cached)
        log.info("read %s records (%s fetched from Kafka)", f"{events_read:,}", f"{records_scanned:,}")
        with clock.stage("parse"):
            classified = _persist(classify(raw), cached)
            by_reason = {row["reason"]: row["count"] for row in classified.groupBy("reason").count().collect()}
            events_valid = by_reason.pop(None, 0)
            if events_valid == 0:
                raise DataError(f"none of the {events_read:,} records read is a valid event ({by_reason})")
        log.info("parsed %s valid events, quarantined %s %s", f"{events_valid:,}",
                 f"{sum(by_reason.values()):,}", by_reason or "")
        with clock.stage("features"):
            features = _persist(build_features(valid_events(classified)), cached)
            users = features.count()
        with clock.stage("detection"):
            detector = fit_detector(features, config.detector())
            summary = detector.summary
            scored = _persist(score(features, detector), cached)
            anomalous = scored.where(F.col("is_anomaly") == 1).count()
            top = scored.orderBy(F.desc("anomaly_score"), "user").limit(config.top_n).collect()
        log.info("detection: %d of %d users anomalous (%s)", anomalous, users, summary.algorithm)
        with clock.stage("export"):
            scored.write.partitionBy("is_anomaly").parquet(str(staging / TRAINING_DATA))
            quarantine(classified).write.parquet(str(staging / QUARANTINE))
        report = AnomalyReport.model_validate({
            "total_users": users,
            "anomalous_users": anomalous,
            "anomaly_rate": round(anomalous / users, 6) if users else 0.0,
            "top_anomalies": [_top_entry(row) for row in top],
            "run": {
                "run_id": run_id, "topic": config.topic, "bootstrap": config.bootstrap,
                "read_strategy": config.read_strategy, "plan": plan.to_dict(),
                "records_scanned": records_scanned, "events_read": events_read, "events_valid": events_valid,
                "events_invalid": sum(by_reason.values()),
                "invalid_by_reason": {reason: by_reason.get(reason, 0) for reason in QUARANTINE_REASONS},
                "stage_seconds": clock.totals(), "versions": versions(spark),
                "detector": summary.to_dict(), "config": config.to_dict(),
                "outputs": {"training_data": TRAINING_DATA, "quarantine": QUARANTINE, "report": REPORT_FILE},
                "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        })
        try:
            (staging / REPORT_FILE).write_text(report_json(report))
        except OSError as exc:
            raise OutputError(f"cannot write the report into {staging}: {exc.strerror or exc}") from exc
    except BaseException:
        publisher.abort(staging)
        raise
    finally:
        _release(cached)
        if owns_spark and spark is not None:
            spark.stop()
    publisher.commit(staging)
    log.info("run %s done in %.1f s: %s", run_id, report.run.stage_seconds.total, config.output)
    return RunResult(report=report, output=Path(config.output), run_dir=staging)


def read_records(
    spark: SparkSession, bootstrap: str, plan: ReadPlan, cached: list[DataFrame]
) -> tuple[DataFrame, int, int]:
    """The read stage: fetch the plan's records into Spark's cache; return them, records fetched, records kept.

    A ``full-scan`` plan fetches every record up to the latest offsets and then keeps ``max_events`` of them,
    as the job this one replaces did; a ``bounded`` plan fetches exactly the planned offsets.
    """
    fetched = read_kafka(spark, bootstrap, plan)
    if plan.strategy == "bounded":
        # Spark makes one task per Kafka partition; a small slice runs the later stages faster in fewer tasks.
        tasks = max(1, min(len(plan.ranges), -(-plan.planned_records // RECORDS_PER_TASK)))
        fetched = fetched.coalesce(tasks)
    raw = _persist(fetched, cached)
    records_scanned = events_read = raw.count()
    if plan.strategy == "full-scan" and plan.max_events is not None:
        raw = _persist(raw.limit(plan.max_events), cached)
        events_read = raw.count()
    return raw, records_scanned, events_read


def _release(cached: list[DataFrame]) -> None:
    # After a JVM failure unpersist raises too; that must not replace the error the run is failing with.
    for frame in cached:
        try:
            frame.unpersist()
        except Exception as exc:  # noqa: BLE001
            log.debug("could not unpersist a cached frame: %s", exc)


def _persist(frame: DataFrame, cached: list[DataFrame]) -> DataFrame:
    persisted = frame.persist(StorageLevel.MEMORY_AND_DISK)
    cached.append(persisted)
    return persisted


def _top_entry(row: object) -> dict[str, object]:
    return {"user": row["user"], "anomaly_score": float(row["anomaly_score"]),  # type: ignore[index]
            "total_events": int(row["total_events"]), "avg_threat_score": float(row["avg_threat_score"]),  # type: ignore[index]
            "unique_ips": int(row["unique_ips"]), "failed_auth_rate": float(row["failed_auth_rate"])}  # type: ignore[index]
