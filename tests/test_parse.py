"""The one parse function both engines run: quarantine reasons, strict JSON, fast path against the reference checks.

The reference checks (``streamguard.events.parse.is_valid_reference`` on the decoded JSON) say what the contract
means; the fast path (msgspec, ``streamguard.events._fast``) accepts the common valid event in C and hands every
record it turns down to the reference. So ``classify_value``'s verdict must be the reference's on every record, the
fast path must never accept what the reference rejects, and (outside repeated keys, where only the reference sees
the last value) the two agree.
"""

from __future__ import annotations

import copy
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_event_schema import EVENT

from streamguard.contracts.columns import EVENT_TYPES, QUARANTINE_REASONS, STATUSES
from streamguard.events.parse import (
    CLASSIFIED_SCHEMA,
    DETAILS_FIELD,
    USER_MAX_LENGTH,
    classify_batch,
    classify_value,
    fast_event,
    is_valid_reference,
)
from streamguard.kafka.consume import RAW_SCHEMA
from streamguard.synth.invalid import INVALID_KINDS, invalid_kind, malformed_value

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "events"
VALID_LINES = (FIXTURES / "valid_sample.jsonl").read_text(encoding="utf-8").splitlines()
INT64_MAX = 2**63 - 1
NOT_UTF8 = b'{"user": "\xff\xfe"}'

# The event test_event_schema validates: one sample, two readers of it.
TEXT = json.dumps(EVENT)

TOP_LEVEL_COLUMNS = ("event_id", "timestamp", "event_type", "user", "source_ip", "destination_ip", "threat_score",
                     "status")
REASON_OF_KIND = {
    "not_json": "invalid_json",
    "truncated_json": "invalid_json",
    "wrong_type": "wrong_type",
    "missing_required": "missing_required",
    "out_of_range": "out_of_range",
    "empty_value": "empty_value",
}


def encoded(**changes: Any) -> bytes:
    return json.dumps({**copy.deepcopy(EVENT), **changes}).encode()


