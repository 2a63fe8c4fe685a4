"""The engine-free detector on pandas feature tables, and the fit sample both engines pull for it."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from streamguard.detect import DetectorConfig, fit_detector, fit_sample_sql
from streamguard.errors import DetectionError
from streamguard.features import FEATURE_COLUMNS, MODEL_FEATURE_COLUMNS

N_NORMAL = 200
OUTLIERS = ("zz-outlier-0", "zz-outlier-1", "zz-outlier-2", "zz-outlier-3", "zz-outlier-4")

# The synthetic outliers lie on every feature; the default model set leaves volume features out.
ALL_FEATURES = {"feature_columns": FEATURE_COLUMNS, "contamination": 0.05}


def synthetic_rows() -> pd.DataFrame:
    """200 users in four behavioural groups of unit spread, and five users 12 sigma out on five features."""
    rng = np.random.default_rng(7)
    width = len(FEATURE_COLUMNS)
    rows = []
    for index in range(N_NORMAL):
        centre = np.zeros(width)
        centre[index % 4] = 6.0
        rows.append((f"user-{index:03d}", *(centre + rng.normal(0.0, 1.0, width)).tolist()))
    for index, user in enumerate(OUTLIERS):
        values = rng.normal(0.0, 1.0, width)
        values[5 + 4 * index : 10 + 4 * index] += 12.0
        rows.append((user, *values.tolist()))
    return pd.DataFrame(rows, columns=["user", *FEATURE_COLUMNS])


def sha256_order(users: pd.Series) -> list[str]:
    """Users in the fit sample's order: by the SHA-256 of the UTF-8 name (hex), then by name."""
    return sorted(users, key=lambda user: (hashlib.sha256(user.encode("utf-8")).hexdigest(), user))


def fit_sample(frame: pd.DataFrame, config: DetectorConfig) -> pd.DataFrame:
    """What ``fit_sample_sql`` returns for ``frame``, computed in pandas: ``max_fit_rows + 1`` rows, hash order."""
    order = sha256_order(frame["user"])[: config.max_fit_rows + 1]
    columns = ["user", *config.feature_columns]
    return frame.set_index("user").loc[order].reset_index().loc[:, columns].astype(
        dict.fromkeys(config.feature_columns, np.float64)
    )


def fit_and_score(frame: pd.DataFrame, config: DetectorConfig) -> pd.DataFrame:
    return fit_detector(fit_sample(frame, config), config).score_pandas(frame)


def scores_by_user(scored: pd.DataFrame) -> dict[str, tuple[float, int]]:
    return {
        user: (float(value), int(flag))
        for user, value, flag in zip(scored["user"], scored["anomaly_score"], scored["is_anomaly"], strict=True)
    }


@pytest.fixture(scope="module")
def feature_table() -> pd.DataFrame:
    return synthetic_rows()


@pytest.mark.parametrize("algorithm", ["isolation_forest", "kmeans"])
def test_extreme_users_score_highest_and_are_flagged(feature_table: pd.DataFrame, algorithm: str) -> None:
    scored = scores_by_user(fit_and_score(feature_table, DetectorConfig(**ALL_FEATURES, algorithm=algorithm)))
    assert len(scored) == N_NORMAL + len(OUTLIERS)
    assert all(0.0 <= value <= 1.0 for value, _ in scored.values())
    top = sorted(scored, key=lambda user: scored[user][0], reverse=True)[: len(OUTLIERS)]
    assert sorted(top) == list(OUTLIERS)
    assert all(scored[user][1] == 1 for user in OUTLIERS)
    flagged = sum(flag for _, flag in scored.values())
    assert len(OUTLIERS) <= flagged <= math.ceil(0.05 * len(scored)) + 1


def test_output_keeps_every_input_column_and_adds_score_and_flag(feature_table: pd.DataFrame) -> None:
    scored = fit_and_score(feature_table, DetectorConfig(**ALL_FEATURES))
    assert list(scored.columns) == [*feature_table.columns, "anomaly_score", "is_anomaly"]
    assert scored["anomaly_score"].dtype == np.float64
    assert scored["is_anomaly"].dtype == np.int32
    assert set(scored["is_anomaly"]) <= {0, 1}
    pd.testing.assert_frame_equal(scored.loc[:, list(feature_table.columns)], feature_table)


