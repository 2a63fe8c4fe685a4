"""The planner's pure parts: allocation invariants (hypothesis), range building, spec parsing."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamguard.errors import InvalidOffsetSpec, ReadError
from streamguard.kafka.accounting import RangeStats, TopUp
from streamguard.kafka.admin import Watermarks
from streamguard.kafka.plan import (
    PartitionRange,
    ReadPlan,
    StartSpec,
    allocate,
    build_last_ranges,
    build_ranges,
    parse_start,
    parse_timestamp,
    plan_read,
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


def test_full_scan_options_read_every_partition_to_its_snapshotted_latest_offset():
    # Not "latest": a topic still being written would read past what the accounting checks against.
    options = kafka_options("b:9092", _plan("full-scan", (PartitionRange(0, 10, 20),)))
    assert json.loads(options["assign"]) == {"t": [0]}  # partition 1 is empty
    assert json.loads(options["startingOffsets"]) == {"t": {"0": 10}}
    assert json.loads(options["endingOffsets"]) == {"t": {"0": 100}}


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
    options = kafka_options("b:9092", plan)
    assert json.loads(options["startingOffsets"]) == {"t": {"0": 90}}  # partition 1 holds nothing to scan
    assert json.loads(options["endingOffsets"]) == {"t": {"0": 100}}


# Top-up: a simulated topic whose partitions hold records at some offsets only (markers, aborted, compacted).

def _topic_plan(visible: dict[int, set[int]], ends: dict[int, int], n: int | None, *, last: bool = False,
                strategy: str = "bounded") -> ReadPlan:
    marks = tuple(Watermarks(p, 0, ends[p]) for p in sorted(ends))
    starts = dict.fromkeys(ends, 0)
    if last and n is not None:
        take = allocate(dict(ends), n)
        ranges = tuple(PartitionRange(p, ends[p] - take[p], ends[p]) for p in sorted(ends) if take[p])
    else:
        ranges = build_ranges(starts, ends, n)
    return ReadPlan(topic="t", strategy=strategy, isolation_level="read_committed", start="earliest", end=None,
                    max_events=None if last else n, last=n if last else None, watermarks=marks, ranges=ranges,
                    start_offsets=starts, end_offsets=ends)


def _simulate(plan: ReadPlan, visible: dict[int, set[int]]):
    """Run TopUp's protocol against ``visible``; return the accounting and the offsets kept per partition."""
    topup = TopUp(plan)
    kept: dict[int, list[int]] = {p: [] for p in visible}
    ranges = topup.first_ranges()
    while ranges:
        got = {r.partition: sorted(o for o in visible[r.partition] if r.start <= o < r.until) for r in ranges}
        stats = {p: RangeStats(p, len(o), len(o), o[0], o[-1]) for p, o in got.items() if o}
        ranks = topup.record(ranges, stats)
        if ranks:
            cut = {r.partition: r for r in topup.trim({p: got[p][k - 1] for p, k in ranks.items()})}
            got = {p: [o for o in offs if p not in cut or cut[p].start <= o < cut[p].until] for p, offs in got.items()}
        for p, offs in got.items():
            kept[p].extend(offs)
        ranges = topup.next_ranges()
    return topup.accounting(), kept


holes = st.dictionaries(
    st.integers(0, 5),
    st.tuples(st.integers(0, 300), st.floats(0.05, 1.0), st.randoms(use_true_random=False)),
    min_size=1, max_size=6,
)


@given(holes, st.integers(1, 2_000), st.booleans())
def test_top_up_reads_exactly_min_of_n_and_visible(partitions, n, last):
    ends = {p: size for p, (size, _, _) in partitions.items()}
    visible = {p: {o for o in range(size) if rnd.random() < density} for p, (size, density, rnd) in partitions.items()}
    account, kept = _simulate(_topic_plan(visible, ends, n, last=last), visible)
    total_visible = sum(len(v) for v in visible.values())
    assert account.records_read == sum(len(k) for k in kept.values()) == min(n, total_visible)
    for part in account.partitions:
        inside = sorted(o for o in visible[part.partition] if part.from_offset <= o < part.until)
        assert sorted(kept[part.partition]) == inside, "the kept records are exactly those of the final range"
        assert part.offsets_spanned == part.records_read + part.offsets_skipped
        assert (part.until == ends[part.partition]) if last else (part.from_offset == 0)
    if last:  # the most recent records: nothing newer than a kept record is left out
        assert all(o in kept[p] for p in visible for o in visible[p] if kept[p] and o > min(kept[p]))


