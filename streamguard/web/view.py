"""What the web view shows, as plain data built from one loaded run (a :class:`~streamguard.serve.data.Snapshot`).

The pages and the self-contained HTML report render these objects and nothing else, so both show the same
figures. Rows, population statistics and deviations are the ones the API and the assistant use
(:meth:`Snapshot.row`, :attr:`Snapshot.population`, :func:`streamguard.assistant.answer.deviations`); only the
score column of every user, which the snapshot does not expose, is read again from the run's training data
(once per snapshot) to draw the score distribution.

    >>> page = index_view(snapshot, limit=100)
    >>> page.anomalies[0].user, page.anomalies[0].deviations[0].feature
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
from pydantic import BaseModel

from streamguard.assistant.answer import Deviation, deviations
from streamguard.contracts import FEATURES, FLAG_COLUMN, SCORE_COLUMN
from streamguard.errors import DataError
from streamguard.export import TRAINING_DATA
from streamguard.report import AnomalyReport
from streamguard.serve.data import Snapshot

HISTOGRAM_BINS = 20
DEFAULT_ANOMALIES_SHOWN = 100
_MS_EPOCH_RANGE = (10**11, 10**14)  # integers in this range are epoch milliseconds (1973 to 5138)


@dataclass(frozen=True)
class Histogram:
    """Users per score bin, split by the detector's flag; ``edges`` has one more entry than the counts."""

    edges: tuple[float, ...]
    normal: tuple[int, ...]
    flagged: tuple[int, ...]
    threshold: float

    @property
    def users(self) -> int:
        return sum(self.normal) + sum(self.flagged)


@dataclass(frozen=True)
class RunView:
    """The run in the words of the page: what was read, by what, when, and how long each stage took."""

    run_id: str
    generated_at: str
    topic: str
    engine: str
    read_strategy: str
    start: str
    end: str | None
    max_events: int | None
    records_scanned: int
    records_read: int
    records_valid: int
    records_quarantined: int
    users: int
    anomalies: int
    anomaly_rate: float
    algorithm: str
    threshold: float
    event_window: tuple[tuple[str, str], ...]
    stages: tuple[tuple[str, float], ...]
    total_seconds: float
    quarantine: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class AnomalyEntry:
    user: str
    score: float
    total_events: int
    deviations: list[Deviation]


@dataclass(frozen=True)
class IndexView:
    run: RunView
    histogram: Histogram
    anomalies: list[AnomalyEntry]

    @property
    def more(self) -> int:
        """Anomalous users not listed."""
        return self.run.anomalies - len(self.anomalies)


@dataclass(frozen=True)
class FeatureLine:
    name: str
    definition: str
    unit: str
    in_model: bool
    value: float
    mean: float
    std: float
    z_score: float | None  # None for a feature constant over the run


@dataclass(frozen=True)
class UserView:
    run: RunView
    histogram: Histogram
    user: str
    score: float
    flagged: bool
    rank: int  # 1 = the highest score of the run; ties share a rank
    top: list[Deviation]
    features: list[FeatureLine]


def run_view(report: AnomalyReport) -> RunView:
    run = report.run
    stages = run.stage_seconds.model_dump()
    total = stages.pop("total")
    return RunView(
        run_id=run.run_id, generated_at=run.generated_at, topic=run.topic, engine=run.engine,
        read_strategy=run.read_strategy, start=run.plan.start, end=run.plan.end, max_events=run.plan.max_events,
        records_scanned=run.records_scanned, records_read=run.records_read, records_valid=run.records_valid,
        records_quarantined=run.records_quarantined, users=report.total_users, anomalies=report.anomalous_users,
        anomaly_rate=report.anomaly_rate, algorithm=run.detector.algorithm, threshold=run.detector.threshold,
        event_window=event_window(run), stages=tuple(stages.items()), total_seconds=total,
        quarantine=tuple(sorted(run.quarantined_by_reason.items(), key=lambda item: (-item[1], item[0]))),
    )


def index_view(snapshot: Snapshot, *, limit: int = DEFAULT_ANOMALIES_SHOWN) -> IndexView:
    """The front page: the run, the score distribution and the ``limit`` most anomalous users."""
    page = snapshot.anomaly_page(limit=limit)
    entries = []
    for item in page.items:
        row = snapshot.row(item.user)
        if row is None:  # the snapshot's anomaly list comes from its own rows
            raise DataError(f"anomalous user {item.user!r} has no row in run {snapshot.run_id}")
        entries.append(AnomalyEntry(user=item.user, score=item.anomaly_score, total_events=item.total_events,
                                    deviations=deviations(row, snapshot.population)))
    return IndexView(run=run_view(snapshot.report), histogram=histogram(snapshot), anomalies=entries)


