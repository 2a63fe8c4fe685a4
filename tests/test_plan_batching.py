"""How the planner batches its broker questions: one ListOffsets call per kind of offset, never one per partition.

What goes over the wire against a real broker is counted in e2e/test_plan_scale.py; these tests pin the request
layout and the assembly of the answers, which need no broker.
"""

from __future__ import annotations

from confluent_kafka import TopicPartition
from confluent_kafka.admin import OffsetSpec
from hypothesis import given
from hypothesis import strategies as st

from streamguard.kafka.admin import OffsetSnapshot, Watermarks, snapshot_requests

EARLIEST, LATEST, FOR_TIME = type(OffsetSpec.earliest()), type(OffsetSpec.latest()), type(OffsetSpec.for_timestamp(0))


@given(st.integers(1, 3_000), st.lists(st.integers(0, 2**41), max_size=4))
def test_one_call_per_kind_of_offset_whatever_the_partition_count(partitions, timestamps):
    requests = snapshot_requests("t", partitions, timestamps)
    assert len(requests) == 2 + len(set(timestamps))
    every_partition = {TopicPartition("t", p) for p in range(partitions)}
    for key, request in requests.items():
        assert set(request) == every_partition, f"call {key!r} must name every partition once"
        kinds = {type(spec) for spec in request.values()}
        assert kinds == {EARLIEST if key == "earliest" else LATEST if key == "latest" else FOR_TIME}
        if isinstance(key, int):
            assert {spec.timestamp for spec in request.values()} == {key}


def test_snapshot_assembles_watermarks_and_times_for_every_partition():
    answers = {"earliest": {0: 0, 1: 5, 2: 0}, "latest": {0: 10, 1: 5, 2: 3},
               1_000: {0: 4, 1: -1, 2: 0}, 2_000: {0: -1, 1: -1, 2: 2}}
    snapshot = OffsetSnapshot.from_answers(3, answers)
    assert snapshot.watermarks == [Watermarks(0, 0, 10), Watermarks(1, 5, 5), Watermarks(2, 0, 3)]
    assert snapshot.for_times == {1_000: {0: 4, 1: -1, 2: 0}, 2_000: {0: -1, 1: -1, 2: 2}}
