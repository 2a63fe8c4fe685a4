"""The batch job: plan → engine start → read → parse → features → detect → export, each stage timed.

It only sequences stages over an engine (``streamguard.engines``) and assembles the report; the engine holds the
data and translates its own errors.

    >>> result = run_pipeline(RunConfig(topic="security-events", bootstrap="127.0.0.1:9092", max_events=10_000))
    >>> result.report.anomalous_users
"""

from __future__ import annotations

import json
import logging
import platform
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import confluent_kafka
from rich.console import Console
from rich.status import Status

from streamguard.config import RESUME, RunConfig
from streamguard.contracts.columns import QUARANTINE_REASONS
from streamguard.engines import create_engine
from streamguard.engines.base import Engine, ReadCounts
from streamguard.errors import BrokerError, ConfigError, DataError, OutputError
from streamguard.export import QUARANTINE, TRAINING_DATA, RunPublisher
from streamguard.kafka.admin import partition_count
from streamguard.kafka.plan import EARLIEST, ReadPlan, plan_read
from streamguard.kafka.properties import KafkaProperties
from streamguard.report import REPORT_FILE, STAGES, AnomalyReport, report_json

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from streamguard.detect import FittedDetector

log = logging.getLogger(__name__)


# What each stage's live status line says while it runs.
STAGE_LABELS = {"plan": "planning the read", "engine_init": "starting the {engine} engine",
                "kafka_read": "reading from Kafka", "parse": "parsing", "features": "computing features",
                "detection": "fitting and scoring", "export": "writing the output"}
_PROGRESS_EVERY_S = 0.5


def _show_progress(line: Status, label: str, engine: Engine, stop: threading.Event) -> None:
    """Refresh a stage's status line with what the engine reports having done, until ``stop``."""
    while not stop.wait(_PROGRESS_EVERY_S):
        done = engine.progress()
        line.update(f"{label}… {done}" if done else f"{label}…")


@dataclass
class StageClock:
    """Seconds per stage, logged as each one ends; inside a stage the engine translates its errors."""

    seconds: dict[str, float] = field(default_factory=dict)
    console: Console | None = None
    started: float = field(default_factory=time.perf_counter)

    @contextmanager
    def stage(self, name: str, engine: Engine | None = None) -> Iterator[None]:
        begin = time.perf_counter()
        label = f"[bold]{STAGE_LABELS.get(name, name).format(engine=engine.name if engine else '')}[/]"
        status = self.console.status(label + "…") if self.console else nullcontext()
        try:
            with status as line, (engine.errors(name) if engine else nullcontext()):
                stop = threading.Event()
                if line is not None and engine is not None:
                    threading.Thread(target=_show_progress, args=(line, label, engine, stop), daemon=True,
                                     name="stage-progress").start()
                try:
                    yield
                finally:
                    stop.set()
        finally:
            self.seconds[name] = round(time.perf_counter() - begin, 3)
        log.info("stage %-11s %7.2f s", name, self.seconds[name])

    def totals(self) -> dict[str, float]:
        filled = {name: self.seconds.get(name, 0.0) for name in STAGES}
        filled["total"] = round(time.perf_counter() - self.started, 3)
        return filled


@dataclass(frozen=True)
class RunResult:
    report: AnomalyReport
    output: Path
    run_dir: Path


def versions(engine: Engine) -> dict[str, str]:
    try:
        package = version("streamguard")
    except PackageNotFoundError:
        package = "0+unknown"
    return {"package": package, "python": platform.python_version(), **engine.versions(),
            "kafka_client": confluent_kafka.__version__, "librdkafka": confluent_kafka.libversion()[0]}


def _new_run_id() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z-" + uuid.uuid4().hex[:6]


def _preload_detector_libraries() -> None:
    """Import scikit-learn (about a second, mostly SciPy) and jsonschema while the broker is asked and read.

    Runs in a daemon thread; the detection stage's own import then finds the modules loaded (or waits on Python's
    import lock for the rest). Kafka reads and DuckDB release the GIL, so on a cold run the two overlap.
    """
    try:
        import jsonschema  # noqa: F401, PLC0415
        import sklearn.ensemble  # noqa: F401, PLC0415
        import sklearn.preprocessing  # noqa: F401, PLC0415
    except Exception as exc:  # noqa: BLE001 - the detection stage reports the real error when it imports
        log.debug("preloading scikit-learn failed: %s", exc)


