"""Repeated runs with ``--start resume`` against a real broker: every offset read once, no gap, no overlap, across
appends; a failed run does not move the position; ``--commit-group`` shows the position to Kafka's tools."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from e2e.conftest import unique_topic
from streamguard.config import RunConfig
from streamguard.errors import ConfigError, DetectionError, NothingToRead
from streamguard.pipeline import RunResult, run_pipeline
from streamguard.synth.generator import generate_messages

PARTITIONS = 3


class Appender:
    """Appends generated events round-robin over the partitions and remembers every offset written."""

    def __init__(self, topic: str, produce: Callable[..., None]) -> None:
        self.topic, self._produce = topic, produce
        self._messages = generate_messages(20_000, seed=4, users=30, anomalous_users=2, workers=0)
        self.written = {p: 0 for p in range(PARTITIONS)}

    def append(self, count: int) -> None:
        batch = list(itertools.islice(self._messages, count))
        records = [(i % PARTITIONS, value, timestamp) for i, (_, value, timestamp) in enumerate(batch)]
        self._produce(self.topic, records, partitions=PARTITIONS)
        for partition, *_ in records:
            self.written[partition] += 1

    def offsets(self) -> set[tuple[int, int]]:
        return {(p, o) for p, n in self.written.items() for o in range(n)}


def read_offsets(result: RunResult) -> list[tuple[int, int]]:
    """The (partition, offset) pairs a run covered, from its report's read accounting."""
    accounting = result.report.run.read_accounting
    assert accounting is not None
    return [(p["partition"], o) for p in accounting["partitions"] for o in range(p["from"], p["until"])]


@pytest.fixture
def appender(produce) -> Appender:
    return Appender(unique_topic("resume"), produce)


def _run(bootstrap: str, appender: Appender, output: Path, **settings: object) -> RunResult:
    return run_pipeline(RunConfig(topic=appender.topic, bootstrap=bootstrap, output=output, start="resume",
                                  **settings), progress=False)


def test_successive_runs_over_a_growing_topic_read_every_offset_exactly_once(bootstrap, appender, tmp_path):
    output = tmp_path / "out"
    appender.append(1_000)
    runs = [_run(bootstrap, appender, output, max_events=700)]      # the first run: earliest
    runs.append(_run(bootstrap, appender, output))                    # the other 300
    appender.append(500)
    runs.append(_run(bootstrap, appender, output, max_events=150))
    appender.append(200)
    runs.append(_run(bootstrap, appender, output))                    # 350 + 200
    seen = [pair for run in runs for pair in read_offsets(run)]
    assert len(seen) == len(set(seen)), "an offset was read twice"
    assert set(seen) == appender.offsets(), "an offset was skipped"
    assert [run.report.run.records_read for run in runs] == [700, 300, 150, 550]
    assert runs[0].report.run.resumed_from is None
    for before, after in itertools.pairwise(runs):
        assert after.report.run.resumed_from == before.report.run.run_id
    last = runs[-1].report.run.next_offsets
    assert last == {str(p): n for p, n in appender.written.items()}


def test_a_failed_run_does_not_move_the_position(bootstrap, appender, tmp_path):
    output = tmp_path / "out"
    appender.append(600)
    first = _run(bootstrap, appender, output, max_events=400)
    appender.append(300)
    broken_model = tmp_path / "broken.skops"
    broken_model.write_bytes(b"not a model")
    with pytest.raises(DetectionError):
        _run(bootstrap, appender, output, model=broken_model)          # reads the 500 new offsets, then fails
    second = _run(bootstrap, appender, output)
    assert second.report.run.resumed_from == first.report.run.run_id
    assert set(read_offsets(first)) | set(read_offsets(second)) == appender.offsets()
    assert second.report.run.records_read == 500
    with pytest.raises(NothingToRead):
        _run(bootstrap, appender, output)                             # nothing new: nothing moves
    appender.append(30)
    third = _run(bootstrap, appender, output)
    assert third.report.run.records_read == 30 and third.report.run.resumed_from == second.report.run.run_id


def test_commit_group_shows_the_position_to_kafka(bootstrap, appender, tmp_path):
    appender.append(300)
    group = unique_topic("streamguard-nightly")
    result = _run(bootstrap, appender, tmp_path / "out", max_events=200, commit_group=group)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        committed = consumer.committed([TopicPartition(appender.topic, p) for p in range(PARTITIONS)], timeout=20)
    finally:
        consumer.close()
    assert {str(tp.partition): tp.offset for tp in committed} == result.report.run.next_offsets
    assert sum(tp.offset for tp in committed) == 200


def test_resume_refuses_another_topics_output_and_a_full_scan(bootstrap, appender, produce, tmp_path):
    output = tmp_path / "out"
    appender.append(100)
    _run(bootstrap, appender, output)
    other = Appender(unique_topic("resume-other"), produce)
    other.append(100)
    with pytest.raises(ConfigError, match="read topic"):
        _run(bootstrap, other, output)
    with pytest.raises(ConfigError, match="bounded"):
        RunConfig(topic="t", bootstrap=bootstrap, start="resume", read_strategy="full-scan")
