"""Unsupervised anomaly detection on the per-user feature table, engine-free (numpy, scikit-learn, pandas).

Every engine does the same three things: pull the fit sample with :func:`fit_sample_sql`, fit with
:func:`fit_detector`, and score its rows with :meth:`FittedDetector.score_pandas` (Spark on the executors in
``mapInPandas``, the embedded engine in-process):

    >>> sample = engine_sql(fit_sample_sql("features", config.feature_columns, config.max_fit_rows))
    >>> detector = fit_detector(sample, config)
    >>> scored = detector.score_pandas(features)          # + anomaly_score, is_anomaly

The fit sample is the ``max_fit_rows`` users with the smallest SHA-256 of ``user`` (then by user), which both
engines compute the same way and which depends only on the set of users, not on partitioning; the model is fitted
in user order. Features are standardised with a ``StandardScaler`` fitted on the same sample.

``anomaly_score`` is a double in [0, 1], 1 the most anomalous: the raw outlyingness (Isolation Forest's
``-score_samples``, or K-Means' distance to the nearest centroid of a large cluster) rescaled with the minimum
and maximum seen on the fit sample, then clipped, so a given row always gets the same score for a given fit.
``is_anomaly`` (int 0/1) is 1 above the threshold set by ``contamination``: Isolation Forest's own ``predict``
threshold, or for K-Means the ``1 - contamination`` quantile of the fit sample's distances.

K-Means spends centroids on tight groups of outliers, which would then sit at distance 0 from "their"
centroid. Clusters holding less than ``contamination`` of the fit sample are therefore not treated as normal
behaviour: distances are measured to the centroids of the other (large) clusters only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np
import pandas as pd

from streamguard.contracts.columns import FLAG_COLUMN, SCORE_COLUMN, USER_COLUMN
from streamguard.contracts.features import MODEL_FEATURE_COLUMNS
from streamguard.errors import DetectionError

if TYPE_CHECKING:
    from sklearn.cluster import KMeans
    from sklearn.ensemble import IsolationForest
    from sklearn.preprocessing import StandardScaler

Algorithm = Literal["isolation_forest", "kmeans"]
ALGORITHMS: tuple[str, ...] = ("isolation_forest", "kmeans")

DEFAULT_ALGORITHM: Algorithm = "isolation_forest"
# The share of users expected to be anomalous; it sets the threshold behind is_anomaly. 10% flags one user in
# ten for an analyst's review; lower it on large populations where compromised accounts are rarer.
DEFAULT_CONTAMINATION = 0.10
DEFAULT_N_ESTIMATORS = 200
DEFAULT_RANDOM_STATE = 42
DEFAULT_MAX_FIT_ROWS = 100_000
DEFAULT_KMEANS_CLUSTERS = 4
KMEANS_N_INIT = 10


@dataclass(frozen=True, kw_only=True)
class DetectorConfig:
    """How to fit the detector. ``contamination`` is the expected anomalous share, in (0, 0.5].

    ``max_fit_rows`` bounds the sample pulled to the driver for fitting; ``kmeans_clusters`` is used only by
    ``algorithm="kmeans"`` (capped at the number of distinct rows in the sample); ``n_estimators`` only by
    ``"isolation_forest"``; ``feature_columns`` are the model inputs, in order.
    """

    algorithm: Algorithm = DEFAULT_ALGORITHM
    contamination: float = DEFAULT_CONTAMINATION
    n_estimators: int = DEFAULT_N_ESTIMATORS
    random_state: int = DEFAULT_RANDOM_STATE
    max_fit_rows: int = DEFAULT_MAX_FIT_ROWS
    kmeans_clusters: int = DEFAULT_KMEANS_CLUSTERS
    feature_columns: tuple[str, ...] = MODEL_FEATURE_COLUMNS

    def __post_init__(self) -> None:
        problems = []
        if self.algorithm not in ALGORITHMS:
            problems.append(f"algorithm must be one of {', '.join(ALGORITHMS)}, not {self.algorithm!r}")
        if not 0.0 < self.contamination <= 0.5:
            problems.append(f"contamination must be in (0, 0.5], not {self.contamination}")
        if self.n_estimators < 1:
            problems.append(f"n_estimators must be at least 1, not {self.n_estimators}")
        if self.max_fit_rows < 2:
            problems.append(f"max_fit_rows must be at least 2, not {self.max_fit_rows}")
        if self.kmeans_clusters < 1:
            problems.append(f"kmeans_clusters must be at least 1, not {self.kmeans_clusters}")
        if not self.feature_columns or len(set(self.feature_columns)) != len(self.feature_columns):
            problems.append("feature_columns must be a non-empty sequence of distinct names")
        if problems:
            raise DetectionError("invalid detector config: " + "; ".join(problems))


@dataclass(frozen=True, kw_only=True)
class DetectorSummary:
    """What the report says about the fitted model. ``threshold`` is in ``anomaly_score`` units."""

    algorithm: str
    params: Mapping[str, Any]
    feature_columns: tuple[str, ...]
    rows_fitted: int
    sampled: bool
    threshold: float
    raw_threshold: float
    raw_min: float
    raw_max: float
    anomalies_in_fit: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (lists instead of tuples)."""
        data = asdict(self)
        data["params"] = dict(self.params)
        data["feature_columns"] = list(self.feature_columns)
        return data


