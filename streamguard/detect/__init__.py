"""Unsupervised, direction-aware anomaly detection on the per-user feature table, engine-free (numpy,
scikit-learn, pandas).

Every engine does the same three things: pull the fit sample with :func:`fit_sample_sql`, fit with
:func:`fit_detector` (or load a saved model), and score its rows with :meth:`FittedDetector.score_pandas`
(Spark on the executors in ``mapInPandas``, the embedded engine in-process):

    >>> sample = engine_sql(fit_sample_sql("features", detector_inputs(config), config.max_fit_rows))
    >>> detector = fit_detector(sample, config)
    >>> scored = detector.score_pandas(features)          # + anomaly_score, is_anomaly
    >>> save_model(detector, Path("model.skops")); load_model(Path("model.skops"))

The fit sample is the ``max_fit_rows`` users with the smallest SHA-256 of ``user`` (then by user), which both
engines compute the same way and which depends only on the set of users, not on partitioning; the model is fitted
in user order.

Three steps turn a user's features into a verdict:

1. :mod:`~streamguard.detect.risk`: each model feature becomes its deviation *in the risky direction the
   feature registry declares*, in robust standard deviations, clipped at 0 on the safe side. A user who is
   unusual only by being safer than the rest lands on the origin with the typical users.
2. Isolation Forest (or K-Means distance to the nearest large cluster) on those deviations gives a raw
   outlyingness; a user without any risky deviation gets 0.
3. ``anomaly_score`` is calibrated against the fit sample: the share of it whose raw outlyingness is lower or the
   same (0..1, 1 = beyond every fitted user), so a score means the same in every run one model scores.
   ``is_anomaly`` is 1 above the threshold, in the same units: by default the *outlier rule* (raw outlyingness
   ``outlier_mads`` robust standard deviations above the fit sample's median), which flags no one in a
   population without outliers; with ``contamination`` set, the fixed share ``1 - contamination``.
"""

from streamguard.detect.fit import (
    DetectorSummary,
    FittedDetector,
    ModelInfo,
    detector_inputs,
    fit_detector,
    fit_sample_sql,
)
from streamguard.detect.risk import SUPPORT, RiskTransform
from streamguard.detect.settings import (
    ALGORITHMS,
    DEFAULT_ALGORITHM,
    DEFAULT_KMEANS_CLUSTERS,
    DEFAULT_MAX_FIT_ROWS,
    DEFAULT_N_ESTIMATORS,
    DEFAULT_OUTLIER_MADS,
    DEFAULT_RANDOM_STATE,
    KMEANS_N_INIT,
    Algorithm,
    DetectorConfig,
)
from streamguard.detect.store import load_model, save_model, saved

__all__ = [
    "ALGORITHMS", "DEFAULT_ALGORITHM", "DEFAULT_KMEANS_CLUSTERS", "DEFAULT_MAX_FIT_ROWS", "DEFAULT_N_ESTIMATORS",
    "DEFAULT_OUTLIER_MADS", "DEFAULT_RANDOM_STATE", "KMEANS_N_INIT", "SUPPORT", "Algorithm", "DetectorConfig",
    "DetectorSummary", "FittedDetector", "ModelInfo", "RiskTransform", "detector_inputs", "fit_detector",
    "fit_sample_sql", "load_model", "save_model", "saved",
]
