"""The API as a real process over a real pipeline run: seeded topic → run_pipeline → streamguard serve → HTTP.

Every answer is checked against the report schema and against the Parquet files the run wrote, and the
assistant against the seeder's ground truth.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyarrow.dataset as ds
import pytest

from e2e.conftest import unique_topic
from streamguard.config import RunConfig
from streamguard.export import TRAINING_DATA
from streamguard.features import FEATURE_COLUMNS
from streamguard.pipeline import run_pipeline
from streamguard.report import REPORT_FILE, AnomalyReport, validate_report
from streamguard.serve.process import ApiServer
from streamguard.synth.seed import seed_topic
from streamguard.synth.truth import GroundTruth, load_truth

EVENTS = 20_000
NORMAL_USER = "manager"  # the generator never makes it anomalous


@dataclass(frozen=True)
class Served:
    output: Path
    report: AnomalyReport
    rows: dict[str, dict[str, object]]
    truth: GroundTruth


@pytest.fixture(scope="module")
def served(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Served:
    base = tmp_path_factory.mktemp("serving")
    topic = unique_topic("serving")
    seeded = seed_topic(bootstrap, topic, events=EVENTS, partitions=3, seed=7, users=40, anomalous_users=4,
                        truth_path=base / "truth.json", progress=False)
    result = run_pipeline(RunConfig(topic=topic, bootstrap=bootstrap, output=base / "out", max_events=EVENTS),
                          progress=False)
    table = ds.dataset(result.run_dir / TRAINING_DATA, format="parquet", partitioning="hive").to_table()
    rows = {row["user"]: row for row in table.to_pylist()}
    return Served(output=base / "out", report=result.report, rows=rows, truth=load_truth(seeded.truth_path))


@pytest.fixture(scope="module")
def api(served: Served) -> Iterator[str]:
    with ApiServer(served.output).start() as server:
        yield server.url


def test_report_and_stats_are_the_runs(api, served):
    response = httpx.get(api + "/api/training-data/report")
    assert response.status_code == 200
    validate_report(response.json())
    assert response.content == (served.output / REPORT_FILE).read_bytes()
    stats = httpx.get(api + "/api/training-data/stats").json()
    report = served.report
    assert (stats["total_users"], stats["anomalous_users"], stats["records_read"], stats["run_id"]) == (
        report.total_users, report.anomalous_users, report.run.records_read, report.run.run_id)
    assert stats["total_users"] == len(served.rows)
    assert stats["anomalous_users"] == sum(row["is_anomaly"] == 1 for row in served.rows.values())


def test_anomalies_are_the_flagged_parquet_rows_in_score_order(api, served):
    items, offset = [], 0
    while True:
        page = httpx.get(api + "/api/training-data/anomalies", params={"limit": 1, "offset": offset}).json()
        items += page["items"]
        offset += 1
        if offset >= page["total"]:
            break
    flagged = sorted((row for row in served.rows.values() if row["is_anomaly"] == 1),
                     key=lambda row: (-row["anomaly_score"], row["user"]))
    assert [item["user"] for item in items] == [row["user"] for row in flagged]
    for item, row in zip(items, flagged, strict=True):
        assert item["anomaly_score"] == pytest.approx(row["anomaly_score"])
        assert item["total_events"] == row["total_events"]
    assert [a.user for a in served.report.top_anomalies[:len(items)]] == [item["user"] for item in items]


def test_every_user_row_equals_its_parquet_row(api, served):
    with httpx.Client(base_url=api) as client:
        for user, row in served.rows.items():
            response = client.get(f"/api/training-data/anomalies/{user}")
            assert response.status_code == 200, user
            body = response.json()
            assert body["is_anomaly"] == row["is_anomaly"]
            for name in ("anomaly_score", *FEATURE_COLUMNS):
                assert math.isclose(body[name], row[name], rel_tol=1e-12, abs_tol=1e-12), (user, name)
    unknown = httpx.get(api + "/api/training-data/anomalies/not_a_user_of_this_run")
    assert unknown.status_code == 404 and "unknown user" in unknown.json()["message"]
    assert httpx.get(api + "/api/training-data/anomalies/bad%07name").status_code == 422  # a control character


def test_health_features_and_metrics(api, served):
    health = httpx.get(api + "/health").json()
    assert (health["status"], health["run_id"], health["topic"]) == (
        "ok", served.report.run.run_id, served.report.run.topic)
    assert health["records_read"] == served.report.run.records_read
    features = httpx.get(api + "/api/training-data/features").json()
    assert features["users"] == len(served.rows)
    metrics = httpx.get(api + "/metrics").text
    assert f"training_data_users_total {float(served.report.total_users)}" in metrics
    assert "training_data_available 1.0" in metrics


def test_the_assistant_names_an_injected_anomaly_with_its_real_score(api, served):
    injected = set(served.truth.anomalous_user_names)
    caught = sorted((user for user in injected if served.rows.get(user, {}).get("is_anomaly") == 1),
                    key=lambda user: -served.rows[user]["anomaly_score"])  # type: ignore[operator]
    assert caught, f"the detector flagged none of the injected anomalous users {sorted(injected)}"
    user = caught[0]
    score = f"{served.rows[user]['anomaly_score']:.3f}"
    body = httpx.post(api + "/api/assistant/query", json={"question": f"Is user {user} anomalous?"}).json()
    assert body["user"] == user and body["is_anomaly"] is True
    assert score in body["answer"] and f"{user} is anomalous" in body["answer"]
    assert body["deviations"] and body["deviations"][0]["feature"] in body["answer"]

    command = [sys.executable, "-m", "streamguard", "ask", f"Why was '{user}' flagged?", "--api", api]
    cli = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False,
                         env={**os.environ, "STREAMGUARD_LLM_BASE_URL": ""})
    assert cli.returncode == 0, cli.stderr
    assert score in cli.stdout and f"{user} is anomalous" in cli.stdout


def test_the_assistant_says_a_normal_user_is_not_anomalous(api, served):
    assert served.rows[NORMAL_USER]["is_anomaly"] == 0
    question = {"question": f"Is user {NORMAL_USER} anomalous?"}
    body = httpx.post(api + "/api/assistant/query", json=question).json()
    assert f"{NORMAL_USER} is not anomalous" in body["answer"]
    assert f"{served.rows[NORMAL_USER]['anomaly_score']:.3f}" in body["answer"]


def test_health_flips_to_degraded_when_the_data_dir_is_emptied(served, tmp_path: Path):
    # A copy of the run, so the other tests' server keeps its data.
    copy = tmp_path / "copy"
    shutil.copytree(served.output.resolve(), copy)
    with ApiServer(copy).start() as server:
        assert httpx.get(server.url + "/health").json()["status"] == "ok"
        for entry in list(copy.iterdir()):
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        deadline = time.monotonic() + 15
        health = httpx.get(server.url + "/health").json()
        while health["status"] != "degraded" and time.monotonic() < deadline:
            time.sleep(0.2)  # the server looks at the disk at most once a second
            health = httpx.get(server.url + "/health").json()
        assert (health["status"], health["data_available"]) == ("degraded", False)
        assert httpx.get(server.url + "/api/training-data/stats").status_code == 503
