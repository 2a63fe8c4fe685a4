"""Small, typed wrappers over confluent-kafka's admin and metadata calls, with errors translated to ours.

Everything that asks the broker about a topic (does it exist, how many partitions, watermarks, offsets for a time)
lives here, so the seeder, the planner and the tests share one way of asking. Several questions about one topic
go through one ``TopicOffsets``: one client, one metadata request, then one ListOffsets call per kind of offset
for all partitions at once, all kinds in flight together:

    >>> topic = TopicOffsets(bootstrap, "security-events")        # one metadata request
    >>> topic.partitions
    4
    >>> snap = topic.snapshot(timestamps_ms=[1_767_225_600_000])   # earliest, latest and one time, together
    >>> snap.watermarks[0].high, snap.for_times[1_767_225_600_000][0]
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from confluent_kafka import IsolationLevel, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from streamguard.errors import (
    BrokerAuthenticationFailed,
    BrokerUnreachable,
    ConfigError,
    InvalidOffsetSpec,
    ReadError,
    TopicNotFound,
)
from streamguard.kafka.properties import KafkaProperties

DEFAULT_TIMEOUT_S = 10.0
_AUTH_POLL_S = 0.05
ISOLATION_LEVELS = ("read_committed", "read_uncommitted")

K = TypeVar("K")
_Properties = KafkaProperties | Mapping[str, str] | None


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
#
# enable.sparse.connections=False: librdkafka (2.16 here) closes the bootstrap connection as soon as the first
# metadata answer names the real brokers, and by default connects to a learned broker only on demand, at most
# one new connection per ~50 ms (half of reconnect.backoff.ms). A fresh client's first request therefore often
# waited for that slot (metadata median 52 ms against 5 ms with this setting, 4-partition topic, 25 fresh
# processes each). Connecting to every learned broker at once costs one connection per broker, which a planner
# needs anyway: it asks every partition leader.
_QUIET = {"log_level": 0, "socket.connection.setup.timeout.ms": 5000, "enable.sparse.connections": False}


class ClientErrors:
    """librdkafka's error callback: remembers an authentication failure, which it reports only there."""

    def __init__(self) -> None:
        self.authentication: KafkaError | None = None

    def __call__(self, error: KafkaError) -> None:
        if is_authentication_error(error):
            self.authentication = error


def is_authentication_error(error: KafkaError | None) -> bool:
    """True for a SASL/SSL authentication failure (wrong credentials, unsupported mechanism, TLS handshake)."""
    return error is not None and error.code() in (
        KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED, KafkaError.UNSUPPORTED_SASL_MECHANISM,
        KafkaError.ILLEGAL_SASL_STATE, KafkaError._SSL,
    )


def admin_client(
    bootstrap: str, properties: KafkaProperties | Mapping[str, str] | None = None, *,
    errors: ClientErrors | None = None,
) -> AdminClient:
    """An admin client for ``bootstrap`` with the client ``properties`` (SASL, SSL, ...); ConfigError for a
    property librdkafka does not know."""
    config: dict[str, Any] = {"bootstrap.servers": bootstrap, **_QUIET,
                              **KafkaProperties.of(properties).for_librdkafka()}
    if errors is not None:
        config["error_cb"] = errors
    try:
        return AdminClient(config)
    except KafkaException as exc:
        raise ConfigError(f"Kafka client properties rejected: {exc.args[0].str() if exc.args else exc}") from exc


def wait_metadata(
    admin: AdminClient, errors: ClientErrors, bootstrap: str, timeout_s: float, topic: str | None = None,
) -> Any:
    """One metadata request, answered within ``timeout_s``; BrokerAuthenticationFailed as soon as the broker
    refuses the credentials (about 0.3 s, not the whole timeout), BrokerUnreachable when nothing answers.

    librdkafka reports a refused login only through the error callback, served by ``poll()``, while
    ``list_topics`` keeps waiting; so the request runs in a helper thread and this one polls for that report.
    """
    answer: dict[str, Any] = {}
    done = threading.Event()

    def ask() -> None:
        try:
            answer["metadata"] = admin.list_topics(topic=topic, timeout=timeout_s)
        except KafkaException as exc:
            answer["error"] = exc
        finally:
            done.set()

    threading.Thread(target=ask, name="kafka-metadata", daemon=True).start()
    while not done.wait(_AUTH_POLL_S):
        admin.poll(0)
        if errors.authentication is not None:
            raise BrokerAuthenticationFailed(
                f"the Kafka broker at {bootstrap} refused the client's credentials: {errors.authentication.str()}"
            )
    if "metadata" in answer:
        return answer["metadata"]
    admin.poll(0)
    exc = answer["error"]
    error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
    refused = errors.authentication or (error if is_authentication_error(error) else None)
    if refused is not None:
        raise BrokerAuthenticationFailed(
            f"the Kafka broker at {bootstrap} refused the client's credentials: {refused.str()}"
        ) from exc
    raise BrokerUnreachable(f"no Kafka broker answered at {bootstrap} within {timeout_s:.0f} s") from exc


