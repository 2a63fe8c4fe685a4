"""Saved models against a real broker: save with one run, score later slices with it (no refit), same scores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pytest

from e2e.conftest import unique_topic
from streamguard.config import RunConfig
from streamguard.errors import ConfigError, DetectionError
from streamguard.export import TRAINING_DATA
from streamguard.pipeline import RunResult, run_pipeline
from streamguard.synth.seed import seed_topic

EVENTS = 20_000


def training(result: RunResult) -> pd.DataFrame:
    table = ds.dataset(result.output / TRAINING_DATA, format="parquet", partitioning="hive").to_table()
    frame = table.to_pandas().sort_values("user", ignore_index=True)
    return frame.assign(is_anomaly=frame["is_anomaly"].astype(int))


@pytest.fixture(scope="module")
def topic(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    name = unique_topic("model")
    seed_topic(bootstrap, name, events=EVENTS, partitions=3, seed=21, users=60, anomalous_users=3,
               truth_path=tmp_path_factory.mktemp("truth") / "truth.json", progress=False)
    return name


@pytest.fixture(scope="module")
def saved_run(bootstrap: str, topic: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, Path]:
    work = tmp_path_factory.mktemp("model")
    model = work / "models" / "detector.skops"
    result = run_pipeline(RunConfig(topic=topic, bootstrap=bootstrap, max_events=12_000, output=work / "fit",
                                    save_model=model), progress=False)
    return result, model


def test_rescoring_the_same_slice_with_the_saved_model_gives_identical_scores(bootstrap, topic, saved_run,
                                                                             tmp_path):
    fitted, model = saved_run
    rescored = run_pipeline(RunConfig(topic=topic, bootstrap=bootstrap, max_events=12_000, output=tmp_path / "o",
                                      model=model), progress=False)
    pd.testing.assert_frame_equal(training(rescored), training(fitted), check_exact=True)
    saved_info, loaded_info = fitted.report.run.detector.model, rescored.report.run.detector.model
    assert saved_info.source == "fitted" and loaded_info.source == "loaded"
    assert saved_info.sha256 == loaded_info.sha256 is not None and len(loaded_info.sha256) == 64
    assert loaded_info.fitted_at == saved_info.fitted_at and loaded_info.rows_fitted == saved_info.rows_fitted
    assert rescored.report.run.detector.threshold == fitted.report.run.detector.threshold
    assert [t.model_dump() for t in rescored.report.top_anomalies] == \
           [t.model_dump() for t in fitted.report.top_anomalies]


def test_a_later_slice_is_scored_without_refitting(bootstrap, topic, saved_run, tmp_path):
    fitted, model = saved_run
    later = run_pipeline(RunConfig(topic=topic, bootstrap=bootstrap, start="earliest", max_events=EVENTS,
                                   output=tmp_path / "later", model=model), progress=False)
    detector = later.report.run.detector
    assert detector.model.source == "loaded" and detector.rows_fitted == fitted.report.run.detector.rows_fitted
    assert later.report.total_users >= fitted.report.total_users
    frame = training(later)
    flagged = frame[frame["is_anomaly"] == 1]
    assert (flagged["anomaly_score"] > detector.threshold).all()
    assert (frame.loc[frame["is_anomaly"] == 0, "anomaly_score"] <= detector.threshold).all()
    assert all(entry.is_anomaly == (entry.anomaly_score > detector.threshold) for entry in later.report.top_anomalies)


def test_the_cli_saves_and_loads_and_refuses_both_at_once(bootstrap, topic, tmp_path):
    model = tmp_path / "cli.skops"
    env = {**os.environ, "STREAMGUARD_KAFKA_BOOTSTRAP": bootstrap}

    def streamguard(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "streamguard", "-q", "run", "-t", topic, "--max-events",
                               "5000", *args], capture_output=True, text=True, timeout=300, env=env, check=False)

    saved = streamguard("-o", str(tmp_path / "a"), "--save-model", str(model))
    assert saved.returncode == 0, saved.stderr
    assert model.is_file()
    loaded = streamguard("-o", str(tmp_path / "b"), "--model", str(model))
    assert loaded.returncode == 0, loaded.stderr
    report = json.loads((tmp_path / "b" / "anomaly_report.json").read_text())
    assert report["run"]["detector"]["model"]["source"] == "loaded"
    assert report["run"]["config"]["model"] == str(model)
    both = streamguard("-o", str(tmp_path / "c"), "--model", str(model), "--save-model", str(tmp_path / "x"))
    assert both.returncode == ConfigError.exit_code and "not both" in both.stderr
    model.write_bytes(b"\x80\x04K\x01.")  # a pickle: refused, never unpickled
    refused = streamguard("-o", str(tmp_path / "d"), "--model", str(model))
    assert refused.returncode == DetectionError.exit_code and "cannot read the model" in refused.stderr
    assert not (tmp_path / "d").exists()
