"""The data the API serves: an immutable :class:`Snapshot` of a published run, swapped whole on a new run.

``streamguard run`` publishes a run by replacing the output symlink (``out/demo -> out/demo.runs/<run id>/``).
:class:`DataStore` resolves that link once per load and reads the report and the training data from the
resolved run folder, so a snapshot never mixes two runs even if the link moves mid-load. Requests ask
``store.current()`` once and use only that snapshot; at most every ``reload_interval`` seconds that call
compares the link target and the report's inode/mtime/size with the loaded ones and, when they changed, loads
the new run before answering. While one request loads, the others keep answering from the previous snapshot.

    >>> store = DataStore(Path("out/demo"))
    >>> state = store.current()
    >>> state.row("erin") if isinstance(state, Snapshot) else state.reason
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
from pydantic import BaseModel, ValidationError

from streamguard.contracts import FEATURE_COLUMNS, FEATURES, FLAG_COLUMN, SCORE_COLUMN, USER_COLUMN
from streamguard.errors import DataError
from streamguard.export import TRAINING_DATA
from streamguard.report import REPORT_FILE, AnomalyReport, TopAnomaly
from streamguard.serve.models import AnomalyPage, FeaturePopulation, FeaturesResponse, Stats, UserRow

log = logging.getLogger(__name__)

RELOAD_INTERVAL_S = 1.0
# The names streamguard.detect writes; not imported from there, which would load Spark and scikit-learn.
_TOP_FIELDS = tuple(TopAnomaly.model_fields)
_ROW_COLUMNS = (USER_COLUMN, SCORE_COLUMN, FLAG_COLUMN, *FEATURE_COLUMNS)

# (resolved run folder, report inode, mtime ns, size); None when there is no report to load.
Signature = tuple[str, int, int, int] | None
_NEVER_LOADED: Signature = ("", -1, -1, -1)


@dataclass(frozen=True)
class NoData:
    """What the store holds when there is nothing to serve, and why."""

    reason: str


@dataclass(frozen=True, eq=False)
class Snapshot:
    """One run's report and training data, read once; never modified after loading."""

    run_dir: Path
    report: AnomalyReport
    report_bytes: bytes
    generated_epoch: float
    population: FeaturesResponse
    _positions: dict[str, int] = field(repr=False)
    _columns: dict[str, np.ndarray] = field(repr=False)
    _anomalies: pd.DataFrame = field(repr=False)

    @property
    def run_id(self) -> str:
        return self.report.run.run_id

    @property
    def users(self) -> int:
        return len(self._positions)

    def row(self, user: str) -> BaseModel | None:
        """The user's full :data:`UserRow`, or None when the user is not in the training data."""
        position = self._positions.get(user)
        if position is None:
            return None
        values = {name: self._columns[name][position].item() for name in _ROW_COLUMNS[1:]}
        return UserRow.model_validate({USER_COLUMN: user, **values})

    def anomaly_page(self, *, limit: int, offset: int = 0, min_score: float = 0.0) -> AnomalyPage:
        """Anomalous users with ``anomaly_score >= min_score``, most anomalous first."""
        scores = self._anomalies[SCORE_COLUMN].to_numpy()
        # Scores are sorted descending, so the matching rows are a prefix.
        matching = int(np.searchsorted(-scores, -min_score, side="right"))
        page = self._anomalies.iloc[offset:min(offset + limit, matching)]
        return AnomalyPage(
            run_id=self.run_id, threshold=self.report.run.detector.threshold, total=matching, offset=offset,
            limit=limit, min_score=min_score,
            items=[TopAnomaly.model_validate(record) for record in page.to_dict("records")],
        )

    def stats(self) -> BaseModel:
        """The run's totals as :data:`Stats`."""
        report, run = self.report, self.report.run
        return Stats(
            run_id=run.run_id, generated_at=run.generated_at, topic=run.topic,
            total_users=report.total_users, anomalous_users=report.anomalous_users,
            anomaly_rate=report.anomaly_rate, records_read=run.records_read, records_valid=run.records_valid,
            records_quarantined=run.records_quarantined, algorithm=run.detector.algorithm,
            threshold=run.detector.threshold,
        )

    def age_seconds(self, now: float | None = None) -> float:
        return max(0.0, (time.time() if now is None else now) - self.generated_epoch)


State = Snapshot | NoData


