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


@pytest.mark.parametrize("last", [1, 3, 401, 999, 1000, 5000])
def test_last_reads_the_most_recent_records_of_every_partition(read, bootstrap, uneven_topic, last):
    plan = plan_read(bootstrap, uneven_topic, last=last)
    total = sum(PARTITION_SIZES.values())
    assert plan.planned_records == min(last, total) and plan.last == last and plan.max_events is None
    values = read(plan)["value"]
    seen: dict[int, list[int]] = {}
    for value in values:
        record = json.loads(value)
        seen.setdefault(record["p"], []).append(record["i"])
    assert sum(len(i) for i in seen.values()) == min(last, total)
    for partition, indexes in seen.items():  # a suffix of the partition: its newest records, none skipped
        assert sorted(indexes) == list(range(PARTITION_SIZES[partition] - len(indexes), PARTITION_SIZES[partition]))
    take = {p: len(i) for p, i in seen.items()}
    short = [take[p] for p in take if take[p] < PARTITION_SIZES[p]]
    assert not short or max(take.values()) - min(short) <= 1, "not water-filled from the ends"


def test_last_before_an_end_time(read, bootstrap, uneven_topic):
    end_ms = BASE_MS + 100_000  # records i < 100 of every partition
    plan = plan_read(bootstrap, uneven_topic, last=50, end=str(end_ms))
    seen = sorted((json.loads(v)["p"], json.loads(v)["i"]) for v in read(plan)["value"])
    assert len(seen) == 50 and all(i < 100 for _, i in seen)
    assert {p for p, _ in seen} == {0, 1, 2}
    newest = {p: min(n, 100) - 1 for p, n in PARTITION_SIZES.items()}
    assert all((p, i + 1) in seen or i == newest[p] for p, i in seen), "not the newest records before the end"
    assert all((p, newest[p]) in seen for p in (0, 1, 2))


def test_last_and_max_events_exclude_each_other(bootstrap, uneven_topic):
    with pytest.raises(InvalidOffsetSpec, match="exclude"):
        plan_read(bootstrap, uneven_topic, last=5, max_events=5)
    with pytest.raises(InvalidOffsetSpec, match="bounded"):
        plan_read(bootstrap, uneven_topic, last=5, strategy="full-scan")


EVENT_MS = 1_700_000_000_000  # event time, far from the Kafka timestamps below


def _event(i: int) -> bytes:
    return json.dumps({
        "event_id": f"evt_{i:032x}", "timestamp": EVENT_MS + i * 60_000, "event_type": "dns_query",
        "user": f"user{i % 3}", "source_ip": "10.0.0.1", "destination_ip": "10.0.0.2", "threat_score": 0.1,
        "status": "success",
        "metadata": {"hostname": "h", "geo_location": "Berlin", "user_agent": None, "session_id": None},
        "dns_details": {"query_name": "example.com", "query_type": "A", "response_code": "NOERROR"},
    }).encode()


@pytest.fixture(scope="module")
def events_topic(bootstrap: str, request: pytest.FixtureRequest) -> str:
    topic = unique_topic("window")
    records = [(p, _event(p * 100 + i), BASE_MS + (p * 100 + i) * 1000) for p in range(2) for i in range(20)]
    records.append((0, b"not json", BASE_MS + 999_000))  # quarantined: its Kafka time still counts
    request.getfixturevalue("produce")(topic, records, partitions=2)
    return topic


@pytest.mark.parametrize("engine_name", ["embedded", "spark"])
def test_parse_reports_the_event_time_and_kafka_time_window_read(bootstrap, events_topic, spark, engine_name):
    from streamguard.engines.embedded import EmbeddedEngine  # noqa: PLC0415
    from streamguard.engines.spark import SparkEngine  # noqa: PLC0415

    plan = plan_read(bootstrap, events_topic, last=6)  # p0: i 18, 19 and the junk record; p1: i 17..19
    engine = (EmbeddedEngine(bootstrap=bootstrap) if engine_name == "embedded"
              else SparkEngine(bootstrap=bootstrap, master="local[2]", session=spark))
    engine.start()
    try:
        assert engine.read(plan).records_read == 6
        parsed = engine.parse()
    finally:
        engine.close()
    assert parsed.valid == 5 and parsed.by_reason == {"invalid_json": 1}
    assert (parsed.event_time_min_ms, parsed.event_time_max_ms) == (EVENT_MS + 18 * 60_000, EVENT_MS + 119 * 60_000)
    assert (parsed.kafka_time_min_ms, parsed.kafka_time_max_ms) == (BASE_MS + 18_000, BASE_MS + 999_000)
    window = parsed.time_window()
    assert window["kafka_time_max"] == "2026-01-01T00:16:39.000Z"
    assert window["event_time_min_ms"] == EVENT_MS + 18 * 60_000
