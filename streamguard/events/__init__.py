"""The event wire format: JSON Schema, validation, and the Spark schema used to parse it."""

from streamguard.events.schema import (
    DETAILS_FIELD,
    EVENT_SCHEMA,
    EVENT_TYPES,
    STATUSES,
    geo_location,
    spark_event_schema,
    validate_event,
)

__all__ = [
    "DETAILS_FIELD", "EVENT_SCHEMA", "EVENT_TYPES", "STATUSES", "geo_location", "spark_event_schema",
    "validate_event",
]