def run_pipeline(
    config: RunConfig, *, spark: SparkSession | None = None, progress: bool = True, engine: Engine | None = None
) -> RunResult:
    """Run the whole job; on any failure the previous published output is left as it was.

    ``spark`` runs the Spark engine on an existing session (left running); ``engine`` runs a given engine.
    """
    threading.Thread(target=_preload_detector_libraries, name="preload-sklearn", daemon=True).start()
    clock = StageClock(console=Console(stderr=True) if progress else None)
    publisher = RunPublisher(config.output)
    run_id = _new_run_id()
    if engine is None and spark is not None:
        from streamguard.engines.spark import SparkEngine  # noqa: PLC0415

        engine = SparkEngine(bootstrap=config.bootstrap, master=config.spark_master, session=spark,
                             kafka_properties=config.kafka_properties)
    engine = engine or create_engine(config.resolved_engine(), bootstrap=config.bootstrap,
                                     spark_master=config.spark_master, kafka_properties=config.kafka_properties)
    staging = publisher.prepare(run_id)  # after the engine's imports, so an interrupt there leaves no folder
    try:
        with clock.stage("plan"):
            start, resumed_from = resume_start(config)
            plan = plan_read(config.bootstrap, config.topic, start=start, max_events=config.max_events,
                             end=config.end, isolation_level=config.isolation_level, strategy=config.read_strategy,
                             properties=config.kafka_properties, last=config.last)
            plan.require_records()
        log.info("plan: %s records from %s (%s of %s available) %s", f"{plan.planned_records:,}", config.topic,
                 config.read_strategy, f"{plan.available_records:,}",
                 " ".join(f"p{r.partition}[{r.start},{r.until})" for r in plan.ranges))
        with clock.stage("engine_init", engine):
            engine.start()
        with clock.stage("kafka_read", engine):
            read = engine.read(plan)
        log.info("read %s records (%s fetched from Kafka) with the %s engine", f"{read.records_read:,}",
                 f"{read.records_fetched:,}", engine.name)
        with clock.stage("parse", engine):
            parsed = engine.parse()
            if parsed.valid == 0:
                raise DataError(f"none of the {read.records_read:,} records read is a valid event "
                                f"({parsed.by_reason})")
        log.info("parsed %s valid events, quarantined %s %s", f"{parsed.valid:,}",
                 f"{sum(parsed.by_reason.values()):,}", parsed.by_reason or "")
        with clock.stage("features", engine):
            users = engine.features()
        with clock.stage("detection", engine):
            detector = _detector(config, engine)
            scores = engine.score(detector, config.top_n)
            summary = detector.summary()
        log.info("detection: %d of %d users anomalous (%s, %s model, threshold %.4f by the %s rule)",
                 scores.anomalous, users, summary.algorithm, summary.model.source, summary.threshold,
                 summary.threshold_rule)
        with clock.stage("export", engine):
            engine.export(staging)
        report = AnomalyReport.model_validate({
            "total_users": users,
            "anomalous_users": scores.anomalous,
            "anomaly_rate": round(scores.anomalous / users, 6) if users else 0.0,
            "top_anomalies": [{**entry, "is_anomaly": bool(detector.flags(entry["anomaly_score"]))}
                              for entry in scores.top],
            "run": {**_run_metadata(config, run_id, engine, plan.to_dict(), read, parsed, clock, summary),
                    "next_offsets": {str(p): offset for p, offset in sorted(next_offsets(plan, read).items())},
                    "resumed_from": resumed_from},
        })
        try:
            (staging / REPORT_FILE).write_text(report_json(report))
        except OSError as exc:
            raise OutputError(f"cannot write the report into {staging}: {exc.strerror or exc}") from exc
    except BaseException:
        try:
            publisher.abort(staging)
        finally:
            engine.close()
        raise
    try:
        engine.close()
        publisher.commit(staging)
    except BaseException:  # e.g. SIGTERM while Spark stops: abort keeps the run if it was published already
        publisher.abort(staging)
        raise
    log.info("run %s done in %.1f s: %s", run_id, report.run.stage_seconds.total, config.output)
    if config.commit_group is not None:
        commit_offsets(config.bootstrap, config.topic, config.commit_group, next_offsets(plan, read),
                       properties=config.kafka_properties)
    return RunResult(report=report, output=Path(config.output), run_dir=staging)


def resume_start(config: RunConfig) -> tuple[str, str | None]:
    """The start spec to plan with, and the run it resumes (None unless ``--start resume`` found one).

    ``resume`` continues every partition at the ``next_offsets`` of the run published at ``config.output``
    (a partition it did not know starts at its earliest offset); without a published run it means ``earliest``.
    Only a published run moves the position: a failed run leaves the previous report, hence the position, as it was.
    """
    if config.start != RESUME:
        return config.start, None
    try:
        previous = AnomalyReport.model_validate_json((Path(config.output) / REPORT_FILE).read_bytes())
    except FileNotFoundError:
        log.info("resume: no run published at %s yet; starting at the earliest offsets", config.output)
        return "earliest", None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--start resume: cannot read the previous report at {config.output}: {exc}") from exc
    run = previous.run
    if run.topic != config.topic:
        raise ConfigError(f"--start resume: the run at {config.output} read topic {run.topic!r}, not "
                          f"{config.topic!r}; give each topic its own --output")
    if run.next_offsets is None:
        raise ConfigError(f"--start resume: the run at {config.output} ({run.run_id}) records no end offsets "
                          "(written before resume existed); run once with an explicit --start")
    partitions = partition_count(config.bootstrap, config.topic, properties=config.kafka_properties)
    known = {int(p): offset for p, offset in run.next_offsets.items()}
    if max(known, default=-1) >= partitions:
        raise ConfigError(f"--start resume: topic {config.topic!r} has {partitions} partitions, fewer than the run "
                          f"at {config.output} read (was it deleted and created again?)")
    spec = {str(p): known.get(p, EARLIEST) for p in range(partitions)}
    log.info("resume: continuing run %s at %s", run.run_id, spec)
    return json.dumps(spec), run.run_id


