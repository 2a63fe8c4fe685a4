"""The feature stage of both engines against hand-computed values, and the two engines against each other."""

from __future__ import annotations

import math
import statistics
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from streamguard.contracts.columns import EVENT_TYPES, STATUSES
from streamguard.contracts.features import FEATURES
from streamguard.errors import DataError
from streamguard.features import FEATURE_COLUMNS

INT64_MAX = 2**63 - 1
DTYPES = {"long": np.dtype("int64"), "double": np.dtype("float64")}


def ms(*parts: int) -> int:
    """Milliseconds since the epoch of a UTC (year, month, day, hour, minute, second, millisecond)."""
    *clock, millis = (*parts, 0, 0, 0, 0, 0)[:7]
    return int(datetime(*clock, tzinfo=UTC).timestamp()) * 1000 + millis


def event(user: str, when: tuple[int, ...], event_type: str, **fields: Any) -> dict[str, Any]:
    return {"user": user, "timestamp": ms(*when), "event_type": event_type, **fields}


# 2024-01-01 is a Monday, 2024-01-06 a Saturday, 2024-01-07 a Sunday.
ALICE = [
    event("alice", (2024, 1, 1, 2), "auth_attempt", status="failed", source_ip="10.0.0.1", geo_location="US",
          threat_score=0.2),
    event("alice", (2024, 1, 1, 2, 0, 0, 500), "auth_attempt", source_ip="10.0.0.1", geo_location="US",
          threat_score=0.4),
    event("alice", (2024, 1, 1, 10, 0, 0, 500), "network_connection", source_ip="10.0.0.2", geo_location="DE",
          threat_score=0.6, bytes_sent=1000),
    event("alice", (2024, 1, 6, 10, 0, 0, 500), "process_execution", status="blocked", source_ip="10.0.0.3",
          threat_score=0.8, is_signed=False),
    event("alice", (2024, 1, 6, 10, 30, 0, 500), "dns_query", source_ip="10.0.0.1", geo_location="US",
          threat_score=1.0),
]
BOB = [
    event("bob", (2024, 1, 7, 23, 59, 59, 999), "file_access", source_ip="10.1.0.1", geo_location="FR",
          threat_score=0.3),
]
# Two events in the same millisecond (ordered by event_id) and the 05:59:59.999 / 06:00 edge of unusual hours.
CAROL = [
    event("carol", (2024, 1, 2, 5, 59, 59, 999), "auth_attempt", status="failed", source_ip="10.2.0.1",
          threat_score=0.5),
    event("carol", (2024, 1, 2, 5, 59, 59, 999), "auth_attempt", status="failed", source_ip="10.2.0.1",
          threat_score=0.7),
    event("carol", (2024, 1, 2, 6), "auth_attempt", status="blocked", source_ip="10.2.0.1", threat_score=0.9),
]
# Unknown signature counts as signed; events without network data add no bytes.
DAVE = [
    event("dave", (2024, 1, 3, 12), "process_execution", is_signed=None),
    event("dave", (2024, 1, 3, 12, 0, 2), "process_execution", is_signed=True),
    event("dave", (2024, 1, 3, 12, 0, 4), "process_execution", is_signed=False),
    event("dave", (2024, 1, 4, 12), "network_connection", bytes_sent=None),
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
        "night_large_file_events": 0,
        "high_attempt_failed_logins": 0,
        "elevated_unsigned_executions": 0,
        "unsigned_threat_outlier_executions": 0,
        "single_use_public_address_events": 0,
        "third_location_events": 0,
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
        "night_large_file_events": 0,
        "high_attempt_failed_logins": 0,
        "elevated_unsigned_executions": 0,
        "unsigned_threat_outlier_executions": 0,
        "single_use_public_address_events": 0,
        "third_location_events": 0,
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
        "night_large_file_events": 0,
        "high_attempt_failed_logins": 0,
        "elevated_unsigned_executions": 0,
        "unsigned_threat_outlier_executions": 0,
        "single_use_public_address_events": 0,
        "third_location_events": 0,
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
        "night_large_file_events": 0,
        "high_attempt_failed_logins": 0,
        "elevated_unsigned_executions": 0,
        "unsigned_threat_outlier_executions": 0,
        "single_use_public_address_events": 0,
        "third_location_events": 0,
    },
}


