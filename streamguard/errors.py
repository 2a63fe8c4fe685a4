"""StreamGuard's exception tree. Callers catch these; third-party errors are translated at the boundary.

    StreamguardError                  exit 1   root; anything not listed below
    ├── ConfigError                   exit 2   a setting that does not parse or is missing
    ├── SetupError                    exit 3   a JVM jar cannot be resolved, Java/Maven missing
    ├── BrokerError                   exit 10  a Kafka broker problem
    │   ├── BrokerStartTimeout        exit 11  the local broker did not answer metadata requests in time
    │   ├── BrokerUnreachable         exit 12  no broker answers at the bootstrap address
    │   └── BrokerAuthenticationFailed  exit 13  the broker refused the client's credentials (SASL/SSL)
    ├── ReadError                     exit 20  planning or reading a slice of a topic
    │   ├── TopicNotFound             exit 21
    │   ├── InvalidOffsetSpec         exit 22  a start/end spec that does not parse or does not fit the topic
    │   └── NothingToRead             exit 23  the plan covers no record
    ├── DataError                     exit 30  events or features unusable (e.g. no valid event at all)
    ├── DetectionError                exit 40  the model cannot be fitted or applied
    ├── OutputError                   exit 50  the output directory is not writable, or the commit failed
    └── ClusterError                  exit 60  the local Spark standalone cluster did not start (or exited)

The CLI prints ``error: <message>`` on one line and exits with the code above.
"""

from __future__ import annotations


class StreamguardError(Exception):
    """Root of every error StreamGuard raises on purpose."""

    exit_code: int = 1


class ConfigError(StreamguardError):
    exit_code = 2


class SetupError(StreamguardError):
    exit_code = 3


class BrokerError(StreamguardError):
    exit_code = 10


class BrokerStartTimeout(BrokerError):
    exit_code = 11


class BrokerUnreachable(BrokerError):
    exit_code = 12


class BrokerAuthenticationFailed(BrokerError):
    exit_code = 13


class ReadError(StreamguardError):
    exit_code = 20


class TopicNotFound(ReadError):
    exit_code = 21


class InvalidOffsetSpec(ReadError):
    exit_code = 22


class NothingToRead(ReadError):
    exit_code = 23


class DataError(StreamguardError):
    exit_code = 30


class DetectionError(StreamguardError):
    exit_code = 40


class OutputError(StreamguardError):
    exit_code = 50


class ClusterError(StreamguardError):
    exit_code = 60


EXIT_CODES: dict[str, int] = {
    cls.__name__: cls.exit_code
    for cls in (
        StreamguardError, ConfigError, SetupError, BrokerError, BrokerStartTimeout, BrokerUnreachable,
        BrokerAuthenticationFailed, ReadError,
        TopicNotFound, InvalidOffsetSpec, NothingToRead, DataError, DetectionError, OutputError,
        ClusterError,
    )
}