def fast_valid(value: bytes) -> bool:
    """The fast path's verdict: msgspec's typed decode plus the checks ``classify_value`` adds to it."""
    return fast_event(value) is not None


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} does not fit a double")
    return number


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def reference_valid(value: bytes) -> bool:
    # Decoded first: json.loads on bytes would drop a byte order mark that strict JSON text must not carry.
    # Strict where json.loads is lenient and the parser is not: a number past a double's range (1e400 -> inf)
    # and a lone surrogate (text that has no UTF-8 form) are not a document the parser can hold; NaN and
    # Infinity, which json.loads takes as constants, are not JSON at all.
    try:
        decoded = json.loads(value.decode("utf-8"), parse_float=_finite, parse_constant=_no_constant)
        json.dumps(decoded, ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        return False
    return is_valid_reference(decoded)


def reason(value: bytes | None) -> str | None:
    return classify_value(value)[0]


def event_columns(value: bytes) -> dict[str, Any]:
    """The event columns ``classify_value`` gives ``value``, by name."""
    names = CLASSIFIED_SCHEMA.names[CLASSIFIED_SCHEMA.get_field_index("event_id"):]
    return dict(zip(names, classify_value(value)[1], strict=True))


def has_integral_float(value: bytes) -> bool:
    """Whether the JSON holds a float without a fraction (an integer to JSON Schema, a float to msgspec's int)."""
    found = False

    def parse_float(text: str) -> float:
        nonlocal found
        number = float(text)
        found = found or number.is_integer()
        return number

    try:
        json.loads(value, parse_float=parse_float)
    except ValueError:
        return False
    return found


def assert_paths_agree(value: bytes, *, repeated_key: bool = False) -> None:
    """The verdict is the reference's; the fast path agrees, or at most turns it down where only the reference
    sees what makes it valid (a repeated key's last value; a float without a fraction in an integer field)."""
    reference = reference_valid(value)
    fast = fast_valid(value)
    assert (reason(value) is None) == reference, value
    if repeated_key or has_integral_float(value):
        assert reference or not fast, value
    else:
        assert fast == reference, value


# (label, value, reason): strict JSON, types without coercion, the user name's range.
CASES: list[tuple[str, bytes, str | None]] = [
    ("complete event", TEXT.encode(), None),
    ("user of the maximum length", encoded(user="u" * USER_MAX_LENGTH), None),
    ("non-ASCII user", encoded(user="Zoë 山田 🙂"), None),
    ("threat score as an integer", encoded(threat_score=1), None),
    ("single quotes", TEXT.replace('"', "'").encode(), "invalid_json"),
    ("trailing garbage", (TEXT + " x").encode(), "invalid_json"),
    ("two objects in one message", (TEXT + TEXT).encode(), "invalid_json"),
    ("two objects on two lines", (TEXT + "\n" + TEXT).encode(), "invalid_json"),
    ("trailing comma", (TEXT[:-1] + ",}").encode(), "invalid_json"),
    ("NaN threat score", TEXT.replace('"threat_score": 0.12', '"threat_score": NaN').encode(), "invalid_json"),
    ("Infinity threat score", TEXT.replace('"threat_score": 0.12', '"threat_score": Infinity').encode(),
     "invalid_json"),
    ("raw control character in a string", TEXT.replace('"alice"', '"ali\x01ce"').encode(), "invalid_json"),
    ("byte order mark", b"\xef\xbb\xbf" + TEXT.encode(), "invalid_json"),
    ("user as a number", encoded(user=7), "wrong_type"),
    ("user as an object", encoded(user={"name": "alice"}), "wrong_type"),
    ("user as an array", encoded(user=["alice"]), "wrong_type"),
    ("user as a boolean", encoded(user=True), "wrong_type"),
    ("timestamp as a float without a fraction (JSON Schema's integer)", encoded(timestamp=1767340800000.0), None),
    ("timestamp with a fraction", encoded(timestamp=1767340800000.5), "wrong_type"),
    ("timestamp as a boolean", encoded(timestamp=True), "wrong_type"),
    ("threat score as a string", encoded(threat_score="0.1"), "wrong_type"),
    ("metadata as a string", encoded(metadata="ws-alice-01"), "wrong_type"),
    ("attempts as a string", encoded(auth_details={**EVENT["auth_details"], "attempts_count": "2"}), "wrong_type"),
    ("a JSON array", b"[1, 2]", "wrong_type"),
    ("a JSON string", b'"alice"', "wrong_type"),
    ("a JSON null", b"null", "wrong_type"),
    ("null user", encoded(user=None), "missing_required"),
    ("no details of the event's type", encoded(event_type="dns_query"), "missing_required"),
    ("no location anywhere", encoded(metadata={**EVENT["metadata"], "geo_location": None}), "missing_required"),
    ("empty user", encoded(user=""), "out_of_range"),
    ("user with a control character", encoded(user="ali\u0007ce"), "out_of_range"),
    ("user with DEL", encoded(user="ali\u007fce"), "out_of_range"),
    ("user with a C1 control character", encoded(user="ali\u0085ce"), "out_of_range"),
    ("user over 256 characters", encoded(user="u" * (USER_MAX_LENGTH + 1)), "out_of_range"),
    ("timestamp beyond 64 bits", encoded(timestamp=2**64), "out_of_range"),
    ("negative timestamp", encoded(timestamp=-1), "out_of_range"),
    ("threat score above 1", encoded(threat_score=1.0000001), "out_of_range"),
    ("unknown status", encoded(status="ok"), "out_of_range"),
    ("bad event id", encoded(event_id="evt_XYZ"), "out_of_range"),
    ("empty flat location", encoded(location=""), "out_of_range"),
]


def malformed_cases() -> list[tuple[str, bytes, str]]:
    """Every malformed kind of the generator, both variants, derived from every valid fixture line."""
    cases = []
    for line_number, line in enumerate(VALID_LINES):
        for ordinal in range(2 * len(INVALID_KINDS)):
            kind = invalid_kind(ordinal)
            cases.append((f"{kind}#{ordinal}@{line_number}", malformed_value(ordinal, line), REASON_OF_KIND[kind]))
    return cases


MALFORMED = malformed_cases()


def test_every_kind_of_the_generator_has_an_expected_quarantine_reason() -> None:
    assert set(REASON_OF_KIND) == set(INVALID_KINDS)
    assert set(REASON_OF_KIND.values()) <= set(QUARANTINE_REASONS)


@pytest.mark.parametrize("line", VALID_LINES, ids=range(len(VALID_LINES)))
def test_every_valid_fixture_line_is_an_event(line: str) -> None:
    assert reason(line.encode()) is None
    event = json.loads(line)
    columns = event_columns(line.encode())
    assert {name: columns[name] for name in TOP_LEVEL_COLUMNS} == {name: event[name] for name in TOP_LEVEL_COLUMNS}
    assert columns["geo_location"] == (event["metadata"].get("geo_location") or event["location"])
    assert columns["hostname"] == event["metadata"]["hostname"]
    assert columns["bytes_sent"] == event.get("network_details", {}).get("bytes_sent")
    assert columns["is_signed"] == event.get("process_details", {}).get("is_signed")
    own = {"auth_attempt": "attempts_count", "file_access": "file_size_bytes", "process_execution": "user_privileges"}
    for kind, name in own.items():
        expected = event[DETAILS_FIELD[kind]][name] if event["event_type"] == kind else None
        assert columns[name] == expected, name


@pytest.mark.parametrize(("label", "value", "expected"), MALFORMED, ids=[case[0] for case in MALFORMED])
def test_each_malformed_kind_of_the_generator_lands_under_its_reason(label: str, value: bytes, expected: str) -> None:
    assert reason(value) == expected


def test_a_null_value_is_empty() -> None:
    assert reason(None) == "empty_value"
    assert reason(b"") == "empty_value"


def test_bytes_that_are_not_utf8_keep_their_bytes_and_have_no_text() -> None:
    assert reason(NOT_UTF8) == "invalid_utf8"
    batch = classify_batch(raw_batch([NOT_UTF8]))
    row = batch.to_pylist()[0]
    assert row["reason"] == "invalid_utf8"
    assert row["value"] == NOT_UTF8
    assert row["value_text"] is None


@pytest.mark.parametrize(("label", "value", "expected"), CASES, ids=[case[0] for case in CASES])
def test_strict_json_and_typed_fields(label: str, value: bytes, expected: str | None) -> None:
    assert reason(value) == expected


EVERY_CASE = [
    *((label, value) for label, value, _ in [*CASES, *MALFORMED]),
    *((f"valid line {number}", line.encode()) for number, line in enumerate(VALID_LINES)),
]


@pytest.mark.parametrize(("label", "value"), EVERY_CASE, ids=[label for label, _ in EVERY_CASE])
def test_fast_path_and_reference_checks_agree(label: str, value: bytes) -> None:
    assert_paths_agree(value)


def test_a_repeated_key_keeps_its_last_value() -> None:
    stale_valid_first = ('{"threat_score": 0.9, ' + TEXT[1:]).encode()
    assert reason(stale_valid_first) is None
    assert event_columns(stale_valid_first)["threat_score"] == 0.12
    bad_last = (TEXT[:-1] + ', "threat_score": 1.7}').encode()
    assert reason(bad_last) == "out_of_range"
    for value in (stale_valid_first, bad_last):
        assert_paths_agree(value, repeated_key=True)


@pytest.mark.parametrize("stale", ['"user": 7', '"threat_score": 1.7', '"timestamp": "abc"', '"metadata": null'])
def test_an_invalid_earlier_occurrence_of_a_repeated_key_is_overridden(stale: str) -> None:
    value = ("{" + stale + ", " + TEXT[1:]).encode()
    assert reason(value) is None
    assert_paths_agree(value, repeated_key=True)
    columns = event_columns(value)
    assert {name: columns[name] for name in TOP_LEVEL_COLUMNS} == {name: EVENT[name] for name in TOP_LEVEL_COLUMNS}
    assert (columns["geo_location"], columns["hostname"]) == ("Berlin, DE", "ws-alice-01")


@pytest.mark.parametrize("changes", [{"user": "alice\n"}, {"user": "\n"},
                                     {"event_id": "evt_0123456789abcdef0123456789abcdef\n"}])
def test_a_trailing_newline_in_a_checked_string_is_out_of_range(changes: dict[str, str]) -> None:
    value = encoded(**changes)
    assert reason(value) == "out_of_range"
    assert_paths_agree(value)


@pytest.mark.parametrize("other", [{}, None, {"query_name": 7}, {"query_name": "", "query_type": "", "x": [1]}])
def test_a_details_object_of_another_type_is_ignored_on_both_paths(other: Any) -> None:
    value = encoded(dns_details=other)
    assert reason(value) is None
    assert_paths_agree(value)


def test_a_lone_surrogate_escape_is_never_an_event() -> None:
    # json.loads accepts "\ud800" (the reference would too); no UTF-8 column can hold it, so it is quarantined.
    value = TEXT.replace('"alice"', '"\\ud800"').encode()
    assert reason(value) == "invalid_json"


# --- generated events -------------------------------------------------------------------------------------------

# No lone surrogates (they cannot be UTF-8; see the test above) and no control characters in valid strings.
TRICKY_CHARACTERS = 'a \n\t\x00\x1f\x7f\x85\x9f\u2028"\\é山🙂'


def free_text(max_size: int) -> st.SearchStrategy[str]:
    """Short strings of characters parsers trip on, or any text (no lone surrogates)."""
    return st.text(TRICKY_CHARACTERS, max_size=6) | st.text(st.characters(blacklist_categories=("Cs",)),
                                                            max_size=max_size)


ANY_TEXT = free_text(12)
CLEAN_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)
NON_EMPTY = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12)
COUNT = st.integers(0, INT64_MAX)
PORT = st.integers(0, 65_535)
NULLABLE = st.none() | CLEAN_TEXT

