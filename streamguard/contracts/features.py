"""The feature registry: one row per user, each feature defined once, as data.

Every feature has a name, a one-sentence definition, a unit, its type (``long`` or ``double``), whether the
detector uses it and, if so, which direction of it is risky (``risk``: ``higher`` or ``lower``), and ONE SQL
expression. Both engines run that same SQL text (Spark SQL, and DuckDB with a few
compatibility macros), so the embedded and the Spark engine cannot drift apart; ``streamguard.features``
assembles the query. The README and the API render this registry rather than restating it.

The expressions read the per-user aggregates in ``AGGREGATES`` (computed over the events of one user, enriched
with the columns in ``streamguard.features``: ``hour``, ``weekday``, ``day``, ``gap_ms``, ``ip_events``,
``hour_events``). SQL is written in the common subset of both dialects: integer arithmetic cast to DOUBLE before
dividing (Spark reads ``1000.0`` as a decimal), ``x * x`` rather than ``^`` (a bitwise XOR in Spark).

Every sum is exact (integers, or DECIMAL), never a running sum of doubles: a floating-point sum depends on the
order rows arrive in, which differs between runs (Kafka partitions interleave) and between engines. So a feature
is a function of the set of events alone, and two runs over one slice give the same bits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from streamguard.contracts.columns import EVENT_TYPES

UNUSUAL_HOURS = range(0, 6)
BURST_GAP_S = 1.0
GAP_CAP_MS = 10**13
# "Large" and "many attempts" are relative to the slice: a value is in the tail when at most this share (percent)
# of the slice's events of its type have one as large or larger (ties count together, so a common value never is).
ATTEMPTS_TAIL_PERCENT = 1
# File sizes have a long tail of their own (backups, images): the top 5% at night, not the top 1%, caught 20 of the
# 20 seeded night bulk readers at 10 events per user where 1% caught 16 (u10k, bench/QUALITY.md), none of 9,880 others.
SIZE_TAIL_PERCENT = 5
# A threat score is an outlier above the median of its event type by this many robust standard deviations
# (1.4826 * MAD); a type whose MAD is 0 has no outliers.
THREAT_OUTLIER_SDS = 4
# Addresses that are not public: RFC 1918, loopback, link-local, IPv6 unique-local, link-local and loopback.
PRIVATE_ADDRESS_PREFIXES: tuple[str, ...] = (
    "10.", "192.168.", "127.", "169.254.", *(f"172.{octet}." for octet in range(16, 32)), "fc", "fd", "fe80:", "::1",
)
# Privilege words that mean more than an ordinary user's rights (compared in lower case: the vocabulary is open).
ELEVATED_PRIVILEGES = ("admin", "administrator", "root", "system")


@dataclass(frozen=True, kw_only=True)
class Feature:
    """One output column: ``name``, a one-sentence ``definition``, the ``unit`` of its values, its SQL.

    ``risk`` (required for a model feature) says which direction of it is risky: the detector counts only
    deviations that way, so a user who is unusual only by being safer than the rest (fewer failures, lower
    threat scores) is never flagged, and explanations cite only risky deviations.

    ``rare_events`` marks a count of events each of which is rare and risky on its own (a night read
    of one of the slice's largest files, an event from a third location): the detector tests it per user against the
    population's rate of such events per event
    (``streamguard.detect.rare``) rather than feed it to the Isolation Forest, which samples 256 users per tree
    and so rarely sees the few users who have any.
    """

    name: str
    definition: str
    unit: str
    dtype: Literal["long", "double"]
    sql: str
    in_model: bool = False
    risk: Literal["higher", "lower"] | None = None
    rare_events: bool = False

    def __post_init__(self) -> None:
        if self.in_model and self.risk is None:
            raise ValueError(f"model feature {self.name} must declare its risky direction (risk)")
        if self.rare_events and (self.in_model or self.risk != "higher" or self.dtype != "long"):
            raise ValueError(f"rare-event count {self.name} must be a long, risky when higher, outside the model")

    @property
    def detector_uses(self) -> bool:
        """Whether the detector reads it: as a model feature or in the rare-event test."""
        return self.in_model or self.rare_events


def _count_if(condition: str) -> str:
    return f"sum(CASE WHEN {condition} THEN 1 ELSE 0 END)"


def _ratio(numerator: str, denominator: str) -> str:
    return f"CASE WHEN {denominator} > 0 THEN CAST({numerator} AS DOUBLE) / {denominator} ELSE CAST(0 AS DOUBLE) END"


def _in_tail(quantity: str, percent: int) -> str:
    """The event's ``quantity`` is in the slice's top ``percent`` (columns ``<quantity>_at_least``/``_known``)."""
    return f"{quantity}_at_least IS NOT NULL AND 100 * {quantity}_at_least <= {percent} * {quantity}_known"


def _public_address(column: str) -> str:
    patterns = " OR ".join(f"lower({column}) LIKE '{prefix}%'" for prefix in PRIVATE_ADDRESS_PREFIXES)
    return f"{column} IS NOT NULL AND NOT ({patterns})"


# Not least(): both engines' least() skips nulls, which would turn the first event's missing gap into the cap.
_CAPPED_GAP = f"CASE WHEN gap_ms > {GAP_CAP_MS} THEN {GAP_CAP_MS} ELSE gap_ms END"

# Per-user aggregates over the enriched events; the features below are expressions over these.
AGGREGATES: dict[str, str] = {
    "n_events": "count(*)",
    "n_ips": "count(DISTINCT source_ip)",
    "n_types": "count(DISTINCT event_type)",
    "n_locations": "count(DISTINCT geo_location)",
    "n_days": "count(DISTINCT day)",
    # Threat scores are summed as DECIMAL(38, 18): exact, whatever the order of the rows.
    "threat_sum": "sum(CAST(threat_score AS DECIMAL(38, 18)))",
    "top_threat": "max(threat_score)",
    "n_failed_auth": _count_if("event_type = 'auth_attempt' AND status = 'failed'"),
    "n_unusual_hour": _count_if(f"hour < {UNUSUAL_HOURS.stop}"),
    "n_weekend": _count_if("weekday IN (0, 6)"),
    **{f"n_{kind}": _count_if(f"event_type = '{kind}'") for kind in EVENT_TYPES},
    **{f"n_hour_{hour}": _count_if(f"hour = {hour}") for hour in range(24)},
    "n_rare_ips": _count_if("source_ip IS NOT NULL AND ip_events = 1"),
    # Gaps in whole milliseconds, summed exactly; a gap is capped at 10^13 ms (317 years) so that the sum of squares
    # of any realistic number of gaps stays inside DECIMAL(38, 0) even with hostile timestamps.
    "n_gaps": "count(gap_ms)",
    "gap_sum": "sum(CAST(gap_ms AS DECIMAL(38, 0)))",
    "gap_sq_sum": f"sum(CAST({_CAPPED_GAP} AS DECIMAL(38, 0)) * CAST({_CAPPED_GAP} AS DECIMAL(38, 0)))",
    "min_gap_ms": "min(gap_ms)",
    "n_burst": _count_if(f"gap_ms < {int(BURST_GAP_S * 1000)}"),
    "n_blocked": _count_if("status = 'blocked'"),
    # DECIMAL(38, 0) holds the sum of any number of int64 values a topic can hold: no overflow in either engine.
    "bytes_sent_sum": "sum(CAST(bytes_sent AS DECIMAL(38, 0)))",
    "n_unsigned": _count_if("event_type = 'process_execution' AND is_signed = false"),
    "top_hour_events": "max(hour_events)",
    # Event-level risk: one event's unusual properties kept together instead of averaged into separate rates.
    "n_night_large_files": _count_if(
        f"event_type = 'file_access' AND hour < {UNUSUAL_HOURS.stop} AND {_in_tail('size', SIZE_TAIL_PERCENT)}"),
    "n_high_attempt_failures": _count_if(
        "event_type = 'auth_attempt' AND status IN ('failed', 'blocked') AND "
        f"{_in_tail('attempts', ATTEMPTS_TAIL_PERCENT)}"),
    "n_elevated_unsigned": _count_if(
        "event_type = 'process_execution' AND is_signed = false AND lower(user_privileges) IN "
        f"({', '.join(repr(word) for word in ELEVATED_PRIVILEGES)})"),
    "n_unsigned_threat_outliers": _count_if(
        f"event_type = 'process_execution' AND is_signed = false AND threat_mad > 0 AND "
        f"threat_score > threat_median + {THREAT_OUTLIER_SDS} * 1.4826 * threat_mad"),
    "n_single_use_public": _count_if(f"address_events = 1 AND {_public_address('source_ip')}"),
    "n_third_location": _count_if("geo_location IS NOT NULL AND location_rank > 2"),
}

_HOURLY_VARIANCE = " + ".join(
    f"(n_hour_{hour} - CAST(n_events AS DOUBLE) / 24) * (n_hour_{hour} - CAST(n_events AS DOUBLE) / 24)"
    for hour in range(24)
)

# Population variance from the exact sums, E[g^2] - E[g]^2, in seconds^2; clipped at 0 against rounding.
_STD_GAP_S = (
    "CASE WHEN n_gaps > 0 THEN sqrt(greatest(CAST(0 AS DOUBLE), "
    "CAST(gap_sq_sum AS DOUBLE) / n_gaps - (CAST(gap_sum AS DOUBLE) / n_gaps) * (CAST(gap_sum AS DOUBLE) / n_gaps))) "
    "/ 1000 ELSE CAST(0 AS DOUBLE) END"
)

FEATURES: tuple[Feature, ...] = (
    Feature(name="total_events", definition="Number of events of the user.", unit="events", dtype="long",
            sql="n_events"),
    # Not in the model: a count that grows with a user's volume (travel adds addresses), so the busiest honest users
    # stood out on it: 5 of the 6 false alarms among 1,000 users (seed 7, bench/QUALITY.md). Address diversity
    # stays in the model per event (ip_diversity_score, rare_ip_ratio) and in single_use_public_address_events.
    Feature(name="unique_ips", definition="Number of distinct non-null source_ip values.", unit="addresses",
            dtype="long", sql="n_ips", risk="higher"),
    Feature(name="unique_event_types", definition="Number of distinct event_type values.", unit="types",
            dtype="long", sql="n_types", in_model=True, risk="higher"),
    Feature(name="unique_locations",
            definition="Number of distinct non-null geo_location values (events without a location are ignored).",
            unit="locations", dtype="long", sql="n_locations", in_model=True, risk="higher"),
    Feature(name="avg_threat_score", definition="Mean threat_score of the user's events.", unit="score 0..1",
            dtype="double", sql="CAST(threat_sum AS DOUBLE) / n_events", in_model=True, risk="higher"),
    Feature(name="max_threat_score", definition="Highest threat_score of the user's events.", unit="score",
            dtype="double", sql="top_threat", in_model=True, risk="higher"),
    Feature(name="failed_auth_rate",
            definition="auth_attempt events with status 'failed' divided by auth_attempt events; 0 without any.",
            unit="ratio 0..1", dtype="double", sql=_ratio("n_failed_auth", "n_auth_attempt"),
            in_model=True, risk="higher"),
    Feature(name="unusual_hour_rate",
            definition="Share of events whose UTC hour of day is 00 to 05 (00:00:00-05:59:59.999).",
            unit="ratio 0..1", dtype="double", sql=_ratio("n_unusual_hour", "n_events"), in_model=True, risk="higher"),
    Feature(name="weekend_rate", definition="Share of events on a Saturday or Sunday, UTC.", unit="ratio 0..1",
            dtype="double", sql=_ratio("n_weekend", "n_events"), in_model=True, risk="higher"),
    Feature(name="ip_diversity_score", definition="unique_ips divided by total_events.", unit="ratio 0..1",
            dtype="double", sql=_ratio("n_ips", "n_events"), in_model=True, risk="higher"),
    Feature(name="events_per_day",
            definition=("total_events divided by the number of distinct UTC calendar days on which the user had at "
                        "least one event (active days, not the span from first to last event, so idle days do not "
                        "dilute it)."),
            unit="events/day", dtype="double", sql=_ratio("n_events", "n_days")),
    *(
        Feature(name=f"{kind}_count", definition=f"Number of {kind} events.", unit="events", dtype="long",
                sql=f"n_{kind}")
        for kind in EVENT_TYPES
    ),
    Feature(name="hourly_activity_std",
            definition=("Population standard deviation of the 24 per-hour-of-day event counts (UTC hours 0-23 over "
                        "all days, hours without events counted as 0); high when activity is concentrated in few "
                        "hours."),
            unit="events", dtype="double", sql=f"sqrt(({_HOURLY_VARIANCE}) / 24)"),
    Feature(name="rare_ip_ratio",
            definition=("Source IPs seen in exactly one of the user's events divided by unique_ips; 0 when the user "
                        "has no source IP."),
            unit="ratio 0..1", dtype="double", sql=_ratio("n_rare_ips", "n_ips"), in_model=True, risk="higher"),
    Feature(name="avg_inter_event_s",
            definition=("Mean gap between consecutive events of the user ordered by (timestamp, event_id); 0 with a "
                        "single event."),
            unit="seconds", dtype="double",
            sql="CASE WHEN n_gaps > 0 THEN CAST(gap_sum AS DOUBLE) / n_gaps / 1000 ELSE CAST(0 AS DOUBLE) END"),
    Feature(name="std_inter_event_s",
            definition="Population standard deviation of those gaps; 0 with fewer than two gaps.",
            unit="seconds", dtype="double", sql=_STD_GAP_S),
    Feature(name="min_inter_event_s", definition="Smallest of those gaps; 0 with a single event.", unit="seconds",
            dtype="double", sql="coalesce(CAST(min_gap_ms AS DOUBLE) / 1000, CAST(0 AS DOUBLE))"),
    Feature(name="burst_events",
            definition="Events less than 1 s after the previous event of the same user (ties included).",
            unit="events", dtype="long", sql="n_burst", in_model=True, risk="higher"),
    Feature(name="blocked_rate", definition="Share of events with status 'blocked'.", unit="ratio 0..1",
            dtype="double", sql=_ratio("n_blocked", "n_events"), in_model=True, risk="higher"),
    Feature(name="total_bytes_sent",
            definition=("Sum of network_details.bytes_sent over the user's events, exact and never overflowing, "
                        "as a double; 0 without network data."),
            unit="bytes", dtype="double", sql="coalesce(CAST(bytes_sent_sum AS DOUBLE), CAST(0 AS DOUBLE))"),
    Feature(name="unsigned_process_rate",
            definition=("process_execution events whose process_details.is_signed is false divided by "
                        "process_execution events (unknown signature counts as signed); 0 without any."),
            unit="ratio 0..1", dtype="double", sql=_ratio("n_unsigned", "n_process_execution"),
            in_model=True, risk="higher"),
    Feature(name="max_events_in_hour",
            definition="Most events of the user within one UTC clock hour (e.g. 14:00-14:59 on one date).",
            unit="events", dtype="long", sql="top_hour_events"),
    Feature(name="night_large_file_events",
            definition=("file_access events at an unusual hour (UTC 00-05) whose file_details.file_size_bytes is "
                        f"among the slice's largest: at most {SIZE_TAIL_PERCENT}% of the slice's file_access events "
                        "are as large or larger."),
            unit="events", dtype="long", sql="n_night_large_files", rare_events=True, risk="higher"),
    Feature(name="high_attempt_failed_logins",
            definition=("auth_attempt events with status 'failed' or 'blocked' whose auth_details.attempts_count is "
                        f"among the slice's highest: at most {ATTEMPTS_TAIL_PERCENT}% of the slice's auth_attempt "
                        "events have as many attempts or more."),
            unit="events", dtype="long", sql="n_high_attempt_failures", rare_events=True,
            risk="higher"),
    Feature(name="elevated_unsigned_executions",
            definition=("process_execution events whose process_details.is_signed is false and whose "
                        "user_privileges is admin, administrator, root or system (any letter case)."),
            unit="events", dtype="long", sql="n_elevated_unsigned"),
    Feature(name="unsigned_threat_outlier_executions",
            definition=("process_execution events whose process_details.is_signed is false and whose threat_score "
                        f"lies more than {THREAT_OUTLIER_SDS} robust standard deviations (1.4826 x MAD) above the "
                        "median threat_score of the slice's process_execution events."),
            unit="events", dtype="long", sql="n_unsigned_threat_outliers", rare_events=True, risk="higher"),
    Feature(name="single_use_public_address_events",
            definition=("Events from a public source_ip (not RFC 1918, loopback, link-local or IPv6 unique-local) "
                        "that no other event of the slice, of any user, comes from."),
            unit="events", dtype="long", sql="n_single_use_public", rare_events=True, risk="higher"),
    Feature(name="third_location_events",
            definition=("Events whose geo_location is not one of the user's two most frequent locations (by events, "
                        "ties by name): 0 for a user seen in at most two places (a home and one trip)."),
            unit="events", dtype="long", sql="n_third_location", rare_events=True, risk="higher"),
)

FEATURE_COLUMNS: tuple[str, ...] = tuple(feature.name for feature in FEATURES)
# Volume and pacing features say how busy a user is, which alone is not suspicious: with them in the model, the
# busiest honest users outrank compromised accounts (measured on a seeded 100k-event topic: 2 of 5 injected users
# in the top 5 with every feature, 5 of 5 with this set). They stay in the training data for other models.
MODEL_FEATURE_COLUMNS: tuple[str, ...] = tuple(feature.name for feature in FEATURES if feature.in_model)
RARE_EVENT_COLUMNS: tuple[str, ...] = tuple(feature.name for feature in FEATURES if feature.rare_events)
FEATURE_BY_NAME: dict[str, Feature] = {feature.name: feature for feature in FEATURES}
