"""The monitoring files agree with the server: scrape target, data source and the dashboard's metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import yaml
from serve_fixtures import metric_samples, serving, write_run

from streamguard.cli.serve_cmd import serve as serve_command
from streamguard.serve import DEFAULT_HOST, DEFAULT_PORT, METRICS_PATH, create_app

MONITORING = Path(__file__).parent.parent / "monitoring"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "streamguard-batch.json"
REQUIRED = {
    "training_data_users_total", "training_data_anomalies_total", "training_data_anomaly_rate",
    "training_data_available", "training_data_last_run_timestamp_seconds", "training_data_stage_seconds",
    "training_data_events_read_total", "training_data_events_invalid_total", "http_requests_total",
    "http_request_duration_seconds_bucket",
}
_PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
                 "unless", "offset", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (not functions, label names, keywords or numbers)."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # string literals
    bare = re.sub(r"\{[^}]*\}", "", bare)  # label matchers
    bare = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", bare)
    bare = re.sub(r"\[[^\]]*\]", "", bare)  # range selectors
    names = re.findall(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", bare)
    return {name for name in names if name.lower() not in _PROMQL_WORDS}


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_metric_names_parser():
    expr = ('histogram_quantile(0.99, sum by (le, route) '
            '(rate(http_request_duration_seconds_bucket{a="b"}[5m])))')
    assert metric_names(expr) == {"http_request_duration_seconds_bucket"}
    assert metric_names("time() - training_data_last_run_timestamp_seconds") == {
        "training_data_last_run_timestamp_seconds"}


def test_every_metric_the_dashboard_queries_is_served(tmp_path: Path):
    referenced = set().union(*(metric_names(expr) for expr in dashboard_exprs()))
    assert referenced >= REQUIRED
    run = write_run(tmp_path / "out", "20260105T000000Z-eeeeee")
    with serving(create_app(run.output)) as url:
        httpx.get(url + "/api/training-data/anomalies/erin")
        httpx.post(url + "/api/assistant/query", json={"question": "Is user erin anomalous?"})
        served = {name for name, _labels in metric_samples(httpx.get(url + METRICS_PATH).text)}
    assert referenced - served == set()


def test_prometheus_scrapes_what_serve_listens_on_by_default():
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "streamguard-api"]
    assert job.get("metrics_path", "/metrics") == METRICS_PATH
    targets = [target for static in job["static_configs"] for target in static["targets"]]
    assert targets == [f"{DEFAULT_HOST}:{DEFAULT_PORT}"]
    defaults = {param.name: param.default for param in serve_command.params}
    assert (defaults["host"], defaults["port"]) == (DEFAULT_HOST, DEFAULT_PORT)


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