DETAILS = {
    "auth_attempt": st.fixed_dictionaries(
        {"auth_type": NON_EMPTY, "failure_reason": NULLABLE, "attempts_count": COUNT}),
    "network_connection": st.fixed_dictionaries(
        {"protocol": CLEAN_TEXT, "source_port": PORT, "destination_port": PORT, "bytes_sent": COUNT,
         "bytes_received": COUNT, "duration_ms": COUNT}),
    "file_access": st.fixed_dictionaries(
        {"file_path": NON_EMPTY, "operation": CLEAN_TEXT, "file_size_bytes": COUNT}),
    "process_execution": st.fixed_dictionaries(
        {"process_name": NON_EMPTY, "command_line": CLEAN_TEXT, "user_privileges": CLEAN_TEXT,
         "is_signed": st.booleans()}),
    "dns_query": st.fixed_dictionaries(
        {"query_name": NON_EMPTY, "query_type": NON_EMPTY, "response_code": NON_EMPTY}),
}
# Addresses in the forms producers write: compressed, exploded, upper-case hex, IPv4-mapped IPv6.
IPS = st.ip_addresses().flatmap(lambda address: st.sampled_from(
    [str(address), address.exploded, str(address).upper()]
    + ([f"::ffff:{address}"] if address.version == 4 else [])))
