"""The engine-free, direction-aware detector on pandas feature tables, and the fit sample both engines pull."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from streamguard.contracts.features import RARE_EVENT_COLUMNS
from streamguard.detect import DetectorConfig, RiskTransform, detector_inputs, fit_detector, fit_sample_sql
from streamguard.errors import DetectionError
from streamguard.features import MODEL_FEATURE_COLUMNS

N_NORMAL = 200
OUTLIERS = ("zz-outlier-0", "zz-outlier-1", "zz-outlier-2", "zz-outlier-3", "zz-outlier-4")
QUIET = ("aa-quiet-0", "aa-quiet-1", "aa-quiet-2")
SUPPORTS = ("total_events", "auth_attempt_count", "process_execution_count")
EVENTS = 400.0


def synthetic_rows() -> pd.DataFrame:
    """200 users of unit spread around 10 on every model feature; five 12 sigma *above* on three features each
    (risky), three 12 sigma *below* on every feature (safer than anyone). Every rate is over 400 events."""
    rng = np.random.default_rng(7)
    width = len(MODEL_FEATURE_COLUMNS)
    rows = [(f"user-{index:03d}", *(10.0 + rng.normal(0.0, 1.0, width)).tolist()) for index in range(N_NORMAL)]
    for index, user in enumerate(OUTLIERS):
        values = 10.0 + rng.normal(0.0, 1.0, width)
        values[2 * index : 2 * index + 3] += 12.0
        rows.append((user, *values.tolist()))
    rows += [(user, *(10.0 - 12.0 + rng.normal(0.0, 0.5, width)).tolist()) for user in QUIET]
    frame = pd.DataFrame(rows, columns=["user", *MODEL_FEATURE_COLUMNS])
    # unique_ips is the count rare_ip_ratio is over.
    return frame.assign(**dict.fromkeys(SUPPORTS, EVENTS), **dict.fromkeys(RARE_EVENT_COLUMNS, 0.0), unique_ips=100.0)


def sha256_order(users: pd.Series) -> list[str]:
    """Users in the fit sample's order: by the SHA-256 of the UTF-8 name (hex), then by name."""
    return sorted(users, key=lambda user: (hashlib.sha256(user.encode("utf-8")).hexdigest(), user))


