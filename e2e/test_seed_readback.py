"""Seeding produces exactly what it says, and every record can be read back: confluent-kafka, no Spark."""

from __future__ import annotations

import json

from confluent_kafka import Consumer, TopicPartition

from e2e.conftest import unique_topic
from streamguard.events.schema import validate_event
from streamguard.kafka.admin import partition_count, watermarks
from streamguard.synth.seed import seed_topic
from streamguard.synth.truth import load_truth


def test_seeded_topic_reads_back_completely_and_every_valid_event_validates(bootstrap, tmp_path):
    topic = unique_topic("seeded")
    result = seed_topic(bootstrap, topic, events=5_000, partitions=3, seed=11, users=20, anomalous_users=3,
                        invalid_rate=0.02, truth_path=tmp_path / "truth.json", progress=False)
    truth = load_truth(result.truth_path)
    assert result.events == 5_000 and result.invalid == truth.invalid_events == 100

    marks = watermarks(bootstrap, topic, partition_count(bootstrap, topic))
    assert sum(w.size for w in marks) == 5_000
    assert {w.partition: w.size for w in marks} == {p: result.partition_counts.get(p, 0) for p in range(3)}

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic("readback"),
                         "enable.auto.commit": False, "log_level": 0})
    read_per_partition = dict.fromkeys(range(3), 0)
    valid = invalid = 0
    try:
        consumer.assign([TopicPartition(topic, w.partition, w.low) for w in marks])
        remaining = sum(w.size for w in marks)
        while remaining:
            batch = consumer.consume(num_messages=1000, timeout=10)
            assert batch, f"{remaining} records never arrived"
            for message in batch:
                assert message.error() is None
                read_per_partition[message.partition()] += 1
                remaining -= 1
                try:
                    event = json.loads(message.value() or b"")
                except json.JSONDecodeError:
                    invalid += 1
                    continue
                if validate_event(event):
                    invalid += 1
                else:
                    valid += 1
                    assert message.key() == event["user"].encode()
                    assert message.timestamp()[1] == event["timestamp"]
    finally:
        consumer.close()
    assert read_per_partition == {w.partition: w.size for w in marks}
    assert (valid, invalid) == (truth.valid_events, truth.invalid_events)
