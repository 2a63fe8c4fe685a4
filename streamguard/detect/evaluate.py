"""How well a run's flags match the ground truth the seeder wrote: precision, recall, F1, PR-AUC and more.

    >>> result = evaluate_run(Path("out/latest"), load_truth(default_truth_path("events")))
    >>> result.precision, result.recall, result.recall_by_behaviour["ip_hopping"]

A positive is an injected anomalous user (``GroundTruth.anomalies``) that the run's training data holds: a user
with no event in the slice cannot be found and is listed under ``absent`` instead of counting as missed. PR-AUC is
the average precision of the ranking by ``anomaly_score`` (ties ranked together), independent of the threshold.
``quiet_flagged`` lists the ground truth's quiet users (safer than everyone) that the run flagged: it must be
empty. Undefined figures (precision with nothing flagged, recall with no positive) are None.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from streamguard.contracts.columns import FLAG_COLUMN, SCORE_COLUMN, USER_COLUMN
from streamguard.errors import DataError
from streamguard.export import TRAINING_DATA
from streamguard.report import REPORT_FILE, AnomalyReport
from streamguard.synth.truth import GroundTruth


@dataclass(frozen=True, kw_only=True)
class Miss:
    user: str
    behaviour: str
    anomaly_score: float


@dataclass(frozen=True, kw_only=True)
class FalsePositive:
    user: str
    anomaly_score: float
    quiet: bool


@dataclass(frozen=True, kw_only=True)
class Evaluation:
    """The figures of one run against one ground truth; see the module docs."""

    run_id: str | None
    users: int
    flagged: int
    positives: int
    true_positives: int
    precision: float | None
    recall: float | None
    f1: float | None
    pr_auc: float | None
    recall_by_behaviour: dict[str, float | None]
    false_positives: list[FalsePositive]
    missed: list[Miss]
    absent: list[str]
    quiet_users: int
    quiet_flagged: list[str]
    spread_anomalies: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_scores(data_dir: Path) -> tuple[pd.DataFrame, str | None]:
    """``user``, ``anomaly_score``, ``is_anomaly`` of a run's training data, and its run id (None: no report)."""
    try:
        table = ds.dataset(Path(data_dir) / TRAINING_DATA, format="parquet", partitioning="hive").to_table(
            columns=[USER_COLUMN, SCORE_COLUMN, FLAG_COLUMN])
    except (OSError, pa.ArrowException, ValueError) as exc:
        raise DataError(f"cannot read the training data in {data_dir}: {exc}") from exc
    run_id = None
    report = Path(data_dir) / REPORT_FILE
    if report.exists():
        run_id = AnomalyReport.model_validate_json(report.read_bytes()).run.run_id
    frame = table.to_pandas()
    frame[FLAG_COLUMN] = frame[FLAG_COLUMN].astype(np.int64)
    return frame, run_id


def evaluate_scores(scores: pd.DataFrame, truth: GroundTruth, run_id: str | None = None) -> Evaluation:
    """Compare a frame of ``user``, ``anomaly_score``, ``is_anomaly`` with ``truth``."""
    present = set(scores[USER_COLUMN])
    behaviour = {a.user: a.behaviour for a in truth.anomalies}
    positive = scores[USER_COLUMN].isin(behaviour).to_numpy()
    flagged = scores[FLAG_COLUMN].to_numpy() == 1
    score = scores[SCORE_COLUMN].to_numpy(dtype=np.float64)
    tp = int((positive & flagged).sum())
    precision = tp / int(flagged.sum()) if flagged.any() else None
    recall = tp / int(positive.sum()) if positive.any() else None
    f1 = (2 * precision * recall / (precision + recall) if precision and recall else
          (0.0 if precision is not None and recall is not None else None))
    found = set(scores.loc[positive & flagged, USER_COLUMN])
    by_behaviour: dict[str, float | None] = {}
    for name in sorted(set(behaviour.values())):
        users = [u for u, b in behaviour.items() if b == name and u in present]
        by_behaviour[name] = sum(u in found for u in users) / len(users) if users else None
    quiet = set(truth.quiet_users)
    ordered = scores.assign(truth_positive=positive).sort_values([SCORE_COLUMN, USER_COLUMN],
                                                                 ascending=[False, True])
    return Evaluation(
        run_id=run_id, users=len(scores), flagged=int(flagged.sum()), positives=int(positive.sum()),
        true_positives=tp, precision=precision, recall=recall, f1=f1,
        pr_auc=average_precision(score, positive) if positive.any() else None,
        recall_by_behaviour=by_behaviour,
        false_positives=[FalsePositive(user=row.user, anomaly_score=float(row.anomaly_score), quiet=row.user in quiet)
                         for row in ordered.itertuples() if row.is_anomaly == 1 and not row.truth_positive],
        missed=[Miss(user=row.user, behaviour=behaviour[row.user], anomaly_score=float(row.anomaly_score))
                for row in ordered.itertuples() if row.truth_positive and row.is_anomaly != 1],
        absent=sorted(set(behaviour) - present),
        quiet_users=len(quiet & present),
        quiet_flagged=sorted(set(scores.loc[flagged, USER_COLUMN]) & quiet),
        spread_anomalies=truth.spread_anomalies,
    )


def evaluate_run(data_dir: Path, truth: GroundTruth) -> Evaluation:
    """:func:`evaluate_scores` on the training data of the run published at ``data_dir``."""
    scores, run_id = read_scores(data_dir)
    return evaluate_scores(scores, truth, run_id)


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the precision-recall curve as average precision: sum of (R_k - R_k-1) * P_k over the distinct
    score thresholds, highest first (users with equal scores enter together)."""
    order = np.argsort(-scores, kind="stable")
    ranked, hits = scores[order], positive[order].astype(np.int64)
    last_of_tie = np.r_[ranked[1:] != ranked[:-1], True]
    tp = np.cumsum(hits)[last_of_tie]
    seen = np.arange(1, len(ranked) + 1)[last_of_tie]
    total = int(hits.sum())
    recall = tp / total
    precision = tp / seen
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