@pytest.mark.parametrize("algorithm", ["isolation_forest", "kmeans"])
def test_same_random_state_gives_the_same_scores(feature_table: pd.DataFrame, algorithm: str) -> None:
    config = DetectorConfig(**ALL_FEATURES, algorithm=algorithm, random_state=3)
    first = scores_by_user(fit_and_score(feature_table, config))
    shuffled = feature_table.sample(frac=1.0, random_state=11, ignore_index=True)
    # The sample arrives in hash order whatever the input order; the detector fits it in user order.
    second = scores_by_user(fit_detector(fit_sample(shuffled, config).iloc[::-1], config).score_pandas(shuffled))
    assert first == second


def test_summary_describes_the_fit_and_matches_the_flags(feature_table: pd.DataFrame) -> None:
    config = DetectorConfig(feature_columns=FEATURE_COLUMNS, contamination=0.1, n_estimators=50)
    detector = fit_detector(fit_sample(feature_table, config), config)
    summary = detector.summary
    assert summary.algorithm == "isolation_forest"
    assert summary.rows_fitted == N_NORMAL + len(OUTLIERS)
    assert summary.sampled is False
    assert summary.params["n_estimators"] == 50
    assert summary.params["contamination"] == 0.1
    assert 0.0 < summary.threshold < 1.0
    assert summary.raw_min <= summary.raw_threshold <= summary.raw_max
    assert int(detector.score_pandas(feature_table)["is_anomaly"].sum()) == summary.anomalies_in_fit
    assert summary.to_dict()["feature_columns"] == list(FEATURE_COLUMNS)


def test_fit_sample_is_bounded_and_independent_of_row_order(feature_table: pd.DataFrame) -> None:
    config = DetectorConfig(**ALL_FEATURES, max_fit_rows=50)
    sample = fit_sample(feature_table, config)
    assert len(sample) == 51
    summary = fit_detector(sample, config).summary
    assert summary.rows_fitted == 50
    assert summary.sampled is True
    shuffled = feature_table.sample(frac=1.0, random_state=5, ignore_index=True)
    assert fit_detector(fit_sample(shuffled, config), config).summary == summary


def test_scoring_in_batches_equals_scoring_at_once(feature_table: pd.DataFrame) -> None:
    # Spark scores on the executors one Arrow batch at a time; the split must not change a row's score.
    detector = fit_detector(fit_sample(feature_table, DetectorConfig(**ALL_FEATURES, algorithm="kmeans")),
                            DetectorConfig(**ALL_FEATURES, algorithm="kmeans"))
    at_once = detector.score_pandas(feature_table)
    in_batches = pd.concat(
        [detector.score_pandas(feature_table.iloc[start : start + 37]) for start in range(0, len(feature_table), 37)]
    )
    pd.testing.assert_frame_equal(in_batches, at_once)


def test_kmeans_does_not_treat_a_small_tight_cluster_as_normal() -> None:
    rng = np.random.default_rng(3)
    columns = ("a", "b")
    normal = [(f"n{index:03d}", *rng.normal(0.0, 1.0, 2)) for index in range(150)]
    # Four identical far-away users: K-Means gives them a centroid of their own, at distance 0.
    tight = [(f"t{index}", 25.0, 25.0) for index in range(4)]
    frame = pd.DataFrame([*normal, *tight], columns=["user", *columns])
    config = DetectorConfig(algorithm="kmeans", kmeans_clusters=4, contamination=0.05, feature_columns=columns)
    detector = fit_detector(fit_sample(frame, config), config)
    assert detector.summary.params["clusters_fitted"] == 4
    assert detector.summary.params["large_clusters"] < 4
    scored = scores_by_user(detector.score_pandas(frame))
    assert all(scored[user] == (1.0, 1) for user, *_ in tight)
    assert max(scored[user][0] for user, *_ in normal) < 1.0


def test_constant_feature_does_not_break_scaling(feature_table: pd.DataFrame) -> None:
    constant = feature_table.assign(**{FEATURE_COLUMNS[0]: 1.0})
    scored = scores_by_user(fit_and_score(constant, DetectorConfig(**ALL_FEATURES)))
    assert all(0.0 <= value <= 1.0 for value, _ in scored.values())
    assert max(scored, key=lambda user: scored[user][0]) in OUTLIERS


def test_a_bad_cell_at_scoring_time_is_taken_as_the_mean(feature_table: pd.DataFrame) -> None:
    config = DetectorConfig(**ALL_FEATURES)
    detector = fit_detector(fit_sample(feature_table, config), config)
    broken = feature_table.head(3).copy()
    broken.loc[0, FEATURE_COLUMNS[1]] = np.nan
    broken.loc[1, FEATURE_COLUMNS[2]] = np.inf
    scores = detector.score_pandas(broken)["anomaly_score"]
    assert scores.notna().all()
    assert ((scores >= 0.0) & (scores <= 1.0)).all()