def user_view(snapshot: Snapshot, user: str) -> UserView | None:
    """One user's page, or None when the user is not in the run's training data."""
    row: Any = snapshot.row(user)
    if row is None:
        return None
    scores, _flags = _score_columns(snapshot)
    in_model = {feature.name: feature.in_model for feature in FEATURES}
    lines = []
    for stat in snapshot.population.features:
        value = float(getattr(row, stat.name))
        lines.append(FeatureLine(
            name=stat.name, definition=stat.definition, unit=stat.unit, in_model=in_model.get(stat.name, False),
            value=value,
            mean=stat.mean, std=stat.std, z_score=(value - stat.mean) / stat.std if stat.std > 0 else None,
        ))
    return UserView(
        run=run_view(snapshot.report), histogram=histogram(snapshot), user=row.user, score=row.anomaly_score,
        flagged=row.is_anomaly == 1, rank=int(np.count_nonzero(scores > row.anomaly_score)) + 1,
        top=deviations(row, snapshot.population), features=lines,
    )


def histogram(snapshot: Snapshot, bins: int = HISTOGRAM_BINS) -> Histogram:
    """Every user's score in ``bins`` equal bins over [0, 1], flagged users counted apart."""
    scores, flags = _score_columns(snapshot)
    return score_histogram(scores, flags, snapshot.report.run.detector.threshold, bins)


def score_histogram(scores: np.ndarray, flags: np.ndarray, threshold: float,
                    bins: int = HISTOGRAM_BINS) -> Histogram:
    edges = np.linspace(0.0, 1.0, bins + 1)
    flagged = flags.astype(bool)
    normal_counts, _ = np.histogram(scores[~flagged], bins=edges)
    flagged_counts, _ = np.histogram(scores[flagged], bins=edges)
    return Histogram(edges=tuple(float(e) for e in edges), normal=tuple(int(c) for c in normal_counts),
                     flagged=tuple(int(c) for c in flagged_counts), threshold=threshold)


def event_window(run: BaseModel) -> tuple[tuple[str, str], ...]:
    """The event-time window the report records, as (label, value) pairs; empty when it records none.

    Looks for a field of the run section whose name mentions a window, so the view shows one as soon as the
    report carries it; epoch milliseconds are shown as UTC times.
    """
    for name in type(run).model_fields:
        if "window" not in name:
            continue
        value = getattr(run, name)
        if value is None:
            return ()
        data = value.model_dump() if isinstance(value, BaseModel) else value
        if isinstance(data, dict):
            return tuple((key.replace("_", " "), _moment(item)) for key, item in data.items())
        return ((name.replace("_", " "), _moment(data)),)
    return ()


def _moment(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and _MS_EPOCH_RANGE[0] <= value < _MS_EPOCH_RANGE[1]:
        moment = datetime.fromtimestamp(value / 1000, tz=UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return "–" if value is None else str(value)


# Snapshots are immutable and replaced whole on a new run, so a column read once per snapshot stays right.
_scores: weakref.WeakKeyDictionary[Snapshot, tuple[np.ndarray, np.ndarray]] = weakref.WeakKeyDictionary()
_scores_lock = threading.Lock()


def _score_columns(snapshot: Snapshot) -> tuple[np.ndarray, np.ndarray]:
    with _scores_lock:
        cached = _scores.get(snapshot)
        if cached is None:
            cached = _read_scores(snapshot)
            _scores[snapshot] = cached
        return cached


def _read_scores(snapshot: Snapshot) -> tuple[np.ndarray, np.ndarray]:
    path = snapshot.run_dir / TRAINING_DATA
    try:
        table = ds.dataset(path, format="parquet", partitioning="hive").to_table(columns=[SCORE_COLUMN, FLAG_COLUMN])
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"cannot read the scores in {path}: {exc}") from exc
    scores = table.column(SCORE_COLUMN).to_numpy().astype("float64")
    flags = table.column(FLAG_COLUMN).to_numpy().astype("int64")
    if scores.size != snapshot.users:
        raise DataError(f"{path} holds {scores.size} scores for {snapshot.users} users")
    return scores, flags
