"""Parsing raw Kafka records into events, and quarantining every record that is not a valid event.

    >>> classified = classify(raw)          # raw: read_kafka(...) output
    >>> events = valid_events(classified)    # the documented events DataFrame, one row per valid event
    >>> bad = quarantine(classified)         # topic, partition, offset, kafka_timestamp, value, value_text, reason

Values are parsed with an explicit schema (``from_json``, both ``metadata.geo_location`` and a flat ``location``;
a repeated key keeps its last value). A record is quarantined, never dropped, with the first reason that applies:

- ``empty_value``: null or zero-length value;
- ``invalid_json``: not a JSON document (not JSON at all, or truncated);
- ``wrong_type``: JSON whose fields do not have the schema's types (e.g. a string timestamp);
- ``missing_required``: a required field is absent or null, the details object for its type is missing, or
  there is no location (neither ``metadata.geo_location`` nor a flat ``location``);
- ``out_of_range``: an unknown event type or status, a threat score outside [0, 1], a bad event id or timestamp.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from streamguard.events.schema import EVENT_TYPES, STATUSES, spark_event_schema

QUARANTINE_REASONS = ("empty_value", "invalid_json", "wrong_type", "missing_required", "out_of_range")
REQUIRED_FIELDS = ("event_id", "timestamp", "event_type", "user", "source_ip", "destination_ip", "threat_score",
                   "status")
_DETAILS_OF_TYPE = {
    "auth_attempt": "auth_details",
    "network_connection": "network_details",
    "file_access": "file_details",
    "process_execution": "process_details",
    "dns_query": "dns_details",
}
_CORRUPT = "_corrupt_record"
EVENT_ID_PATTERN = r"^evt_[0-9a-f]{32}$"

EVENT_COLUMNS = (
    "kafka_partition", "kafka_offset", "event_id", "timestamp", "event_time", "event_type", "user", "source_ip",
    "destination_ip", "threat_score", "status", "geo_location", "hostname", "user_agent", "session_id",
    *_DETAILS_OF_TYPE.values(),
)
QUARANTINE_COLUMNS = ("topic", "partition", "offset", "kafka_timestamp", "value", "value_text", "reason")


def _parse_schema() -> StructType:
    return StructType([*spark_event_schema().fields, StructField(_CORRUPT, StringType(), nullable=True)])


def _reason(text: Column, event: Column) -> Column:
    required_missing = F.lit(False)
    for name in REQUIRED_FIELDS:
        required_missing = required_missing | event[name].isNull()
    details_missing = F.lit(False)
    for event_type, details in _DETAILS_OF_TYPE.items():
        details_missing = details_missing | ((event["event_type"] == event_type) & event[details].isNull())
    location_missing = event["metadata"].isNull() | (
        event["metadata"]["geo_location"].isNull() & event["location"].isNull()
    )
    out_of_range = (
        ~event["event_type"].isin(*EVENT_TYPES)
        | ~event["status"].isin(*STATUSES)
        | (event["threat_score"] < 0) | (event["threat_score"] > 1) | F.isnan(event["threat_score"])
        | (event["timestamp"] <= 0)
        | ~event["event_id"].rlike(EVENT_ID_PATTERN)
    )
    return (
        F.when(text.isNull() | (F.length(text) == 0), F.lit("empty_value"))
        # get_json_object runs only on the rare corrupt rows: CASE WHEN evaluates lazily.
        .when(event[_CORRUPT].isNotNull() & F.get_json_object(text, "$").isNull(), F.lit("invalid_json"))
        .when(event[_CORRUPT].isNotNull(), F.lit("wrong_type"))
        .when(required_missing | details_missing | location_missing, F.lit("missing_required"))
        .when(out_of_range, F.lit("out_of_range"))
    )


def classify(raw: DataFrame) -> DataFrame:
    """Parse every raw record; column ``reason`` is null for a valid event, else why it is quarantined."""
    text = F.col("value").cast("string")
    parsed = raw.select(
        "topic", "partition", "offset", F.col("timestamp").alias("kafka_timestamp"), "value",
        text.alias("value_text"),
        F.from_json(text, _parse_schema(), {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": _CORRUPT})
        .alias("event"),
    )
    return parsed.withColumn("reason", _reason(F.col("value_text"), F.col("event")))


def valid_events(classified: DataFrame) -> DataFrame:
    """The events DataFrame downstream stages use (columns ``EVENT_COLUMNS``)."""
    event = F.col("event")
    return classified.where(F.col("reason").isNull()).select(
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        event["event_id"].alias("event_id"),
        event["timestamp"].alias("timestamp"),
        F.timestamp_millis(event["timestamp"]).alias("event_time"),
        event["event_type"].alias("event_type"),
        event["user"].alias("user"),
        event["source_ip"].alias("source_ip"),
        event["destination_ip"].alias("destination_ip"),
        event["threat_score"].alias("threat_score"),
        event["status"].alias("status"),
        F.coalesce(event["metadata"]["geo_location"], event["location"]).alias("geo_location"),
        event["metadata"]["hostname"].alias("hostname"),
        event["metadata"]["user_agent"].alias("user_agent"),
        event["metadata"]["session_id"].alias("session_id"),
        *(event[details].alias(details) for details in _DETAILS_OF_TYPE.values()),
    )


def quarantine(classified: DataFrame) -> DataFrame:
    """Records that are not valid events, with where they came from, their raw bytes and the reason."""
    return classified.where(F.col("reason").isNotNull()).select(*QUARANTINE_COLUMNS)
