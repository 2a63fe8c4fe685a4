"""Engines that run the pipeline's stages: ``embedded`` (this process, the default) and ``spark`` (a cluster).

    >>> engine = create_engine(resolve_engine("auto", spark_master="spark://10.0.0.5:7077"), bootstrap=..., ...)

Engines are imported on first use, so choosing ``embedded`` never loads pyspark.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from streamguard.errors import ConfigError

if TYPE_CHECKING:
    from streamguard.engines.base import Engine
    from streamguard.kafka.properties import KafkaProperties

ENGINES: tuple[str, ...] = ("auto", "embedded", "spark")
DEFAULT_ENGINE = "auto"
DEFAULT_SPARK_MASTER = "local[*]"


def resolve_engine(engine: str, *, spark_master: str) -> str:
    """``auto`` means ``spark`` when ``spark_master`` names a cluster (anything but ``local[...]``), else embedded."""
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if engine != "auto":
        return engine
    return "embedded" if spark_master == "local" or spark_master.startswith("local[") else "spark"


def create_engine(
    name: str, *, bootstrap: str, spark_master: str,
    kafka_properties: KafkaProperties | Mapping[str, str] | None = None,
) -> Engine:
    """A new, not yet started engine of a resolved ``name`` (``embedded`` or ``spark``).

    ``kafka_properties`` (``streamguard.kafka.properties``) reach the engine's Kafka reader: the embedded
    engine's librdkafka consumer, or Spark's Kafka source as ``kafka.`` options."""
    if name == "embedded":
        from streamguard.engines.embedded import EmbeddedEngine  # noqa: PLC0415

        return EmbeddedEngine(bootstrap=bootstrap, kafka_properties=kafka_properties)
    if name == "spark":
        from streamguard.engines.spark import SparkEngine  # noqa: PLC0415

        return SparkEngine(bootstrap=bootstrap, master=spark_master, kafka_properties=kafka_properties)
    raise ConfigError(f"no engine named {name!r} (resolve 'auto' first)")
