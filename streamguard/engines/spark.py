"""The Spark engine: the same stages on a Spark cluster (or ``local[*]``), for data past one machine.

Spark's own Kafka source reads the plan's exact offsets; ``classify_batch`` runs on the executors in
``mapInArrow``; Spark SQL runs the shared feature query; the fitted detector scores on the executors in
``mapInPandas``. Spark's errors (Py4J and PySpark exceptions) are translated here, at the boundary.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema
from pyspark.sql.types import DoubleType, IntegerType, StructField, StructType

from streamguard._proc import child_pids, stop_pids
from streamguard.contracts.columns import (
    EVENT_COLUMNS,
    FLAG_COLUMN,
    QUARANTINE_COLUMNS,
    RAW_COLUMNS,
    SCORE_COLUMN,
)
from streamguard.detect import FittedDetector, fit_sample_sql
from streamguard.engines.base import Engine, ParseCounts, ReadCounts, ScoreSummary, stage_error, top_entries
from streamguard.errors import (
    BrokerAuthenticationFailed,
    BrokerUnreachable,
    StreamguardError,
)
from streamguard.events.parse import CLASSIFIED_SCHEMA, classify_batch
from streamguard.events.vocabulary import unknown_words_sql, unknown_words_summary
from streamguard.export import QUARANTINE, TRAINING_DATA
from streamguard.features import feature_sql
from streamguard.kafka.plan import ReadPlan
from streamguard.kafka.properties import KafkaProperties
from streamguard.kafka.read import read_exact
from streamguard.spark import (
    DEFAULT_SHUFFLE_PARTITIONS,
    ENV_DRIVER_MEMORY,
    driver_memory,
    jvm_log_path,
    spark_session,
)

log = logging.getLogger(__name__)

# Spark makes one task per Kafka partition; a small slice runs the later stages faster in fewer tasks.
RECORDS_PER_TASK = 250_000
_EVENTS_VIEW, _FEATURES_VIEW = "streamguard_events", "streamguard_features"
_CLASSIFIED_VIEW = "streamguard_classified"
# The Java Kafka client's exception for refused SASL credentials, as it appears in Spark's error text.
_AUTHENTICATION_FAILED = "AuthenticationException"


class SparkEngine(Engine):
    """One run's data as cached Spark DataFrames; stops the session at ``close`` when it started it."""

    name = "spark"

    def __init__(
        self, *, bootstrap: str, master: str, session: SparkSession | None = None,
        kafka_properties: KafkaProperties | Mapping[str, str] | None = None,
    ) -> None:
        self._bootstrap = bootstrap
        self._kafka_properties = KafkaProperties.of(kafka_properties)
        self._master = master
        self._spark = session
        self._owns_session = session is None
        self._cached: list[DataFrame] = []
        self._raw: DataFrame | None = None
        self._classified: DataFrame | None = None
        self._features: DataFrame | None = None
        self._scored: DataFrame | None = None

    @property
    def spark(self) -> SparkSession:
        if self._spark is None:
            raise StreamguardError("the Spark engine was not started")
        return self._spark

    def start(self) -> None:
        if self._spark is not None:
            return
        try:
            self._spark = spark_session(master=self._master)
        except BaseException:
            # Interrupted (Ctrl-C) or failed while the JVM was starting: PySpark has not taken hold of its JVM yet,
            # and that JVM would outlive this process holding its stdout and stderr open.
            stop_pids(child_pids("org.apache.spark.deploy.SparkSubmit"))
            raise

    def read(self, plan: ReadPlan) -> ReadCounts:
        try:
            read = read_exact(self.spark, self._bootstrap, plan, properties=self._kafka_properties,
                              persist=self._persist)
        except Exception as exc:
            if _is_spark_error(exc) and _AUTHENTICATION_FAILED in _spark_text(exc):
                raise BrokerAuthenticationFailed(
                    f"the Kafka broker at {self._bootstrap} refused Spark's credentials: {_spark_message(exc)}"
                ) from exc
            raise
        raw = read.frame.select(*RAW_COLUMNS)
        records = read.accounting.records_read
        if plan.strategy == "bounded":
            raw = raw.coalesce(max(1, min(len(plan.ranges), -(-records // RECORDS_PER_TASK))))
        self.spark.conf.set("spark.sql.shuffle.partitions",
                            str(shuffle_partitions(records, self.spark.sparkContext.defaultParallelism)))
        self._raw = raw
        return ReadCounts(records_fetched=read.records_fetched, records_read=records, accounting=read.accounting)

    def parse(self) -> ParseCounts:
        schema = from_arrow_schema(CLASSIFIED_SCHEMA)

        def classify(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            for batch in batches:
                yield classify_batch(batch)

        self._classified = self._persist(_require(self._raw).mapInArrow(classify, schema))
        # One job: the counts per reason and, with them, the event-time and Kafka-time window read.
        rows = self._classified.groupBy("reason").agg(
            F.count(F.lit(1)).alias("count"),
            F.min("timestamp").alias("event_min"), F.max("timestamp").alias("event_max"),
            F.min(F.unix_micros("kafka_timestamp")).alias("kafka_min"),
            F.max(F.unix_micros("kafka_timestamp")).alias("kafka_max"),
        ).collect()
        by_reason = {row["reason"]: row["count"] for row in rows}
        valid = next((row for row in rows if row["reason"] is None), None)
        kafka_min = [row["kafka_min"] for row in rows if row["kafka_min"] is not None]
        kafka_max = [row["kafka_max"] for row in rows if row["kafka_max"] is not None]
        self._classified.createOrReplaceTempView(_CLASSIFIED_VIEW)
        words = self.spark.sql(unknown_words_sql(_CLASSIFIED_VIEW)).collect()
        return ParseCounts(
            valid=by_reason.pop(None, 0), by_reason=by_reason,
            event_time_min_ms=valid["event_min"] if valid else None,
            event_time_max_ms=valid["event_max"] if valid else None,
            kafka_time_min_ms=min(kafka_min) // 1000 if kafka_min else None,
            kafka_time_max_ms=max(kafka_max) // 1000 if kafka_max else None,
            unknown_detail_words=unknown_words_summary(row.asDict() for row in words),
        )

    def features(self) -> int:
        classified = _require(self._classified)
        events = classified.where(F.col("reason").isNull()).select(
            *(name for name in EVENT_COLUMNS if name in classified.columns)
        )
        self._features = self._persist(spark_features(events))
        self._features.createOrReplaceTempView(_FEATURES_VIEW)
        return self._features.count()

    def fit_sample(self, columns: tuple[str, ...], max_rows: int) -> pd.DataFrame:
        return self.spark.sql(fit_sample_sql(_FEATURES_VIEW, columns, max_rows)).toPandas()

    def score(self, detector: FittedDetector, top_n: int) -> ScoreSummary:
        features = _require(self._features)
        schema = StructType([
            *features.schema.fields,
            StructField(SCORE_COLUMN, DoubleType(), False),
            StructField(FLAG_COLUMN, IntegerType(), False),
        ])

        def score_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            for batch in batches:
                yield detector.score_pandas(batch)

        self._scored = self._persist(features.mapInPandas(score_batches, schema))
        anomalous = self._scored.where(F.col(FLAG_COLUMN) == 1).count()
        top = self._scored.orderBy(F.desc(SCORE_COLUMN), "user").limit(top_n).toPandas()
        return ScoreSummary(anomalous=anomalous, top=top_entries(top, top_n))

    def export(self, staging: Path) -> None:
        _require(self._scored).write.partitionBy(FLAG_COLUMN).parquet(str(staging / TRAINING_DATA))
        classified = _require(self._classified)
        classified.where(F.col("reason").isNotNull()).select(*QUARANTINE_COLUMNS).write.parquet(
            str(staging / QUARANTINE)
        )

    def versions(self) -> dict[str, str]:
        return {"spark": self.spark.version}

    def progress(self) -> str | None:
        if self._spark is None:
            return None
        try:
            tracker = self._spark.sparkContext.statusTracker()
            stages = [info for info in map(tracker.getStageInfo, tracker.getActiveStageIds()) if info is not None]
        except Exception:  # noqa: BLE001 - a status line never fails a run (the JVM may be stopping)
            return None
        if not stages:
            return None
        done, total = sum(info.numCompletedTasks for info in stages), sum(info.numTasks for info in stages)
        return f"{done}/{total} Spark tasks done"

    @contextmanager
    def errors(self, stage: str) -> Iterator[None]:
        try:
            yield
        except StreamguardError:
            raise
        except Exception as exc:
            if _jvm_gone(exc):
                raise stage_error(stage)(
                    f"{stage} failed: Spark's JVM went away ({type(exc).__name__}); the usual cause is the driver "
                    f"running out of memory: raise {ENV_DRIVER_MEMORY} (now {driver_memory()}); the JVM's output is "
                    f"in {jvm_log_path()}") from exc
            if not _is_spark_error(exc):
                raise
            message = _spark_message(exc)
            if stage == "kafka_read" and ("TimeoutException" in message or "Timed out" in message):
                raise BrokerUnreachable(f"Kafka did not answer Spark's reads: {message}") from exc
            raise stage_error(stage)(f"{stage} failed in Spark: {message}") from exc

    def close(self) -> None:
        # After a JVM failure unpersist raises too; that must not replace the error the run is failing with.
        for frame in self._cached:
            try:
                frame.unpersist()
            except Exception as exc:  # noqa: BLE001
                log.debug("could not unpersist a cached frame: %s", exc)
        self._cached.clear()
        if self._owns_session and self._spark is not None:
            try:
                self._spark.stop()
            except Exception as exc:  # noqa: BLE001 - a JVM that died already; the run's own error says so
                if not _jvm_gone(exc):
                    raise
                log.debug("the Spark session could not be stopped: %s", exc)
            self._spark = None

    def _persist(self, frame: DataFrame) -> DataFrame:
        persisted = frame.persist(StorageLevel.MEMORY_AND_DISK)
        self._cached.append(persisted)
        return persisted


def spark_features(events: DataFrame) -> DataFrame:
    """The feature table of parsed ``events`` (``EVENT_COLUMNS``): the Spark features stage (lazy)."""
    view = f"{_EVENTS_VIEW}_{uuid.uuid4().hex[:8]}"
    events.createOrReplaceTempView(view)
    # The plan binds to the view's query now, so dropping the name later does not change the result.
    return events.sparkSession.sql(feature_sql(view))


def _require(frame: DataFrame | None) -> DataFrame:
    if frame is None:
        raise StreamguardError("a Spark engine stage ran before the stage it needs")
    return frame


def _spark_text(exc: BaseException) -> str:
    java = getattr(exc, "java_exception", None)
    return str(java.toString()) if java is not None else str(exc)


def _spark_message(exc: BaseException) -> str:
    """The Java exception's own first line where there is one (Py4J's is only "error calling oNNN.count")."""
    text = _spark_text(exc)
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
    return first_line[:300]


def shuffle_partitions(records: int, parallelism: int) -> int:
    """Tasks for the features' per-user aggregation: every core of the cluster busy, and one per
    ``RECORDS_PER_TASK`` records past that, so the stage grows with the slice and the cluster (a fixed count would
    leave most executors of a large cluster idle; adaptive execution can merge shuffle partitions, not add them)."""
    return max(DEFAULT_SHUFFLE_PARTITIONS, parallelism, -(-records // RECORDS_PER_TASK))


def _jvm_gone(exc: BaseException) -> bool:
    """Whether ``exc`` says PySpark lost its JVM (killed, or dead of an OutOfMemoryError) rather than a job failing."""
    from py4j.protocol import Py4JNetworkError  # noqa: PLC0415

    return isinstance(exc, Py4JNetworkError | ConnectionError) or (
        _is_spark_error(exc) and "Answer from Java side is empty" in str(exc))


def _is_spark_error(exc: BaseException) -> bool:
    from py4j.protocol import Py4JError  # noqa: PLC0415
    from pyspark.errors import PySparkException  # noqa: PLC0415

    return isinstance(exc, Py4JError | PySparkException)
