"""Parsing raw Kafka records into events, and quarantining every record that is not a valid event.

One definition, run by both engines: :func:`classify_batch` takes an Arrow batch of raw records and returns an
Arrow batch with one row per record — the event's columns when it is valid, else the raw bytes and the reason.
The embedded engine calls it directly; the Spark engine runs it on the executors with ``mapInArrow``.

    >>> classified = classify_batch(raw)               # raw: RAW_COLUMNS; result: CLASSIFIED_SCHEMA
    >>> reason, event = classify_value(b'{"event_id": ...}')

A record is quarantined, never dropped, with the first reason that applies (``QUARANTINE_REASONS`` order):

- ``empty_value``: null or zero-length value;
- ``invalid_utf8``: bytes that are not UTF-8 (``value_text`` is null; the raw bytes stay in ``value``);
- ``invalid_json``: not exactly one strict JSON document (not JSON, truncated, single quotes, trailing data, a
  byte order mark, NaN or Infinity, a number past a double's range, a lone surrogate, nesting deeper than the
  decoder's limit of about 1,000 levels);
- ``wrong_type``: JSON whose fields do not have the schema's types (no coercion: ``"user": 7`` is wrong; an
  integer field takes any JSON number without a fractional part, ``1.7673408E12`` included, as JSON Schema does);
- ``missing_required``: a required field is absent or null, the details object of the event's type is missing,
  or there is no location (neither ``metadata.geo_location`` nor a flat ``location``);
- ``out_of_range``: an unknown event type or status, a threat score outside [0, 1], a negative timestamp or count,
  a port outside 0-65535, a number beyond 64 bits, a bad event id, an address that is not IPv4 or IPv6, an empty
  or over-long user name or one with control characters.

A repeated key keeps its last value (as ``json.loads``). Only the details object of the event's own type is read:
the others are ignored like any unknown field (see ``event.schema.json``). The words inside the details objects
are an open vocabulary (``events.vocabulary``): never quarantined, and an unknown one is kept in the
``unknown_detail_word`` column for the report's count.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

import msgspec
import pyarrow as pa

from streamguard.contracts.columns import EVENT_TYPES, QUARANTINE_REASONS, STATUSES
from streamguard.events._fast import (
    DETAILS_DECODERS,
    IP_MAX_LENGTH,
    IP_PATTERN,
    USER_MAX_LENGTH,
    Details,
    Event,
    decode_event,
)
from streamguard.events.schema import DETAILS_FIELD
from streamguard.events.vocabulary import WORD_FIELDS, unknown_word

__all__ = ["CLASSIFIED_SCHEMA", "QUARANTINE_REASONS", "USER_MAX_LENGTH", "classify_batch", "classify_value"]

_INT64_MAX = 2**63 - 1
_EVENT_ID = re.compile(r"evt_[0-9a-f]{32}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_IP = re.compile(IP_PATTERN)
_WORD_ATTRIBUTE = {kind: name for kind, (_, name) in WORD_FIELDS.items()}
_EVENT_TYPES = frozenset(EVENT_TYPES)
_STATUSES = frozenset(STATUSES)
_decode = msgspec.json.Decoder().decode


def _is_int(value: Any) -> bool:
    # JSON Schema's "integer": 5.0 and 5E0 are the integer 5 (a double past 2^53 is range-checked as it stands).
    return type(value) is int or (type(value) is float and value.is_integer())


def _is_number(value: Any) -> bool:
    return type(value) is int or type(value) is float


def _is_str(value: Any) -> bool:
    return type(value) is str


def _is_bool(value: Any) -> bool:
    return type(value) is bool


def _is_nullable_str(value: Any) -> bool:
    return value is None or type(value) is str


# Field -> type check; a key absent or null is a missing field, not a wrong type (except where null is allowed).
_TOP_TYPES: dict[str, Callable[[Any], bool]] = {
    "event_id": _is_str, "timestamp": _is_int, "event_type": _is_str, "user": _is_str, "source_ip": _is_str,
    "destination_ip": _is_str, "threat_score": _is_number, "status": _is_str, "location": _is_str,
}
_REQUIRED = ("event_id", "timestamp", "event_type", "user", "source_ip", "destination_ip", "threat_score", "status",
             "metadata")
_METADATA_TYPES: dict[str, Callable[[Any], bool]] = {
    "hostname": _is_str, "geo_location": _is_str, "user_agent": _is_nullable_str, "session_id": _is_nullable_str,
}
_METADATA_REQUIRED = ("hostname", "user_agent", "session_id")
# (type check, required, range check) per field of each details object.
_DETAILS: dict[str, dict[str, Callable[[Any], bool]]] = {
    "auth_details": {"auth_type": _is_str, "failure_reason": _is_nullable_str, "attempts_count": _is_int},
    "network_details": {"protocol": _is_str, "source_port": _is_int, "destination_port": _is_int,
                        "bytes_sent": _is_int, "bytes_received": _is_int, "duration_ms": _is_int},
    "file_details": {"file_path": _is_str, "operation": _is_str, "file_size_bytes": _is_int},
    "process_details": {"process_name": _is_str, "command_line": _is_str, "user_privileges": _is_str,
                        "is_signed": _is_bool},
    "dns_details": {"query_name": _is_str, "query_type": _is_str, "response_code": _is_str},
}
_NULLABLE = frozenset({"failure_reason", "user_agent", "session_id"})
_PORTS = ("source_port", "destination_port")
# Strings the schema requires to be non-empty (minLength 1).
_NON_EMPTY = frozenset({"hostname", "geo_location", "auth_type", "file_path", "process_name", "query_name",
                        "query_type", "response_code"})

CLASSIFIED_SCHEMA = pa.schema([
    ("topic", pa.string()),
    ("partition", pa.int32()),
    ("offset", pa.int64()),
    ("kafka_timestamp", pa.timestamp("us", tz="UTC")),
    ("value", pa.binary()),
    ("value_text", pa.string()),
    ("reason", pa.string()),
    ("event_id", pa.string()),
    ("timestamp", pa.int64()),
    ("event_type", pa.string()),
    ("user", pa.string()),
    ("source_ip", pa.string()),
    ("destination_ip", pa.string()),
    ("threat_score", pa.float64()),
    ("status", pa.string()),
    ("geo_location", pa.string()),
    ("hostname", pa.string()),
    ("bytes_sent", pa.int64()),
    ("is_signed", pa.bool_()),
    ("attempts_count", pa.int64()),
    ("file_size_bytes", pa.int64()),
    ("user_privileges", pa.string()),
    ("unknown_detail_word", pa.string()),
])
_EVENT_FIELDS = CLASSIFIED_SCHEMA.names[CLASSIFIED_SCHEMA.get_field_index("event_id"):]
_EMPTY_EVENT: tuple[Any, ...] = (None,) * len(_EVENT_FIELDS)


def _checked_objects(event: dict[str, Any]) -> tuple[tuple[str, dict[str, Callable[[Any], bool]]], ...]:
    """The nested objects the contract reads: metadata and the details object of the event's own type."""
    details_name = DETAILS_FIELD.get(event["event_type"]) if type(event.get("event_type")) is str else None
    if details_name is None:
        return (("metadata", _METADATA_TYPES),)
    return (("metadata", _METADATA_TYPES), (details_name, _DETAILS[details_name]))


