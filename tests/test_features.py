from __future__ import annotations

import math
import statistics
from datetime import UTC, datetime
from typing import Any

import pytest
from pyspark.sql.types import DoubleType, LongType

from streamguard.errors import DataError
from streamguard.features import FEATURE_COLUMNS, FEATURES, build_features


def ms(*parts: int) -> int:
    """Milliseconds since the epoch of a UTC (year, month, day, hour, minute, second, millisecond)."""
    *clock, millis = (*parts, 0, 0, 0, 0, 0)[:7]
    return int(datetime(*clock, tzinfo=UTC).timestamp()) * 1000 + millis


def event(user: str, when: tuple[int, ...], event_type: str, **fields: Any) -> dict[str, Any]:
    return {"user": user, "timestamp": ms(*when), "event_type": event_type, **fields}


# 2024-01-01 is a Monday, 2024-01-06 a Saturday, 2024-01-07 a Sunday.
ALICE = [
    event(
        "alice",
        (2024, 1, 1, 2),
        "auth_attempt",
        status="failed",
        source_ip="10.0.0.1",
        geo_location="US",
        threat_score=0.2,
    ),
    event(
        "alice",
        (2024, 1, 1, 2, 0, 0, 500),
        "auth_attempt",
        source_ip="10.0.0.1",
        geo_location="US",
        threat_score=0.4,
    ),
    event(
        "alice",
        (2024, 1, 1, 10, 0, 0, 500),
        "network_connection",
        source_ip="10.0.0.2",
        geo_location="DE",
        threat_score=0.6,
        network_details={"protocol": "TCP", "bytes_sent": 1000, "bytes_received": 5},
    ),
    event(
        "alice",
        (2024, 1, 6, 10, 0, 0, 500),
        "process_execution",
        status="blocked",
        source_ip="10.0.0.3",
        threat_score=0.8,
        process_details={"process_name": "nc", "is_signed": False},
    ),
    event(
        "alice",
        (2024, 1, 6, 10, 30, 0, 500),
        "dns_query",
        source_ip="10.0.0.1",
        geo_location="US",
        threat_score=1.0,
    ),
]
BOB = [
    event(
        "bob",
        (2024, 1, 7, 23, 59, 59, 999),
        "file_access",
        source_ip="10.1.0.1",
        geo_location="FR",
        threat_score=0.3,
    ),
]
# Two events in the same millisecond (ordered by event_id) and the 05:59:59.999 / 06:00 edge of unusual hours.
CAROL = [
    event(
        "carol",
        (2024, 1, 2, 5, 59, 59, 999),
        "auth_attempt",
        status="failed",
        source_ip="10.2.0.1",
        threat_score=0.5,
    ),
    event(
        "carol",
        (2024, 1, 2, 5, 59, 59, 999),
        "auth_attempt",
        status="failed",
        source_ip="10.2.0.1",
        threat_score=0.7,
    ),
    event("carol", (2024, 1, 2, 6), "auth_attempt", status="blocked", source_ip="10.2.0.1", threat_score=0.9),
]
# Unknown signature counts as signed; events without network data add no bytes.
DAVE = [
    event(
        "dave",
        (2024, 1, 3, 12),
        "process_execution",
        process_details={"process_name": "a", "is_signed": None},
    ),
    event(
        "dave",
        (2024, 1, 3, 12, 0, 2),
        "process_execution",
        process_details={"process_name": "b", "is_signed": True},
    ),
    event(
        "dave",
        (2024, 1, 3, 12, 0, 4),
        "process_execution",
        process_details={"process_name": "c", "is_signed": False},
    ),
    event(
        "dave",
        (2024, 1, 4, 12),
        "network_connection",
        network_details={"protocol": "UDP", "bytes_sent": None},
    ),
]

