"""StreamGuard batch layer: exact bounded Kafka reads into Spark, behavioural features, anomaly detection.

The library surface is what ``__all__`` lists; everything else is internal and may change. The command line
(``streamguard --help``) is the other public surface.

    >>> from streamguard import LocalBroker, RunConfig, run_pipeline
    >>> with LocalBroker() as broker:
    ...     result = run_pipeline(RunConfig(topic="security-events", bootstrap=broker.bootstrap, max_events=1000))
"""

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
