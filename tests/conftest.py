"""Shared fixtures: one local Spark session for the whole run, and a builder of parsed-events DataFrames.

    def test_something(make_events):
        events = make_events([{"user": "alice", "timestamp": 1_700_000_000_000}])

``make_events`` fills every field a row leaves out with a neutral default (see ``EVENT_DEFAULTS``), derives
``event_time`` from ``timestamp`` and numbers the Kafka offsets, so a test states only what it is about.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import (
    BooleanType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from streamguard.spark import spark_session

EVENT_DEFAULTS: Mapping[str, Any] = {
    "kafka_partition": 0,
    "event_type": "file_access",
    "user": "alice",
    "source_ip": "10.0.0.1",
    "destination_ip": "10.0.0.254",
    "threat_score": 0.1,
    "status": "success",
}


LONG = LongType()


def _struct(*names: str, types: Mapping[str, Any] | None = None) -> StructType:
    types = types or {}
    return StructType([StructField(name, types.get(name, StringType()), True) for name in names])


def events_schema() -> StructType:
    """The exact schema of the parsed events DataFrame produced by ``streamguard.events.parse``."""
    return StructType(
        [
            StructField("kafka_partition", IntegerType(), False),
            StructField("kafka_offset", LongType(), False),
            StructField("event_id", StringType(), False),
            StructField("timestamp", LongType(), False),
            StructField("event_time", TimestampType(), False),
            StructField("event_type", StringType(), False),
            StructField("user", StringType(), False),
            StructField("source_ip", StringType(), True),
            StructField("destination_ip", StringType(), True),
            StructField("threat_score", DoubleType(), False),
            StructField("status", StringType(), False),
            StructField("geo_location", StringType(), True),
            StructField("hostname", StringType(), True),
            StructField("user_agent", StringType(), True),
            StructField("session_id", StringType(), True),
            StructField(
                "auth_details",
                _struct("auth_type", "failure_reason", "attempts_count", types={"attempts_count": LONG}),
                True,
            ),
            StructField(
                "network_details",
                _struct(
                    "protocol",
                    "source_port",
                    "destination_port",
                    "bytes_sent",
                    "bytes_received",
                    "duration_ms",
                    types=dict.fromkeys(
                        ("source_port", "destination_port", "bytes_sent", "bytes_received", "duration_ms"),
                        LONG,
                    ),
                ),
                True,
            ),
            StructField(
                "file_details",
                _struct("file_path", "operation", "file_size_bytes", types={"file_size_bytes": LONG}),
                True,
            ),
            StructField(
                "process_details",
                _struct(
                    "process_name",
                    "command_line",
                    "user_privileges",
                    "is_signed",
                    types={"is_signed": BooleanType()},
                ),
                True,
            ),
            StructField("dns_details", _struct("query_name", "query_type", "response_code"), True),
        ]
    )


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    session = spark_session(master="local[2]", with_kafka=False, shuffle_partitions=2)
    try:
        yield session
    finally:
        session.stop()


@pytest.fixture(scope="session")
def make_events(spark: SparkSession) -> Callable[[Sequence[Mapping[str, Any]]], DataFrame]:
    """Build a parsed-events DataFrame from partial rows; ``timestamp`` (ms since epoch, UTC) is required."""
    schema = events_schema()
    offsets = itertools.count()

    def build(rows: Sequence[Mapping[str, Any]]) -> DataFrame:
        records = []
        for row in rows:
            unknown = set(row) - set(schema.fieldNames())
            if unknown:
                raise KeyError(f"not an events column: {sorted(unknown)}")
            offset = next(offsets)
            record = {**EVENT_DEFAULTS, "kafka_offset": offset, "event_id": f"evt-{offset:06d}", **row}
            record.setdefault("event_time", datetime.fromtimestamp(record["timestamp"] / 1000, tz=UTC))
            records.append(tuple(record.get(name) for name in schema.fieldNames()))
        return spark.createDataFrame(records, schema)

    return build