ALICE_GAPS = [0.5, 8 * 3600.0, 5 * 86400.0, 1800.0]
EXPECTED: dict[str, dict[str, float]] = {
    "alice": {
        "total_events": 5,
        "unique_ips": 3,
        "unique_event_types": 4,
        "unique_locations": 2,
        "avg_threat_score": 0.6,
        "max_threat_score": 1.0,
        "failed_auth_rate": 0.5,
        "unusual_hour_rate": 0.4,
        "weekend_rate": 0.4,
        "ip_diversity_score": 0.6,
        "events_per_day": 2.5,
        "auth_attempt_count": 2,
        "network_connection_count": 1,
        "file_access_count": 0,
        "process_execution_count": 1,
        "dns_query_count": 1,
        # per-hour counts: 2 at 02h, 3 at 10h, 0 elsewhere -> variance 13/24 - (5/24)^2 = 287/576
        "hourly_activity_std": math.sqrt(287) / 24,
        "rare_ip_ratio": 2 / 3,
        "avg_inter_event_s": 115_650.125,
        "std_inter_event_s": statistics.pstdev(ALICE_GAPS),
        "min_inter_event_s": 0.5,
        "burst_events": 1,
        "blocked_rate": 0.2,
        "total_bytes_sent": 1000,
        "unsigned_process_rate": 1.0,
        "max_events_in_hour": 2,
    },
    "bob": {
        "total_events": 1,
        "unique_ips": 1,
        "unique_event_types": 1,
        "unique_locations": 1,
        "avg_threat_score": 0.3,
        "max_threat_score": 0.3,
        "failed_auth_rate": 0.0,
        "unusual_hour_rate": 0.0,
        "weekend_rate": 1.0,
        "ip_diversity_score": 1.0,
        "events_per_day": 1.0,
        "auth_attempt_count": 0,
        "network_connection_count": 0,
        "file_access_count": 1,
        "process_execution_count": 0,
        "dns_query_count": 0,
        "hourly_activity_std": math.sqrt(23) / 24,
        "rare_ip_ratio": 1.0,
        "avg_inter_event_s": 0.0,
        "std_inter_event_s": 0.0,
        "min_inter_event_s": 0.0,
        "burst_events": 0,
        "blocked_rate": 0.0,
        "total_bytes_sent": 0,
        "unsigned_process_rate": 0.0,
        "max_events_in_hour": 1,
    },
    "carol": {
        "total_events": 3,
        "unique_ips": 1,
        "unique_event_types": 1,
        "unique_locations": 0,
        "avg_threat_score": 0.7,
        "max_threat_score": 0.9,
        "failed_auth_rate": 2 / 3,
        "unusual_hour_rate": 2 / 3,
        "weekend_rate": 0.0,
        "ip_diversity_score": 1 / 3,
        "events_per_day": 3.0,
        "auth_attempt_count": 3,
        "network_connection_count": 0,
        "file_access_count": 0,
        "process_execution_count": 0,
        "dns_query_count": 0,
        # per-hour counts: 2 at 05h, 1 at 06h -> variance 5/24 - (3/24)^2 = 111/576
        "hourly_activity_std": math.sqrt(111) / 24,
        "rare_ip_ratio": 0.0,
        "avg_inter_event_s": 0.0005,
        "std_inter_event_s": 0.0005,
        "min_inter_event_s": 0.0,
        "burst_events": 2,
        "blocked_rate": 1 / 3,
        "total_bytes_sent": 0,
        "unsigned_process_rate": 0.0,
        "max_events_in_hour": 2,
    },
    "dave": {
        "total_events": 4,
        "unique_ips": 1,
        "unique_event_types": 2,
        "unique_locations": 0,
        "avg_threat_score": 0.1,
        "max_threat_score": 0.1,
        "failed_auth_rate": 0.0,
        "unusual_hour_rate": 0.0,
        "weekend_rate": 0.0,
        "ip_diversity_score": 0.25,
        "events_per_day": 2.0,
        "auth_attempt_count": 0,
        "network_connection_count": 1,
        "file_access_count": 0,
        "process_execution_count": 3,
        "dns_query_count": 0,
        # all four events at 12h -> variance 16/24 - (4/24)^2 = 368/576
        "hourly_activity_std": math.sqrt(368) / 24,
        "rare_ip_ratio": 0.0,
        "avg_inter_event_s": (2 + 2 + 86_396) / 3,
        "std_inter_event_s": statistics.pstdev([2, 2, 86_396]),
        "min_inter_event_s": 2.0,
        "burst_events": 0,
        "blocked_rate": 0.0,
        "total_bytes_sent": 0,
        "unsigned_process_rate": 1 / 3,
        "max_events_in_hour": 3,
    },
}


def collect_by_user(frame) -> dict[str, dict[str, float]]:
    return {row["user"]: row.asDict() for row in frame.orderBy("user").collect()}


@pytest.fixture(scope="module")
def features(make_events):
    return build_features(make_events([*ALICE, *BOB, *CAROL, *DAVE]))


@pytest.fixture(scope="module")
def by_user(features) -> dict[str, dict[str, float]]:
    return collect_by_user(features)


def test_registry_names_the_output_columns_in_order() -> None:
    assert tuple(feature.name for feature in FEATURES) == FEATURE_COLUMNS
    assert len(set(FEATURE_COLUMNS)) == len(FEATURE_COLUMNS)
    assert all(feature.definition.strip() and feature.unit.strip() for feature in FEATURES)
    assert set(EXPECTED["alice"]) == set(FEATURE_COLUMNS)


def test_one_row_per_user_with_user_first_and_typed_columns(features, by_user) -> None:
    assert features.columns == ["user", *FEATURE_COLUMNS]
    types = {field.name: field.dataType for field in features.schema.fields}
    assert all(isinstance(types[name], LongType | DoubleType) for name in FEATURE_COLUMNS)
    assert isinstance(types["total_events"], LongType)
    assert isinstance(types["failed_auth_rate"], DoubleType)
    assert list(by_user) == ["alice", "bob", "carol", "dave"]


@pytest.mark.parametrize("user", sorted(EXPECTED))
def test_every_feature_matches_the_hand_computed_value(by_user, user: str) -> None:
    actual = by_user[user]
    mismatched = {
        name: (actual[name], expected)
        for name, expected in EXPECTED[user].items()
        if actual[name] is None or not math.isclose(actual[name], expected, rel_tol=1e-9, abs_tol=1e-12)
    }
    assert mismatched == {}


def test_calendar_features_ignore_the_session_time_zone(spark, make_events) -> None:
    events = make_events([*ALICE, *BOB, *CAROL])
    expected = collect_by_user(build_features(events))
    spark.conf.set("spark.sql.session.timeZone", "Asia/Kolkata")
    try:
        shifted = collect_by_user(build_features(events))
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")
    assert shifted == expected


def test_input_order_does_not_change_the_features(make_events) -> None:
    forward = collect_by_user(build_features(make_events([*CAROL, *ALICE])))
    shuffled = make_events([*reversed(ALICE), *reversed(CAROL)]).repartition(3)
    backward = collect_by_user(build_features(shuffled))
    assert backward == forward


def test_no_events_give_an_empty_table(make_events) -> None:
    empty = build_features(make_events(ALICE).limit(0))
    assert empty.columns == ["user", *FEATURE_COLUMNS]
    assert empty.collect() == []


def test_missing_column_is_a_data_error(make_events) -> None:
    with pytest.raises(DataError, match="threat_score"):
        build_features(make_events(ALICE).drop("threat_score"))