def test_top_up_on_a_transactional_layout():
    # Partition 0: a committed transaction (offsets 0-2, marker 3), an aborted one (4-6, marker 7), committed 8-10.
    visible = {0: {0, 1, 2, 8, 9, 10}, 1: {0, 1, 2, 3}}
    plan = _topic_plan(visible, {0: 12, 1: 4}, 8)
    assert plan.planned_records == 8 and {r.partition: r.until for r in plan.ranges} == {0: 4, 1: 4}
    account, kept = _simulate(plan, visible)
    assert account.records_read == 8 and account.rounds >= 2
    p0 = account.partitions[0]
    assert (p0.from_offset, p0.planned_until, p0.records_read) == (0, 4, 4)
    assert p0.offsets_spanned == p0.records_read + p0.offsets_skipped
    assert account.to_dict()["offsets_skipped"] == account.offsets_spanned - 8


def test_top_up_stops_at_the_end_offsets_with_fewer_than_n():
    visible = {0: {0, 2, 4}, 1: {1}}
    account, _ = _simulate(_topic_plan(visible, {0: 6, 1: 3}, 100), visible)
    assert account.records_read == 4 and account.exhausted
    assert [(p.from_offset, p.until) for p in account.partitions] == [(0, 6), (0, 3)]


def test_accounting_fails_on_records_outside_the_range_or_repeated():
    plan = _topic_plan({0: set(range(10))}, {0: 10}, 5)
    topup = TopUp(plan)
    (r,) = topup.first_ranges()
    with pytest.raises(ReadError, match="outside"):
        topup.record((r,), {0: RangeStats(0, 5, 5, 0, 7)})
    with pytest.raises(ReadError, match="distinct"):
        TopUp(plan).record((r,), {0: RangeStats(0, 5, 4, 0, 4)})


def test_accounting_fails_when_a_read_stops_short():
    plan = _topic_plan({0: set(range(10))}, {0: 10}, 5)
    topup = TopUp(plan)
    topup.record(topup.first_ranges(), {0: RangeStats(0, 3, 3, 0, 4)})
    with pytest.raises(ReadError, match="stopped before its end"):
        topup.accounting()


def test_full_scan_accounting_counts_what_it_kept():
    plan = _topic_plan({0: set(range(10))}, {0: 10}, 4, strategy="full-scan")
    topup = TopUp(plan)
    topup.record(topup.first_ranges(), {0: RangeStats(0, 10, 10, 0, 9, kept=4)})
    account = topup.accounting()
    assert (account.offsets_spanned, account.records_fetched, account.records_read) == (10, 10, 4)
    assert account.records_dropped == 6 and account.mode == "first"


def test_last_ranges_are_water_filled_back_from_the_ends():
    ranges = build_last_ranges({0: 0, 1: 10, 2: 5, 3: 7}, {0: 700, 1: 260, 2: 55, 3: 7}, 900)
    assert ranges == (PartitionRange(0, 100, 700), PartitionRange(1, 10, 260), PartitionRange(2, 5, 55))
    assert build_last_ranges({0: 0}, {0: 10}, 3) == (PartitionRange(0, 7, 10),)


def test_last_is_checked_before_any_broker_request():
    unreachable = "127.0.0.1:1"
    for kwargs, match in (({"last": 0}, "at least 1"), ({"last": 5, "max_events": 5}, "exclude"),
                          ({"last": 5, "strategy": "full-scan"}, "bounded")):
        with pytest.raises(InvalidOffsetSpec, match=match):
            plan_read(unreachable, "t", **kwargs)


def test_plan_dict_names_last_only_when_set():
    plan = _plan("bounded", (PartitionRange(0, 10, 20),))
    assert "last" not in plan.to_dict()
    recent = ReadPlan(topic="t", strategy="bounded", isolation_level="read_committed", start="earliest", end=None,
                      max_events=None, last=10, watermarks=tuple(MARKS), ranges=(PartitionRange(0, 90, 100),))
    assert recent.to_dict()["last"] == 10 and recent.limit == 10
