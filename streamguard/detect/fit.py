"""Fitting and scoring: :func:`fit_sample_sql`, :func:`fit_detector` and :class:`FittedDetector`."""

from __future__ import annotations

import platform
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np
import pandas as pd

from streamguard.contracts.columns import FLAG_COLUMN, SCORE_COLUMN, USER_COLUMN
from streamguard.detect.rare import EVENTS_COLUMN, RareEventTest
from streamguard.detect.risk import MAD_TO_STD, RiskTransform, input_columns
from streamguard.detect.settings import KMEANS_N_INIT, DetectorConfig
from streamguard.errors import DetectionError

if TYPE_CHECKING:
    from sklearn.cluster import KMeans
    from sklearn.ensemble import IsolationForest

ThresholdRule = Literal["outlier", "share"]


@dataclass(frozen=True, kw_only=True)
class ModelInfo:
    """Where a model comes from: fitted in this run, or loaded from a file (then with its SHA-256)."""

    source: Literal["fitted", "loaded"]
    fitted_at: str
    rows_fitted: int
    sampled: bool
    versions: Mapping[str, str]
    sha256: str | None = None
    path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["versions"] = dict(self.versions)
        return data


@dataclass(frozen=True, kw_only=True)
class DetectorSummary:
    """What the report says about the model; ``threshold`` is in ``anomaly_score`` units."""

    algorithm: str
    params: Mapping[str, Any]
    feature_columns: tuple[str, ...]
    support_columns: tuple[str, ...]
    rows_fitted: int
    sampled: bool
    threshold: float
    threshold_rule: ThresholdRule
    raw_threshold: float
    raw_median: float
    raw_mad: float
    anomalies_in_fit: int
    model: ModelInfo

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (lists instead of tuples)."""
        data = asdict(self)
        data["params"] = dict(self.params)
        data["feature_columns"] = list(self.feature_columns)
        data["support_columns"] = list(self.support_columns)
        data["model"] = self.model.to_dict()
        return data


@dataclass(frozen=True, kw_only=True)
class FittedDetector:
    """A fitted risk transform and model, the calibration of their raw outlyingness, and the flag threshold.

    ``score_pandas`` scores a pandas frame holding the input columns, e.g. one user's row in the API.
    ``calibration`` holds the fit sample's raw outlyingness, sorted: a user's ``anomaly_score`` is the share of
    the fit sample scoring lower or the same, so a score means the same in every run one model scores.
    """

    algorithm: str
    transform: RiskTransform
    model: IsolationForest | KMeans
    centroids: np.ndarray | None = field(default=None, repr=False)
    rare: RareEventTest
    calibration: np.ndarray = field(repr=False)
    threshold: float
    threshold_rule: ThresholdRule
    raw_threshold: float
    params: Mapping[str, Any]
    info: ModelInfo

    @property
    def feature_columns(self) -> tuple[str, ...]:
        return self.transform.columns

    @property
    def input_columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*self.transform.input_columns, *self.rare.input_columns]))

    def raw_scores(self, frame: pd.DataFrame) -> np.ndarray:
        """Raw outlyingness of each row, higher meaning more anomalous; 0 without any risky deviation or rare event."""
        raw = _raw(self.algorithm, self.model, self.centroids, self.transform.transform(frame))
        return self.rare.merge(raw, frame)

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        """The share of the fit sample whose raw outlyingness is lower than or equal to each of ``raw``."""
        return np.searchsorted(self.calibration, raw, side="right").astype(np.float64) / len(self.calibration)

    def score_pandas(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Return ``frame`` with ``anomaly_score`` (float64 in [0, 1]) and ``is_anomaly`` (int32, 0/1)."""
        score = self.calibrate(self.raw_scores(frame))
        return frame.assign(**{SCORE_COLUMN: score, FLAG_COLUMN: self.flags(score)})

    def flags(self, score: np.ndarray) -> np.ndarray:
        """``is_anomaly`` of calibrated scores: 1 above the threshold."""
        return (np.asarray(score) > self.threshold).astype(np.int32)

    def with_share(self, contamination: float) -> FittedDetector:
        """The same model flagging the ``contamination`` share of its fit sample instead."""
        threshold = max(1.0 - contamination, self._floor())
        return replace(self, threshold=threshold, threshold_rule="share",
                       raw_threshold=float(np.quantile(self.calibration, threshold)))

    def summary(self) -> DetectorSummary:
        raw = self.calibration
        median = float(np.median(raw))
        return DetectorSummary(
            algorithm=self.algorithm, params=self.params, feature_columns=self.feature_columns,
            support_columns=tuple(s for s in dict.fromkeys(self.transform.supports) if s),
            rows_fitted=self.info.rows_fitted, sampled=self.info.sampled, threshold=self.threshold,
            threshold_rule=self.threshold_rule, raw_threshold=self.raw_threshold, raw_median=median,
            raw_mad=float(np.median(np.abs(raw - median))),
            anomalies_in_fit=int(self.flags(self.calibrate(raw)).sum()), model=self.info,
        )

    def _floor(self) -> float:
        # The score of a user without any risky deviation: the threshold never goes below it.
        return float(self.calibrate(np.zeros(1))[0])


