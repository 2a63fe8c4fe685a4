"""Property: every schema-valid event parses, and the features of both engines are finite and the same.

Hypothesis writes events the contract accepts — every event type, numbers at the schema's bounds (timestamps at 0
and 2^63-1 ms, byte counts at 2^63-1, ports 0 and 65535, scores 0, 1 and subnormal), unicode users (astral,
right-to-left, combining marks) — serialises them as JSON, parses them with ``classify_batch`` and runs the feature
stage of the embedded engine (DuckDB) and of Spark (local) on the valid events, as the engines do.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from conftest import _features_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamguard.contracts.columns import EVENT_COLUMNS, EVENT_TYPES, STATUSES, USER_MAX_LENGTH
from streamguard.contracts.features import FEATURES
from streamguard.events.parse import classify_batch
from streamguard.events.schema import DETAILS_FIELD, validate_event
from streamguard.kafka.consume import RAW_SCHEMA

INT64_MAX = 2**63 - 1
FEATURE_NAMES = [feature.name for feature in FEATURES]


def near_bounds(low: int, high: int) -> st.SearchStrategy[int]:
    """Integers in [low, high], often at or next to either bound."""
    return st.one_of(st.integers(low, min(low + 3, high)), st.integers(max(high - 3, low), high),
                     st.integers(low, high))


COUNT = near_bounds(0, INT64_MAX)
PORT = near_bounds(0, 65_535)
# A week around 2026 often (so gaps and rates are ordinary), else anywhere in the schema's range.
TIMESTAMP = st.one_of(st.integers(1_767_225_600_000, 1_767_830_400_000), COUNT)
SCORE = st.one_of(st.sampled_from([0, 1, 0.0, 1.0, 5e-324, 0.5]), st.floats(0.0, 1.0))
WORD = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=8)
NON_EMPTY = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=8)
USER = st.one_of(
    st.sampled_from(["alice", "🦊", "مستخدم", "jose\u0301", "jos\u00e9", "山田", "u" * USER_MAX_LENGTH,
                     "\U0001f98a" * USER_MAX_LENGTH]),
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=USER_MAX_LENGTH),
)
IP = st.ip_addresses().map(str)
DETAILS = {
    "auth_attempt": st.fixed_dictionaries(
        {"auth_type": NON_EMPTY, "failure_reason": st.none() | WORD, "attempts_count": COUNT}),
    "network_connection": st.fixed_dictionaries(
        {"protocol": st.sampled_from(["TCP", "udp", "SCTP"]) | WORD, "source_port": PORT, "destination_port": PORT,
         "bytes_sent": COUNT, "bytes_received": COUNT, "duration_ms": COUNT}),
    "file_access": st.fixed_dictionaries(
        {"file_path": NON_EMPTY, "operation": st.sampled_from(["read", "MODIFY"]) | WORD,
         "file_size_bytes": COUNT}),
    "process_execution": st.fixed_dictionaries(
        {"process_name": NON_EMPTY, "command_line": WORD, "user_privileges": st.sampled_from(["admin", "root"]),
         "is_signed": st.booleans()}),
    "dns_query": st.fixed_dictionaries(
        {"query_name": NON_EMPTY, "query_type": NON_EMPTY, "response_code": NON_EMPTY}),
}


@st.composite
def event(draw: st.DrawFn, users: list[str]) -> dict[str, Any]:
    event_type = draw(st.sampled_from(EVENT_TYPES))
    return {
        "event_id": draw(st.from_regex(r"evt_[0-9a-f]{32}", fullmatch=True)),
        "timestamp": draw(TIMESTAMP),
        "event_type": event_type,
        "user": draw(st.sampled_from(users)),
        "source_ip": draw(IP),
        "destination_ip": draw(IP),
        "threat_score": draw(SCORE),
        "status": draw(st.sampled_from(STATUSES)),
        "metadata": {"hostname": draw(NON_EMPTY), "geo_location": draw(st.sampled_from(["Berlin, DE", "東京"])),
                     "user_agent": None, "session_id": None},
        DETAILS_FIELD[event_type]: draw(DETAILS[event_type]),
    }


@st.composite
def event_slices(draw: st.DrawFn) -> list[dict[str, Any]]:
    """1 to 30 events of 1 to 4 users (so users have several events: gaps, rates, distinct counts)."""
    users = draw(st.lists(USER, min_size=1, max_size=4, unique=True))
    return draw(st.lists(event(users), min_size=1, max_size=30))


def parsed_events(events: list[dict[str, Any]], ascii_only: bool) -> pa.Table:
    values = [json.dumps(item, ensure_ascii=ascii_only).encode("utf-8") for item in events]
    raw = pa.RecordBatch.from_pylist(
        [{"topic": "t", "partition": 0, "offset": offset, "timestamp": 1_767_340_800_000, "value": value}
         for offset, value in enumerate(values)], schema=RAW_SCHEMA)
    classified = pa.Table.from_batches([classify_batch(raw)])
    assert classified.column("reason").null_count == len(events), classified.column("reason").to_pylist()
    # The valid events as the engines hand them to the feature stage.
    valid = classified.filter(pc.is_null(classified["reason"]))
    return valid.select([name for name in EVENT_COLUMNS if name in valid.column_names])


def assert_finite(features: Any, engine: str) -> None:
    for name in FEATURE_NAMES:
        for user, value in zip(features["user"], features[name], strict=True):
            assert math.isfinite(value), (engine, name, user, value)


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(event_slices(), st.booleans())
def test_schema_valid_events_parse_and_give_finite_features_on_the_embedded_engine(events, ascii_only) -> None:
    assert all(validate_event(item) == [] for item in events)
    features = _features_of("embedded", parsed_events(events, ascii_only))
    assert sorted(features["user"]) == sorted({item["user"] for item in events})
    assert_finite(features, "embedded")


def test_schema_valid_events_give_the_same_features_on_both_engines(spark, features_of) -> None:
    # Few examples: each one is a Spark job (seconds on a loaded machine); the embedded-only property runs more.
    @settings(max_examples=6, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(event_slices(), st.booleans())
    def check(events: list[dict[str, Any]], ascii_only: bool) -> None:
        table = parsed_events(events, ascii_only)
        embedded = features_of("embedded", table)
        on_spark = features_of("spark", table, spark=spark, partitions=2)
        assert list(embedded["user"]) == list(on_spark["user"])
        assert_finite(embedded, "embedded")
        assert_finite(on_spark, "spark")
        for name in FEATURE_NAMES:
            for user, left, right in zip(embedded["user"], embedded[name], on_spark[name], strict=True):
                assert math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-12), (name, user, left, right)

    check()
