"""The planner and both engines' reads against a real broker: exact, bounded reads on uneven partitions.

Every read test runs twice: Spark's own Kafka source, and the embedded engine's librdkafka consumer.
"""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pytest

from e2e.conftest import unique_topic
from streamguard.errors import InvalidOffsetSpec, TopicNotFound
from streamguard.kafka.consume import BoundedRead, consume_plan
from streamguard.kafka.plan import ReadPlan, plan_read
from streamguard.kafka.read import read_exact, read_kafka

# Deliberately uneven, with one empty partition.
PARTITION_SIZES = {0: 700, 1: 250, 2: 50, 3: 0}
BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


@pytest.fixture(scope="module")
def uneven_topic(bootstrap: str, request: pytest.FixtureRequest) -> str:
    topic = unique_topic("uneven")
    produce = request.getfixturevalue("produce")
    records = [
        (partition, json.dumps({"p": partition, "i": i}).encode(), BASE_MS + i * 1000)
        for partition, size in PARTITION_SIZES.items()
        for i in range(size)
    ]
    produce(topic, records, partitions=len(PARTITION_SIZES))
    return topic


@pytest.fixture(params=["embedded", "spark"])
def read(request: pytest.FixtureRequest, bootstrap: str):
    """``read(plan)``: the records of ``plan`` as a pandas frame (partition, offset, value) from one engine."""
    if request.param == "embedded":
        def embedded(plan: ReadPlan) -> pd.DataFrame:
            batches = list(consume_plan(bootstrap, plan))
            if not batches:
                return pd.DataFrame({"partition": [], "offset": [], "value": []})
            return pa.Table.from_batches(batches).select(["partition", "offset", "value"]).to_pandas()
        return embedded
    spark = request.getfixturevalue("spark")
    return lambda plan: read_kafka(spark, bootstrap, plan).select("partition", "offset", "value").toPandas()


def _read_counts(read, plan) -> dict[int, int]:
    records = read(plan)
    counts = {}
    for partition, rows in records.groupby("partition"):
        planned = next(r for r in plan.ranges if r.partition == partition)
        assert rows["offset"].is_unique, "duplicate offsets read"
        assert planned.start <= rows["offset"].min() and rows["offset"].max() < planned.until, \
            "read outside the planned range"
        counts[int(partition)] = len(rows)
    return counts


@pytest.mark.parametrize("max_events", [1, 3, 401, 999, 1000, 5000])
def test_bounded_read_is_exact_on_uneven_partitions(read, bootstrap, uneven_topic, max_events):
    plan = plan_read(bootstrap, uneven_topic, max_events=max_events)
    total = sum(PARTITION_SIZES.values())
    assert plan.planned_records == min(max_events, total)
    assert all(r.partition != 3 for r in plan.ranges), "the empty partition must be left out of the read"
    assert all(r.until <= PARTITION_SIZES[r.partition] for r in plan.ranges), "plan past a high watermark"
    counts = _read_counts(read, plan)
    assert sum(counts.values()) == min(max_events, total)
    assert counts == {r.partition: r.count for r in plan.ranges}


