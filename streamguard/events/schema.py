"""The StreamGuard event wire format: its JSON Schema and a validator.

One JSON object per Kafka message value; ``event.schema.json`` next to this module is the contract. Two
producer quirks are part of it:

* a flat top-level ``location`` may replace ``metadata.geo_location`` (``metadata`` itself stays required);
  read the location of an event with :func:`geo_location`, which prefers ``metadata.geo_location``;
* a key repeated in the JSON text is accepted and the last occurrence wins, as with ``json.loads`` (and the
  parser, ``streamguard.events.parse``).

Usage::

    event = json.loads(value)
    errors = validate_event(event)        # [] when valid
    where = geo_location(event)           # "Berlin, DE"
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import TYPE_CHECKING, Any

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

