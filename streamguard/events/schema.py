"""The StreamGuard event wire format: its JSON Schema, a validator, and the matching Spark schema.

One JSON object per Kafka message value; ``event.schema.json`` next to this module is the contract. Two
producer quirks are part of it:

* a flat top-level ``location`` may replace ``metadata.geo_location`` (``metadata`` itself stays required);
  read the location of an event with :func:`geo_location`, which prefers ``metadata.geo_location``;
* a key repeated in the JSON text is accepted and the last occurrence wins, as with ``json.loads`` and Spark's
  ``from_json``.

Usage::

    event = json.loads(value)
    errors = validate_event(event)        # [] when valid
    where = geo_location(event)           # "Berlin, DE"

    parsed = df.select(from_json(col("value").cast("string"), spark_event_schema()).alias("e"))
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from pyspark.sql.types import StructType

EVENT_SCHEMA: dict[str, Any] = json.loads(
    resources.files("streamguard.events").joinpath("event.schema.json").read_text(encoding="utf-8")
)

EVENT_TYPES: tuple[str, ...] = (
    "auth_attempt", "network_connection", "file_access", "process_execution", "dns_query",
)
STATUSES: tuple[str, ...] = ("success", "failed", "blocked", "pending")

DETAILS_FIELD: dict[str, str] = {
    "auth_attempt": "auth_details",
    "network_connection": "network_details",
    "file_access": "file_details",
    "process_execution": "process_details",
    "dns_query": "dns_details",
}
"""The details object each event type carries (exactly one per event)."""



@functools.cache
def _validator() -> Draft202012Validator:
    # Built on first use: generator worker processes import this module for its constants only.
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(EVENT_SCHEMA)
    return Draft202012Validator(EVENT_SCHEMA)


def validate_event(obj: Any) -> list[str]:
    """Schema violations of one decoded event, as ``"<path>: <message>"`` strings; empty when it is valid.

    >>> validate_event({**event, "threat_score": 1.7})
    ['threat_score: 1.7 is greater than the maximum of 1']
    """
    errors = sorted(_validator().iter_errors(obj), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    return [f"{_path(e.absolute_path)}: {_message(e, obj)}" for e in errors]


def _message(error: Any, obj: Any) -> str:
    if error.validator == "not" and error.validator_value == {}:  # the "#/$defs/absent" schema
        return f"not allowed with event_type {obj.get('event_type')!r}"
    return str(error.message)


def _path(parts: Any) -> str:
    return ".".join(str(p) for p in parts) or "<root>"


def geo_location(event: dict[str, Any]) -> str | None:
    """Where the event happened: ``metadata.geo_location``, else the flat top-level ``location``, or None."""
    metadata = event.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("geo_location"), str):
        return metadata["geo_location"]
    location = event.get("location")
    return location if isinstance(location, str) else None


def spark_event_schema() -> StructType:
    """The explicit schema to parse event JSON with ``from_json``; every field is nullable.

    It holds both ``metadata.geo_location`` and the flat top-level ``location`` (coalesce them) and every
    details struct. Nullability is deliberate: a missing or mistyped field comes back as null, so the parser
    must check required fields itself (or use :func:`validate_event` on a sample).
    """
    # Imported here so that importing this module (e.g. from the generator) does not pull in pyspark.
    from pyspark.sql.types import BooleanType, DoubleType, LongType, StringType, StructField, StructType

    def struct(*fields: tuple[str, Any]) -> StructType:
        return StructType([StructField(name, kind, nullable=True) for name, kind in fields])

    string, long = StringType(), LongType()
    return struct(
        ("event_id", string),
        ("timestamp", long),
        ("event_type", string),
        ("user", string),
        ("source_ip", string),
        ("destination_ip", string),
        ("threat_score", DoubleType()),
        ("status", string),
        ("location", string),
        ("metadata", struct(
            ("hostname", string), ("geo_location", string), ("user_agent", string), ("session_id", string),
        )),
        ("auth_details", struct(("auth_type", string), ("failure_reason", string), ("attempts_count", long))),
        ("network_details", struct(
            ("protocol", string), ("source_port", long), ("destination_port", long),
            ("bytes_sent", long), ("bytes_received", long), ("duration_ms", long),
        )),
        ("file_details", struct(("file_path", string), ("operation", string), ("file_size_bytes", long))),
        ("process_details", struct(
            ("process_name", string), ("command_line", string), ("user_privileges", string),
            ("is_signed", BooleanType()),
        )),
        ("dns_details", struct(("query_name", string), ("query_type", string), ("response_code", string))),
    )
