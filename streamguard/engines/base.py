"""What an engine is: one object per run that carries the data from stage to stage.

The pipeline calls the stages in order and times them; the engine decides where the data lives (Arrow tables in
this process, or Spark DataFrames on a cluster) and translates its own third-party errors into StreamGuard's.
Every engine runs the same definitions: ``events.parse.classify_batch``, ``features.feature_sql`` and
``detect.fit_sample_sql`` / ``FittedDetector.score_pandas``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from streamguard.detect import FittedDetector
from streamguard.errors import (
    DataError,
    DetectionError,
    OutputError,
    ReadError,
    SetupError,
    StreamguardError,
)
from streamguard.kafka.accounting import ReadAccounting
from streamguard.kafka.plan import ReadPlan

# What a third-party failure inside each stage becomes, whichever engine it came from.
STAGE_ERRORS: dict[str, type[StreamguardError]] = {
    "plan": ReadError, "engine_init": SetupError, "kafka_read": ReadError, "parse": DataError,
    "features": DataError, "detection": DetectionError, "export": OutputError,
}


def stage_error(stage: str) -> type[StreamguardError]:
    """The StreamGuard error a stage's third-party failure is translated into (the root one for other names)."""
    return STAGE_ERRORS.get(stage, StreamguardError)


@dataclass(frozen=True, kw_only=True)
class ReadCounts:
    records_fetched: int
    """Records Kafka returned (a full scan's whole range; a top-up's records past N included)."""
    records_read: int
    """Records handed to parsing."""
    accounting: ReadAccounting | None = None
    """Per partition and in total: offsets spanned, records fetched, offsets skipped, records read (checked)."""


@dataclass(frozen=True, kw_only=True)
class ParseCounts:
    valid: int
    by_reason: dict[str, int]
    event_time_min_ms: int | None = None
    """Earliest event ``timestamp`` (ms since the epoch) among the valid events; None without any."""
    event_time_max_ms: int | None = None
    kafka_time_min_ms: int | None = None
    """Earliest Kafka record timestamp (ms) among every record read, valid or quarantined; None without any."""
    kafka_time_max_ms: int | None = None
    unknown_detail_words: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per open-vocabulary details field, the valid events whose word is not a known one: records, distinct words
    and the most frequent (``events.vocabulary.unknown_words_summary``)."""

    def time_window(self) -> dict[str, int | str | None]:
        """The event-time and Kafka-time window the read covered, in ms and as UTC ISO-8601 (for the report)."""
        window: dict[str, int | str | None] = {}
        for name in ("event_time_min", "event_time_max", "kafka_time_min", "kafka_time_max"):
            milliseconds = getattr(self, f"{name}_ms")
            window[f"{name}_ms"] = milliseconds
            window[name] = _iso(milliseconds)
        return window


def _iso(milliseconds: int | None) -> str | None:
    if milliseconds is None:
        return None
    try:
        moment = datetime.fromtimestamp(milliseconds / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):  # a valid event's timestamp may lie past year 9999
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, kw_only=True)
class ScoreSummary:
    anomalous: int
    top: list[dict[str, Any]]


class Engine(ABC):
    """The stages of one run. Call ``start`` first and ``close`` last (also after a failure)."""

    name: str

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def read(self, plan: ReadPlan) -> ReadCounts: ...

    @abstractmethod
    def parse(self) -> ParseCounts: ...

    @abstractmethod
    def features(self) -> int:
        """Build the per-user feature table; return its number of users."""

    @abstractmethod
    def fit_sample(self, columns: tuple[str, ...], max_rows: int) -> pd.DataFrame: ...

    @abstractmethod
    def score(self, detector: FittedDetector, top_n: int) -> ScoreSummary: ...

    @abstractmethod
    def export(self, staging: Path) -> None:
        """Write ``training_data/`` and ``quarantine/`` into ``staging``."""

    @abstractmethod
    def versions(self) -> dict[str, str]: ...

    @abstractmethod
    def errors(self, stage: str) -> AbstractContextManager[None]:
        """Translate this engine's third-party errors raised inside ``stage`` into StreamGuard's."""

    @abstractmethod
    def close(self) -> None: ...

    def progress(self) -> str | None:
        """What the running stage has done so far, for a live status line (e.g. "120,000 records fetched"); polled
        from another thread, so it only reads counters. None when there is nothing to say."""
        return None


def top_entries(scored: pd.DataFrame, top_n: int) -> list[dict[str, Any]]:
    """The report's top anomalies from scored rows (highest score first, then by user)."""
    ordered = scored.sort_values(["anomaly_score", "user"], ascending=[False, True], kind="stable").head(top_n)
    return [
        {"user": row.user, "anomaly_score": float(row.anomaly_score), "total_events": int(row.total_events),
         "avg_threat_score": float(row.avg_threat_score), "unique_ips": int(row.unique_ips),
         "failed_auth_rate": float(row.failed_auth_rate)}
        for row in ordered.itertuples(index=False)
    ]