def fit_sample(frame: pd.DataFrame, config: DetectorConfig) -> pd.DataFrame:
    """What ``fit_sample_sql`` returns for ``frame``, computed in pandas: ``max_fit_rows + 1`` rows, hash order."""
    order = sha256_order(frame["user"])[: config.max_fit_rows + 1]
    columns = ["user", *detector_inputs(config)]
    return frame.set_index("user").loc[order].reset_index().loc[:, columns].astype(
        dict.fromkeys(detector_inputs(config), np.float64)
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
def test_risky_outliers_score_highest_and_are_flagged(feature_table: pd.DataFrame, algorithm: str) -> None:
    scored = scores_by_user(fit_and_score(feature_table, DetectorConfig(algorithm=algorithm)))
    assert len(scored) == N_NORMAL + len(OUTLIERS) + len(QUIET)
    assert all(0.0 <= value <= 1.0 for value, _ in scored.values())
    top = sorted(scored, key=lambda user: scored[user][0], reverse=True)[: len(OUTLIERS)]
    assert sorted(top) == list(OUTLIERS)
    assert all(scored[user][1] == 1 for user in OUTLIERS)
    assert sum(flag for _, flag in scored.values()) <= len(OUTLIERS) + 2


@pytest.mark.parametrize("algorithm", ["isolation_forest", "kmeans"])
@pytest.mark.parametrize("contamination", [None, 0.1, 0.5])
def test_users_safer_than_everyone_are_never_flagged(feature_table: pd.DataFrame, algorithm: str,
                                                     contamination: float | None) -> None:
    detector = fit_detector(fit_sample(feature_table, DetectorConfig(algorithm=algorithm)),
                            DetectorConfig(algorithm=algorithm, contamination=contamination))
    scored = scores_by_user(detector.score_pandas(feature_table))
    for user in QUIET:
        assert scored[user][1] == 0
        assert scored[user][0] <= detector.threshold
    # Quieter still than anyone in the fit sample: the same verdict.
    quieter = feature_table[feature_table["user"] == QUIET[0]].assign(
        **{name: -1e6 for name in MODEL_FEATURE_COLUMNS})
    assert detector.score_pandas(quieter)["is_anomaly"].tolist() == [0]


def test_two_sided_scoring_would_flag_the_quiet_users(feature_table: pd.DataFrame) -> None:
    # Why the transform is one-sided: on plain standardised features the quiet users are outliers too.
    from sklearn.ensemble import IsolationForest  # noqa: PLC0415
    from sklearn.preprocessing import StandardScaler  # noqa: PLC0415

    values = StandardScaler().fit_transform(feature_table.loc[:, list(MODEL_FEATURE_COLUMNS)])
    raw = -IsolationForest(random_state=42).fit(values).score_samples(values)
    top = set(feature_table["user"].iloc[np.argsort(-raw)[: len(OUTLIERS) + len(QUIET)]])
    assert set(QUIET) <= top


def test_the_transform_keeps_only_risky_deviations(feature_table: pd.DataFrame) -> None:
    transform = RiskTransform.fit(feature_table, MODEL_FEATURE_COLUMNS)
    risky = transform.transform(feature_table)
    assert (risky >= 0).all()
    quiet = feature_table["user"].isin(QUIET).to_numpy()
    assert (risky[quiet] == 0).all()
    signed = transform.deviations(feature_table)
    assert (signed[quiet] < -5).all()


def test_a_rate_over_more_events_is_stronger_evidence() -> None:
    frame = pd.DataFrame({"user": [f"u{i}" for i in range(102)],
                          "failed_auth_rate": [0.1] * 100 + [2 / 3, 2 / 3],
                          "auth_attempt_count": [30.0] * 100 + [3.0, 300.0]})
    frame.loc[:49, "failed_auth_rate"] = 0.08
    transform = RiskTransform.fit(frame, ("failed_auth_rate",))
    few, many = transform.transform(frame)[100:, 0]
    assert 0 < few < many
    assert many > 5 * few


def test_output_keeps_every_input_column_and_adds_score_and_flag(feature_table: pd.DataFrame) -> None:
    scored = fit_and_score(feature_table, DetectorConfig())
    assert list(scored.columns) == [*feature_table.columns, "anomaly_score", "is_anomaly"]
    assert scored["anomaly_score"].dtype == np.float64
    assert scored["is_anomaly"].dtype == np.int32
    assert set(scored["is_anomaly"]) <= {0, 1}
    pd.testing.assert_frame_equal(scored.loc[:, list(feature_table.columns)], feature_table)


def test_score_is_the_share_of_the_fit_sample_scoring_lower_or_the_same(feature_table: pd.DataFrame) -> None:
    config = DetectorConfig()
    detector = fit_detector(fit_sample(feature_table, config), config)
    raw = detector.raw_scores(feature_table)
    scored = detector.score_pandas(feature_table)
    expected = np.array([(raw <= value).sum() / len(raw) for value in raw])
    np.testing.assert_array_equal(scored["anomaly_score"].to_numpy(), expected)
    assert scored["anomaly_score"].max() == 1.0
    # Beyond the fit sample on every model feature: past every split of every tree, so as outlying as anyone.
    beyond = feature_table[feature_table["user"] == OUTLIERS[0]].assign(**dict.fromkeys(MODEL_FEATURE_COLUMNS, 1e6))
    assert detector.score_pandas(beyond)["anomaly_score"].tolist() == [1.0]


@pytest.mark.parametrize("algorithm", ["isolation_forest", "kmeans"])
def test_same_random_state_gives_the_same_scores(feature_table: pd.DataFrame, algorithm: str) -> None:
    config = DetectorConfig(algorithm=algorithm, random_state=3)
    first = scores_by_user(fit_and_score(feature_table, config))
    shuffled = feature_table.sample(frac=1.0, random_state=11, ignore_index=True)
    # The sample arrives in hash order whatever the input order; the detector fits it in user order.
    second = scores_by_user(fit_detector(fit_sample(shuffled, config).iloc[::-1], config).score_pandas(shuffled))
    assert first == second


def test_summary_describes_the_fit_and_matches_the_flags(feature_table: pd.DataFrame) -> None:
    config = DetectorConfig(n_estimators=50)
    detector = fit_detector(fit_sample(feature_table, config), config)
    summary = detector.summary()
    assert summary.algorithm == "isolation_forest"
    assert summary.rows_fitted == len(feature_table)
    assert summary.sampled is False
    assert summary.params["n_estimators"] == 50
    assert summary.threshold_rule == "outlier"
    assert 0.0 < summary.threshold < 1.0
    assert summary.raw_threshold == pytest.approx(summary.raw_median + 4.5 * 1.4826 * summary.raw_mad)
    assert int(detector.score_pandas(feature_table)["is_anomaly"].sum()) == summary.anomalies_in_fit
    assert summary.model.source == "fitted" and summary.model.rows_fitted == len(feature_table)
    assert summary.model.sha256 is None
    data = summary.to_dict()
    assert data["feature_columns"] == list(MODEL_FEATURE_COLUMNS)
    assert data["support_columns"] == ["total_events", "auth_attempt_count", "unique_ips",
                                       "process_execution_count"]
    assert "unique_ips" not in data["feature_columns"]


def test_a_contamination_share_flags_that_share(feature_table: pd.DataFrame) -> None:
    config = DetectorConfig(contamination=0.1)
    detector = fit_detector(fit_sample(feature_table, config), config)
    assert detector.threshold == pytest.approx(0.9)
    assert detector.summary().threshold_rule == "share"
    flagged = int(detector.score_pandas(feature_table)["is_anomaly"].sum())
    assert flagged == math.ceil(0.1 * len(feature_table))


def test_the_outlier_rule_flags_next_to_nobody_in_a_population_without_outliers() -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(10.0 + rng.normal(0.0, 1.0, (1000, len(MODEL_FEATURE_COLUMNS))),
                         columns=list(MODEL_FEATURE_COLUMNS))
    frame = frame.assign(user=[f"u{i:04d}" for i in range(1000)], **dict.fromkeys(SUPPORTS, EVENTS),
                         **dict.fromkeys(RARE_EVENT_COLUMNS, 0.0), unique_ips=100.0)
    share = fit_and_score(frame, DetectorConfig(contamination=0.05))
    outliers = fit_and_score(frame, DetectorConfig())
    assert share["is_anomaly"].sum() == 50
    assert outliers["is_anomaly"].sum() <= 1


def test_fit_sample_is_bounded_and_independent_of_row_order(feature_table: pd.DataFrame) -> None:
    config = DetectorConfig(max_fit_rows=50)
    sample = fit_sample(feature_table, config)
    assert len(sample) == 51
    detector = fit_detector(sample, config)
    assert detector.info.rows_fitted == 50 and detector.info.sampled is True
    shuffled = feature_table.sample(frac=1.0, random_state=5, ignore_index=True)
    again = fit_detector(fit_sample(shuffled, config), config)
    np.testing.assert_array_equal(again.calibration, detector.calibration)
    assert again.threshold == detector.threshold


def test_scoring_in_batches_equals_scoring_at_once(feature_table: pd.DataFrame) -> None:
    # Spark scores on the executors one Arrow batch at a time; the split must not change a row's score.
    for algorithm in ("isolation_forest", "kmeans"):
        config = DetectorConfig(algorithm=algorithm)
        detector = fit_detector(fit_sample(feature_table, config), config)
        at_once = detector.score_pandas(feature_table)
        in_batches = pd.concat([detector.score_pandas(feature_table.iloc[start : start + 37])
                                for start in range(0, len(feature_table), 37)])
        pd.testing.assert_frame_equal(in_batches, at_once)


def test_kmeans_does_not_treat_a_small_tight_cluster_as_normal() -> None:
    rng = np.random.default_rng(3)
    columns = ("unique_ips", "burst_events")
    normal = [(f"n{index:03d}", *(10 + rng.normal(0.0, 1.0, 2))) for index in range(150)]
    # Four identical far-away users: K-Means gives them a centroid of their own, at distance 0.
    tight = [(f"t{index}", 35.0, 35.0) for index in range(4)]
    frame = pd.DataFrame([*normal, *tight], columns=["user", *columns])
    config = DetectorConfig(algorithm="kmeans", kmeans_clusters=4, contamination=0.05, feature_columns=columns,
                            rare_event_columns=())
    detector = fit_detector(fit_sample(frame, config), config)
    assert detector.params["clusters_fitted"] == 4
    assert detector.params["large_clusters"] < 4
    scored = scores_by_user(detector.score_pandas(frame))
    assert all(scored[user] == (1.0, 1) for user, *_ in tight)
    assert max(scored[user][0] for user, *_ in normal) < 1.0


def test_constant_feature_does_not_break_scaling(feature_table: pd.DataFrame) -> None:
    constant = feature_table.assign(**{MODEL_FEATURE_COLUMNS[0]: 1.0})
    scored = scores_by_user(fit_and_score(constant, DetectorConfig()))
    assert all(0.0 <= value <= 1.0 for value, _ in scored.values())
    assert max(scored, key=lambda user: scored[user][0]) in OUTLIERS


def test_a_bad_cell_at_scoring_time_counts_as_no_risky_deviation(feature_table: pd.DataFrame) -> None:
    config = DetectorConfig()
    detector = fit_detector(fit_sample(feature_table, config), config)
    outlier = feature_table[feature_table["user"] == OUTLIERS[0]]
    broken = outlier.assign(**{MODEL_FEATURE_COLUMNS[0]: np.nan, MODEL_FEATURE_COLUMNS[1]: np.inf})
    risky = detector.transform.transform(broken)
    assert risky[0, 0] == 0 and risky[0, 1] == 0 and risky[0, 2] > 0
    scores = detector.score_pandas(broken)["anomaly_score"]
    assert scores.notna().all() and scores.between(0.0, 1.0).all()


def test_a_missing_value_in_the_fit_sample_is_a_detection_error(feature_table: pd.DataFrame) -> None:
    config = DetectorConfig()
    sample = fit_sample(feature_table, config)
    sample.loc[3, "burst_events"] = np.nan
    with pytest.raises(DetectionError, match="burst_events"):
        fit_detector(sample, config)


def test_works_on_the_output_of_the_features_stage(make_events, compute_features) -> None:
    events = make_events(
        [{"user": f"u{index}", "timestamp": 1_704_067_200_000 + index * 60_000} for index in range(6)]
        + [{"user": "u0", "timestamp": 1_704_067_200_500, "event_type": "auth_attempt", "status": "failed",
            "threat_score": 0.9}]
    )
    features = compute_features(events)
    config = DetectorConfig(n_estimators=20)
    scored = fit_and_score(features, config)
    assert list(scored["user"]) == [f"u{index}" for index in range(6)]
    assert scored["anomaly_score"].between(0.0, 1.0).all()
    assert scored["anomaly_score"].iloc[0] == scored["anomaly_score"].max()


def test_empty_table_is_a_detection_error(feature_table: pd.DataFrame) -> None:
    with pytest.raises(DetectionError, match="empty"):
        fit_detector(feature_table.head(0), DetectorConfig())


def test_single_user_is_a_detection_error(feature_table: pd.DataFrame) -> None:
    with pytest.raises(DetectionError, match="at least 2"):
        fit_detector(feature_table.head(1), DetectorConfig())


@pytest.mark.parametrize("column", ["burst_events", "total_events"])
def test_missing_input_column_is_a_detection_error(feature_table: pd.DataFrame, column: str) -> None:
    with pytest.raises(DetectionError, match=column):
        fit_detector(feature_table.drop(columns=column), DetectorConfig())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"contamination": 0.0}, "contamination"),
        ({"contamination": 0.6}, "contamination"),
        ({"outlier_mads": 0.0}, "outlier_mads"),
        ({"algorithm": "dbscan"}, "algorithm"),
        ({"max_fit_rows": 1}, "max_fit_rows"),
        ({"n_estimators": 0}, "n_estimators"),
        ({"kmeans_clusters": 0}, "kmeans_clusters"),
        ({"feature_columns": ()}, "feature_columns"),
        ({"feature_columns": ("unique_ips", "unique_ips")}, "feature_columns"),
        ({"feature_columns": ("total_events",)}, "risky direction"),
        ({"rare_event_columns": ("burst_events",)}, "not rare-event counts"),
        ({"rare_event_alpha": 0.0}, "rare_event_alpha"),
    ],
)
def test_invalid_config_is_a_detection_error(overrides: dict, message: str) -> None:
    with pytest.raises(DetectionError, match=message):
        DetectorConfig(**overrides)


