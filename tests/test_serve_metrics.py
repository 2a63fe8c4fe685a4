"""/metrics: the loaded run's numbers, HTTP metrics by route template, one registry per app."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from serve_fixtures import FixtureRun, metric_samples, serving, write_run

from streamguard.report import STAGES
from streamguard.serve import create_app

GENERATED_AT = datetime(2026, 1, 5, 6, 30, tzinfo=UTC)


@pytest.fixture
def run(tmp_path: Path) -> FixtureRun:
    return write_run(tmp_path / "out", "20260105T063000Z-bbbbbb", generated_at=GENERATED_AT)


def test_training_data_metrics_equal_the_report(run):
    with serving(create_app(run.output)) as url:
        response = httpx.get(url + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    values = metric_samples(response.text)
    report = run.report
    assert values[("training_data_available", ())] == 1
    assert values[("training_data_users_total", ())] == report.total_users
    assert values[("training_data_anomalies_total", ())] == report.anomalous_users
    assert values[("training_data_anomaly_rate", ())] == pytest.approx(report.anomaly_rate)
    assert values[("training_data_events_read_total", ())] == report.run.events_read
    assert values[("training_data_events_invalid_total", ())] == report.run.events_invalid
    assert values[("training_data_last_run_timestamp_seconds", ())] == GENERATED_AT.timestamp()
    stage_seconds = report.run.stage_seconds.model_dump()
    for stage in STAGES:
        served = values[("training_data_stage_seconds", (("stage", stage),))]
        assert served == pytest.approx(stage_seconds[stage])
    assert values[("training_data_loads_total", (("outcome", "ok"),))] == 1


def test_http_metrics_use_the_route_template_not_the_path(run):
    with serving(create_app(run.output)) as url:
        for user in ("erin", "manager", "nobody"):
            httpx.get(f"{url}/api/training-data/anomalies/{user}")
        httpx.get(url + "/no/such/route")
        text = httpx.get(url + "/metrics").text
    values = metric_samples(text)
    route = "/api/training-data/anomalies/{user}"
    key = ("http_requests_total", (("method", "GET"), ("route", route), ("status", "200")))
    assert values[key] == 2
    assert values[("http_requests_total", (("method", "GET"), ("route", route), ("status", "404")))] == 1
    unmatched = ("http_requests_total", (("method", "GET"), ("route", "<unmatched>"), ("status", "404")))
    assert values[unmatched] == 1
    assert values[("http_request_duration_seconds_count", (("method", "GET"), ("route", route)))] == 3
    assert "erin" not in text and "nobody" not in text


def test_each_app_has_its_own_registry(run, tmp_path: Path):
    other = write_run(tmp_path / "other", "run-other", users=25)
    first, second = create_app(run.output), create_app(other.output)
    assert first.state.registry is not second.state.registry
    with serving(first) as url_a, serving(second) as url_b:
        httpx.get(url_a + "/health")
        a = metric_samples(httpx.get(url_a + "/metrics").text)
        b = metric_samples(httpx.get(url_b + "/metrics").text)
    assert a[("training_data_users_total", ())] == 40 and b[("training_data_users_total", ())] == 25
    health = ("http_requests_total", (("method", "GET"), ("route", "/health"), ("status", "200")))
    assert a[health] == 1 and health not in b