def fit_sample_sql(features: str, columns: tuple[str, ...], max_rows: int) -> str:
    """The query both engines run for the fit sample: ``max_rows + 1`` rows (the extra one tells "sampled").

    Written in Spark SQL; the embedded engine defines ``sha2`` for DuckDB. ``columns`` are the detector's
    input columns (:attr:`DetectorConfig.input_columns`).
    """
    selected = ", ".join(f"CAST({name} AS DOUBLE) AS {name}" for name in columns)
    return (f"SELECT {USER_COLUMN}, {selected} FROM {features} "
            f"ORDER BY sha2({USER_COLUMN}, 256), {USER_COLUMN} LIMIT {max_rows + 1}")


def detector_inputs(config: DetectorConfig) -> tuple[str, ...]:
    """The columns :func:`fit_detector` reads: the model features, the counts their rates are over, and the
    rare-event counts with the events they are per."""
    rare = (*config.rare_event_columns, EVENTS_COLUMN) if config.rare_event_columns else ()
    return tuple(dict.fromkeys([*input_columns(config.feature_columns), *rare]))


def fit_detector(rows: pd.DataFrame, config: DetectorConfig) -> FittedDetector:
    """Fit the risk transform and the model of ``config.algorithm`` on the rows :func:`fit_sample_sql` returned.

    Raises ``DetectionError`` when a column is missing, when the table has fewer than two users, or when the
    sample holds a missing or infinite value.
    """
    columns = config.feature_columns
    inputs = detector_inputs(config)
    missing = [name for name in (USER_COLUMN, *inputs) if name not in rows.columns]
    if missing:
        raise DetectionError(f"the feature table lacks the column(s) {', '.join(missing)}")
    sampled = len(rows) > config.max_fit_rows
    # The model depends on row order, so fit in user order rather than in hash order.
    sample = rows.iloc[: config.max_fit_rows].sort_values(USER_COLUMN, kind="stable", ignore_index=True)
    if len(sample) == 0:
        raise DetectionError("cannot fit a detector: the feature table is empty")
    if len(sample) < 2:
        raise DetectionError(f"cannot fit a detector on {len(sample)} user; at least 2 are needed")
    finite = np.isfinite(sample.loc[:, list(inputs)].to_numpy(dtype=np.float64, na_value=np.nan))
    if not finite.all():
        bad = [name for name, ok in zip(inputs, finite.all(axis=0), strict=True) if not ok]
        raise DetectionError(f"feature column(s) {', '.join(bad)} hold missing or infinite values")

    transform = RiskTransform.fit(sample, columns)
    risky = transform.transform(sample)
    fit_model = _fit_isolation_forest if config.algorithm == "isolation_forest" else _fit_kmeans
    try:
        fit = fit_model(risky, config)
    except ValueError as exc:
        raise DetectionError(f"cannot fit {config.algorithm}: {exc}") from exc
    raw = _raw(config.algorithm, fit.model, fit.centroids, risky)
    median = float(np.median(raw))
    raw_threshold = median + config.outlier_mads * MAD_TO_STD * float(np.median(np.abs(raw - median)))
    rare = RareEventTest.fit(sample, config.rare_event_columns, alpha=config.rare_event_alpha,
                             raw_at_cut=raw_threshold)
    raw = rare.merge(raw, sample)
    calibration = np.sort(raw)
    import sklearn  # noqa: PLC0415 - loaded by the fit above already

    detector = FittedDetector(
        algorithm=config.algorithm, transform=transform, model=fit.model, centroids=fit.centroids, rare=rare,
        calibration=calibration, threshold=0.0, threshold_rule="outlier", raw_threshold=raw_threshold,
        params={**fit.params, "outlier_mads": config.outlier_mads, "max_fit_rows": config.max_fit_rows,
                "rare_event_columns": list(rare.columns), "rare_event_alpha": config.rare_event_alpha,
                "rare_event_rates": [float(rate) for rate in rare.rates]},
        info=ModelInfo(source="fitted", fitted_at=datetime.now(UTC).isoformat(timespec="seconds"),
                       rows_fitted=len(sample), sampled=sampled,
                       versions={"scikit_learn": sklearn.__version__, "numpy": np.__version__,
                                 "python": platform.python_version()}),
    )
    if config.contamination is not None:
        return detector.with_share(config.contamination)
    # In score units: flagged means more of the fit sample lies at or below the user than at or below the
    # raw threshold; a user without a risky deviation (raw 0) is below it whatever the population.
    threshold = max(float(detector.calibrate(np.array([raw_threshold]))[0]), detector._floor())
    return replace(detector, threshold=threshold)


