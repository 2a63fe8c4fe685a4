from __future__ import annotations

import math

import numpy as np
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import DoubleType, IntegerType, StringType, StructField, StructType

from streamguard.detect import DetectorConfig, detect, fit_detector, score
from streamguard.errors import DetectionError
from streamguard.features import FEATURE_COLUMNS, build_features

N_NORMAL = 200
OUTLIERS = ("zz-outlier-0", "zz-outlier-1", "zz-outlier-2", "zz-outlier-3", "zz-outlier-4")
SCHEMA = StructType(
    [
        StructField("user", StringType(), False),
        *(StructField(name, DoubleType(), False) for name in FEATURE_COLUMNS),
    ]
)


# The synthetic outliers lie on every feature; the default model set leaves volume features out.
ALL_FEATURES = {"feature_columns": FEATURE_COLUMNS, "contamination": 0.05}


def synthetic_rows() -> list[tuple]:
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
    return rows


@pytest.fixture(scope="module")
def feature_table(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(synthetic_rows(), SCHEMA)


def scores_by_user(scored: DataFrame) -> dict[str, tuple[float, int]]:
    rows = scored.orderBy("user").collect()
    return {row["user"]: (row["anomaly_score"], row["is_anomaly"]) for row in rows}


@pytest.mark.parametrize("algorithm", ["isolation_forest", "kmeans"])
def test_extreme_users_score_highest_and_are_flagged(feature_table: DataFrame, algorithm: str) -> None:
    scored = scores_by_user(detect(feature_table, DetectorConfig(**ALL_FEATURES, algorithm=algorithm)))
    assert len(scored) == N_NORMAL + len(OUTLIERS)
    assert all(0.0 <= value <= 1.0 for value, _ in scored.values())
    top = sorted(scored, key=lambda user: scored[user][0], reverse=True)[: len(OUTLIERS)]
    assert sorted(top) == list(OUTLIERS)
    assert all(scored[user][1] == 1 for user in OUTLIERS)
    flagged = sum(flag for _, flag in scored.values())
    assert len(OUTLIERS) <= flagged <= math.ceil(0.05 * len(scored)) + 1


def test_output_keeps_every_input_column_and_adds_score_and_flag(feature_table: DataFrame) -> None:
    scored = detect(feature_table, DetectorConfig(**ALL_FEATURES))
    assert scored.columns == [*feature_table.columns, "anomaly_score", "is_anomaly"]
    types = {field.name: field.dataType for field in scored.schema.fields}
    assert isinstance(types["anomaly_score"], DoubleType)
    assert isinstance(types["is_anomaly"], IntegerType)
    first = scored.orderBy("user").first()
    source = feature_table.orderBy("user").first()
    assert first is not None and source is not None
    assert [first[name] for name in feature_table.columns] == list(source)


@pytest.mark.parametrize("algorithm", ["isolation_forest", "kmeans"])
def test_same_random_state_gives_the_same_scores(feature_table: DataFrame, algorithm: str) -> None:
    config = DetectorConfig(**ALL_FEATURES, algorithm=algorithm, random_state=3)
    first = scores_by_user(detect(feature_table, config))
    second = scores_by_user(detect(feature_table.repartition(3), config))
    assert first == second


def test_summary_describes_the_fit_and_matches_the_flags(feature_table: DataFrame) -> None:
    config = DetectorConfig(feature_columns=FEATURE_COLUMNS, contamination=0.1, n_estimators=50)
    detector = fit_detector(feature_table, config)
    summary = detector.summary
    assert summary.algorithm == "isolation_forest"
    assert summary.rows_fitted == N_NORMAL + len(OUTLIERS)
    assert summary.sampled is False
    assert summary.params["n_estimators"] == 50
    assert summary.params["contamination"] == 0.1
    assert 0.0 < summary.threshold < 1.0
    assert summary.raw_min <= summary.raw_threshold <= summary.raw_max
    flags = [flag for _, flag in scores_by_user(score(feature_table, detector)).values()]
    assert sum(flags) == summary.anomalies_in_fit
    assert summary.to_dict()["feature_columns"] == list(FEATURE_COLUMNS)


def test_fit_sample_is_bounded_and_independent_of_partitioning(feature_table: DataFrame) -> None:
    config = DetectorConfig(**ALL_FEATURES, max_fit_rows=50)
    summary = fit_detector(feature_table, config).summary
    assert summary.rows_fitted == 50
    assert summary.sampled is True
    assert fit_detector(feature_table.repartition(4), config).summary == summary


def test_executor_scores_equal_driver_scores(feature_table: DataFrame) -> None:
    detector = fit_detector(feature_table, DetectorConfig(**ALL_FEATURES, algorithm="kmeans"))
    on_executors = scores_by_user(score(feature_table, detector))
    on_driver = detector.score_pandas(feature_table.toPandas())
    columns = (on_driver["user"], on_driver["anomaly_score"], on_driver["is_anomaly"])
    assert {user: (value, flag) for user, value, flag in zip(*columns, strict=True)} == on_executors


def test_constant_feature_does_not_break_scaling(spark: SparkSession) -> None:
    rows = [(user, 1.0, *values[1:]) for user, *values in synthetic_rows()]
    scored = scores_by_user(detect(spark.createDataFrame(rows, SCHEMA), DetectorConfig(**ALL_FEATURES)))
    assert all(0.0 <= value <= 1.0 for value, _ in scored.values())
    assert max(scored, key=lambda user: scored[user][0]) in OUTLIERS


def test_works_on_the_output_of_build_features(make_events) -> None:
    events = make_events(
        [{"user": f"u{index}", "timestamp": 1_704_067_200_000 + index * 60_000} for index in range(6)]
        + [{"user": "u0", "timestamp": 1_704_067_200_500, "event_type": "auth_attempt", "status": "failed"}]
    )
    scored = detect(build_features(events), DetectorConfig(n_estimators=20))
    rows = scored.orderBy("user").collect()
    assert [row["user"] for row in rows] == [f"u{index}" for index in range(6)]
    assert all(0.0 <= row["anomaly_score"] <= 1.0 for row in rows)
    assert rows[0]["anomaly_score"] == max(row["anomaly_score"] for row in rows)


def test_empty_table_is_a_detection_error(feature_table: DataFrame) -> None:
    with pytest.raises(DetectionError, match="empty"):
        detect(feature_table.limit(0), DetectorConfig(**ALL_FEATURES))


def test_single_user_is_a_detection_error(feature_table: DataFrame) -> None:
    with pytest.raises(DetectionError, match="at least 2"):
        fit_detector(feature_table.limit(1), DetectorConfig(**ALL_FEATURES))


def test_missing_feature_column_is_a_detection_error(feature_table: DataFrame) -> None:
    with pytest.raises(DetectionError, match="burst_events"):
        fit_detector(feature_table.drop("burst_events"), DetectorConfig(**ALL_FEATURES))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"contamination": 0.0}, "contamination"),
        ({"contamination": 0.6}, "contamination"),
        ({"algorithm": "dbscan"}, "algorithm"),
        ({"max_fit_rows": 1}, "max_fit_rows"),
        ({"n_estimators": 0}, "n_estimators"),
    ],
)
def test_invalid_config_is_a_detection_error(overrides: dict, message: str) -> None:
    with pytest.raises(DetectionError, match=message):
        DetectorConfig(**overrides)
