"""How to fit a detector: :class:`DetectorConfig` and its defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from streamguard.contracts.features import MODEL_FEATURE_COLUMNS, RARE_EVENT_COLUMNS
from streamguard.errors import DetectionError

Algorithm = Literal["isolation_forest", "kmeans"]
ALGORITHMS: tuple[str, ...] = ("isolation_forest", "kmeans")

DEFAULT_ALGORITHM: Algorithm = "isolation_forest"
# Flag a user whose raw outlyingness lies this many robust standard deviations (1.4826 x MAD) above the fit
# sample's median. Chosen on seeded populations (bench/QUALITY.md): 4 flags a user of 1,000 on a topic whose
# anomalous events are spread evenly over everyone, 5 misses one of three injected users among 50; 4.5 does neither.
DEFAULT_OUTLIER_MADS = 4.5
# Without a contamination share, K-Means still needs to know which clusters are too small to be "normal".
DEFAULT_SMALL_CLUSTER_SHARE = 0.10
DEFAULT_N_ESTIMATORS = 200
DEFAULT_RANDOM_STATE = 42
# scikit-learn seeds NumPy's legacy RandomState, which takes 0 .. 2**32 - 1; it would reject others only when fitting.
MAX_RANDOM_STATE = 2**32 - 1
DEFAULT_MAX_FIT_ROWS = 100_000
DEFAULT_KMEANS_CLUSTERS = 4
# The rare-event test (streamguard.detect.rare) flags a user whose counts follow the population's rates with this
# chance: 1 user in 500. A family-wise bound (no false flag anywhere in the population with 99% chance, used until
# 2026-12) let through only users with three or more risky events among 10,000 users of 10 events each: recall
# 0.85 at precision 0.99 on u10k (bench/QUALITY.md). At 0.002: 0.91 at 0.98 (seed 42) and 0.92 at 0.98 (seed 7);
# 0.0003 falls back to 0.85, 0.003 starts flagging users of the evenly spread topic.
DEFAULT_RARE_EVENT_ALPHA = 0.002
KMEANS_N_INIT = 10


@dataclass(frozen=True, kw_only=True)
class DetectorConfig:
    """How to fit the detector.

    The threshold behind ``is_anomaly`` is either the outlier rule (``contamination`` None, the default: raw
    outlyingness above the fit sample's median by ``outlier_mads`` robust standard deviations, so a population
    without outliers gets no flag) or a fixed share (``contamination`` in (0, 0.5]: the ``1 - contamination``
    calibrated score, which flags that share of the fit sample whatever it holds).

    ``max_fit_rows`` bounds the sample pulled to the driver for fitting; ``kmeans_clusters`` is used only by
    ``algorithm="kmeans"`` (capped at the number of distinct rows in the sample); ``n_estimators`` only by
    ``"isolation_forest"``; ``feature_columns`` are the model inputs, in order (each needs a ``risk`` direction in
    the feature registry); ``rare_event_columns`` are the counts the rare-event test reads (none: no test) and
    ``rare_event_alpha`` its chance of flagging a user whose counts follow the population's rates.
    """

    algorithm: Algorithm = DEFAULT_ALGORITHM
    contamination: float | None = None
    outlier_mads: float = DEFAULT_OUTLIER_MADS
    n_estimators: int = DEFAULT_N_ESTIMATORS
    random_state: int = DEFAULT_RANDOM_STATE
    max_fit_rows: int = DEFAULT_MAX_FIT_ROWS
    kmeans_clusters: int = DEFAULT_KMEANS_CLUSTERS
    feature_columns: tuple[str, ...] = MODEL_FEATURE_COLUMNS
    rare_event_columns: tuple[str, ...] = RARE_EVENT_COLUMNS
    rare_event_alpha: float = DEFAULT_RARE_EVENT_ALPHA

    def __post_init__(self) -> None:
        from streamguard.contracts.features import FEATURE_BY_NAME  # noqa: PLC0415

        problems = []
        if self.algorithm not in ALGORITHMS:
            problems.append(f"algorithm must be one of {', '.join(ALGORITHMS)}, not {self.algorithm!r}")
        if self.contamination is not None and not 0.0 < self.contamination <= 0.5:
            problems.append(f"contamination must be in (0, 0.5], not {self.contamination}")
        if not self.outlier_mads > 0:
            problems.append(f"outlier_mads must be positive, not {self.outlier_mads}")
        if self.n_estimators < 1:
            problems.append(f"n_estimators must be at least 1, not {self.n_estimators}")
        if not 0 <= self.random_state <= MAX_RANDOM_STATE:
            problems.append(f"random_state must be in 0 .. {MAX_RANDOM_STATE}, not {self.random_state}")
        if self.max_fit_rows < 2:
            problems.append(f"max_fit_rows must be at least 2, not {self.max_fit_rows}")
        if self.kmeans_clusters < 1:
            problems.append(f"kmeans_clusters must be at least 1, not {self.kmeans_clusters}")
        if not self.feature_columns or len(set(self.feature_columns)) != len(self.feature_columns):
            problems.append("feature_columns must be a non-empty sequence of distinct names")
        undirected = [name for name in self.feature_columns
                      if name not in FEATURE_BY_NAME or FEATURE_BY_NAME[name].risk is None]
        if undirected:
            problems.append(f"feature(s) {', '.join(undirected)} declare no risky direction in the registry")
        not_rare = [name for name in self.rare_event_columns
                    if name not in FEATURE_BY_NAME or not FEATURE_BY_NAME[name].rare_events]
        if not_rare:
            problems.append(f"feature(s) {', '.join(not_rare)} are not rare-event counts in the registry")
        if not 0.0 < self.rare_event_alpha < 1.0:
            problems.append(f"rare_event_alpha must be in (0, 1), not {self.rare_event_alpha}")
        if problems:
            raise DetectionError("invalid detector config: " + "; ".join(problems))

    @property
    def small_cluster_share(self) -> float:
        return self.contamination or DEFAULT_SMALL_CLUSTER_SHARE