def _wrong_type(event: dict[str, Any]) -> bool:
    for name, check in _TOP_TYPES.items():
        value = event.get(name)
        if value is not None and not check(value):
            return True
    for name, checks in _checked_objects(event):
        nested = event.get(name)
        if nested is None:
            continue
        if type(nested) is not dict:
            return True
        for key, check in checks.items():
            value = nested.get(key)
            if value is not None and not check(value):
                return True
    return False


def _missing_required(event: dict[str, Any]) -> bool:
    if any(event.get(name) is None for name in _REQUIRED):
        return True
    metadata = event["metadata"]
    if any(key not in metadata for key in _METADATA_REQUIRED) or metadata.get("hostname") is None:
        return True
    if metadata.get("geo_location") is None and event.get("location") is None:
        return True
    details_name = DETAILS_FIELD.get(event["event_type"])
    if details_name is None:
        return False  # an unknown event type is out of range, checked next
    details = event.get(details_name)
    if details is None:
        return True
    return any(
        (key not in details) if key in _NULLABLE else (details.get(key) is None) for key in _DETAILS[details_name]
    )


def _out_of_range(event: dict[str, Any]) -> bool:
    user = event["user"]
    score = event["threat_score"]
    if (
        event["event_type"] not in _EVENT_TYPES
        or event["status"] not in _STATUSES
        or not 0 <= score <= 1
        or not 0 <= event["timestamp"] <= _INT64_MAX
        or _EVENT_ID.fullmatch(event["event_id"]) is None
        or not 0 < len(user) <= USER_MAX_LENGTH
        or _CONTROL.search(user) is not None
        or not _is_ip(event["source_ip"])
        or not _is_ip(event["destination_ip"])
        or event.get("location") == ""
    ):
        return True
    for name, known in _checked_objects(event):
        nested = event.get(name)
        if type(nested) is not dict:
            continue
        for key in known:
            value = nested.get(key)
            if _is_number(value) and not 0 <= value <= (65_535 if key in _PORTS else _INT64_MAX):
                return True
            if value == "" and key in _NON_EMPTY:
                return True
    return False


@functools.lru_cache(maxsize=65_536)
def _is_ip(text: str) -> bool:
    """The schema's address rule (IPv4 or IPv6 text); cached, as one topic holds few distinct addresses."""
    return len(text) <= IP_MAX_LENGTH and _IP.search(text) is not None


def fast_event(value: bytes) -> tuple[Event, Details] | None:
    """The event and its own details when the fast path accepts ``value`` whole; None sends it to the reference."""
    try:
        event = decode_event(value)
        details_name, decode_details = DETAILS_DECODERS[event.event_type]
        raw_details = getattr(event, details_name)
        if not raw_details:
            return None
        details = decode_details(raw_details)
    except (msgspec.DecodeError, RecursionError):
        return None
    if (event.metadata.geo_location or event.location) is None or not (
        _is_ip(event.source_ip) and _is_ip(event.destination_ip)
    ):
        return None
    return event, details


