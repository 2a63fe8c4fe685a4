"""The monitoring files agree with the server: scrape target, data source, the dashboard's and the alerts' metrics."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import yaml
from prometheus_tools import ALERTS, DASHBOARD, MONITORING, PROMETHEUS_CONFIG, dashboard_metric_names, metric_names
from serve_fixtures import metric_samples, serving, write_run

from streamguard.cli.serve_cmd import serve as serve_command
from streamguard.serve import DEFAULT_HOST, DEFAULT_PORT, METRICS_PATH, create_app
from streamguard.serve.metrics import SPEC_FIXED_NAMES

REQUIRED = {
    *SPEC_FIXED_NAMES,
    "streamguard_training_data_available", "streamguard_training_data_last_run_timestamp_seconds",
    "streamguard_training_data_stage_duration_seconds", "streamguard_training_data_run_duration_seconds",
    "streamguard_training_data_records_read", "streamguard_training_data_records_quarantined",
    "streamguard_http_requests_total", "streamguard_http_request_duration_seconds_bucket",
}


def alert_exprs() -> list[str]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def test_metric_names_parser():
    expr = ('histogram_quantile(0.99, sum by (le, route) '
            '(rate(http_request_duration_seconds_bucket{a="b"}[5m])))')
    assert metric_names(expr) == {"http_request_duration_seconds_bucket"}
    assert metric_names("time() - training_data_last_run_timestamp_seconds") == {
        "training_data_last_run_timestamp_seconds"}


def test_every_metric_the_dashboard_and_the_alerts_query_is_served(tmp_path: Path):
    dashboard = dashboard_metric_names()
    assert dashboard >= REQUIRED
    alerts = set().union(*(metric_names(expr) for expr in alert_exprs()))
    assert alerts >= {"streamguard_training_data_last_run_timestamp_seconds", "training_data_anomaly_rate",
                      "streamguard_http_requests_total"}
    run = write_run(tmp_path / "out", "20260105T000000Z-eeeeee")
    with serving(create_app(run.output)) as url:
        httpx.get(url + "/api/training-data/anomalies/erin")
        httpx.post(url + "/api/assistant/query", json={"question": "Is user erin anomalous?"})
        served = {name for name, _labels in metric_samples(httpx.get(url + METRICS_PATH).text)}
    assert dashboard - served == set()
    assert alerts - served == set()


def test_prometheus_scrapes_what_serve_listens_on_by_default():
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "streamguard-api"]
    assert job.get("metrics_path", "/metrics") == METRICS_PATH
    targets = [target for static in job["static_configs"] for target in static["targets"]]
    assert targets == [f"{DEFAULT_HOST}:{DEFAULT_PORT}"]
    defaults = {param.name: param.default for param in serve_command.params}
    assert (defaults["host"], defaults["port"]) == (DEFAULT_HOST, DEFAULT_PORT)
    assert config["rule_files"] == [ALERTS.name]


def test_grafana_provisioning_points_at_the_dashboard_and_data_source():
    sources = yaml.safe_load((MONITORING / "grafana/provisioning/datasources/prometheus.yml").read_text())
    (source,) = sources["datasources"]
    assert source["type"] == "prometheus" and source["url"].endswith(":9090")
    providers = yaml.safe_load((MONITORING / "grafana/provisioning/dashboards/streamguard.yml").read_text())
    assert providers["providers"][0]["options"]["path"].endswith("/streamguard")
    dashboard = json.loads(DASHBOARD.read_text())
    uids = {target["datasource"]["uid"] for panel in dashboard["panels"] for target in panel["targets"]}
    assert uids == {source["uid"]}
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
