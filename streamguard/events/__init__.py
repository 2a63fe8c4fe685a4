"""The event wire format: its JSON Schema and validation (parsing records into events is ``events.parse``)."""

from streamguard.events.schema import (
    DETAILS_FIELD,
    EVENT_SCHEMA,
    EVENT_TYPES,
    STATUSES,
    geo_location,
    validate_event,
)

__all__ = [
    "DETAILS_FIELD", "EVENT_SCHEMA", "EVENT_TYPES", "STATUSES", "geo_location", "validate_event",
]