def test_a_typical_user_with_several_rare_risky_events_is_flagged(feature_table: pd.DataFrame) -> None:
    # Every model feature typical; 5 night reads of the slice's largest files where the population has 1 in 83,200
    # events. One such event (user-011) is chance; the test must not flag it.
    counts = {"user-010": 5, "user-011": 1}
    frame = feature_table.assign(night_large_file_events=feature_table["user"].map(counts).fillna(0.0))
    plain = scores_by_user(fit_and_score(feature_table, DetectorConfig(n_estimators=50)))
    scored = scores_by_user(fit_and_score(frame, DetectorConfig(n_estimators=50)))
    assert plain["user-010"][1] == 0 and scored["user-010"][1] == 1
    assert plain["user-011"][1] == 0 and scored["user-011"][1] == 0
    assert {user for user, (_, flag) in scored.items() if flag} == {*OUTLIERS, "user-010"}


def test_rare_events_spread_over_everyone_flag_no_one(feature_table: pd.DataFrame) -> None:
    rng = np.random.default_rng(3)
    frame = feature_table.assign(**{name: rng.poisson(2.0, len(feature_table)).astype(np.float64)
                                    for name in RARE_EVENT_COLUMNS})
    detector = fit_detector(fit_sample(frame, DetectorConfig(n_estimators=50)), DetectorConfig(n_estimators=50))
    assert detector.rare.columns == RARE_EVENT_COLUMNS
    assert (detector.rare.surprise(frame) < detector.rare.cut).all()
    scored = scores_by_user(detector.score_pandas(frame))
    assert {user for user, (_, flag) in scored.items() if flag} <= set(OUTLIERS)


