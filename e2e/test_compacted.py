"""Exact N on a compacted topic: offsets of records compacted away hold nothing, and both readers top up.

The topic is created with ``cleanup.policy=compact``, a short ``segment.ms`` and a tiny
``min.cleanable.dirty.ratio``, written in bursts so segments roll, and polled until the broker has compacted it
(offsets show gaps). The local broker checks for compactable logs every second; an external one may take longer.
"""

from __future__ import annotations

import json
import time

import pytest
from confluent_kafka import Producer

from e2e.conftest import unique_topic
from streamguard.kafka.admin import ensure_topic
from streamguard.kafka.consume import BoundedRead
from streamguard.kafka.plan import plan_read

PARTITIONS = 2
KEYS = 12
BURSTS = 8
COMPACTION_WAIT_S = 120.0


def _visible(bootstrap: str, topic: str) -> dict[int, list[int]]:
    plan = plan_read(bootstrap, topic)
    offsets: dict[int, list[int]] = {p: [] for p in range(PARTITIONS)}
    for batch in BoundedRead(bootstrap, plan):
        for partition, offset in zip(batch.column("partition").to_pylist(), batch.column("offset").to_pylist(),
                                     strict=True):
            offsets[partition].append(offset)
    return {p: sorted(o) for p, o in offsets.items()}


@pytest.fixture(scope="module")
def compacted(bootstrap: str) -> tuple[str, dict[int, list[int]]]:
    """A compacted topic and, per partition, the offsets still holding a record (stable: no more writes)."""
    topic = unique_topic("compacted")
    ensure_topic(bootstrap, topic, PARTITIONS, config={
        "cleanup.policy": "compact", "segment.ms": "100", "min.cleanable.dirty.ratio": "0.01",
        "min.compaction.lag.ms": "0", "delete.retention.ms": "100",
    })
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "log_level": 0})
    try:
        for burst in range(BURSTS):
            for partition in range(PARTITIONS):
                for key in range(KEYS):
                    producer.produce(topic, json.dumps({"burst": burst, "key": key}).encode(),
                                     key=f"user-{key}".encode(), partition=partition)
            producer.flush(30)
            time.sleep(0.25)  # past segment.ms: the next burst rolls a new segment
        producer.produce(topic, b"{}", key=b"roll", partition=0)
        producer.produce(topic, b"{}", key=b"roll", partition=1)
        producer.flush(30)
    finally:
        producer.flush(30)
    written = BURSTS * KEYS + 1
    deadline = time.monotonic() + COMPACTION_WAIT_S
    previous = None
    while time.monotonic() < deadline:
        visible = _visible(bootstrap, topic)
        compacted_now = all(len(offsets) < written for offsets in visible.values())
        if compacted_now and visible == previous:
            return topic, visible
        previous = visible if compacted_now else None
        time.sleep(2.0)
    pytest.fail(f"the broker did not compact {topic} within {COMPACTION_WAIT_S:.0f} s")


def test_compaction_left_gaps(bootstrap, compacted):
    topic, visible = compacted
    plan = plan_read(bootstrap, topic)
    assert sum(len(o) for o in visible.values()) < plan.available_records


@pytest.mark.parametrize("n", [1, 5, 20, 30, 10_000])
def test_max_events_reads_exactly_min_of_n_and_visible(exact_read, bootstrap, compacted, n):
    topic, visible = compacted
    plan = plan_read(bootstrap, topic, max_events=n)
    frame, account = exact_read(plan)
    assert len(frame) == account.records_read == min(n, sum(len(o) for o in visible.values()))
    read = {int(p): sorted(int(o) for o in rows["offset"]) for p, rows in frame.groupby("partition")}
    for partition, offsets in read.items():
        assert offsets == visible[partition][:len(offsets)], "not the first surviving records of the partition"
    for part in account.partitions:
        assert part.offsets_spanned == part.records_read + part.offsets_skipped
        inside = [o for o in visible[part.partition] if part.from_offset <= o < part.until]
        assert inside == read.get(part.partition, []), "the final range holds exactly the records read"
    if n in (20, 30):  # the first offsets were compacted away: the plan's N offsets hold fewer than N records
        assert account.offsets_skipped > 0 and account.rounds > 1
@pytest.mark.parametrize("n", [3, 25])
def test_last_reads_the_most_recent_surviving_records(exact_read, bootstrap, compacted, n):
    topic, visible = compacted
    plan = plan_read(bootstrap, topic, last=n)
    frame, account = exact_read(plan)
    assert len(frame) == account.records_read == n
    read = {int(p): sorted(int(o) for o in rows["offset"]) for p, rows in frame.groupby("partition")}
    for partition, offsets in read.items():
        assert offsets == visible[partition][len(visible[partition]) - len(offsets):], "not the newest records"
