"""StreamGuard batch layer: exact bounded Kafka reads into Spark, behavioural features, anomaly detection.

The library surface is what ``__all__`` lists; everything else is internal and may change. The command line
(``streamguard --help``) is the other public surface.

    >>> from streamguard import LocalBroker, RunConfig, run_pipeline
    >>> with LocalBroker() as broker:
    ...     result = run_pipeline(RunConfig(topic="security-events", bootstrap=broker.bootstrap, max_events=1000))
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# Imported on first use: the CLI, the API and generator workers need none of pyspark or scikit-learn to start.
_EXPORTS = {
    "AnomalyReport": "streamguard.report",
    "TopAnomaly": "streamguard.report",
    "RunConfig": "streamguard.config",
    "load_run_config": "streamguard.config",
    "BrokerProvider": "streamguard.kafka.broker",
    "ExternalBroker": "streamguard.kafka.broker",
    "broker_from_env": "streamguard.kafka.broker",
    "LocalBroker": "streamguard.kafka.local_broker",
    "PartitionRange": "streamguard.kafka.plan",
    "ReadPlan": "streamguard.kafka.plan",
    "plan_read": "streamguard.kafka.plan",
    "RunResult": "streamguard.pipeline",
    "run_pipeline": "streamguard.pipeline",
    **dict.fromkeys(
        ("BrokerError", "BrokerStartTimeout", "BrokerUnreachable", "ConfigError", "DataError", "DetectionError",
         "InvalidOffsetSpec", "NothingToRead", "OutputError", "ReadError", "SetupError", "StreamguardError",
         "TopicNotFound"),
        "streamguard.errors",
    ),
}

if TYPE_CHECKING:
    from streamguard.config import RunConfig, load_run_config
    from streamguard.errors import (
        BrokerError,
        BrokerStartTimeout,
        BrokerUnreachable,
        ConfigError,
        DataError,
        DetectionError,
        InvalidOffsetSpec,
        NothingToRead,
        OutputError,
        ReadError,
        SetupError,
        StreamguardError,
        TopicNotFound,
    )
    from streamguard.kafka.broker import BrokerProvider, ExternalBroker, broker_from_env
    from streamguard.kafka.local_broker import LocalBroker
    from streamguard.kafka.plan import PartitionRange, ReadPlan, plan_read
    from streamguard.pipeline import RunResult, run_pipeline
    from streamguard.report import AnomalyReport, TopAnomaly


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'streamguard' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "AnomalyReport",
    "BrokerError",
    "BrokerProvider",
    "BrokerStartTimeout",
    "BrokerUnreachable",
    "ConfigError",
    "DataError",
    "DetectionError",
    "ExternalBroker",
    "InvalidOffsetSpec",
    "LocalBroker",
    "NothingToRead",
    "OutputError",
    "PartitionRange",
    "ReadError",
    "ReadPlan",
    "RunConfig",
    "RunResult",
    "SetupError",
    "StreamguardError",
    "TopAnomaly",
    "TopicNotFound",
    "broker_from_env",
    "load_run_config",
    "plan_read",
    "run_pipeline",
]
