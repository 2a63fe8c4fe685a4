"""Kafka broker providers behind one small interface, and the choice between them.

A provider is started, gives a bootstrap address, and is stopped; it is also a context manager:

    >>> with broker_from_env() as broker:
    ...     seed_topic(broker.bootstrap, "events", events=1000, partitions=4)

``STREAMGUARD_KAFKA`` picks the provider:

- ``external``: an existing cluster at ``STREAMGUARD_KAFKA_BOOTSTRAP``; nothing is started or stopped.
- ``container``: testcontainers' Kafka container, where a Docker engine answers.
- ``local``: a real Apache Kafka 4.x broker (KRaft, one combined node) run as a child JVM from Maven Central jars.
- ``auto`` (default): external if the bootstrap variable is set, else container if Docker answers, else local.
"""

from __future__ import annotations

import logging
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from types import TracebackType
from typing import Self

from confluent_kafka import KafkaException

from streamguard.errors import BrokerError, BrokerUnreachable
from streamguard.kafka.admin import ClientErrors, admin_client, wait_metadata
from streamguard.kafka.bootstrap import ENV_BOOTSTRAP, find_bootstrap
from streamguard.kafka.properties import KafkaProperties, resolve_kafka_properties

log = logging.getLogger(__name__)

PROVIDERS = ("auto", "external", "container", "local")
ENV_PROVIDER = "STREAMGUARD_KAFKA"


class BrokerProvider(ABC):
    """A Kafka broker StreamGuard can talk to. ``start()`` returns self once the broker answers metadata."""

    name: str = "broker"

    @abstractmethod
    def start(self) -> Self: ...

    @abstractmethod
    def stop(self) -> None: ...

    @property
    @abstractmethod
    def bootstrap(self) -> str: ...

    def client_properties(self) -> KafkaProperties:
        """The Kafka client properties (SASL, SSL, ...) a client needs to reach this broker; none by default."""
        return KafkaProperties()

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def metadata_answers(
    bootstrap: str, timeout_s: float = 2.0, *, properties: KafkaProperties | Mapping[str, str] | None = None,
) -> bool:
    """True when a broker at ``bootstrap`` answers a metadata request with at least one broker."""
    try:
        metadata = admin_client(bootstrap, properties).list_topics(timeout=timeout_s)
    except KafkaException:
        return False
    return bool(metadata.brokers)


def wait_for_metadata(
    bootstrap: str, timeout_s: float, *, properties: KafkaProperties | Mapping[str, str] | None = None,
) -> None:
    """Block until ``bootstrap`` answers metadata; BrokerAuthenticationFailed as soon as it refuses the
    credentials in ``properties``, BrokerUnreachable after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        errors = ClientErrors()
        admin = admin_client(bootstrap, properties, errors=errors)
        try:
            if wait_metadata(admin, errors, bootstrap, min(2.0, max(0.1, deadline - time.monotonic()))).brokers:
                return
        except BrokerUnreachable:
            pass
        if time.monotonic() >= deadline:
            raise BrokerUnreachable(f"no Kafka broker answered at {bootstrap} within {timeout_s:.0f} s")
        time.sleep(0.2)


class ExternalBroker(BrokerProvider):
    """An existing cluster; start() only checks that it answers, stop() does nothing.

    ``properties`` are the client properties it needs (``broker_from_env`` takes them from
    ``STREAMGUARD_KAFKA_PROPERTIES``)."""

    name = "external"

    def __init__(
        self, bootstrap: str, *, connect_timeout_s: float = 10.0,
        properties: KafkaProperties | Mapping[str, str] | None = None,
    ) -> None:
        if not bootstrap:
            raise BrokerError(f"{ENV_BOOTSTRAP} is empty; set it to host:port of a Kafka broker")
        self._bootstrap = bootstrap
        self._connect_timeout_s = connect_timeout_s
        self._properties = KafkaProperties.of(properties)

    @property
    def bootstrap(self) -> str:
        return self._bootstrap

    def client_properties(self) -> KafkaProperties:
        return self._properties

    def start(self) -> Self:
        wait_for_metadata(self._bootstrap, self._connect_timeout_s, properties=self._properties)
        return self

    def stop(self) -> None:
        pass


def docker_available(timeout_s: float = 3.0) -> bool:
    """True when a Docker engine answers a ping (the docker client alone is not enough)."""
    try:
        import docker  # noqa: PLC0415 - optional dependency, only needed for the container provider
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=timeout_s)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure to reach the engine means "no Docker here"
        return False


def select_provider(env: dict[str, str] | None = None, *, docker_probe=docker_available) -> str:
    """Resolve ``STREAMGUARD_KAFKA`` (``auto`` by default) to one concrete provider name."""
    env = os.environ if env is None else env
    choice = env.get(ENV_PROVIDER, "auto").strip().lower() or "auto"
    if choice not in PROVIDERS:
        raise BrokerError(f"{ENV_PROVIDER}={choice!r} is not one of {', '.join(PROVIDERS)}")
    if choice != "auto":
        return choice
    if find_bootstrap(env=env, running_broker=None) is not None:
        return "external"
    return "container" if docker_probe() else "local"


def broker_from_env(env: dict[str, str] | None = None) -> BrokerProvider:
    """The provider ``STREAMGUARD_KAFKA`` asks for (not started yet); an external one at the address
    ``streamguard.kafka.bootstrap.find_bootstrap`` finds in ``env`` (never the running local broker's)."""
    env = os.environ if env is None else env
    choice = select_provider(env)
    log.info("kafka provider: %s", choice)
    if choice == "external":
        given = find_bootstrap(env=env, running_broker=None)
        return ExternalBroker(given.address if given else "", properties=resolve_kafka_properties([], env, None))
    if choice == "container":
        from streamguard.kafka.container_broker import ContainerBroker  # noqa: PLC0415

        return ContainerBroker()
    from streamguard.kafka.local_broker import LocalBroker  # noqa: PLC0415

    return LocalBroker()