# Users: any non-control text up to the limit, often non-ASCII (astral characters become surrogate pairs in \u form).
USERS = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=USER_MAX_LENGTH)


@st.composite
def valid_events(draw: st.DrawFn, event_type: str | None = None) -> dict[str, Any]:
    """Events the contract accepts, of ``event_type`` or any type, keys in any order."""
    event_type = event_type or draw(st.sampled_from(EVENT_TYPES))
    metadata = {"hostname": draw(NON_EMPTY), "user_agent": draw(NULLABLE), "session_id": draw(NULLABLE)}
    where = draw(st.sampled_from(["metadata", "flat", "both"]))
    event = {
        "event_id": draw(st.from_regex(r"evt_[0-9a-f]{32}", fullmatch=True)),
        "timestamp": draw(COUNT),
        "event_type": event_type,
        "user": draw(USERS),
        "source_ip": draw(IPS),
        "destination_ip": draw(IPS),
        "threat_score": draw(st.floats(0.0, 1.0) | st.sampled_from([0, 1])),
        "status": draw(st.sampled_from(STATUSES)),
        "metadata": metadata,
        DETAILS_FIELD[event_type]: draw(DETAILS[event_type]),
    }
    if where in ("metadata", "both"):
        metadata["geo_location"] = draw(NON_EMPTY)
    if where in ("flat", "both"):
        event["location"] = draw(NON_EMPTY)
    keys = draw(st.permutations(list(event)))
    return {key: event[key] for key in keys}


def leaf_paths(event: dict[str, Any]) -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []
    for key, value in event.items():
        paths.append((key,))
        if isinstance(value, dict):
            paths.extend((key, inner) for inner in value)
    return paths