class _Fit(NamedTuple):
    model: IsolationForest | KMeans
    centroids: np.ndarray | None
    params: dict[str, Any]


def _fit_isolation_forest(risky: np.ndarray, config: DetectorConfig) -> _Fit:
    from sklearn.ensemble import IsolationForest  # noqa: PLC0415 - a second to import; only fitting needs it

    model = IsolationForest(n_estimators=config.n_estimators, random_state=config.random_state).fit(risky)
    params = {"n_estimators": config.n_estimators, "max_samples": int(model.max_samples_),
              "random_state": config.random_state}
    return _Fit(model, None, params)


def _fit_kmeans(risky: np.ndarray, config: DetectorConfig) -> _Fit:
    # More clusters than distinct points makes sklearn warn and leave clusters empty.
    clusters = min(config.kmeans_clusters, len(np.unique(risky, axis=0)))
    from sklearn.cluster import KMeans  # noqa: PLC0415

    model = KMeans(n_clusters=clusters, n_init=KMEANS_N_INIT, random_state=config.random_state).fit(risky)
    sizes = np.bincount(model.labels_, minlength=clusters)
    large = sizes >= config.small_cluster_share * len(risky)
    # With many clusters every one may be small; then none is singled out.
    centroids = model.cluster_centers_[large] if large.any() else model.cluster_centers_
    params = {"kmeans_clusters": config.kmeans_clusters, "clusters_fitted": clusters,
              "large_clusters": len(centroids), "small_cluster_share": config.small_cluster_share,
              "n_init": KMEANS_N_INIT, "random_state": config.random_state}
    return _Fit(model, centroids, params)


def _raw(algorithm: str, model: Any, centroids: np.ndarray | None, risky: np.ndarray) -> np.ndarray:
    if len(risky) == 0:
        return np.zeros(0, dtype=np.float64)
    if algorithm == "isolation_forest":
        raw = -model.score_samples(risky)
    else:
        if centroids is None:
            raise DetectionError("a K-Means detector needs its reference centroids")
        raw = np.linalg.norm(risky[:, np.newaxis, :] - centroids[np.newaxis, :, :], axis=2).min(axis=1)
    # No risky deviation at all: as unremarkable as a user can be, whatever the model thinks of that corner.
    return np.where((risky > 0).any(axis=1), raw, 0.0)
