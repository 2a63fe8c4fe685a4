"""Per-user behavioural features: the one SQL query both engines run over the parsed events.

    >>> sql = feature_sql("events")     # Spark: spark.sql(sql); embedded: duckdb.sql(sql) (see engines)

The query reads a relation holding ``streamguard.contracts.columns.EVENT_COLUMNS`` and returns ``user`` then
``FEATURE_COLUMNS``, one row per user, typed as the registry says. It is written in Spark SQL's dialect restricted
to what DuckDB also runs (``streamguard.engines.embedded`` adds the few macros DuckDB lacks).

All calendar quantities (hour of day, weekday, day) come from ``timestamp`` (milliseconds since the epoch) by
arithmetic, in UTC whatever the session's time zone. Events of a user are ordered by ``(timestamp, event_id)``, so
the inter-event features are deterministic when two events share a millisecond. No feature is ever null.
"""

from __future__ import annotations

from streamguard.contracts.columns import EVENT_TYPES, USER_COLUMN
from streamguard.contracts.features import AGGREGATES, FEATURE_COLUMNS, FEATURES, MODEL_FEATURE_COLUMNS

# The registry's names, importable from here too.
__all__ = ["EVENT_TYPES", "FEATURES", "FEATURE_COLUMNS", "MODEL_FEATURE_COLUMNS", "USER_COLUMN", "feature_sql"]

_MS_PER_HOUR = 3_600_000
_MS_PER_DAY = 86_400_000
# 1970-01-01 was a Thursday: with Sunday = 0, weekday = (days since epoch + 4) mod 7.
_EPOCH_WEEKDAY = 4
_SQL_TYPES = {"long": "BIGINT", "double": "DOUBLE"}


def _at_least(column: str, quantity: str) -> str:
    """Per event type, how many of the slice's events have ``column`` >= this event's (ties included: RANGE frame),
    and how many have it at all; null where the event has no value."""
    return (
        f"CASE WHEN {column} IS NOT NULL THEN count({column}) OVER (PARTITION BY event_type ORDER BY {column} DESC "
        f"NULLS LAST RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) END AS {quantity}_at_least,\n    "
        f"count({column}) OVER (PARTITION BY event_type) AS {quantity}_known"
    )


def feature_sql(events: str) -> str:
    """The feature query over the relation named ``events``."""
    aggregates = ",\n    ".join(f"{expression} AS {name}" for name, expression in AGGREGATES.items())
    features = ",\n  ".join(
        f"CAST(coalesce({feature.sql}, 0) AS {_SQL_TYPES[feature.dtype]}) AS {feature.name}" for feature in FEATURES
    )
    return f"""
WITH base AS (
  SELECT {USER_COLUMN} AS uid, event_id, timestamp AS ts, event_type, source_ip, geo_location, threat_score,
    status, bytes_sent, is_signed, attempts_count, file_size_bytes, user_privileges,
    CAST(floor(CAST(timestamp AS DOUBLE) / {_MS_PER_HOUR}) AS BIGINT) AS clock_hour,
    CAST(floor(CAST(timestamp AS DOUBLE) / {_MS_PER_DAY}) AS BIGINT) AS day
  FROM {events}
),
threat_center AS (
  SELECT event_type AS center_type, median(threat_score) AS threat_median FROM base GROUP BY event_type
),
threat_spread AS (
  SELECT center_type AS spread_type, threat_median, median(abs(threat_score - threat_median)) AS threat_mad
  FROM base JOIN threat_center ON event_type = center_type GROUP BY center_type, threat_median
),
enriched AS (
  SELECT base.*, threat_median, threat_mad,
    clock_hour % 24 AS hour,
    (day + {_EPOCH_WEEKDAY}) % 7 AS weekday,
    ts - lag(ts) OVER (PARTITION BY uid ORDER BY ts, event_id) AS gap_ms,
    count(*) OVER (PARTITION BY uid, source_ip) AS ip_events,
    count(*) OVER (PARTITION BY uid, clock_hour) AS hour_events,
    count(*) OVER (PARTITION BY source_ip) AS address_events,
    count(*) OVER (PARTITION BY uid, geo_location) AS location_events,
    {_at_least("file_size_bytes", "size")},
    {_at_least("attempts_count", "attempts")}
  FROM base LEFT JOIN threat_spread ON event_type = spread_type
),
ranked AS (
  SELECT *,
    dense_rank() OVER (PARTITION BY uid ORDER BY CASE WHEN geo_location IS NULL THEN 1 ELSE 0 END,
                       location_events DESC, geo_location) AS location_rank
  FROM enriched
),
agg AS (
  SELECT uid,
    {aggregates}
  FROM ranked
  GROUP BY uid
)
SELECT uid AS {USER_COLUMN},
  {features}
FROM agg
"""
