"""Saved models: a skops file that loads back to the same scores, and refuses what a model never holds."""

from __future__ import annotations

import fractions
import hashlib
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from streamguard.detect import DetectorConfig, fit_detector, load_model, save_model, saved
from streamguard.detect.store import MODEL_FORMAT, MODEL_KIND
from streamguard.errors import DetectionError
from tests.test_detect import fit_sample, synthetic_rows


@pytest.fixture(scope="module")
def feature_table() -> pd.DataFrame:
    return synthetic_rows()


@pytest.mark.parametrize("algorithm", ["isolation_forest", "kmeans"])
def test_a_saved_model_scores_exactly_as_the_fitted_one(tmp_path: Path, feature_table: pd.DataFrame,
                                                        algorithm: str) -> None:
    config = DetectorConfig(algorithm=algorithm, n_estimators=30)
    fitted = fit_detector(fit_sample(feature_table, config), config)
    path = tmp_path / "models" / "m.skops"
    digest = save_model(fitted, path)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    loaded = load_model(path)
    pd.testing.assert_frame_equal(loaded.score_pandas(feature_table), fitted.score_pandas(feature_table),
                                  check_exact=True)
    assert loaded.threshold == fitted.threshold and loaded.threshold_rule == fitted.threshold_rule
    assert loaded.feature_columns == fitted.feature_columns
    info = loaded.summary().model
    assert info.source == "loaded" and info.sha256 == digest and info.path == str(path)
    assert info.fitted_at == fitted.info.fitted_at and info.rows_fitted == fitted.info.rows_fitted
    assert "scikit_learn" in info.versions
    assert saved(fitted, digest, path).info.sha256 == digest


def test_scores_of_one_model_are_comparable_across_slices(tmp_path: Path, feature_table: pd.DataFrame) -> None:
    config = DetectorConfig(n_estimators=30)
    detector = fit_detector(fit_sample(feature_table, config), config)
    save_model(detector, tmp_path / "m.skops")
    loaded = load_model(tmp_path / "m.skops")
    # A user scored alone, or among others, gets the same score: calibration is fixed by the model.
    whole = loaded.score_pandas(feature_table).set_index("user")["anomaly_score"]
    for user in ("zz-outlier-0", "user-017"):
        alone = loaded.score_pandas(feature_table[feature_table["user"] == user])
        assert alone["anomaly_score"].tolist() == [whole[user]]


def test_the_threshold_can_be_set_by_share_on_a_loaded_model(tmp_path: Path, feature_table: pd.DataFrame) -> None:
    config = DetectorConfig(n_estimators=30)
    save_model(fit_detector(fit_sample(feature_table, config), config), tmp_path / "m.skops")
    shared = load_model(tmp_path / "m.skops").with_share(0.2)
    assert shared.threshold == pytest.approx(0.8) and shared.threshold_rule == "share"


def test_a_model_holding_a_foreign_type_is_refused(tmp_path: Path) -> None:
    import skops.io  # noqa: PLC0415

    path = tmp_path / "evil.skops"
    skops.io.dump({"kind": MODEL_KIND, "format": 1, "model": fractions.Fraction(1, 3)}, path)
    with pytest.raises(DetectionError, match="refusing.*fractions.Fraction"):
        load_model(path)


def test_a_pickle_is_not_a_model_and_is_never_unpickled(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"kind": MODEL_KIND}))
    with pytest.raises(DetectionError, match="cannot read the model"):
        load_model(path)


def test_another_skops_file_is_not_a_model(tmp_path: Path) -> None:
    import skops.io  # noqa: PLC0415

    path = tmp_path / "other.skops"
    skops.io.dump({"weights": np.arange(3)}, path)
    with pytest.raises(DetectionError, match="not a StreamGuard model"):
        load_model(path)


def test_a_missing_model_is_a_detection_error(tmp_path: Path) -> None:
    with pytest.raises(DetectionError, match="cannot read the model"):
        load_model(tmp_path / "absent.skops")


def test_the_model_file_is_an_inspectable_zip(tmp_path: Path, feature_table: pd.DataFrame) -> None:
    config = DetectorConfig(n_estimators=5)
    save_model(fit_detector(fit_sample(feature_table, config), config), tmp_path / "m.skops")
    with zipfile.ZipFile(tmp_path / "m.skops") as archive:
        schema = archive.read("schema.json").decode()
    assert MODEL_KIND in schema and "unique_ips" in schema
    assert not list(tmp_path.glob(".m.skops.*")), "no temporary file left behind"


def test_a_saved_model_keeps_its_rare_event_test(tmp_path: Path, feature_table: pd.DataFrame) -> None:
    frame = feature_table.assign(night_large_file_events=feature_table["user"].map({"user-010": 6.0}).fillna(0.0))
    config = DetectorConfig(n_estimators=20)
    fitted = fit_detector(fit_sample(frame, config), config)
    save_model(fitted, tmp_path / "m.skops")
    loaded = load_model(tmp_path / "m.skops")
    assert loaded.rare.columns == fitted.rare.columns and loaded.rare.cut == fitted.rare.cut
    np.testing.assert_array_equal(loaded.rare.rates, fitted.rare.rates)
    pd.testing.assert_frame_equal(loaded.score_pandas(frame), fitted.score_pandas(frame))
    assert loaded.score_pandas(frame).set_index("user").loc["user-010", "is_anomaly"] == 1


def test_a_model_fitted_on_other_features_is_refused(tmp_path: Path, feature_table: pd.DataFrame) -> None:
    config = DetectorConfig(n_estimators=5, feature_columns=("unique_ips", "failed_auth_rate"))
    save_model(fit_detector(fit_sample(feature_table, config), config), tmp_path / "m.skops")
    with pytest.raises(DetectionError, match="fitted on other features.*fit a new one"):
        load_model(tmp_path / "m.skops")


def test_a_model_of_an_earlier_format_is_refused(tmp_path: Path, feature_table: pd.DataFrame) -> None:
    import skops.io  # noqa: PLC0415

    config = DetectorConfig(n_estimators=5)
    save_model(fit_detector(fit_sample(feature_table, config), config), tmp_path / "m.skops")
    document = skops.io.load(tmp_path / "m.skops", trusted=skops.io.get_untrusted_types(file=tmp_path / "m.skops"))
    document["format"] = 1  # a model saved before the rare-event test: it has none
    del document["rare"]
    skops.io.dump(document, tmp_path / "old.skops")
    assert MODEL_FORMAT == 2
    with pytest.raises(DetectionError, match=f"model format 1; this version reads {MODEL_FORMAT}"):
        load_model(tmp_path / "old.skops")
