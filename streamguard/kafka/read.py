"""Reading a planned slice of a topic into Spark with Spark's own Kafka source.

``bounded`` hands Spark the plan's exact offsets (``assign`` + ``startingOffsets`` + ``endingOffsets``), so Spark
fetches only those records. ``full-scan`` is the old behaviour kept for comparison: read every partition from the
start to its latest offset (as snapshotted by the planner), then keep ``max_events`` records.

    >>> raw = read_kafka(spark, bootstrap, plan)          # the plan's ranges, lazily: key, value, topic, ...
    >>> read = read_exact(spark, bootstrap, plan)         # topped up to exactly N, with its checked accounting
    >>> read.frame, read.accounting.to_dict()

Where offsets hold no record (transaction markers, aborted or compacted-away records) a plan of N offsets returns
fewer records; ``read_exact`` then reads the extension ranges ``kafka.accounting.TopUp`` asks for, each a further
bounded read, and unions them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from streamguard.kafka.accounting import RangeStats, ReadAccounting, TopUp
from streamguard.kafka.plan import PartitionRange, ReadPlan
from streamguard.kafka.properties import KafkaProperties

RAW_COLUMNS = ("key", "value", "topic", "partition", "offset", "timestamp")
# Spark waits this long for a fetch before failing the task (its default is 120 s); a bounded plan never asks for
# offsets that do not exist, so waiting this long means the broker is gone.
POLL_TIMEOUT_MS = 30_000
# How long the broker may hold a fetch that has no data yet (the Java client's default is 500 ms). A bounded read
# asks for history that exists, yet each Spark task still waited about that long per partition: 100,000 events over
# 1,000 partitions took 290 s to read with the default and 35 s with 10 ms (bench/scale.py's partitions axis). A
# client property (``java.fetch.max.wait.ms``) overrides it.
FETCH_MAX_WAIT_MS = 10


def kafka_options(
    bootstrap: str, plan: ReadPlan, *, ranges: tuple[PartitionRange, ...] | None = None,
    properties: KafkaProperties | Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The Spark Kafka source options reading ``ranges`` (default: what the plan reads first) (pure; unit-tested).

    Client ``properties`` become ``kafka.``-prefixed options (``KafkaProperties.for_spark``: the Java client's
    names, SASL credentials as ``sasl.jaas.config``).
    """
    common = {
        "kafka.bootstrap.servers": bootstrap,
        "kafka.isolation.level": plan.isolation_level,
        "failOnDataLoss": "true",
        "includeHeaders": "false",
        "kafkaConsumer.pollTimeoutMs": str(POLL_TIMEOUT_MS),
        "kafka.default.api.timeout.ms": str(POLL_TIMEOUT_MS),
        "kafka.request.timeout.ms": str(POLL_TIMEOUT_MS // 2),
        "kafka.fetch.max.wait.ms": str(FETCH_MAX_WAIT_MS),
        **KafkaProperties.of(properties).for_spark(),
    }
    if ranges is None:
        plan.require_records()
        ranges = TopUp(plan).first_ranges()
    return {
        **common,
        "assign": json.dumps({plan.topic: [r.partition for r in ranges]}),
        "startingOffsets": json.dumps({plan.topic: {str(r.partition): r.start for r in ranges}}),
        "endingOffsets": json.dumps({plan.topic: {str(r.partition): r.until for r in ranges}}),
    }


def _load(
    spark: SparkSession, bootstrap: str, plan: ReadPlan, ranges: tuple[PartitionRange, ...] | None,
    properties: KafkaProperties | Mapping[str, str] | None,
) -> DataFrame:
    options = kafka_options(bootstrap, plan, ranges=ranges, properties=properties)
    return spark.read.format("kafka").options(**options).load().select(*RAW_COLUMNS)


def _in_time_range(plan: ReadPlan) -> Column | None:
    """A pure time-range read keeps only records whose Kafka timestamp lies in the range (offsets-for-times
    assumes timestamps grow with offsets; this drops the stragglers). With a record limit nothing is dropped."""
    if plan.limit is not None:
        return None
    keep = None
    if plan.start_timestamp_ms is not None:
        keep = F.col("timestamp") >= F.timestamp_millis(F.lit(plan.start_timestamp_ms))
    if plan.end_timestamp_ms is not None:
        before_end = F.col("timestamp") < F.timestamp_millis(F.lit(plan.end_timestamp_ms))
        keep = before_end if keep is None else keep & before_end
    return keep


def read_kafka(
    spark: SparkSession, bootstrap: str, plan: ReadPlan, *,
    properties: KafkaProperties | Mapping[str, str] | None = None,
) -> DataFrame:
    """Raw Kafka records of the plan's own ranges as a DataFrame (lazy: nothing is read until an action runs).

    No top-up: where offsets hold no record this returns fewer than N; ``read_exact`` reads exactly N."""
    raw = _load(spark, bootstrap, plan, None, properties)
    keep = _in_time_range(plan)
    return raw if keep is None else raw.where(keep)


@dataclass(frozen=True)
class SparkRead:
    frame: DataFrame
    """The records read (RAW_COLUMNS), the union of every round."""
    accounting: ReadAccounting
    records_fetched: int
    """Every record Kafka returned, including those dropped by the time filter, a full scan's limit or a trim."""


def read_exact(
    spark: SparkSession, bootstrap: str, plan: ReadPlan, *,
    properties: KafkaProperties | Mapping[str, str] | None = None,
    persist: Callable[[DataFrame], DataFrame] | None = None,
) -> SparkRead:
    """Read ``plan`` in rounds until exactly min(N, visible) records (``kafka.accounting``); one Spark job per
    round counts what came back, per partition. ``persist`` caches each round's frame (the engine's own cache)."""
    persist = persist or (lambda frame: frame.cache())
    topup = TopUp(plan)
    ranges = topup.first_ranges()
    frame = persist(_load(spark, bootstrap, plan, ranges, properties))
    keep = _in_time_range(plan)
    stats = _stats(frame, keep=keep)
    fetched = sum(s.records for s in stats.values())
    if keep is not None:
        frame = frame.where(keep)
    if plan.strategy == "full-scan" and plan.limit is not None:
        frame = persist(frame.orderBy("partition", "offset").limit(plan.limit))
        kept = {p: s.records for p, s in _stats(frame).items()}
        stats = {p: RangeStats(p, s.records, s.distinct_offsets, s.min_offset, s.max_offset, kept.get(p, 0))
                 for p, s in stats.items()}
    topup.record(ranges, stats)
    frames = [frame]
    while ranges := topup.next_ranges():
        extension = persist(_load(spark, bootstrap, plan, ranges, properties))
        stats = _stats(extension, distinct=True)
        fetched += sum(s.records for s in stats.values())
        ranks = topup.record(ranges, stats)
        if ranks:
            extension = extension.where(~_outside(topup.trim(_offsets_at_rank(extension, ranks))))
        frames.append(extension)
    return SparkRead(frame=reduce(DataFrame.unionByName, frames), accounting=topup.accounting(),
                     records_fetched=fetched)


def _stats(frame: DataFrame, *, keep: Column | None = None, distinct: bool = False) -> dict[int, RangeStats]:
    """One job: per partition, records, lowest and highest offset (and distinct offsets, records kept)."""
    aggregates = [F.count(F.lit(1)).alias("records"), F.min("offset").alias("lo"), F.max("offset").alias("hi")]
    if distinct:
        aggregates.append(F.count_distinct("offset").alias("distinct"))
    if keep is not None:
        aggregates.append(F.sum(F.when(keep, 1).otherwise(0)).alias("kept"))
    rows = frame.groupBy("partition").agg(*aggregates).collect()
    return {
        row["partition"]: RangeStats(
            partition=row["partition"], records=row["records"], min_offset=row["lo"], max_offset=row["hi"],
            distinct_offsets=row["distinct"] if distinct else None, kept=row["kept"] if keep is not None else None,
        )
        for row in rows
    }


def _offsets_at_rank(frame: DataFrame, ranks: Mapping[int, int]) -> dict[int, int]:
    """One job: per partition, the offset of the record of that rank (1 = lowest offset)."""
    ranked = frame.where(F.col("partition").isin(list(ranks))).withColumn(
        "rank", F.row_number().over(Window.partitionBy("partition").orderBy("offset"))
    )
    wanted = reduce(lambda a, b: a | b,
                    ((F.col("partition") == p) & (F.col("rank") == rank) for p, rank in ranks.items()))
    return {row["partition"]: row["offset"] for row in ranked.where(wanted).select("partition", "offset").collect()}


def _outside(keep: tuple[PartitionRange, ...]) -> Column:
    return reduce(lambda a, b: a | b, (
        (F.col("partition") == r.partition) & ((F.col("offset") < r.start) | (F.col("offset") >= r.until))
        for r in keep
    ))
