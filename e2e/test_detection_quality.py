"""Detection quality against a real broker and the seeder's ground truth, through ``streamguard evaluate``:
injected users found, quiet users (safer than everyone) never flagged, a topic whose anomalous events are spread
over everyone raises next to no flag."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from e2e.conftest import unique_topic
from streamguard.config import RunConfig
from streamguard.detect.evaluate import evaluate_run
from streamguard.pipeline import run_pipeline
from streamguard.synth.seed import seed_topic
from streamguard.synth.truth import load_truth

EVENTS = 60_000
USERS = 400


def _seed(bootstrap: str, directory: Path, **population: object) -> tuple[str, Path]:
    topic = unique_topic("quality")
    truth = directory / f"{topic}.json"
    seed_topic(bootstrap, topic, events=EVENTS, partitions=4, seed=8, users=USERS, truth_path=truth,
               progress=False, **population)
    return topic, truth


@pytest.fixture(scope="module")
def quiet_run(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("quality")
    topic, truth = _seed(bootstrap, work, anomalous_users=8, quiet_users=40)
    output = work / "out"
    run_pipeline(RunConfig(topic=topic, bootstrap=bootstrap, output=output), progress=False)
    return output, truth


def test_injected_users_are_found_and_no_quiet_user_is_flagged(quiet_run):
    output, truth_file = quiet_run
    truth = load_truth(truth_file)
    assert len(truth.quiet_users) == 40
    result = evaluate_run(output, truth)
    assert result.quiet_users == 40
    assert result.quiet_flagged == []
    assert result.recall is not None and result.recall >= 0.875, result.missed
    assert result.precision is not None and result.precision >= 0.8, result.false_positives
    assert result.pr_auc is not None and result.pr_auc >= 0.9


def test_evaluate_prints_the_figures_as_json(quiet_run):
    output, truth_file = quiet_run
    done = subprocess.run([sys.executable, "-m", "streamguard", "evaluate", "--data", str(output), "--truth",
                           str(truth_file), "--json"], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ), check=False)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    direct = evaluate_run(output, load_truth(truth_file)).to_dict()
    assert {k: v for k, v in figures.items() if k != "run_id"} == {k: v for k, v in direct.items() if k != "run_id"}
    assert figures["run_id"] and set(figures["recall_by_behaviour"]) <= {
        "credential_stuffing", "impossible_travel", "off_hours_bulk_file_access", "malware_process", "ip_hopping"}


def test_evenly_spread_anomalies_raise_next_to_no_flag(bootstrap, tmp_path):
    topic, truth_file = _seed(bootstrap, tmp_path, anomalous_users=20, spread_anomalies=True)
    truth = load_truth(truth_file)
    assert truth.anomalies == () and truth.spread_anomalous_events > 0
    output = tmp_path / "out"
    result = run_pipeline(RunConfig(topic=topic, bootstrap=bootstrap, output=output), progress=False)
    # A fixed 10% share would flag 40 users here; the outlier rule flags at most a handful.
    assert result.report.anomalous_users <= 0.01 * result.report.total_users
    assert evaluate_run(output, truth).spread_anomalies