def test_naive_even_split_under_reads_where_the_planner_does_not(read, bootstrap, uneven_topic):
    # The fix everyone copies: end = start + N // partitions, capped at the high watermark.
    max_events = 900
    plan = plan_read(bootstrap, uneven_topic, max_events=max_events)
    naive = sum(min(w.low + max_events // len(plan.watermarks), w.high) - w.low for w in plan.watermarks)
    assert naive < max_events
    assert sum(_read_counts(read, plan).values()) == max_events


def test_unbounded_read_returns_everything(read, bootstrap, uneven_topic):
    plan = plan_read(bootstrap, uneven_topic)
    assert plan.planned_records == sum(PARTITION_SIZES.values())
    counts = _read_counts(read, plan)
    assert counts == {p: n for p, n in PARTITION_SIZES.items() if n}


def test_latest_with_nothing_new_plans_nothing(bootstrap, uneven_topic):
    plan = plan_read(bootstrap, uneven_topic, start="latest", max_events=100)
    assert plan.planned_records == 0
    assert plan.ranges == ()
    assert "nothing to read" in plan.nothing_to_read()


def test_time_range_read_is_exact(read, bootstrap, uneven_topic):
    start_ms, end_ms = BASE_MS + 100_000, BASE_MS + 200_000  # i in [100, 200) on every partition
    plan = plan_read(bootstrap, uneven_topic, start=str(start_ms), end=str(end_ms))
    expected = {p: max(0, min(n, 200) - 100) for p, n in PARTITION_SIZES.items()}
    assert plan.planned_records == sum(expected.values())
    values = read(plan)["value"]
    seen = sorted((json.loads(v)["p"], json.loads(v)["i"]) for v in values)
    assert seen == sorted((p, i) for p, n in expected.items() for i in range(100, 100 + n))


def test_iso_start_and_offsets_json_start(bootstrap, uneven_topic):
    iso = plan_read(bootstrap, uneven_topic, start="2026-01-01T00:10:00Z", max_events=10_000)
    # Only partition 0 has records at or after 00:10 (i >= 600); the others start at their high watermark.
    assert {r.partition: (r.start, r.until) for r in iso.ranges} == {0: (600, 700)}
    offsets = plan_read(bootstrap, uneven_topic, start=json.dumps({"0": 650, "1": -1, "2": -2, "3": -2}))
    assert {r.partition: (r.start, r.until) for r in offsets.ranges} == {0: (650, 700), 2: (0, 50)}


def test_bad_specs_and_missing_topic_raise_our_errors(bootstrap, uneven_topic):
    with pytest.raises(InvalidOffsetSpec, match="every partition"):
        plan_read(bootstrap, uneven_topic, start='{"0": 5}')
    with pytest.raises(InvalidOffsetSpec, match="outside"):
        plan_read(bootstrap, uneven_topic, start='{"0": 5000, "1": 0, "2": 0, "3": 0}')
    with pytest.raises(InvalidOffsetSpec):
        plan_read(bootstrap, uneven_topic, start="yesterday-ish")
    with pytest.raises(TopicNotFound):
        plan_read(bootstrap, unique_topic("absent"))


@pytest.fixture(params=["embedded", "spark"])
def accounted(request: pytest.FixtureRequest, bootstrap: str):
    """``accounted(plan)``: the checked accounting of one engine's exact reader (with its top-up)."""
    if request.param == "embedded":
        def embedded(plan: ReadPlan):
            reader = BoundedRead(bootstrap, plan)
            for _ in reader:
                pass
            return reader.accounting
        return embedded
    spark = request.getfixturevalue("spark")
    return lambda plan: read_exact(spark, bootstrap, plan).accounting


@pytest.mark.parametrize("strategy", ["bounded", "full-scan"])
def test_a_plain_topic_needs_no_top_up_and_skips_nothing(accounted, bootstrap, uneven_topic, strategy):
    plan = plan_read(bootstrap, uneven_topic, max_events=401, strategy=strategy)
    account = accounted(plan)
    assert account.rounds == 1 and account.offsets_skipped == 0 and account.records_read == 401
    spans = {p.partition: (p.from_offset, p.until) for p in account.partitions}
    if strategy == "bounded":
        assert spans == {r.partition: (r.start, r.until) for r in plan.ranges}
        assert account.records_fetched == 401
    else:  # what a full scan covered: every partition to its latest offset, then the first 401 kept
        assert spans == {p: (0, n) for p, n in PARTITION_SIZES.items() if n}
        assert account.records_fetched == sum(PARTITION_SIZES.values())
        assert account.records_dropped == sum(PARTITION_SIZES.values()) - 401


def test_time_range_accounting_counts_what_the_time_filter_dropped(accounted, bootstrap, uneven_topic):
    start_ms, end_ms = BASE_MS + 100_000, BASE_MS + 200_000
    account = accounted(plan_read(bootstrap, uneven_topic, start=str(start_ms), end=str(end_ms)))
    assert account.mode == "all" and account.limit is None
    assert account.records_read == account.records_fetched - account.records_dropped == 100 + 100 + 0
