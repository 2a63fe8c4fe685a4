"""The StreamGuard event wire format: its JSON Schema and a validator.

One JSON object per Kafka message value; ``event.schema.json`` next to this module is the contract. Producer
habits that are part of it:

* a flat top-level ``location`` may replace ``metadata.geo_location`` (``metadata`` itself stays required);
  read the location of an event with :func:`geo_location`, which prefers ``metadata.geo_location``;
* a key repeated in the JSON text is accepted and the last occurrence wins, as with ``json.loads`` (and the
  parser, ``streamguard.events.parse``);
* a null optional field is an absent one; the details objects of other event types are ignored like any unknown
  field (Jackson writes them as null, Go's encoding/json as zero-valued objects). Ignoring rather than rejecting
  them is the rule "unknown fields are ignored" applied consistently, and it keeps those producers' events;
* an integer is any JSON number without a fractional part (``1.7673408E12``), as JSON Schema defines it;
* the words in ``protocol``, ``operation`` and ``user_privileges`` are open (``events.vocabulary``).

Usage::

    event = json.loads(value)
    errors = validate_event(event)        # [] when valid
    where = geo_location(event)           # "Berlin, DE"
    schema_verdict(value)                 # None, or the quarantine reason the parser gives the same bytes

:func:`schema_verdict` is the contract read literally (strict JSON text, then the JSON Schema); it is slow and
exists so that tests can hold the parser (``streamguard.events.parse``) to it on the conformance corpus.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import TYPE_CHECKING, Any

from streamguard.contracts.columns import QUARANTINE_REASONS

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

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
    return [f"{_path(e.absolute_path)}: {_message(e)}" for e in errors]


def _message(error: Any) -> str:
    if error.validator == "not" and error.absolute_path and error.absolute_path[-1] == "user":
        return "has a control character"
    return str(error.message)


def _path(parts: Any) -> str:
    return ".".join(str(p) for p in parts) or "<root>"


def strict_json(text: str) -> Any:
    """``text`` decoded as exactly one strict JSON document (RFC 8259), else ValueError.

    Stricter than ``json.loads`` where the parser is: no NaN or Infinity, no number past a double's range, no
    byte order mark, no lone surrogate escape (text with no UTF-8 form), nesting within the decoder's limit.
    """
    def finite(number: str) -> float:
        value = float(number)
        if value in (float("inf"), float("-inf")):
            raise ValueError(f"{number} does not fit a double")
        return value

    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    if text.startswith("\ufeff"):
        raise ValueError("a byte order mark is not JSON text")
    try:
        document = json.loads(text, parse_float=finite, parse_constant=no_constant)
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except (RecursionError, UnicodeEncodeError) as exc:
        raise ValueError(str(exc)) from exc
    return document


def schema_verdict(value: bytes | None) -> str | None:
    """The contract's verdict on a raw record value: None for a valid event, else the quarantine reason.

    The JSON Schema's errors map onto the parser's reasons: a ``type`` error on null (a null field is an absent
    one) or a ``required`` error is ``missing_required``, any other ``type`` error ``wrong_type``, every other
    violation ``out_of_range``; the first reason in the parser's order wins.

    >>> schema_verdict(b'{"user": 7}')
    'wrong_type'
    """
    if not value:
        return "empty_value"
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid_utf8"
    try:
        document = strict_json(text)
    except ValueError:
        return "invalid_json"
    reasons = {_reason(error) for error in _validator().iter_errors(document)}
    return min(reasons, key=QUARANTINE_REASONS.index) if reasons else None


def _reason(error: Any) -> str:
    if error.validator == "required":
        return "missing_required"
    if error.validator == "type":
        return "missing_required" if error.instance is None and error.absolute_path else "wrong_type"
    return "out_of_range"


def geo_location(event: dict[str, Any]) -> str | None:
    """Where the event happened: ``metadata.geo_location``, else the flat top-level ``location``, or None."""
    metadata = event.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("geo_location"), str):
        return metadata["geo_location"]
    location = event.get("location")
    return location if isinstance(location, str) else None