def next_offsets(plan: ReadPlan, read: ReadCounts) -> dict[int, int]:
    """Per partition, the offset after the last one this run covered: where the next ``--start resume`` begins.

    A partition's final range comes from the read's accounting (the readers may extend a planned range where offsets
    hold no record), else from the plan; a partition with nothing to read stays at its start offset.
    """
    ends = {r.partition: r.until for r in plan.ranges}
    if read.accounting is not None:
        ends.update({account.partition: account.until for account in read.accounting.partitions})
    return {w.partition: ends.get(w.partition, plan.start_offsets.get(w.partition, w.low)) for w in plan.watermarks}


def commit_offsets(bootstrap: str, topic: str, group: str, offsets: dict[int, int],
                   properties: KafkaProperties | None = None) -> None:
    """Commit ``offsets`` (the next offset to read per partition) for consumer group ``group``, synchronously, so
    Kafka's own tools (``kafka-consumer-groups.sh --describe``) show the lag behind the last published run."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition  # noqa: PLC0415

    try:
        consumer = Consumer({**(properties.for_librdkafka() if properties else {}), "bootstrap.servers": bootstrap,
                             "group.id": group, "enable.auto.commit": False, "log_level": 0})
    except KafkaException as exc:
        raise BrokerError(f"cannot create a Kafka consumer to commit group {group!r}: {exc}") from exc
    try:
        committed = consumer.commit(offsets=[TopicPartition(topic, p, offset) for p, offset in sorted(offsets.items())],
                                    asynchronous=False)
    except KafkaException as exc:
        raise BrokerError(f"the run is published, but committing its end offsets to group {group!r} failed: "
                          f"{exc}") from exc
    finally:
        consumer.close()
    failed = [tp for tp in committed or [] if tp.error is not None]
    if failed:
        raise BrokerError(f"the run is published, but committing group {group!r} failed for partition "
                          f"{failed[0].partition}: {failed[0].error}")
    log.info("committed %s to consumer group %s", {p: o for p, o in sorted(offsets.items())}, group)


def _detector(config: RunConfig, engine: Engine) -> FittedDetector:
    """The saved model ``config.model`` (no refit), or one fitted on this run's users (and saved if asked)."""
    from streamguard.detect import (  # noqa: PLC0415 - scikit-learn loads only for a run
        detector_inputs,
        fit_detector,
        load_model,
        save_model,
        saved,
    )

    if config.model is not None:
        detector = load_model(config.model)
        return detector.with_share(config.contamination) if config.contamination is not None else detector
    detector_config = config.detector()
    sample = engine.fit_sample(detector_inputs(detector_config), detector_config.max_fit_rows)
    detector = fit_detector(sample, detector_config)
    if config.save_model is not None:
        detector = saved(detector, save_model(detector, config.save_model), config.save_model)
    return detector


def _run_metadata(config: RunConfig, run_id: str, engine: Engine, plan: dict[str, Any], read: Any, parsed: Any,
                  clock: StageClock, summary: Any) -> dict[str, Any]:
    return {
        "run_id": run_id, "engine": engine.name, "topic": config.topic, "bootstrap": config.bootstrap,
        "read_strategy": config.read_strategy, "plan": plan,
        "records_scanned": read.records_fetched, "records_read": read.records_read, "records_valid": parsed.valid,
        "records_quarantined": sum(parsed.by_reason.values()),
        "quarantined_by_reason": {reason: parsed.by_reason.get(reason, 0) for reason in QUARANTINE_REASONS},
        "read_accounting": read.accounting.to_dict() if read.accounting is not None else None,
        "time_window": parsed.time_window(),
        "unknown_detail_words": parsed.unknown_detail_words,
        "stage_seconds": clock.totals(), "versions": versions(engine),
        "detector": summary.to_dict(), "config": config.to_dict(),
        "outputs": {"training_data": TRAINING_DATA, "quarantine": QUARANTINE, "report": REPORT_FILE},
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }



