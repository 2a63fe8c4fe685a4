"""testcontainers-python's Kafka container as a StreamGuard broker provider (needs a Docker engine)."""

from __future__ import annotations

from typing import Self

from streamguard.errors import BrokerError
from streamguard.kafka.broker import BrokerProvider, wait_for_metadata

DEFAULT_IMAGE = "apache/kafka:4.1.1"


class ContainerBroker(BrokerProvider):
    name = "container"

    def __init__(self, image: str = DEFAULT_IMAGE, *, start_timeout_s: float = 120.0) -> None:
        self._image = image
        self._start_timeout_s = start_timeout_s
        self._container = None
        self._bootstrap: str | None = None

    @property
    def bootstrap(self) -> str:
        if self._bootstrap is None:
            raise BrokerError("the container broker is not started")
        return self._bootstrap

    def start(self) -> Self:
        try:
            from testcontainers.kafka import KafkaContainer  # noqa: PLC0415
        except ImportError as exc:
            raise BrokerError(
                "the container provider needs testcontainers: pip install 'streamguard[container]'"
            ) from exc
        container = KafkaContainer(self._image).with_kraft()
        try:
            container.start()
        except Exception as exc:  # noqa: BLE001 - docker/testcontainers raise many types
            raise BrokerError(f"could not start Kafka container {self._image}: {exc}") from exc
        self._container = container
        self._bootstrap = container.get_bootstrap_server()
        wait_for_metadata(self._bootstrap, self._start_timeout_s)
        return self

    def stop(self) -> None:
        if self._container is not None:
            self._container.stop()
            self._container = None
