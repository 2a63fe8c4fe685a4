"""Reading a planned slice of a topic into Spark with Spark's own Kafka source.

``bounded`` hands Spark the plan's exact offsets (``assign`` + ``startingOffsets`` + ``endingOffsets``), so Spark
fetches only those records. ``full-scan`` is the old behaviour kept for comparison: read from the start to the
latest offset of every partition; the pipeline materialises that read and then keeps ``max_events`` records.

    >>> raw = read_kafka(spark, bootstrap, plan)   # columns: key, value, topic, partition, offset, timestamp
"""

from __future__ import annotations

import json

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from streamguard.kafka.plan import ReadPlan

RAW_COLUMNS = ("key", "value", "topic", "partition", "offset", "timestamp")
# Spark waits this long for a fetch before failing the task (its default is 120 s); a bounded plan never asks for
# offsets that do not exist, so waiting this long means the broker is gone.
POLL_TIMEOUT_MS = 30_000


def kafka_options(bootstrap: str, plan: ReadPlan) -> dict[str, str]:
    """The Spark Kafka source options for ``plan`` (pure; unit-tested)."""
    common = {
        "kafka.bootstrap.servers": bootstrap,
        "kafka.isolation.level": plan.isolation_level,
        "failOnDataLoss": "true",
        "includeHeaders": "false",
        "kafkaConsumer.pollTimeoutMs": str(POLL_TIMEOUT_MS),
        "kafka.default.api.timeout.ms": str(POLL_TIMEOUT_MS),
        "kafka.request.timeout.ms": str(POLL_TIMEOUT_MS // 2),
    }
    if plan.strategy == "full-scan":
        return {
            **common,
            "subscribe": plan.topic,
            "startingOffsets": _full_scan_start(plan),
            "endingOffsets": "latest",
        }
    plan.require_records()
    return {
        **common,
        "assign": json.dumps({plan.topic: [r.partition for r in plan.ranges]}),
        "startingOffsets": json.dumps({plan.topic: {str(r.partition): r.start for r in plan.ranges}}),
        "endingOffsets": json.dumps({plan.topic: {str(r.partition): r.until for r in plan.ranges}}),
    }


def _full_scan_start(plan: ReadPlan) -> str:
    if plan.start in ("earliest", "latest"):
        return plan.start
    return json.dumps({plan.topic: {str(p): offset for p, offset in sorted(plan.start_offsets.items())}})


def read_kafka(spark: SparkSession, bootstrap: str, plan: ReadPlan) -> DataFrame:
    """Raw Kafka records of ``plan`` as a DataFrame (nothing is read until an action runs)."""
    raw = spark.read.format("kafka").options(**kafka_options(bootstrap, plan)).load().select(*RAW_COLUMNS)
    if plan.max_events is not None:
        return raw  # the offsets are exact: filtering out-of-order records would read fewer than N
    # A pure time-range read: offsets-for-times assumes timestamps grow with offsets; drop the stragglers.
    if plan.start_timestamp_ms is not None:
        raw = raw.where(F.col("timestamp") >= F.timestamp_millis(F.lit(plan.start_timestamp_ms)))
    if plan.end_timestamp_ms is not None:
        raw = raw.where(F.col("timestamp") < F.timestamp_millis(F.lit(plan.end_timestamp_ms)))
    return raw