@dataclass(frozen=True, slots=True)
class OffsetSnapshot:
    """Offsets of every partition, asked at one moment: watermarks and, per timestamp, offsets for that time."""

    watermarks: list[Watermarks]
    for_times: dict[int, dict[int, int]] = field(default_factory=dict)
    """timestamp (ms) -> partition -> earliest offset whose record timestamp is >= it; -1 where none is."""

    @classmethod
    def from_answers(cls, partitions: int, answers: Mapping[str | int, Mapping[int, int]]) -> OffsetSnapshot:
        """Assemble the answers to ``snapshot_requests`` (``"earliest"``, ``"latest"``, timestamps in ms)."""
        low, high = answers["earliest"], answers["latest"]
        times = {key: dict(offsets) for key, offsets in answers.items() if isinstance(key, int)}
        return cls([Watermarks(p, low[p], high[p]) for p in range(partitions)], times)


def offset_requests(
    topic: str, partitions: int, specs: Mapping[K, OffsetSpec]
) -> dict[K, dict[TopicPartition, OffsetSpec]]:
    """The ListOffsets calls answering ``specs``: one per spec, each naming every partition 0..n-1."""
    return {key: {TopicPartition(topic, p): spec for p in range(partitions)} for key, spec in specs.items()}


def snapshot_requests(
    topic: str, partitions: int, timestamps_ms: Iterable[int] = ()
) -> dict[str | int, dict[TopicPartition, OffsetSpec]]:
    """The calls behind a snapshot: earliest, latest and one per distinct timestamp, whatever the partitions."""
    specs: dict[str | int, OffsetSpec] = {"earliest": OffsetSpec.earliest(), "latest": OffsetSpec.latest()}
    specs.update({ms: OffsetSpec.for_timestamp(ms) for ms in timestamps_ms})
    return offset_requests(topic, partitions, specs)


class TopicOffsets:
    """One admin client for the offset questions about one topic; use one per plan.

    Creating it sends the one metadata request (partition count and leaders); it raises TopicNotFound,
    BrokerUnreachable or ReadError. Every later question is one ListOffsets call per kind of offset
    (earliest, latest, each timestamp) covering all partitions, which librdkafka sends as one request per
    partition leader; all kinds are in flight together and waited for under one deadline.

    Why one client: ListOffsets needs each partition's leader. A new client knows none, so librdkafka first asks
    for metadata, and that question can get lost: librdkafka closes the bootstrap connection as soon as it learns
    the real broker ids, and drops a leader query in flight on it (asked again only by a fixed 3 s timer) or
    skips one sent while no broker is connected (asked again when the 1 s housekeeping timer connects one).
    That was the 1.0 s and 3.0 s plans, about 7 in 100 fresh clients on a 4-partition topic. The metadata
    request made here is an application request, which librdkafka does retry at once on the next broker; its
    answer puts every leader in this client's cache, so ListOffsets never waits for metadata.
    """

    def __init__(
        self, bootstrap: str, topic: str, *, timeout_s: float = DEFAULT_TIMEOUT_S,
        properties: KafkaProperties | Mapping[str, str] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.timeout_s = timeout_s
        self._errors = ClientErrors()
        self._admin = admin_client(bootstrap, properties, errors=self._errors)
        self.partitions = self._partition_count()

    def _partition_count(self) -> int:
        metadata = wait_metadata(self._admin, self._errors, self.bootstrap, self.timeout_s, topic=self.topic)
        topic_meta = metadata.topics.get(self.topic)
        if topic_meta is None or topic_meta.error is not None and (
            topic_meta.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
        ):
            raise TopicNotFound(f"topic {self.topic!r} does not exist at {self.bootstrap}")
        if topic_meta.error is not None:
            raise ReadError(f"metadata for topic {self.topic!r}: {topic_meta.error.str()}")
        return len(topic_meta.partitions)

    def snapshot(
        self, *, isolation_level: str = "read_committed", timestamps_ms: Iterable[int] = ()
    ) -> OffsetSnapshot:
        """Earliest and latest offset of every partition and, for each timestamp, the offsets for that time.

        Under ``read_committed`` the latest offset is the last stable offset, the end a committed read can reach.
        """
        requests = snapshot_requests(self.topic, self.partitions, timestamps_ms)
        return OffsetSnapshot.from_answers(self.partitions, self._ask(requests, isolation_level))

    def list_offsets(
        self, specs: Mapping[K, OffsetSpec], *, isolation_level: str = "read_committed",
        partitions: int | None = None,
    ) -> dict[K, dict[int, int]]:
        """``{key: {partition: offset}}`` for each spec (-1 where a timestamp matches nothing); ``partitions``
        defaults to the topic's."""
        count = self.partitions if partitions is None else partitions
        return self._ask(offset_requests(self.topic, count, specs), isolation_level)

    def _ask(
        self, requests: Mapping[K, Mapping[TopicPartition, OffsetSpec]], isolation_level: str
    ) -> dict[K, dict[int, int]]:
        level = isolation_level_of(isolation_level)
        pending: dict[K, dict[TopicPartition, Future]] = {
            key: self._admin.list_offsets(dict(request), isolation_level=level, request_timeout=self.timeout_s)
            for key, request in requests.items()
        }
        deadline = time.monotonic() + self.timeout_s  # one deadline for all answers, not one per partition
        answers: dict[K, dict[int, int]] = {}
        for key, futures in pending.items():
            answers[key] = {}
            for tp, future in futures.items():
                try:
                    answers[key][tp.partition] = future.result(timeout=max(0.0, deadline - time.monotonic())).offset
                except TimeoutError as exc:
                    raise BrokerUnreachable(
                        f"listing offsets of {self.topic} at {self.bootstrap}: no answer within {self.timeout_s:.0f} s"
                    ) from exc
                except KafkaException as exc:
                    error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
                    if is_authentication_error(error) or self._errors.authentication is not None:
                        raise BrokerAuthenticationFailed(
                            f"the Kafka broker at {self.bootstrap} refused the client's credentials: {exc}"
                        ) from exc
                    raise BrokerUnreachable(
                        f"listing offsets of {self.topic}[{tp.partition}] at {self.bootstrap}: {exc}"
                    ) from exc
        return answers


def partition_count(
    bootstrap: str, topic: str, timeout_s: float = DEFAULT_TIMEOUT_S, *, properties: _Properties = None,
) -> int:
    """Number of partitions of ``topic``; raises TopicNotFound or BrokerUnreachable."""
    return TopicOffsets(bootstrap, topic, timeout_s=timeout_s, properties=properties).partitions


def topic_exists(
    bootstrap: str, topic: str, timeout_s: float = DEFAULT_TIMEOUT_S, *, properties: _Properties = None,
) -> bool:
    try:
        partition_count(bootstrap, topic, timeout_s, properties=properties)
    except TopicNotFound:
        return False
    return True


def ensure_topic(
    bootstrap: str, topic: str, partitions: int, timeout_s: float = 30.0, *, config: Mapping[str, str] | None = None,
    properties: _Properties = None,
) -> bool:
    """Create ``topic`` with ``partitions`` partitions (replication 1) and topic ``config`` (e.g.
    ``{"cleanup.policy": "compact"}``) unless it exists; True if created."""
    if topic_exists(bootstrap, topic, properties=properties):
        return False
    admin = admin_client(bootstrap, properties)  # must outlive the futures it returns
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1, config=dict(config or {}))],
        operation_timeout=timeout_s,
    )
    try:
        futures[topic].result(timeout=timeout_s)
    except KafkaException as exc:
        if exc.args and exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
            return False
        raise ReadError(f"could not create topic {topic!r}: {exc}") from exc
    return True