def lookup(event: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        event = event[key]
    return event


def assign(event: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        event = event[key]
    event[path[-1]] = value


def remove(event: dict[str, Any], path: tuple[str, ...]) -> None:
    for key in path[:-1]:
        event = event[key]
    del event[path[-1]]


ANY_VALUE = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | ANY_TEXT
    | st.lists(st.integers(), max_size=2) | st.dictionaries(CLEAN_TEXT, st.integers(), max_size=2)
)
HUGE_INT = st.integers(min_value=2**63) | st.integers(max_value=-(2**63) - 1)


def out_of_range_number(path: tuple[str, ...]) -> st.SearchStrategy[Any]:
    if path == ("threat_score",):
        return (st.floats(max_value=-1e-12) | st.floats(min_value=1.000000001) | st.sampled_from([-1, 2])
                | HUGE_INT)
    if path[-1] in ("source_port", "destination_port"):
        return st.integers(max_value=-1) | st.integers(min_value=65_536)
    return st.integers(max_value=-1) | st.integers(min_value=2**63)


MUTATIONS = ("drop", "null", "retype", "user", "switch_type", "unknown_key", "repeat_first", "repeat_last")
# Every number of the contract, with the event type that carries it (None: every type).
NUMBER_FIELDS: dict[tuple[str, ...], str | None] = {
    ("timestamp",): None,
    ("threat_score",): None,
    ("auth_details", "attempts_count"): "auth_attempt",
    **{("network_details", name): "network_connection"
       for name in ("source_port", "destination_port", "bytes_sent", "bytes_received", "duration_ms")},
    ("file_details", "file_size_bytes"): "file_access",
}


@st.composite
def mutated_events(draw: st.DrawFn, mutation: str) -> bytes:
    """A valid event with one ``mutation`` (a ``MUTATIONS`` name), serialised."""
    event = copy.deepcopy(draw(valid_events()))
    path = draw(st.sampled_from(leaf_paths(event)))
    suffix = ""
    prefix = ""
    if mutation == "drop":
        remove(event, path)
    elif mutation == "null":
        assign(event, path, None)
    elif mutation == "retype":
        assign(event, path, draw(ANY_VALUE))
    elif mutation == "user":
        # Any text: empty, too long, control characters, a trailing newline.
        event["user"] = draw(free_text(USER_MAX_LENGTH + 4))
    elif mutation == "switch_type":
        event["event_type"] = draw(st.sampled_from([kind for kind in EVENT_TYPES if kind != event["event_type"]]))
    elif mutation == "unknown_key":
        event[f"x_{draw(CLEAN_TEXT)}"] = draw(ANY_VALUE)
    elif mutation == "repeat_first":
        # A stale first occurrence, valid (another event's) or anything: the event's own, last, value wins.
        key = path[0]
        stale = draw(st.just(draw(valid_events()).get(key, event[key])) | ANY_VALUE)
        prefix = json.dumps(key) + ": " + json.dumps(stale) + ", "
    elif mutation == "repeat_last":
        suffix = ", " + json.dumps(path[0]) + ": " + json.dumps(draw(ANY_VALUE))
    text = json.dumps(event, ensure_ascii=draw(st.booleans()))
    text = "{" + prefix + text[1:-1] + suffix + "}"
    return text.encode("utf-8")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_events(), st.booleans())
def test_generated_valid_events_are_valid_on_both_paths(event: dict[str, Any], ascii_only: bool) -> None:
    value = json.dumps(event, ensure_ascii=ascii_only).encode("utf-8")
    assert fast_valid(value)
    assert reference_valid(value)
    assert reason(value) is None
    columns = event_columns(value)
    assert {name: columns[name] for name in TOP_LEVEL_COLUMNS} == {name: event[name] for name in TOP_LEVEL_COLUMNS}
    assert columns["geo_location"] == (event["metadata"].get("geo_location") or event["location"])


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_generated_mutations_get_the_same_verdict_on_both_paths(mutation: str) -> None:
    @settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(mutated_events(mutation))
    def check(value: bytes) -> None:
        assert_paths_agree(value, repeated_key=mutation.startswith("repeat_"))
        verdict = reason(value)
        assert verdict in (None, "invalid_json", "wrong_type", "missing_required", "out_of_range")
        if verdict is None:
            decoded = json.loads(value)
            columns = event_columns(value)
            assert {name: columns[name] for name in TOP_LEVEL_COLUMNS} == {
                name: decoded[name] for name in TOP_LEVEL_COLUMNS
            }

    check()


@pytest.mark.parametrize("path", list(NUMBER_FIELDS), ids=[".".join(path) for path in NUMBER_FIELDS])
def test_a_number_out_of_range_gets_the_same_verdict_on_both_paths(path: tuple[str, ...]) -> None:
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(valid_events(NUMBER_FIELDS[path]), out_of_range_number(path) | HUGE_INT)
    def check(event: dict[str, Any], number: int | float) -> None:
        assign(event, path, number)
        value = json.dumps(event).encode()
        assert_paths_agree(value)
        assert reason(value) in ("invalid_json", "out_of_range")

    check()