def by_user(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    return {row["user"]: row for row in frame.to_dict(orient="records")}


def mismatches(actual: dict[str, Any], expected: dict[str, float]) -> dict[str, tuple[Any, float]]:
    return {
        name: (actual[name], value)
        for name, value in expected.items()
        if actual[name] is None or not math.isclose(actual[name], value, rel_tol=1e-9, abs_tol=1e-12)
    }


@pytest.fixture(scope="module")
def features(make_events, compute_features) -> pd.DataFrame:
    return compute_features(make_events([*ALICE, *BOB, *CAROL, *DAVE]))


def test_registry_names_the_output_columns_in_order() -> None:
    assert tuple(feature.name for feature in FEATURES) == FEATURE_COLUMNS
    assert len(set(FEATURE_COLUMNS)) == len(FEATURE_COLUMNS)
    assert all(feature.definition.strip() and feature.unit.strip() for feature in FEATURES)
    assert all(feature.dtype in DTYPES for feature in FEATURES)
    assert set(EXPECTED["alice"]) == set(FEATURE_COLUMNS)


def test_one_row_per_user_with_user_first_and_typed_columns(features: pd.DataFrame) -> None:
    assert list(features.columns) == ["user", *FEATURE_COLUMNS]
    assert {name: features[name].dtype for name in FEATURE_COLUMNS} == {
        feature.name: DTYPES[feature.dtype] for feature in FEATURES
    }
    assert list(features["user"]) == ["alice", "bob", "carol", "dave"]


def test_no_feature_is_null(features: pd.DataFrame) -> None:
    assert not features.isna().any().any()


@pytest.mark.parametrize("user", sorted(EXPECTED))
def test_every_feature_matches_the_hand_computed_value(features: pd.DataFrame, user: str) -> None:
    assert mismatches(by_user(features)[user], EXPECTED[user]) == {}


def test_bytes_sent_is_summed_exactly_without_overflow(make_events, compute_features) -> None:
    events = make_events([
        event("eve", (2024, 1, 1, 12), "network_connection", bytes_sent=INT64_MAX),
        event("eve", (2024, 1, 1, 13), "network_connection", bytes_sent=INT64_MAX),
        event("eve", (2024, 1, 1, 14), "network_connection", bytes_sent=None),
    ])
    total = compute_features(events)["total_bytes_sent"]
    assert total.dtype == np.float64
    assert total.tolist() == [float(2 * INT64_MAX)]


# 100 file_access and 100 auth_attempt events: the slice's top 1% is one event, and a value shared by two is out.
FILLER = [
    *(event("filler", (2024, 1, 1, 12, minute), "file_access", file_size_bytes=1000) for minute in range(57)),
    *(event("filler", (2024, 1, 2, 12, minute), "file_access", file_size_bytes=1000) for minute in range(40)),
    *(event("filler", (2024, 1, 3, 12, minute), "auth_attempt", attempts_count=1) for minute in range(50)),
    *(event("filler", (2024, 1, 4, 12, minute), "auth_attempt", status="failed", attempts_count=3)
      for minute in range(48)),
]
FRANK = [
    event("frank", (2024, 1, 5, 3), "file_access", file_size_bytes=5000),  # night, the largest file: counted
    event("frank", (2024, 1, 5, 13), "file_access", file_size_bytes=1000),
    event("frank", (2024, 1, 5, 14), "auth_attempt", status="failed", attempts_count=40),  # the most attempts
    event("frank", (2024, 1, 5, 15), "process_execution", is_signed=False, user_privileges="Admin"),
    event("frank", (2024, 1, 5, 16), "process_execution", is_signed=False, user_privileges="user"),
    event("frank", (2024, 1, 5, 17), "process_execution", is_signed=True, user_privileges="root"),
]
GINA = [
    event("gina", (2024, 1, 5, 2), "file_access", file_size_bytes=1000),  # night, an ordinary size
    event("gina", (2024, 1, 5, 14), "auth_attempt", status="blocked", attempts_count=30),  # 2 events have >= 30
    event("gina", (2024, 1, 5, 15), "process_execution", is_signed=False, user_privileges="SYSTEM"),
    event("gina", (2024, 1, 5, 16), "process_execution", is_signed=False, user_privileges=None),
]
EVENT_RISK = ("night_large_file_events", "high_attempt_failed_logins", "elevated_unsigned_executions")


def test_event_level_risk_counts_keep_one_events_risks_together(make_events, compute_features) -> None:
    found = by_user(compute_features(make_events([*FILLER, *FRANK, *GINA])))
    assert {user: tuple(found[user][name] for name in EVENT_RISK) for user in found} == {
        "filler": (0, 0, 0), "frank": (1, 1, 1), "gina": (0, 0, 1),
    }


# Process threat scores: 10 x 0.1 and 10 x 0.2 (filler), then 0.9 and 0.95 (kim) and 0.2 (lea): median 0.2, MAD 0.1,
# so an outlier lies above 0.2 + 4 * 1.4826 * 0.1 = 0.793.
THREAT_FILLER = [event("filler", (2024, 2, 1, 12, minute), "process_execution", is_signed=True,
                       threat_score=0.1 if minute % 2 else 0.2, source_ip="10.0.0.9") for minute in range(20)]
KIM = [
    event("kim", (2024, 2, 2, 12), "process_execution", is_signed=False, threat_score=0.9),  # counted
    event("kim", (2024, 2, 2, 13), "process_execution", is_signed=True, threat_score=0.95),  # signed: not
    event("kim", (2024, 2, 2, 14), "auth_attempt", source_ip="203.0.113.5", geo_location="A"),  # public, once
    event("kim", (2024, 2, 2, 15), "auth_attempt", source_ip="203.0.113.6", geo_location="B"),  # lea's too
    event("kim", (2024, 2, 2, 16), "dns_query", source_ip="172.32.0.1", geo_location="C"),  # public, once
    event("kim", (2024, 2, 2, 17), "dns_query", source_ip="2001:DB8::1", geo_location="D"),  # public, once
    event("kim", (2024, 2, 2, 18), "dns_query", source_ip="10.9.9.9", geo_location="A"),  # private
]
LEA = [
    event("lea", (2024, 2, 3, 12), "process_execution", is_signed=False, threat_score=0.2),  # not an outlier
    event("lea", (2024, 2, 3, 13), "auth_attempt", source_ip="203.0.113.6", geo_location="A"),
    event("lea", (2024, 2, 3, 14), "auth_attempt", source_ip="172.20.1.1", geo_location="B"),  # private
    event("lea", (2024, 2, 3, 15), "auth_attempt", source_ip="FD00::1", geo_location="B"),  # unique-local
    event("lea", (2024, 2, 3, 16), "auth_attempt", source_ip="192.168.1.1", geo_location=None),  # private
]
NEW_EVENT_RISK = ("unsigned_threat_outlier_executions", "single_use_public_address_events", "third_location_events")


def test_threat_outliers_single_use_public_addresses_and_third_locations(make_events, compute_features) -> None:
    found = by_user(compute_features(make_events([*THREAT_FILLER, *KIM, *LEA])))
    assert {user: tuple(found[user][name] for name in NEW_EVENT_RISK) for user in found} == {
        "filler": (0, 0, 0), "kim": (1, 3, 2), "lea": (0, 0, 0),
    }


def test_no_threat_outlier_when_most_scores_are_equal(make_events, compute_features) -> None:
    # MAD 0: the scale is unknown, so nothing is an outlier, however high.
    events = [event("filler", (2024, 2, 1, 12, minute), "process_execution", threat_score=0.1) for minute in range(9)]
    events.append(event("kim", (2024, 2, 2, 12), "process_execution", is_signed=False, threat_score=1.0))
    found = by_user(compute_features(make_events(events)))
    assert found["kim"]["unsigned_threat_outlier_executions"] == 0


def test_the_top_percent_takes_ties_together(make_events, compute_features) -> None:
    # 200 file events, ten of them the largest (five each at night): 10 of 200 is 5%, so all ten are in the top 5%.
    events = [event("filler", (2024, 1, 1 + minute // 60, 12, minute % 60), "file_access", file_size_bytes=10)
              for minute in range(190)]
    events += [event(user, (2024, 1, 6, 1, minute), "file_access", file_size_bytes=2**40)
               for user in ("hal", "ida") for minute in range(5)]
    found = by_user(compute_features(make_events(events)))
    assert {user: found[user]["night_large_file_events"] for user in found} == {"filler": 0, "hal": 5, "ida": 5}
    # One more event as large makes eleven of 201: none is in the top 5% any more.
    events.append(event("filler", (2024, 1, 7, 12), "file_access", file_size_bytes=2**40))
    found = by_user(compute_features(make_events(events)))
    assert {user: found[user]["night_large_file_events"] for user in found} == {"filler": 0, "hal": 0, "ida": 0}


def test_calendar_features_ignore_the_session_time_zone(request, engine: str, make_events, compute_features) -> None:
    events = make_events([*ALICE, *BOB, *CAROL])
    expected = compute_features(events)
    if engine == "spark":
        spark = request.getfixturevalue("spark")
        spark.conf.set("spark.sql.session.timeZone", "Asia/Kolkata")
        try:
            shifted = compute_features(events)
        finally:
            spark.conf.set("spark.sql.session.timeZone", "UTC")
    else:
        from streamguard.engines.embedded import connect, embedded_features  # noqa: PLC0415

        db = connect(threads=1)
        try:
            db.execute("SET TimeZone = 'Asia/Kolkata'")
            shifted = embedded_features(events, db).to_pandas()
        finally:
            db.close()
    pd.testing.assert_frame_equal(shifted, expected)


def test_input_order_does_not_change_the_features(make_events, compute_features) -> None:
    forward = compute_features(make_events([*CAROL, *ALICE]))
    backward = compute_features(make_events([*reversed(ALICE), *reversed(CAROL)]), partitions=3)
    assert list(backward["user"]) == ["alice", "carol"]
    for user in ("alice", "carol"):
        assert mismatches(by_user(backward)[user], EXPECTED[user]) == {}
    pd.testing.assert_frame_equal(backward, forward, check_exact=False, rtol=1e-12)


def test_no_events_give_an_empty_table(make_events, compute_features) -> None:
    empty = compute_features(make_events([]))
    assert list(empty.columns) == ["user", *FEATURE_COLUMNS]
    assert len(empty) == 0


def test_missing_column_is_a_data_error(request, engine: str, make_events, features_of) -> None:
    events = make_events(ALICE).drop_columns(["threat_score"])
    if engine == "embedded":
        with pytest.raises(DataError, match="threat_score"):
            features_of(engine, events)
        return
    # Spark's errors become ours at the engine's boundary: every stage runs inside SparkEngine.errors.
    from streamguard.engines.spark import SparkEngine  # noqa: PLC0415

    spark = request.getfixturevalue("spark")
    spark_engine = SparkEngine(bootstrap="127.0.0.1:9", master="local[2]", session=spark)
    try:
        with pytest.raises(DataError, match="threat_score"), spark_engine.errors("features"):
            features_of(engine, events, spark=spark)
    finally:
        spark_engine.close()


def random_events(make_events, seed: int, n_rows: int):
    """Schema-shaped events: several users, every event type and status, null IPs and locations, equal times."""
    rng = np.random.default_rng(seed)
    users = [f"user-{index:02d}" for index in range(9)] + ["zoë", "山田"]
    # Few distinct instants (a week, 2-hour steps, a few offsets) so equal timestamps are common.
    base = ms(2024, 3, 1)
    instants = base + rng.integers(0, 84, n_rows) * 7_200_000 + rng.choice([0, 0, 1, 500, 999, 3_599_999], n_rows)
    rows = []
    for index in range(n_rows):
        event_type = str(rng.choice(EVENT_TYPES))
        rows.append({
            "user": users[int(rng.integers(0, len(users)))],
            "timestamp": int(instants[index]),
            "event_type": event_type,
            "status": str(rng.choice(STATUSES)),
            "source_ip": None if rng.random() < 0.15 else f"10.0.{int(rng.integers(0, 3))}.{int(rng.integers(0, 6))}",
            "destination_ip": "10.9.9.9",
            "geo_location": None if rng.random() < 0.2 else str(rng.choice(["Berlin, DE", "Lagos, NG", "Lima, PE"])),
            "threat_score": float(rng.choice([0.0, 1.0, rng.random()])),
            "bytes_sent": (
                (None if rng.random() < 0.1 else int(rng.integers(0, 2**62)))
                if event_type == "network_connection" else None
            ),
            "is_signed": (
                [None, True, False][int(rng.integers(0, 3))] if event_type == "process_execution" else None
            ),
            # Few distinct values, so ties at the edge of the slice's top 1% are common.
            "attempts_count": int(rng.integers(1, 6)) if event_type == "auth_attempt" else None,
            "file_size_bytes": int(rng.choice([1, 10, 10**9, 10**10])) if event_type == "file_access" else None,
            "user_privileges": (
                str(rng.choice(["user", "Admin", "SYSTEM", "root", "guest"])) if event_type == "process_execution"
                else None
            ),
        })
    return make_events(rows)


def test_both_engines_compute_the_same_features(spark, make_events, features_of) -> None:
    events = random_events(make_events, seed=20240301, n_rows=400)
    assert set(events.column("event_type").to_pylist()) == set(EVENT_TYPES)
    assert events.column("source_ip").null_count > 0 and events.column("geo_location").null_count > 0
    timestamps = events.select(["user", "timestamp"]).to_pandas()
    assert timestamps.duplicated().any(), "the sample should hold equal timestamps of one user"

    embedded = features_of("embedded", events)
    on_spark = features_of("spark", events, spark=spark, partitions=3)
    assert list(embedded["user"]) == list(on_spark["user"])
    assert len(embedded) == 11
    different = {
        (user, name): (left, right)
        for name in FEATURE_COLUMNS
        for user, left, right in zip(embedded["user"], embedded[name], on_spark[name], strict=True)
        if not math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-12)
    }
    assert different == {}
    assert {name: on_spark[name].dtype for name in FEATURE_COLUMNS} == {
        name: embedded[name].dtype for name in FEATURE_COLUMNS
    }
