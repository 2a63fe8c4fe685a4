"""Column names shared by the engines, the export, the report and the API."""

from __future__ import annotations

USER_COLUMN = "user"
# The longest user name an event may carry; the parser quarantines longer ones and the API accepts all shorter.
USER_MAX_LENGTH = 256
SCORE_COLUMN = "anomaly_score"
FLAG_COLUMN = "is_anomaly"

EVENT_TYPES: tuple[str, ...] = (
    "auth_attempt", "network_connection", "file_access", "process_execution", "dns_query",
)
STATUSES: tuple[str, ...] = ("success", "failed", "blocked", "pending")

# The columns of one raw Kafka record as every engine's read stage hands it to parsing.
RAW_COLUMNS: tuple[str, ...] = ("topic", "partition", "offset", "timestamp", "value")

# Why a record is quarantined, in the order the parser checks them (the first that applies wins).
QUARANTINE_REASONS: tuple[str, ...] = (
    "empty_value", "invalid_utf8", "invalid_json", "wrong_type", "missing_required", "out_of_range",
)
QUARANTINE_COLUMNS: tuple[str, ...] = (
    "topic", "partition", "offset", "kafka_timestamp", "value", "value_text", "reason",
)

# A parsed, valid event as the feature stage reads it: flat columns, one row per event.
EVENT_COLUMNS: tuple[str, ...] = (
    "kafka_partition", "kafka_offset", "event_id", "timestamp", "event_type", "user", "source_ip",
    "destination_ip", "threat_score", "status", "geo_location", "hostname", "bytes_sent", "is_signed",
    "attempts_count", "file_size_bytes", "user_privileges",
)