def classify_value(value: bytes | None) -> tuple[str | None, tuple[Any, ...]]:
    """``(reason, event columns)`` of one record value; reason is None for a valid event."""
    if not value:
        return "empty_value", _EMPTY_EVENT
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid_utf8", _EMPTY_EVENT
    accepted = fast_event(value)
    if accepted is None:
        return _reference(value)
    event, details = accepted
    kind = event.event_type
    word_attribute = _WORD_ATTRIBUTE.get(kind)
    return None, (
        event.event_id, event.timestamp, kind, event.user, event.source_ip, event.destination_ip,
        float(event.threat_score), event.status, event.metadata.geo_location or event.location,
        event.metadata.hostname,
        details.bytes_sent if kind == "network_connection" else None,
        details.is_signed if kind == "process_execution" else None,
        details.attempts_count if kind == "auth_attempt" else None,
        details.file_size_bytes if kind == "file_access" else None,
        details.user_privileges if kind == "process_execution" else None,
        unknown_word(kind, getattr(details, word_attribute)) if word_attribute else None,
    )


def _reference(value: bytes) -> tuple[str | None, tuple[Any, ...]]:
    """The reference checks, in ``QUARANTINE_REASONS`` order, for a UTF-8 value the fast path turned down.

    The reference decides: a repeated key keeps its last value here (an earlier, invalid occurrence that the fast
    path rejected does not count), so such an event is valid and its columns come from the decoded dict.
    """
    try:
        event = _decode(value)
    except (msgspec.DecodeError, RecursionError):
        return "invalid_json", _EMPTY_EVENT
    if type(event) is not dict or _wrong_type(event):
        return "wrong_type", _EMPTY_EVENT
    if _missing_required(event):
        return "missing_required", _EMPTY_EVENT
    if _out_of_range(event):
        return "out_of_range", _EMPTY_EVENT
    metadata = event["metadata"]
    kind = event["event_type"]
    details = event[DETAILS_FIELD[kind]]
    word_field = WORD_FIELDS.get(kind)
    return None, (
        event["event_id"], int(event["timestamp"]), kind, event["user"], event["source_ip"],
        event["destination_ip"], float(event["threat_score"]), event["status"],
        metadata.get("geo_location") or event.get("location"), metadata["hostname"],
        int(details["bytes_sent"]) if kind == "network_connection" else None,
        details["is_signed"] if kind == "process_execution" else None,
        int(details["attempts_count"]) if kind == "auth_attempt" else None,
        int(details["file_size_bytes"]) if kind == "file_access" else None,
        details["user_privileges"] if kind == "process_execution" else None,
        unknown_word(kind, details[word_field[1]]) if word_field else None,
    )


def is_valid_reference(event: Any) -> bool:
    """The reference checks' verdict on a decoded JSON value (for tests holding the fast path to them)."""
    return type(event) is dict and not (_wrong_type(event) or _missing_required(event) or _out_of_range(event))


def classify_batch(raw: pa.RecordBatch | pa.Table) -> pa.RecordBatch:
    """Classify every record of ``raw`` (``RAW_COLUMNS``); the result has ``CLASSIFIED_SCHEMA``.

    Valid rows keep ``value`` and ``value_text`` null (the event's columns hold what matters); quarantined rows keep
    the raw bytes, the text when it is UTF-8, and the reason.
    """
    values = raw.column("value").to_pylist()
    verdicts = [classify_value(value) for value in values]
    reasons = [reason for reason, _ in verdicts]
    kept = [None if reason is None else value for (reason, _), value in zip(verdicts, values, strict=True)]
    texts = [
        value.decode("utf-8") if reason is not None and value is not None and reason != "invalid_utf8" else None
        for (reason, _), value in zip(verdicts, values, strict=True)
    ]
    columns = list(zip(*(event for _, event in verdicts), strict=True)) if verdicts else [()] * len(_EVENT_FIELDS)
    timestamps = raw.column("timestamp")
    return pa.RecordBatch.from_arrays(
        [
            _array(raw.column("topic")).cast(pa.string()),
            _array(raw.column("partition")).cast(pa.int32()),
            _array(raw.column("offset")).cast(pa.int64()),
            _as_utc_micros(_array(timestamps)),
            pa.array(kept, pa.binary()),
            pa.array(texts, pa.string()),
            pa.array(reasons, pa.string()),
            *(pa.array(column, CLASSIFIED_SCHEMA.field(name).type) for name, column in zip(_EVENT_FIELDS, columns,
                                                                                          strict=True)),
        ],
        schema=CLASSIFIED_SCHEMA,
    )


def _array(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def _as_utc_micros(timestamps: pa.Array) -> pa.Array:
    if pa.types.is_integer(timestamps.type):  # Kafka's own milliseconds
        timestamps = timestamps.cast(pa.int64()).cast(pa.timestamp("ms", tz="UTC"))
    return timestamps.cast(pa.timestamp("us", tz="UTC"))
