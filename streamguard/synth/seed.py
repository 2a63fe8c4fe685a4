"""Seed a Kafka topic with a generated stream and write its ground truth.

    result = seed_topic("localhost:9092", "events", events=1_000_000, partitions=6, invalid_rate=0.01)
    result.truth_path                             # $STREAMGUARD_STATE_DIR/truth/events.json

Each message carries its event time as the Kafka timestamp, and the stream is produced in ascending event
time, so Kafka's offsets-for-times look-ups map a time range to offsets. The producer is idempotent
(``acks=all``), so a retried batch is never duplicated: the topic holds exactly the generated messages.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from streamguard._proc import state_dir
from streamguard.errors import BrokerError
from streamguard.kafka.admin import ensure_topic, partition_count
from streamguard.synth.chunks import Chunk
from streamguard.synth.generator import SynthConfig, empty_stats, iter_chunks, truth_from_stats

log = logging.getLogger("streamguard.synth.seed")

TRUTH_STATE = "truth"
FLUSH_TIMEOUT_S = 120.0
POLL_EVERY = 5_000
PRODUCER_CONFIG: dict[str, Any] = {
    "linger.ms": 50,
    "batch.size": 1_048_576,
    "compression.type": "lz4",
    "acks": "all",
    "enable.idempotence": True,
    "queue.buffering.max.messages": 1_000_000,
    "queue.buffering.max.kbytes": 1_048_576,
    "message.timeout.ms": 120_000,
    # Benign retries (e.g. "coordinator load in progress" on a fresh broker) stay quiet; failures still surface
    # as delivery errors.
    "log_level": 3,
}


@dataclass(frozen=True, slots=True)
class SeedResult:
    """What a seeding run delivered; ``partition_counts`` maps partition -> messages acknowledged."""

    topic: str
    events: int
    valid: int
    invalid: int
    seconds: float
    events_per_s: float
    truth_path: Path
    partition_counts: dict[int, int] = field(default_factory=dict)


def default_truth_path(topic: str) -> Path:
    """``$STREAMGUARD_STATE_DIR/truth/<topic>.json`` (state dir ``./.streamguard`` by default), absolute."""
    return state_dir(TRUTH_STATE) / f"{topic}.json"


class _Deliveries:
    """Delivery-report callback state: acknowledged messages per partition, and the first errors."""

    def __init__(self) -> None:
        self.per_partition: Counter[int] = Counter()
        self.failed = 0
        self.first_error: KafkaError | None = None

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.per_partition[msg.partition()] += 1
            return
        self.failed += 1
        if self.first_error is None:
            self.first_error = err


def seed_topic(
    bootstrap: str,
    topic: str,
    *,
    events: int,
    partitions: int,
    seed: int = 42,
    users: int = 50,
    anomalous_users: int = 5,
    days: int = 7,
    invalid_rate: float = 0.0,
    key: str = "user",
    truth_path: Path | None = None,
    progress: bool = True,
    workers: int | None = None,
    quiet_users: int = 0,
    spread_anomalies: bool = False,
) -> SeedResult:
    """Create ``topic`` if missing, produce ``events`` generated messages to it, and write the ground truth.

    ``workers`` is the number of generator processes besides this one (default: see
    streamguard.synth.generator.default_workers); it changes the speed, never the messages. Raises DataError for
    bad parameters, BrokerUnreachable/ReadError when the topic cannot be checked or created, and BrokerError
    when a message is not acknowledged.
    """
    config = SynthConfig(events=events, seed=seed, users=users, anomalous_users=anomalous_users, days=days,
                         invalid_rate=invalid_rate, key=key, quiet_users=quiet_users,
                         spread_anomalies=spread_anomalies)
    if ensure_topic(bootstrap, topic, partitions):
        log.info("created topic %s with %d partitions", topic, partitions)
    else:
        existing = partition_count(bootstrap, topic)
        if existing != partitions:
            log.warning("topic %s already exists with %d partitions (not %d); keeping it", topic, existing,
                        partitions)

    deliveries = _Deliveries()
    try:
        producer = Producer({"bootstrap.servers": bootstrap, "on_delivery": deliveries, **PRODUCER_CONFIG})
    except KafkaException as exc:
        raise BrokerError(f"cannot create a Kafka producer for {bootstrap}: {exc}") from exc

    started = time.perf_counter()
    stats = empty_stats(config)
    with _progress(progress, events, topic) as advance:
        for chunk in iter_chunks(config, workers=workers):
            _produce_chunk(producer, topic, chunk)
            stats = stats + chunk.stats
            advance(len(chunk.values))
        remaining = producer.flush(FLUSH_TIMEOUT_S)
    seconds = time.perf_counter() - started

    if remaining:
        raise BrokerError(f"{remaining} messages to {topic} still undelivered after {FLUSH_TIMEOUT_S:.0f} s")
    if deliveries.failed:
        raise BrokerError(f"{deliveries.failed} messages to {topic} failed: {deliveries.first_error}")

    truth = truth_from_stats(config, stats).with_topic(topic)
    path = truth.write(truth_path or default_truth_path(topic))
    rate = events / seconds if seconds > 0 else 0.0
    log.info("seeded %s: %d events in %.2f s (%.0f events/s); truth in %s", topic, events, seconds, rate,
             path)
    return SeedResult(
        topic=topic, events=events, valid=truth.valid_events, invalid=truth.invalid_events, seconds=seconds,
        events_per_s=rate, truth_path=path, partition_counts=dict(sorted(deliveries.per_partition.items())),
    )


def _produce_chunk(producer: Producer, topic: str, chunk: Chunk) -> None:
    produce, poll = producer.produce, producer.poll
    keys, values, stamps = chunk.keys, chunk.values, chunk.timestamps.tolist()
    try:
        for start in range(0, len(values), POLL_EVERY):
            stop = start + POLL_EVERY
            for key, value, timestamp in zip(keys[start:stop], values[start:stop], stamps[start:stop], strict=True):
                try:
                    produce(topic, value, key, timestamp=timestamp)
                except BufferError:
                    _produce_when_queue_drains(producer, topic, key, value, timestamp)
            poll(0)
    except KafkaException as exc:
        raise BrokerError(f"producing to {topic}: {exc}") from exc


def _produce_when_queue_drains(producer: Producer, topic: str, key: bytes, value: bytes, timestamp: int) -> None:
    while True:
        # The local queue is full: serve delivery reports so that it drains, then retry the same message.
        producer.poll(0.1)
        try:
            producer.produce(topic, value, key, timestamp=timestamp)
            return
        except BufferError:
            continue


@contextmanager
def _progress(enabled: bool, total: int, topic: str) -> Iterator[Callable[[int], None]]:
    """A transient rich progress bar with the rate on stderr, or nothing when disabled; the yielded ``advance(n)``
    moves it on by n messages. Transient, so the caller's summary line is the only one left."""
    if not enabled:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("seeding {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), transient=True,
                  console=Console(stderr=True)) as bar:
        task = bar.add_task(topic, total=total, rate="")
        started = time.perf_counter()

        def advance(n: int) -> None:
            done = bar.tasks[0].completed + n
            rate = done / max(time.perf_counter() - started, 1e-6)
            bar.update(task, advance=n, rate=f"{rate:,.0f} events/s")

        yield advance
