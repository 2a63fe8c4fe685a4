"""The planner on a 1,000-partition topic against a real broker: right for every partition, and a fixed number of
broker requests whatever the partition count (no timing asserts here; bench/plan_scale.py measures the seconds)."""

from __future__ import annotations

import json
import re

import pytest
from confluent_kafka.admin import AdminClient

from e2e.conftest import unique_topic
from streamguard.kafka import admin
from streamguard.kafka.plan import PartitionRange, plan_read

PARTITIONS = 1_000
BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
STEP_MS = 60_000  # record i of every partition is written at BASE_MS + i * STEP_MS


def size(partition: int) -> int:
    """0 to 3 records: a quarter of the partitions are empty, and no two neighbours hold the same count."""
    return partition % 4


@pytest.fixture(scope="module")
def wide_topic(bootstrap: str, request: pytest.FixtureRequest) -> str:
    topic = unique_topic("wide")
    records = [(p, json.dumps({"p": p, "i": i}).encode(), BASE_MS + i * STEP_MS)
               for p in range(PARTITIONS) for i in range(size(p))]
    request.getfixturevalue("produce")(topic, records, partitions=PARTITIONS)
    return topic


@pytest.fixture(scope="module")
def narrow_topic(bootstrap: str, request: pytest.FixtureRequest) -> str:
    topic = unique_topic("narrow")
    records = [(p, json.dumps({"p": p, "i": i}).encode(), BASE_MS + i * STEP_MS) for p in range(4) for i in range(3)]
    request.getfixturevalue("produce")(topic, records, partitions=4)
    return topic


def test_full_plan_is_right_for_every_partition(bootstrap, wide_topic):
    plan = plan_read(bootstrap, wide_topic)
    assert [(w.partition, w.low, w.high) for w in plan.watermarks] == [(p, 0, size(p)) for p in range(PARTITIONS)]
    assert plan.ranges == tuple(PartitionRange(p, 0, size(p)) for p in range(PARTITIONS) if size(p))
    assert plan.start_offsets == dict.fromkeys(range(PARTITIONS), 0)
    assert plan.planned_records == sum(size(p) for p in range(PARTITIONS))


def test_bounded_plan_spreads_exactly_over_every_partition(bootstrap, wide_topic):
    max_events = 1_001  # more than one record per non-empty partition, fewer than all of them
    plan = plan_read(bootstrap, wide_topic, max_events=max_events)
    take = {r.partition: r.count for r in plan.ranges}
    assert plan.planned_records == max_events
    assert all(r.start == 0 and r.until <= size(r.partition) for r in plan.ranges)
    assert all(size(p) == 0 for p in range(PARTITIONS) if p not in take), "a non-empty partition was left out"
    short = [take[p] for p in take if take[p] < size(p)]  # partitions that could have given more
    assert short and max(take.values()) - min(short) <= 1, "the equal shares drifted apart"


def test_time_range_plan_is_right_for_every_partition(bootstrap, wide_topic):
    # Records i == 1 only: start at record 1's time, end (exclusive) at record 2's.
    plan = plan_read(bootstrap, wide_topic, start=str(BASE_MS + STEP_MS), end=str(BASE_MS + 2 * STEP_MS))
    # A partition without a record at or after the start time starts at its high watermark.
    assert plan.start_offsets == {p: 1 if size(p) >= 2 else size(p) for p in range(PARTITIONS)}
    assert plan.ranges == tuple(PartitionRange(p, 1, 2) for p in range(PARTITIONS) if size(p) >= 2)


def _leaders(bootstrap: str, topic: str) -> int:
    metadata = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0}).list_topics(topic=topic, timeout=10)
    return len({partition.leader for partition in metadata.topics[topic].partitions.values()})


@pytest.mark.parametrize("topic_fixture", ["narrow_topic", "wide_topic"])
def test_requests_do_not_grow_with_the_partition_count(bootstrap, topic_fixture, request, monkeypatch, capfd):
    topic = request.getfixturevalue(topic_fixture)
    leaders = _leaders(bootstrap, topic)
    # librdkafka's own debug log (stderr) names every request it sends and every metadata answer it gets.
    monkeypatch.setitem(admin._QUIET, "log_level", 7)
    monkeypatch.setitem(admin._QUIET, "debug", "protocol,metadata")
    capfd.readouterr()
    plan = plan_read(bootstrap, topic, start=str(BASE_MS + STEP_MS), end=str(BASE_MS + 2 * STEP_MS))
    log = capfd.readouterr().err
    assert plan.watermarks
    assert len(set(re.findall(r"\|(rdkafka#\w+-\d+)\|", log))) == 1, "one client per plan"
    # earliest, latest, start time, end time: one call each for all partitions, one request per partition leader
    assert log.count("Sent ListOffsetsRequest") == 4 * leaders
    # one metadata question from the planner (librdkafka's own connection-time refreshes are labelled otherwise),
    # and ListOffsets found every leader in its answer: a leader query of its own is what stalled for 1 s or 3 s
    assert log.count("Received metadata (for 1 requested topics): application requested") == 1
    assert "query partition leaders" not in log
