"""End-to-end fixtures: one real Kafka broker and one Spark session for the whole test session.

The broker comes from ``broker_from_env()`` (``STREAMGUARD_KAFKA``: the local KRaft JVM here, an external cluster
with ``STREAMGUARD_KAFKA_BOOTSTRAP``, testcontainers where Docker answers) and is stopped at the end, also when
tests fail or the run is interrupted.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence

import pandas as pd
import pyarrow as pa
import pytest
from confluent_kafka import Producer
from pyspark.sql import SparkSession

from streamguard.kafka.accounting import ReadAccounting
from streamguard.kafka.admin import ensure_topic
from streamguard.kafka.broker import BrokerProvider, broker_from_env
from streamguard.kafka.consume import BoundedRead
from streamguard.kafka.plan import ReadPlan
from streamguard.kafka.read import read_exact
from streamguard.spark import spark_session


@pytest.fixture(scope="session")
def broker() -> Iterator[BrokerProvider]:
    with broker_from_env() as provider:
        yield provider


@pytest.fixture(scope="session")
def bootstrap(broker: BrokerProvider) -> str:
    return broker.bootstrap


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    session = spark_session(master="local[2]", shuffle_partitions=4)
    yield session
    session.stop()


def unique_topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def produce(bootstrap: str) -> Callable[..., None]:
    """Produce raw values to explicit partitions: ``produce(topic, [(partition, value, timestamp_ms), ...])``."""

    def _produce(topic: str, records: Sequence[tuple[int, bytes, int | None]], partitions: int) -> None:
        ensure_topic(bootstrap, topic, partitions)
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "enable.idempotence": True,
                             "log_level": 0})
        failures: list[str] = []

        def delivered(err: object, _msg: object) -> None:
            if err is not None:
                failures.append(str(err))

        for partition, value, timestamp_ms in records:
            kwargs = {"timestamp": timestamp_ms} if timestamp_ms is not None else {}
            producer.produce(topic, value, partition=partition, on_delivery=delivered, **kwargs)
            producer.poll(0)
        remaining = producer.flush(30)
        if remaining or failures:
            raise RuntimeError(f"{remaining} undelivered, failures: {failures[:3]}")

    return _produce


@pytest.fixture(params=["embedded", "spark"])
def exact_read(
    request: pytest.FixtureRequest, bootstrap: str
) -> Callable[[ReadPlan], tuple[pd.DataFrame, ReadAccounting]]:
    """``exact_read(plan)`` -> (records as pandas: partition, offset; the checked accounting) from one engine's
    reader, with its top-up."""
    if request.param == "embedded":
        def embedded(plan: ReadPlan) -> tuple[pd.DataFrame, ReadAccounting]:
            reader = BoundedRead(bootstrap, plan)
            batches = list(reader)
            frame = (pa.Table.from_batches(batches).select(["partition", "offset"]).to_pandas() if batches
                     else pd.DataFrame({"partition": [], "offset": []}))
            return frame, reader.accounting
        return embedded
    spark = request.getfixturevalue("spark")

    def on_spark(plan: ReadPlan) -> tuple[pd.DataFrame, ReadAccounting]:
        read = read_exact(spark, bootstrap, plan)
        return read.frame.select("partition", "offset").toPandas(), read.accounting
    return on_spark