def load_snapshot(run_dir: Path) -> Snapshot:
    """Read the report and training data of a run folder (not the symlink); raise DataError when unusable."""
    try:
        report_bytes = (run_dir / REPORT_FILE).read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {REPORT_FILE} in {run_dir}: {exc.strerror or exc}") from exc
    try:
        report = AnomalyReport.model_validate_json(report_bytes)
    except ValidationError as exc:
        problem = exc.errors()[0]["msg"]
        raise DataError(f"{run_dir / REPORT_FILE} is not a valid anomaly report: {problem}") from exc
    frame = _read_training_data(run_dir / TRAINING_DATA)
    if len(frame) != report.total_users:
        raise DataError(
            f"the report counts {report.total_users} users but the training data holds {len(frame)}"
        )
    anomalies = (frame.loc[frame[FLAG_COLUMN] == 1, list(_TOP_FIELDS)]
                 .sort_values([SCORE_COLUMN, USER_COLUMN], ascending=[False, True])
                 .reset_index(drop=True))
    return Snapshot(
        run_dir=run_dir, report=report, report_bytes=report_bytes,
        generated_epoch=_epoch(report.run.generated_at), population=_population(report.run.run_id, frame),
        _positions={user: i for i, user in enumerate(frame[USER_COLUMN].tolist())},
        _columns={name: _read_only(frame[name].to_numpy()) for name in _ROW_COLUMNS[1:]},
        _anomalies=anomalies,
    )


def _read_only(values: np.ndarray) -> np.ndarray:
    values.flags.writeable = False
    return values


def _read_training_data(path: Path) -> pd.DataFrame:
    try:
        table = ds.dataset(path, format="parquet", partitioning="hive").to_table()
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"cannot read the training data in {path}: {exc}") from exc
    missing = [name for name in _ROW_COLUMNS if name not in table.column_names]
    if missing:
        raise DataError(f"the training data in {path} lacks the column(s) {', '.join(missing)}")
    frame = table.select(list(_ROW_COLUMNS)).to_pandas()
    if not frame[USER_COLUMN].is_unique:
        raise DataError(f"the training data in {path} holds more than one row for some user")
    frame[FLAG_COLUMN] = frame[FLAG_COLUMN].astype("int64")
    return frame


def _population(run_id: str, frame: pd.DataFrame) -> FeaturesResponse:
    stats = []
    for feature in FEATURES:
        values = frame[feature.name].to_numpy(dtype="float64")
        empty = values.size == 0
        stats.append(FeaturePopulation(
            name=feature.name, definition=feature.definition, unit=feature.unit,
            mean=0.0 if empty else float(values.mean()), std=0.0 if empty else float(values.std()),
            min=0.0 if empty else float(values.min()), max=0.0 if empty else float(values.max()),
        ))
    return FeaturesResponse(run_id=run_id, users=len(frame), features=stats)


def _epoch(generated_at: str) -> float:
    try:
        moment = datetime.fromisoformat(generated_at)
    except ValueError as exc:
        raise DataError(f"the report's generated_at {generated_at!r} is not ISO-8601") from exc
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


class DataStore:
    """Holds the current :data:`State` of an output path and reloads it when a new run is published.

    A run that fails to load (the state becomes :class:`NoData` with the reason) is tried again when its
    report or the link target changes. ``clock`` is injectable so tests can step time; ``reload_interval=0``
    checks on every call.
    """

    def __init__(self, data_dir: Path, *, reload_interval: float = RELOAD_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.data_dir = Path(data_dir)
        self.reload_interval = reload_interval
        self.loads: dict[str, int] = {"ok": 0, "error": 0}
        self._clock = clock
        self._lock = threading.Lock()
        self._signature: Signature = _NEVER_LOADED
        self._state: State = NoData("not loaded yet")
        self._checked_at = clock()
        with self._lock:
            self._refresh()

    def due(self) -> bool:
        """Whether the next :meth:`current` will look at the disk."""
        return self._clock() - self._checked_at >= self.reload_interval

    def peek(self) -> State:
        """The loaded state, without checking the disk."""
        return self._state

    def current(self) -> State:
        """The state to answer a request from, reloading first when a new run was published."""
        if not self.due():
            return self._state
        if not self._lock.acquire(blocking=False):
            return self._state  # another request is loading; answer from the previous snapshot meanwhile
        try:
            if self.due():
                self._refresh()
        finally:
            self._lock.release()
        return self._state

    def _refresh(self) -> None:
        self._checked_at = self._clock()
        run_dir, signature = self._signature_now()
        if signature == self._signature:
            return
        self._signature = signature
        if signature is None:
            self._state = NoData(f"no {REPORT_FILE} under {self.data_dir}: no run has been published there")
            log.warning("no training data to serve: %s", self._state.reason)
            return
        try:
            snapshot = load_snapshot(run_dir)
        except DataError as exc:
            self.loads["error"] += 1
            self._state = NoData(str(exc))
            log.warning("cannot serve %s: %s", run_dir, exc)
            return
        self.loads["ok"] += 1
        self._state = snapshot
        log.info("serving run %s (%d users, %d anomalous) from %s", snapshot.run_id, snapshot.users,
                 snapshot.report.anomalous_users, run_dir)

    def _signature_now(self) -> tuple[Path, Signature]:
        run_dir = Path(os.path.realpath(self.data_dir))
        try:
            stat = (run_dir / REPORT_FILE).stat()
        except OSError:
            return run_dir, None
        return run_dir, (str(run_dir), stat.st_ino, stat.st_mtime_ns, stat.st_size)

