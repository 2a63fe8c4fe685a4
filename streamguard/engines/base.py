"""What an engine is: one object per run that carries the data from stage to stage.

The pipeline calls the stages in order and times them; the engine decides where the data lives (Arrow tables in
this process, or Spark DataFrames on a cluster) and translates its own third-party errors into StreamGuard's.
Every engine runs the same definitions: ``events.parse.classify_batch``, ``features.feature_sql`` and
``detect.fit_sample_sql`` / ``FittedDetector.score_pandas``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from streamguard.detect import FittedDetector
from streamguard.kafka.accounting import ReadAccounting
from streamguard.kafka.plan import ReadPlan


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


def top_entries(scored: pd.DataFrame, top_n: int) -> list[dict[str, Any]]:
    """The report's top anomalies from scored rows (highest score first, then by user)."""
    ordered = scored.sort_values(["anomaly_score", "user"], ascending=[False, True], kind="stable").head(top_n)
    return [
        {"user": row.user, "anomaly_score": float(row.anomaly_score), "total_events": int(row.total_events),
         "avg_threat_score": float(row.avg_threat_score), "unique_ips": int(row.unique_ips),
         "failed_auth_rate": float(row.failed_auth_rate)}
        for row in ordered.itertuples(index=False)
    ]
