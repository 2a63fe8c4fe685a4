"""Small, typed wrappers over confluent-kafka's admin and metadata calls, with errors translated to ours.

Everything that asks the broker about a topic (does it exist, how many partitions, watermarks, offsets for a time)
lives here, so the seeder, the planner and the tests share one way of asking.
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import IsolationLevel, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from streamguard.errors import BrokerUnreachable, InvalidOffsetSpec, ReadError, TopicNotFound

DEFAULT_TIMEOUT_S = 10.0
ISOLATION_LEVELS = ("read_committed", "read_uncommitted")


@dataclass(frozen=True, slots=True)
class Watermarks:
    """Low (first offset still held) and high (next offset to be written) watermark of one partition."""

    partition: int
    low: int
    high: int

    @property
    def size(self) -> int:
        return self.high - self.low


# librdkafka logs every refused connection to stderr; failures reach callers as exceptions instead.
_QUIET = {"log_level": 0, "socket.connection.setup.timeout.ms": 5000}


def admin_client(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, **_QUIET})


def partition_count(bootstrap: str, topic: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> int:
    """Number of partitions of ``topic``; raises TopicNotFound or BrokerUnreachable."""
    try:
        metadata = admin_client(bootstrap).list_topics(topic=topic, timeout=timeout_s)
    except KafkaException as exc:
        raise BrokerUnreachable(f"no Kafka broker answered at {bootstrap} within {timeout_s:.0f} s") from exc
    topic_meta = metadata.topics.get(topic)
    if topic_meta is None or topic_meta.error is not None and (
        topic_meta.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    ):
        raise TopicNotFound(f"topic {topic!r} does not exist at {bootstrap}")
    if topic_meta.error is not None:
        raise ReadError(f"metadata for topic {topic!r}: {topic_meta.error.str()}")
    return len(topic_meta.partitions)


def topic_exists(bootstrap: str, topic: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> bool:
    try:
        partition_count(bootstrap, topic, timeout_s)
    except TopicNotFound:
        return False
    return True


def ensure_topic(bootstrap: str, topic: str, partitions: int, timeout_s: float = 30.0) -> bool:
    """Create ``topic`` with ``partitions`` partitions (replication 1) unless it exists; True if created."""
    if topic_exists(bootstrap, topic):
        return False
    admin = admin_client(bootstrap)  # must outlive the futures it returns
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1)], operation_timeout=timeout_s
    )
    try:
        futures[topic].result(timeout=timeout_s)
    except KafkaException as exc:
        if exc.args and exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
            return False
        raise ReadError(f"could not create topic {topic!r}: {exc}") from exc
    return True


def delete_topic(bootstrap: str, topic: str, timeout_s: float = 30.0) -> None:
    admin = admin_client(bootstrap)
    futures = admin.delete_topics([topic], operation_timeout=timeout_s)
    try:
        futures[topic].result(timeout=timeout_s)
    except KafkaException as exc:
        if exc.args and exc.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            return
        raise ReadError(f"could not delete topic {topic!r}: {exc}") from exc


def isolation_level_of(isolation_level: str) -> IsolationLevel:
    """The client enum for ``read_committed``/``read_uncommitted``; InvalidOffsetSpec for anything else."""
    if isolation_level not in ISOLATION_LEVELS:
        raise InvalidOffsetSpec(f"isolation level must be one of {ISOLATION_LEVELS}, not {isolation_level!r}")
    return IsolationLevel.READ_COMMITTED if isolation_level == "read_committed" else IsolationLevel.READ_UNCOMMITTED


def list_offsets(
    bootstrap: str,
    topic: str,
    partitions: int,
    spec: OffsetSpec,
    *,
    isolation_level: str = "read_committed",
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> dict[int, int]:
    """One ListOffsets request per partition leader: partition -> offset (-1 where a timestamp matches nothing).

    Under ``read_committed`` the latest offset is the last stable offset, the end a committed read can reach.
    """
    admin = admin_client(bootstrap)
    futures = admin.list_offsets(
        {TopicPartition(topic, p): spec for p in range(partitions)},
        isolation_level=isolation_level_of(isolation_level), request_timeout=timeout_s,
    )
    offsets: dict[int, int] = {}
    for tp, future in futures.items():
        try:
            offsets[tp.partition] = future.result(timeout=timeout_s).offset
        except KafkaException as exc:
            raise BrokerUnreachable(f"listing offsets of {topic}[{tp.partition}] at {bootstrap}: {exc}") from exc
    return offsets


def watermarks(
    bootstrap: str, topic: str, partitions: int, *, isolation_level: str = "read_committed",
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> list[Watermarks]:
    """Earliest and latest offset of every partition, asked of the partition leaders (no cached values)."""
    low = list_offsets(bootstrap, topic, partitions, OffsetSpec.earliest(), isolation_level=isolation_level,
                       timeout_s=timeout_s)
    high = list_offsets(bootstrap, topic, partitions, OffsetSpec.latest(), isolation_level=isolation_level,
                        timeout_s=timeout_s)
    return [Watermarks(p, low[p], high[p]) for p in range(partitions)]


def offsets_for_time(
    bootstrap: str, topic: str, partitions: int, timestamp_ms: int, *, isolation_level: str = "read_committed",
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> dict[int, int]:
    """Per partition, the earliest offset whose record timestamp is >= ``timestamp_ms``; -1 where none is."""
    return list_offsets(bootstrap, topic, partitions, OffsetSpec.for_timestamp(timestamp_ms),
                        isolation_level=isolation_level, timeout_s=timeout_s)