@dataclass(frozen=True, kw_only=True)
class FittedDetector:
    """A fitted scaler and model plus the constants that turn raw outlyingness into a score and a flag.

    ``score_pandas`` scores a pandas frame holding the feature columns, e.g. one user's row in the API.
    """

    feature_columns: tuple[str, ...]
    scaler: StandardScaler
    model: IsolationForest | KMeans
    centroids: np.ndarray | None = field(default=None, repr=False)
    raw_min: float
    raw_max: float
    raw_threshold: float
    summary: DetectorSummary = field(repr=False)

    def raw_scores(self, frame: pd.DataFrame) -> np.ndarray:
        """Raw outlyingness of each row, higher meaning more anomalous."""
        values = frame.loc[:, list(self.feature_columns)].to_numpy(dtype=np.float64, na_value=np.nan)
        # A missing or infinite value is taken as the fit sample's mean, i.e. 0 after standardising, so one
        # bad cell neither fails the whole scoring job nor pushes the row to an extreme.
        bad = ~np.isfinite(values)
        if bad.any():
            values = np.where(bad, self.scaler.mean_, values)
        standardised = self.scaler.transform(values)
        if self.summary.algorithm == "isolation_forest":
            return -self.model.score_samples(standardised)
        return _nearest_distance(standardised, self.centroids)

    def score_pandas(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Return ``frame`` with ``anomaly_score`` (float64 in [0, 1]) and ``is_anomaly`` (int32, 0/1)."""
        raw = self.raw_scores(frame)
        return frame.assign(
            **{
                SCORE_COLUMN: _normalise(raw, self.raw_min, self.raw_max),
                FLAG_COLUMN: (raw > self.raw_threshold).astype(np.int32),
            }
        )


def fit_sample_sql(features: str, columns: tuple[str, ...], max_rows: int) -> str:
    """The query both engines run for the fit sample: ``max_rows + 1`` rows (the extra one tells "sampled").

    Written in Spark SQL; the embedded engine defines ``sha2`` for DuckDB.
    """
    selected = ", ".join(f"CAST({name} AS DOUBLE) AS {name}" for name in columns)
    return (f"SELECT {USER_COLUMN}, {selected} FROM {features} "
            f"ORDER BY sha2({USER_COLUMN}, 256), {USER_COLUMN} LIMIT {max_rows + 1}")


def fit_detector(rows: pd.DataFrame, config: DetectorConfig) -> FittedDetector:
    """Fit the scaler and model of ``config.algorithm`` on the rows :func:`fit_sample_sql` returned.

    Raises ``DetectionError`` when a feature column is missing, when the table has fewer than two users, or when
    the sample holds a missing or infinite feature value.
    """
    columns = config.feature_columns
    missing = [name for name in (USER_COLUMN, *columns) if name not in rows.columns]
    if missing:
        raise DetectionError(f"the feature table lacks the column(s) {', '.join(missing)}")
    sampled = len(rows) > config.max_fit_rows
    # The model depends on row order, so fit in user order rather than in hash order.
    sample = rows.iloc[: config.max_fit_rows].sort_values(USER_COLUMN, kind="stable", ignore_index=True)
    if len(sample) == 0:
        raise DetectionError("cannot fit a detector: the feature table is empty")
    if len(sample) < 2:
        raise DetectionError(f"cannot fit a detector on {len(sample)} user; at least 2 are needed")
    values = sample.loc[:, list(columns)].to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(values)
    if not finite.all():
        bad = [name for name, ok in zip(columns, finite.all(axis=0), strict=True) if not ok]
        raise DetectionError(f"feature column(s) {', '.join(bad)} hold missing or infinite values")

    # scikit-learn (and SciPy under it) takes a second to import: only a run that fits a model pays for it.
    from sklearn.preprocessing import StandardScaler  # noqa: PLC0415

    # StandardScaler leaves a zero-variance column at scale 1, so a constant feature becomes 0 instead of NaN.
    scaler = StandardScaler().fit(values)
    standardised = scaler.transform(values)
    fit_model = _fit_isolation_forest if config.algorithm == "isolation_forest" else _fit_kmeans
    try:
        fit = fit_model(standardised, config)
    except ValueError as exc:
        raise DetectionError(f"cannot fit {config.algorithm}: {exc}") from exc

    raw, raw_threshold = fit.raw, fit.raw_threshold
    raw_min, raw_max = float(raw.min()), float(raw.max())
    summary = DetectorSummary(
        algorithm=config.algorithm,
        params=fit.params,
        feature_columns=columns,
        rows_fitted=len(sample),
        sampled=sampled,
        threshold=float(_normalise(np.array([raw_threshold]), raw_min, raw_max)[0]),
        raw_threshold=raw_threshold,
        raw_min=raw_min,
        raw_max=raw_max,
        anomalies_in_fit=int((raw > raw_threshold).sum()),
    )
    return FittedDetector(
        feature_columns=columns,
        scaler=scaler,
        model=fit.model,
        centroids=fit.centroids,
        raw_min=raw_min,
        raw_max=raw_max,
        raw_threshold=raw_threshold,
        summary=summary,
    )


class _Fit(NamedTuple):
    model: IsolationForest | KMeans
    centroids: np.ndarray | None
    params: dict[str, Any]
    raw: np.ndarray
    raw_threshold: float


def _fit_isolation_forest(standardised: np.ndarray, config: DetectorConfig) -> _Fit:
    from sklearn.ensemble import IsolationForest  # noqa: PLC0415

    model = IsolationForest(
        n_estimators=config.n_estimators,
        contamination=config.contamination,
        random_state=config.random_state,
    ).fit(standardised)
    params = {
        "contamination": config.contamination,
        "n_estimators": config.n_estimators,
        "max_samples": int(model.max_samples_),
        "random_state": config.random_state,
        "max_fit_rows": config.max_fit_rows,
    }
    # predict() flags score_samples < offset_, i.e. -score_samples > -offset_.
    return _Fit(model, None, params, -model.score_samples(standardised), float(-model.offset_))


def _fit_kmeans(standardised: np.ndarray, config: DetectorConfig) -> _Fit:
    # More clusters than distinct points makes sklearn warn and leave clusters empty.
    clusters = min(config.kmeans_clusters, len(np.unique(standardised, axis=0)))
    from sklearn.cluster import KMeans  # noqa: PLC0415

    model = KMeans(n_clusters=clusters, n_init=KMEANS_N_INIT, random_state=config.random_state).fit(
        standardised
    )
    sizes = np.bincount(model.labels_, minlength=clusters)
    large = sizes >= config.contamination * len(standardised)
    # With many clusters every one may be small; then none is singled out.
    centroids = model.cluster_centers_[large] if large.any() else model.cluster_centers_
    distances = _nearest_distance(standardised, centroids)
    params = {
        "contamination": config.contamination,
        "kmeans_clusters": config.kmeans_clusters,
        "clusters_fitted": clusters,
        "large_clusters": len(centroids),
        "n_init": KMEANS_N_INIT,
        "random_state": config.random_state,
        "max_fit_rows": config.max_fit_rows,
    }
    threshold = float(np.quantile(distances, 1.0 - config.contamination))
    return _Fit(model, centroids, params, distances, threshold)


def _nearest_distance(points: np.ndarray, centroids: np.ndarray | None) -> np.ndarray:
    if centroids is None:
        raise DetectionError("a K-Means detector needs its reference centroids")
    return np.linalg.norm(points[:, np.newaxis, :] - centroids[np.newaxis, :, :], axis=2).min(axis=1)


def _normalise(raw: np.ndarray, low: float, high: float) -> np.ndarray:
    span = high - low
    if not math.isfinite(span) or span <= 0.0:
        return np.zeros(len(raw), dtype=np.float64)
    return np.clip((raw - low) / span, 0.0, 1.0)