def test_the_rare_event_rate_leaves_out_the_users_it_flags(feature_table: pd.DataFrame) -> None:
    # Two users with 300 events each would set a rate that hides them; the rate is that of the others (+1 event).
    frame = feature_table.assign(high_attempt_failed_logins=feature_table["user"].map(
        {"user-020": 300.0, "user-021": 300.0}).fillna(0.0))
    detector = fit_detector(fit_sample(frame, DetectorConfig(n_estimators=20)), DetectorConfig(n_estimators=20))
    rate = dict(zip(detector.rare.columns, detector.rare.rates, strict=True))["high_attempt_failed_logins"]
    assert rate == pytest.approx(1.0 / ((len(frame) - 2) * EVENTS))
    flagged = scores_by_user(detector.score_pandas(frame))
    assert flagged["user-020"][1] == flagged["user-021"][1] == 1


def five_hundred_users() -> pd.DataFrame:
    """500 users (some with non-ASCII names) and integer features, typed as the feature stage types them."""
    rng = np.random.default_rng(500)
    users = [f"user-{index:03d}" for index in range(490)] + [f"ü-{index}-名" for index in range(10)]
    columns = {"user": users}
    for name in detector_inputs(DetectorConfig()):
        integer = name == "burst_events" or name.endswith(("_count", "_events", "_ips"))
        columns[name] = rng.integers(0, 50, len(users)) if integer else rng.random(len(users))
    return pd.DataFrame(columns).sample(frac=1.0, random_state=1, ignore_index=True)


def test_both_engines_pull_the_same_fit_sample_and_fit_the_same_model(spark) -> None:
    from streamguard.engines.embedded import connect, query  # noqa: PLC0415

    frame = five_hundred_users()
    config = DetectorConfig(max_fit_rows=100, n_estimators=50)
    sql = fit_sample_sql("features", detector_inputs(config), config.max_fit_rows)

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
    assert (embedded.dtypes.loc[list(detector_inputs(config))] == np.float64).all()

    from_embedded = fit_detector(embedded, config)
    from_spark = fit_detector(on_spark, config)
    np.testing.assert_array_equal(from_embedded.calibration, from_spark.calibration)
    assert from_embedded.threshold == from_spark.threshold
    assert from_embedded.info.sampled is True and from_embedded.info.rows_fitted == 100
    pd.testing.assert_frame_equal(from_embedded.score_pandas(frame), from_spark.score_pandas(frame), check_exact=True)