def delete_topic(bootstrap: str, topic: str, timeout_s: float = 30.0, *, properties: _Properties = None) -> None:
    admin = admin_client(bootstrap, properties)
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
    properties: _Properties = None,
) -> dict[int, int]:
    """One ListOffsets request per partition leader: partition -> offset (-1 where a timestamp matches nothing).

    Under ``read_committed`` the latest offset is the last stable offset, the end a committed read can reach.
    Asking several things about one topic? Use one ``TopicOffsets``: this opens a client per call.
    """
    isolation_level_of(isolation_level)  # checked before any broker request
    offsets = TopicOffsets(bootstrap, topic, timeout_s=timeout_s, properties=properties)
    return offsets.list_offsets({"spec": spec}, isolation_level=isolation_level, partitions=partitions)["spec"]


def watermarks(
    bootstrap: str, topic: str, partitions: int, *, isolation_level: str = "read_committed",
    timeout_s: float = DEFAULT_TIMEOUT_S, properties: _Properties = None,
) -> list[Watermarks]:
    """Earliest and latest offset of every partition, asked of the partition leaders (no cached values)."""
    isolation_level_of(isolation_level)  # checked before any broker request
    offsets = TopicOffsets(bootstrap, topic, timeout_s=timeout_s, properties=properties)
    answers = offsets.list_offsets({"low": OffsetSpec.earliest(), "high": OffsetSpec.latest()},
                                   isolation_level=isolation_level, partitions=partitions)
    return [Watermarks(p, answers["low"][p], answers["high"][p]) for p in range(partitions)]


def offsets_for_time(
    bootstrap: str, topic: str, partitions: int, timestamp_ms: int, *, isolation_level: str = "read_committed",
    timeout_s: float = DEFAULT_TIMEOUT_S, properties: _Properties = None,
) -> dict[int, int]:
    """Per partition, the earliest offset whose record timestamp is >= ``timestamp_ms``; -1 where none is."""
    return list_offsets(bootstrap, topic, partitions, OffsetSpec.for_timestamp(timestamp_ms),
                        isolation_level=isolation_level, timeout_s=timeout_s, properties=properties)
