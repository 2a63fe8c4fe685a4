"""The benchmark's broker and its cached, deterministic topics.

    >>> with bench_broker() as broker:
    ...     topic = ensure_topic(broker.bootstrap, 1_000_000)     # seeds only when missing
    ...     topic.name, topic.partition_sizes                        # "bench-1000000-s42", uneven sizes

The broker is ``STREAMGUARD_KAFKA_BOOTSTRAP``'s cluster when that is set (``streamguard.kafka.bootstrap``), else a
local Kafka JVM whose data directory persists in ``$STREAMGUARD_STATE_DIR/bench-kafka`` (state dir ``./.streamguard``
by default; ``STREAMGUARD_BENCH_KAFKA_DIR`` overrides it), so topics
seeded once survive between runs. A topic is reused when it holds exactly the expected record count over the
expected partitions; one left short by an interrupted seeding is deleted and seeded again.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from streamguard._proc import state_dir
from streamguard.kafka.admin import delete_topic, partition_count, topic_exists, watermarks
from streamguard.kafka.bootstrap import find_bootstrap
from streamguard.kafka.broker import BrokerProvider, ExternalBroker
from streamguard.kafka.local_broker import LocalBroker
from streamguard.synth.seed import seed_topic

log = logging.getLogger(__name__)

DATA_STATE, TRUTH_STATE = "bench-kafka", "bench-truth"  # parts of the state dir (streamguard._proc.state_dir)
ENV_DATA_DIR = "STREAMGUARD_BENCH_KAFKA_DIR"
PARTITIONS = 4
SEED = 42


class BenchSetupError(RuntimeError):
    """The bench cannot get its broker or topics into the state it needs."""


class TopicMismatch(BenchSetupError):
    """A bench topic does not hold the expected records and cannot be re-seeded here."""


@dataclass(frozen=True, slots=True)
class BenchTopic:
    """A seeded topic: its name, expected size and what the broker reports per partition."""

    name: str
    events: int
    partitions: int
    seed: int
    partition_sizes: tuple[int, ...]
    seeded_seconds: float | None  # None when the cached topic was reused

    def to_dict(self) -> dict[str, object]:
        return {"topic": self.name, "events": self.events, "partitions": self.partitions, "seed": self.seed,
                "partition_sizes": list(self.partition_sizes), "seeded_seconds": self.seeded_seconds}


def topic_name(events: int, seed: int = SEED) -> str:
    return f"bench-{events}-s{seed}"


def broker_kind() -> str:
    return "external" if find_bootstrap(running_broker=None) is not None else "local"


@contextmanager
def bench_broker(data_dir: Path | None = None) -> Iterator[BrokerProvider]:
    """The external cluster when ``STREAMGUARD_KAFKA_BOOTSTRAP`` is set, else a local broker with persistent data."""
    given = find_bootstrap(running_broker=None)
    if given is not None:
        provider: BrokerProvider = ExternalBroker(given.address)
        with provider:
            yield provider
        return
    directory = (data_dir or Path(os.environ.get(ENV_DATA_DIR) or state_dir(DATA_STATE))).resolve()
    with _exclusive(directory), LocalBroker(data_dir=directory) as provider:
        yield provider


@contextmanager
def _exclusive(directory: Path) -> Iterator[None]:
    # Two brokers on one data directory corrupt its metadata log; a second bench run fails fast instead.
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".bench.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise BenchSetupError(f"another benchmark run is using the broker data in {directory}") from exc
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _sizes(bootstrap: str, topic: str) -> tuple[int, ...]:
    return tuple(w.size for w in watermarks(bootstrap, topic, partition_count(bootstrap, topic)))


def ensure_topic(
    bootstrap: str, events: int, *, partitions: int = PARTITIONS, seed: int = SEED, progress: bool = True
) -> BenchTopic:
    """Return the bench topic of ``events`` records, seeding it (keyed by user, so unevenly) when needed."""
    name = topic_name(events, seed)
    if topic_exists(bootstrap, name):
        sizes = _sizes(bootstrap, name)
        if len(sizes) == partitions and sum(sizes) == events:
            log.info("reusing %s (%s records)", name, f"{events:,}")
            return BenchTopic(name, events, partitions, seed, sizes, None)
        message = (f"topic {name} holds {sum(sizes):,} records in {len(sizes)} partitions, "
                   f"not {events:,} in {partitions}")
        if broker_kind() == "external":
            raise TopicMismatch(f"{message}; delete it on the external cluster and run again")
        log.warning("%s (an interrupted seeding?); seeding it again", message)
        delete_topic(bootstrap, name)
        _wait_gone(bootstrap, name)
    started = time.perf_counter()
    seed_topic(bootstrap, name, events=events, partitions=partitions, seed=seed, progress=progress,
               truth_path=state_dir(TRUTH_STATE) / f"{name}.json")
    seconds = round(time.perf_counter() - started, 2)
    sizes = _sizes(bootstrap, name)
    if sum(sizes) != events:
        raise TopicMismatch(f"seeded {name} but it holds {sum(sizes):,} records, not {events:,}")
    log.info("seeded %s in %.1f s; partition sizes %s", name, seconds, sizes)
    return BenchTopic(name, events, partitions, seed, sizes, seconds)


def _wait_gone(bootstrap: str, topic: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while topic_exists(bootstrap, topic):
        if time.monotonic() > deadline:
            raise TopicMismatch(f"topic {topic} was deleted but still exists after {timeout_s:.0f} s")
        time.sleep(0.5)