def test_a_missing_value_in_the_fit_sample_is_a_detection_error(feature_table: pd.DataFrame) -> None:
    config = DetectorConfig(**ALL_FEATURES)
    sample = fit_sample(feature_table, config)
    sample.loc[3, "burst_events"] = np.nan
    with pytest.raises(DetectionError, match="burst_events"):
        fit_detector(sample, config)


def test_works_on_the_output_of_the_features_stage(make_events, compute_features) -> None:
    events = make_events(
        [{"user": f"u{index}", "timestamp": 1_704_067_200_000 + index * 60_000} for index in range(6)]
        + [{"user": "u0", "timestamp": 1_704_067_200_500, "event_type": "auth_attempt", "status": "failed"}]
    )
    features = compute_features(events)
    config = DetectorConfig(n_estimators=20)
    scored = fit_and_score(features, config)
    assert list(scored["user"]) == [f"u{index}" for index in range(6)]
    assert scored["anomaly_score"].between(0.0, 1.0).all()
    assert scored["anomaly_score"].iloc[0] == scored["anomaly_score"].max()


def test_empty_table_is_a_detection_error(feature_table: pd.DataFrame) -> None:
    with pytest.raises(DetectionError, match="empty"):
        fit_detector(feature_table.head(0), DetectorConfig(**ALL_FEATURES))


def test_single_user_is_a_detection_error(feature_table: pd.DataFrame) -> None:
    with pytest.raises(DetectionError, match="at least 2"):
        fit_detector(feature_table.head(1), DetectorConfig(**ALL_FEATURES))


def test_missing_feature_column_is_a_detection_error(feature_table: pd.DataFrame) -> None:
    with pytest.raises(DetectionError, match="burst_events"):
        fit_detector(feature_table.drop(columns="burst_events"), DetectorConfig(**ALL_FEATURES))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"contamination": 0.0}, "contamination"),
        ({"contamination": 0.6}, "contamination"),
        ({"algorithm": "dbscan"}, "algorithm"),
        ({"max_fit_rows": 1}, "max_fit_rows"),
        ({"n_estimators": 0}, "n_estimators"),
        ({"kmeans_clusters": 0}, "kmeans_clusters"),
        ({"feature_columns": ()}, "feature_columns"),
        ({"feature_columns": ("a", "a")}, "feature_columns"),
    ],
)
def test_invalid_config_is_a_detection_error(overrides: dict, message: str) -> None:
    with pytest.raises(DetectionError, match=message):
        DetectorConfig(**overrides)


def five_hundred_users() -> pd.DataFrame:
    """500 users (some with non-ASCII names) and integer features, typed as the feature stage types them."""
    rng = np.random.default_rng(500)
    users = [f"user-{index:03d}" for index in range(490)] + [f"ü-{index}-名" for index in range(10)]
    columns = {"user": users}
    for name in MODEL_FEATURE_COLUMNS:
        columns[name] = rng.integers(0, 50, len(users)) if name == "burst_events" else rng.random(len(users))
    return pd.DataFrame(columns).sample(frac=1.0, random_state=1, ignore_index=True)


def test_both_engines_pull_the_same_fit_sample_and_fit_the_same_model(spark) -> None:
    from streamguard.engines.embedded import connect, query  # noqa: PLC0415

    frame = five_hundred_users()
    config = DetectorConfig(max_fit_rows=100, n_estimators=50)
    sql = fit_sample_sql("features", config.feature_columns, config.max_fit_rows)

    db = connect(threads=1)
    try:
        embedded = query(db, sql, features=pa.Table.from_pandas(frame, preserve_index=False)).to_pandas()
    finally:
        db.close()
    spark.createDataFrame(frame).createOrReplaceTempView("features")
    try:
        on_spark = spark.sql(sql).toPandas()
    finally:
        spark.catalog.dropTempView("features")

    assert list(embedded["user"]) == list(on_spark["user"]) == sha256_order(frame["user"])[:101]
    pd.testing.assert_frame_equal(embedded, on_spark)
    assert (embedded.dtypes.loc[list(config.feature_columns)] == np.float64).all()

    from_embedded = fit_detector(embedded, config)
    from_spark = fit_detector(on_spark, config)
    assert from_embedded.summary == from_spark.summary
    assert from_embedded.summary.sampled is True and from_embedded.summary.rows_fitted == 100
    pd.testing.assert_frame_equal(from_embedded.score_pandas(frame), from_spark.score_pandas(frame), check_exact=True)
