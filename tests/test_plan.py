"""The planner's pure parts: allocation invariants (hypothesis), range building, spec parsing."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamguard.errors import InvalidOffsetSpec
from streamguard.kafka.admin import Watermarks
from streamguard.kafka.plan import (
    PartitionRange,
    ReadPlan,
    StartSpec,
    allocate,
    build_ranges,
    parse_start,
    parse_timestamp,
    resolve_starts,
)
from streamguard.kafka.read import kafka_options

availability = st.dictionaries(st.integers(0, 63), st.integers(0, 10_000), min_size=1, max_size=16)


@given(availability, st.integers(0, 200_000))
def test_allocation_takes_exactly_min_of_n_and_available(available, n):
    take = allocate(available, n)
    assert sum(take.values()) == min(n, sum(available.values()))


@given(availability, st.integers(0, 200_000))
def test_allocation_never_exceeds_a_partition(available, n):
    take = allocate(available, n)
    assert set(take) == set(available)
    assert all(0 <= take[p] <= available[p] for p in available)


@given(availability, st.integers(0, 200_000))
def test_allocation_is_fair(available, n):
    # A partition that got less than it holds got at least as much as any other partition (minus rounding).
    take = allocate(available, n)
    for p, got in take.items():
        if got < available[p]:
            assert all(other <= got + 1 for other in take.values())


@given(availability, st.integers(0, 200_000))
def test_allocation_is_deterministic(available, n):
    assert allocate(available, n) == allocate(dict(reversed(list(available.items()))), n)


def test_allocation_redistributes_what_small_partitions_cannot_take():
    assert allocate({0: 700, 1: 250, 2: 50, 3: 0}, 900) == {0: 600, 1: 250, 2: 50, 3: 0}


def test_allocation_rejects_negative():
    with pytest.raises(InvalidOffsetSpec):
        allocate({0: 1}, -1)


@given(st.dictionaries(st.integers(0, 31), st.tuples(st.integers(0, 1000), st.integers(0, 1000)), min_size=1),
       st.one_of(st.none(), st.integers(1, 5000)))
def test_ranges_stay_inside_start_and_end_and_skip_empty(bounds, n):
    starts = {p: min(a, b) for p, (a, b) in bounds.items()}
    ends = {p: max(a, b) for p, (a, b) in bounds.items()}
    ranges = build_ranges(starts, ends, n)
    assert all(starts[r.partition] == r.start < r.until <= ends[r.partition] for r in ranges)
    total = sum(ends[p] - starts[p] for p in starts)
    assert sum(r.count for r in ranges) == (total if n is None else min(n, total))
    assert [r.partition for r in ranges] == sorted(r.partition for r in ranges)


def test_parse_timestamp_accepts_ms_and_iso():
    assert parse_timestamp("1767225600000") == 1_767_225_600_000
    assert parse_timestamp("2026-01-01T00:00:00Z") == 1_767_225_600_000
    assert parse_timestamp("2026-01-01T01:00:00+01:00") == 1_767_225_600_000
    assert parse_timestamp("2026-01-01 00:00:00") == 1_767_225_600_000  # naive is UTC
    with pytest.raises(InvalidOffsetSpec):
        parse_timestamp("last tuesday")


def test_parse_start_kinds():
    assert parse_start("earliest", "t").kind == "earliest"
    assert parse_start(" latest ", "t").kind == "latest"
    assert parse_start('{"0": 5, "1": -2}', "t").offsets == {0: 5, 1: -2}
    assert parse_start('{"t": {"0": 5}}', "t").offsets == {0: 5}
    assert parse_start("2026-01-01T00:00:00Z", "t").timestamp_ms == 1_767_225_600_000
    for bad in ('{"0": "x"}', "{not json", "{}"):
        with pytest.raises(InvalidOffsetSpec):
            parse_start(bad, "t")


MARKS = [Watermarks(0, 10, 100), Watermarks(1, 0, 0)]


def test_resolve_starts_follows_spark_semantics():
    assert resolve_starts(StartSpec("earliest"), MARKS, None) == {0: 10, 1: 0}
    assert resolve_starts(StartSpec("latest"), MARKS, None) == {0: 100, 1: 0}
    assert resolve_starts(StartSpec("offsets", offsets={0: -1, 1: -2}), MARKS, None) == {0: 100, 1: 0}
    assert resolve_starts(StartSpec("timestamp", timestamp_ms=5), MARKS, {0: 42, 1: -1}) == {0: 42, 1: 0}
    with pytest.raises(InvalidOffsetSpec, match="every partition"):
        resolve_starts(StartSpec("offsets", offsets={0: 20}), MARKS, None)
    with pytest.raises(InvalidOffsetSpec, match="outside"):
        resolve_starts(StartSpec("offsets", offsets={0: 5, 1: 0}), MARKS, None)


def _plan(strategy: str, ranges: tuple[PartitionRange, ...]) -> ReadPlan:
    return ReadPlan(topic="t", strategy=strategy, isolation_level="read_committed", start="earliest", end=None,
                    max_events=10, watermarks=tuple(MARKS), ranges=ranges)


def test_bounded_options_name_exact_offsets_of_non_empty_partitions():
    options = kafka_options("b:9092", _plan("bounded", (PartitionRange(0, 10, 20),)))
    assert json.loads(options["assign"]) == {"t": [0]}
    assert json.loads(options["startingOffsets"]) == {"t": {"0": 10}}
    assert json.loads(options["endingOffsets"]) == {"t": {"0": 20}}
    assert options["kafka.isolation.level"] == "read_committed"


def test_full_scan_options_read_to_latest():
    options = kafka_options("b:9092", _plan("full-scan", (PartitionRange(0, 10, 20),)))
    assert options["subscribe"] == "t" and options["endingOffsets"] == "latest"
    assert "assign" not in options


def test_timestamps_before_1970_and_junk_are_invalid_specs():
    for bad in ("-5", "--5", "²", "-1"):
        with pytest.raises(InvalidOffsetSpec):
            parse_timestamp(bad)


def test_offsets_json_refuses_floats_and_booleans():
    for bad in ('{"0": 1.9}', '{"0": true}', '{"x": 1}'):
        with pytest.raises(InvalidOffsetSpec):
            parse_start(bad, "t")


def test_full_scan_honours_an_offsets_start_on_every_partition():
    plan = ReadPlan(topic="t", strategy="full-scan", isolation_level="read_committed", start='{"0": 90, "1": -1}',
                    end=None, max_events=10, watermarks=tuple(MARKS), ranges=(PartitionRange(0, 90, 100),),
                    start_offsets={0: 90, 1: 0})
    assert json.loads(kafka_options("b:9092", plan)["startingOffsets"]) == {"t": {"0": 90, "1": 0}}
