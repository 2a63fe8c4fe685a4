"""Saving a fitted detector to a file and loading it back, safely: skops, never pickle.

A model file is a skops archive (a zip of JSON plus NumPy arrays; ``unzip -p model.skops schema.json`` shows
it) holding the risk transform's constants, the scikit-learn model, the rare-event test's rates, the score
calibration (the fit sample's sorted raw outlyingness), the threshold, the feature list and the versions it was
fitted with. Loading refuses any type outside a fixed allow-list instead of executing it, so a tampered file
cannot run code, and refuses a model fitted on other features than this version's detector uses:

    >>> digest = save_model(detector, Path("models/nightly.skops"))
    >>> detector = load_model(Path("models/nightly.skops"))      # detector.info.sha256 == digest

The file is written to a temporary name and renamed into place, so a reader never sees half of one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from streamguard.contracts.features import MODEL_FEATURE_COLUMNS, RARE_EVENT_COLUMNS
from streamguard.detect.fit import FittedDetector, ModelInfo
from streamguard.detect.rare import RareEventTest
from streamguard.detect.risk import RiskTransform
from streamguard.errors import DetectionError

log = logging.getLogger(__name__)

MODEL_KIND = "streamguard-detector"
# 2: the rare-event test (streamguard.detect.rare) and its counts; a format-1 file lacks them.
MODEL_FORMAT = 2
# The only types a model file may hold beyond what skops trusts by default (builtins, NumPy arrays).
ALLOWED_TYPES: frozenset[str] = frozenset({
    "sklearn.ensemble._iforest.IsolationForest",
    "sklearn.tree._classes.ExtraTreeRegressor",
    "sklearn.tree._tree.Tree",
    "sklearn.cluster._kmeans.KMeans",
    "numpy.dtype",
    "numpy.ndarray",
    "numpy.float64",
    "numpy.int64",
    "numpy.random.mtrand.RandomState",
    "builtins.slice",
})


def save_model(detector: FittedDetector, path: Path) -> str:
    """Write ``detector`` to ``path`` (created with its folder; replaced atomically); return the file's SHA-256."""
    import skops.io  # noqa: PLC0415 - only saving or loading a model needs it

    document = {
        "kind": MODEL_KIND, "format": MODEL_FORMAT, "algorithm": detector.algorithm,
        "transform": detector.transform.to_dict(), "model": detector.model, "centroids": detector.centroids,
        "rare": detector.rare.to_dict(), "calibration": detector.calibration, "threshold": detector.threshold,
        "threshold_rule": detector.threshold_rule, "raw_threshold": detector.raw_threshold,
        "params": dict(detector.params), "fitted_at": detector.info.fitted_at,
        "rows_fitted": detector.info.rows_fitted, "sampled": detector.info.sampled,
        "versions": dict(detector.info.versions),
    }
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        os.close(handle)
        try:
            skops.io.dump(document, temporary, compression=zipfile.ZIP_DEFLATED)
            digest = _sha256(Path(temporary))
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
    except OSError as exc:
        raise DetectionError(f"cannot write the model to {path}: {exc.strerror or exc}") from exc
    log.info("model saved to %s (sha256 %s)", path, digest[:12])
    return digest


def load_model(path: Path) -> FittedDetector:
    """Read a model file written by :func:`save_model`; DetectionError when it is missing, foreign or unsafe."""
    import skops.io  # noqa: PLC0415

    path = Path(path)
    try:
        digest = _sha256(path)
        untrusted = set(skops.io.get_untrusted_types(file=path))
    except (OSError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise DetectionError(f"cannot read the model {path}: {exc}") from exc
    refused = sorted(untrusted - ALLOWED_TYPES)
    if refused:
        raise DetectionError(f"refusing the model {path}: it holds type(s) a StreamGuard model never holds "
                             f"({', '.join(refused)})")
    try:
        document: Any = skops.io.load(path, trusted=sorted(untrusted))
    except Exception as exc:  # skops raises many kinds on a corrupt archive
        raise DetectionError(f"cannot load the model {path}: {exc}") from exc
    if not isinstance(document, dict) or document.get("kind") != MODEL_KIND:
        raise DetectionError(f"{path} is not a StreamGuard model")
    if document.get("format") != MODEL_FORMAT:
        raise DetectionError(f"{path} has model format {document.get('format')!r}; this version reads "
                             f"{MODEL_FORMAT}")
    try:
        detector = FittedDetector(
            algorithm=str(document["algorithm"]), transform=RiskTransform.from_dict(document["transform"]),
            model=document["model"], centroids=document["centroids"], rare=RareEventTest.from_dict(document["rare"]),
            calibration=np.asarray(document["calibration"], dtype=np.float64),
            threshold=float(document["threshold"]), threshold_rule=document["threshold_rule"],
            raw_threshold=float(document["raw_threshold"]), params=dict(document["params"]),
            info=ModelInfo(source="loaded", fitted_at=str(document["fitted_at"]),
                           rows_fitted=int(document["rows_fitted"]), sampled=bool(document["sampled"]),
                           versions=dict(document["versions"]), sha256=digest, path=str(path)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DetectionError(f"the model {path} is incomplete: {exc}") from exc
    _check_features(detector, path)
    _warn_on_version_change(detector, path)
    return detector


def saved(detector: FittedDetector, digest: str, path: Path) -> FittedDetector:
    """``detector`` recording that it was saved as ``path`` with SHA-256 ``digest``."""
    return replace(detector, info=replace(detector.info, sha256=digest, path=str(path)))


def _check_features(detector: FittedDetector, path: Path) -> None:
    """A model reads the features it was fitted on; a version whose registry defines others would score it wrongly."""
    expected = (MODEL_FEATURE_COLUMNS, RARE_EVENT_COLUMNS)
    found = (detector.feature_columns, detector.rare.columns)
    if found != expected:
        raise DetectionError(
            f"the model {path} was fitted on other features than this version's detector uses "
            f"(model features {', '.join(found[0])}; rare-event counts {', '.join(found[1]) or 'none'}; this "
            f"version: {', '.join(expected[0])}; {', '.join(expected[1]) or 'none'}): fit a new one (--save-model)")


def _warn_on_version_change(detector: FittedDetector, path: Path) -> None:
    import sklearn  # noqa: PLC0415

    fitted_with = detector.info.versions.get("scikit_learn")
    if fitted_with and fitted_with != sklearn.__version__:
        log.warning("the model %s was fitted with scikit-learn %s, this is %s: its scores may differ slightly",
                    path, fitted_with, sklearn.__version__)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