# --- classify_batch and the Spark engine's parse ----------------------------------------------------------------

BASE_MS = 1_767_340_800_000


def mixed_values() -> list[bytes | None]:
    return [
        TEXT.encode(), b"", None, NOT_UTF8, b"WARN not json", encoded(user=7), encoded(user=None),
        encoded(threat_score=1.7), VALID_LINES[0].encode(), encoded(event_type="network_connection"),
        VALID_LINES[1].encode(), ('{"user": 7, ' + TEXT[1:]).encode(),
    ]


def raw_batch(values: list[bytes | None], first_offset: int = 100) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist(
        [
            {"topic": "security-events", "partition": 3, "offset": first_offset + index,
             "timestamp": BASE_MS + index, "value": value}
            for index, value in enumerate(values)
        ],
        schema=RAW_SCHEMA,
    )


def test_classify_batch_gives_one_row_per_record_and_keeps_the_bytes_of_quarantined_ones() -> None:
    values = mixed_values()
    batch = classify_batch(raw_batch(values))
    assert batch.schema == CLASSIFIED_SCHEMA
    rows = batch.to_pylist()
    assert [row["offset"] for row in rows] == list(range(100, 100 + len(values)))
    assert {row["partition"] for row in rows} == {3}
    assert [row["kafka_timestamp"] for row in rows] == [
        datetime.fromtimestamp((BASE_MS + index) / 1000, tz=UTC) for index in range(len(values))
    ]
    assert [row["reason"] for row in rows] == [
        None, "empty_value", "empty_value", "invalid_utf8", "invalid_json", "wrong_type", "missing_required",
        "out_of_range", None, "missing_required", None, None,
    ]
    for row, value in zip(rows, values, strict=True):
        if row["reason"] is None:
            assert row["value"] is None and row["value_text"] is None
            assert row["user"] is not None and row["event_id"] is not None
        else:
            assert row["value"] == value
            assert row["value_text"] == (None if value is None or row["reason"] == "invalid_utf8" else value.decode())
            assert all(row[name] is None for name in ("event_id", "timestamp", "user", "threat_score"))
    network = json.loads(VALID_LINES[0])
    assert rows[8]["bytes_sent"] == network["network_details"]["bytes_sent"]
    assert rows[8]["is_signed"] is None
    assert rows[0]["geo_location"] == "Berlin, DE" and rows[0]["hostname"] == "ws-alice-01"


def test_classify_batch_of_no_records_is_empty() -> None:
    batch = classify_batch(raw_batch([]))
    assert batch.num_rows == 0
    assert batch.schema == CLASSIFIED_SCHEMA


def test_the_spark_engine_parses_as_classify_batch_does(spark) -> None:
    from pyspark.sql.types import (  # noqa: PLC0415
        BinaryType,
        IntegerType,
        LongType,
        StringType,
        StructField,
        StructType,
        TimestampType,
    )

    from streamguard.engines.spark import SparkEngine  # noqa: PLC0415

    values = mixed_values() + [malformed_value(ordinal, VALID_LINES[2]) for ordinal in range(12)]
    raw = raw_batch(values)
    schema = StructType([
        StructField("topic", StringType()), StructField("partition", IntegerType()),
        StructField("offset", LongType()), StructField("timestamp", TimestampType()),
        StructField("value", BinaryType()),
    ])
    records = [
        (row["topic"], row["partition"], row["offset"], datetime.fromtimestamp(row["timestamp"] / 1000, tz=UTC),
         row["value"])
        for row in raw.to_pylist()
    ]
    frame = spark.createDataFrame(records, schema).repartition(3)

    engine = SparkEngine(bootstrap="127.0.0.1:9", master="local[2]", session=spark)
    try:
        engine._raw = frame  # what read() leaves for parse(), without a broker
        counts = engine.parse()
        on_spark = engine._classified.orderBy("offset").toArrow()
    finally:
        engine.close()

    expected = classify_batch(raw)
    assert on_spark.cast(CLASSIFIED_SCHEMA).to_pylist() == expected.to_pylist()
    reasons = expected.column("reason").to_pylist()
    assert counts.valid == reasons.count(None)
    assert counts.by_reason == {reason: reasons.count(reason) for reason in set(reasons) - {None}}
