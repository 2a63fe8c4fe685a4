"""/metrics: the loaded run's numbers, HTTP metrics by route template, Prometheus naming, one registry per app."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_tools import promtool
from serve_fixtures import FixtureRun, metric_samples, serving, write_run

from streamguard.serve import create_app
from streamguard.serve.metrics import NAMESPACE, SPEC_FIXED_NAMES, UNMATCHED_ROUTE

GENERATED_AT = datetime(2026, 1, 5, 6, 30, tzinfo=UTC)
ROUTE = "/api/training-data/anomalies/{user}"


@pytest.fixture
def run(tmp_path: Path) -> FixtureRun:
    return write_run(tmp_path / "out", "20260105T063000Z-bbbbbb", generated_at=GENERATED_AT)


def scrape(run: FixtureRun) -> str:
    """/metrics after one request of each kind: a data route, an unmatched one, the assistant."""
    with serving(create_app(run.output)) as url:
        httpx.get(f"{url}/api/training-data/anomalies/erin")
        httpx.get(f"{url}/no/such/route")
        httpx.post(f"{url}/api/assistant/query", json={"question": "Is user erin anomalous?"})
        return httpx.get(url + "/metrics").text


def requests_key(method: str, route: str, status: int) -> tuple[str, tuple[tuple[str, str], ...]]:
    labels = (("method", method), ("route", route), ("status", str(status)))
    return f"{NAMESPACE}_http_requests_total", labels


def test_training_data_metrics_equal_the_report(run):
    with serving(create_app(run.output)) as url:
        response = httpx.get(url + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    values = metric_samples(response.text)
    report = run.report
    assert values[("training_data_users_total", ())] == report.total_users
    assert values[("training_data_anomalies_total", ())] == report.anomalous_users
    assert values[("training_data_anomaly_rate", ())] == pytest.approx(report.anomaly_rate)
    ns = NAMESPACE
    assert values[(f"{ns}_training_data_available", ())] == 1
    assert values[(f"{ns}_training_data_records_read", ())] == report.run.records_read
    assert values[(f"{ns}_training_data_records_valid", ())] == report.run.records_valid
    assert values[(f"{ns}_training_data_records_quarantined", ())] == report.run.records_quarantined
    assert values[(f"{ns}_training_data_last_run_timestamp_seconds", ())] == GENERATED_AT.timestamp()
    stage_seconds = report.run.stage_seconds.model_dump()
    assert values[(f"{ns}_training_data_run_duration_seconds", ())] == pytest.approx(stage_seconds.pop("total"))
    served = {dict(labels)["stage"]: value for (name, labels), value in values.items()
              if name == f"{ns}_training_data_stage_duration_seconds"}
    assert served == pytest.approx(stage_seconds)
    assert values[(f"{ns}_training_data_loads_total", (("outcome", "ok"),))] == 1


def test_no_breakdown_label_holds_a_total(run):
    for family in text_string_to_metric_families(scrape(run)):
        for sample in family.samples:
            assert "total" not in sample.labels.values(), (sample.name, sample.labels)


def test_names_follow_the_conventions_but_for_the_three_fixed_ones(run):
    families = {family.name: family for family in text_string_to_metric_families(scrape(run))}
    # The parser strips "_total" from counter family names; sample names keep it.
    names = {sample.name: family.type for family in families.values() for sample in family.samples}
    assert set(SPEC_FIXED_NAMES) <= set(names)
    for name, kind in names.items():
        if name in SPEC_FIXED_NAMES:
            assert kind == "gauge"
            continue
        assert name.startswith(f"{NAMESPACE}_"), name
        assert name.endswith("_total") == (kind == "counter"), (name, kind)


def test_promtool_accepts_the_metrics_but_for_the_three_fixed_names(run):
    text = scrape(run)
    result = promtool("check", "metrics", stdin=text)
    problems = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode in (0, 3), problems  # 3: lint problems only, the text itself parsed
    flagged = {line.split()[0] for line in problems}
    assert flagged <= set(SPEC_FIXED_NAMES), problems
    # It could fail: the same check flags a gauge named like a counter.
    bad = promtool("check", "metrics", stdin="# HELP x_total x\n# TYPE x_total gauge\nx_total 1\n")
    assert bad.returncode == 3 and "x_total" in bad.stdout + bad.stderr


def test_http_metrics_use_the_route_template_not_the_path(run):
    with serving(create_app(run.output)) as url:
        for user in ("erin", "manager", "nobody"):
            httpx.get(f"{url}/api/training-data/anomalies/{user}")
        httpx.get(url + "/no/such/route")
        text = httpx.get(url + "/metrics").text
    values = metric_samples(text)
    assert values[requests_key("GET", ROUTE, 200)] == 2
    assert values[requests_key("GET", ROUTE, 404)] == 1
    assert values[requests_key("GET", UNMATCHED_ROUTE, 404)] == 1
    duration = (f"{NAMESPACE}_http_request_duration_seconds_count", (("method", "GET"), ("route", ROUTE)))
    assert values[duration] == 3
    assert "erin" not in text and "nobody" not in text


def test_junk_requests_add_no_series(run):
    with serving(create_app(run.output)) as url, httpx.Client(base_url=url) as client:
        client.request("BREW", "/warmup")
        client.request("PROPFIND", "/api/training-data/anomalies/warmup")
        client.get("/metrics")
        before = client.get("/metrics").text
        for i in range(200):
            client.request(f"JUNK{i}", f"/junk/{i}/{'x' * i}")
            client.request(f"X-{i}", f"/api/training-data/anomalies/user{i}")
        after = client.get("/metrics").text
    # Every junk request landed on a series that existed before: no label value came from the request.
    assert set(metric_samples(after)) == set(metric_samples(before))
    values = metric_samples(after)
    assert values[requests_key("other", UNMATCHED_ROUTE, 404)] == 201
    assert values[requests_key("other", ROUTE, 405)] == 201
    assert "JUNK" not in after and "user1" not in after and "X-1" not in after


def test_openmetrics_and_gzip_are_negotiated(run):
    with serving(create_app(run.output)) as url:
        openmetrics = httpx.get(url + "/metrics", headers={"Accept": "application/openmetrics-text"})
        raw = httpx.get(url + "/metrics", headers={"Accept-Encoding": "gzip"})
        head = httpx.head(url + "/metrics")
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.rstrip().endswith("# EOF")
    assert raw.headers["content-encoding"] == "gzip"
    assert raw.num_bytes_downloaded < len(raw.content) / 3  # httpx decompressed it
    assert "training_data_users_total 40.0" in raw.text
    assert head.status_code == 200 and head.content == b""


def test_assistant_counters_are_namespaced(run):
    values = metric_samples(scrape(run))
    assert values[(f"{NAMESPACE}_assistant_answers_total", (("phrased_by", "template"),))] == 1
    assert (f"{NAMESPACE}_assistant_llm_cost_usd_total", ()) in values
    assert not any(name.startswith("assistant_") for name, _labels in values)


def test_each_app_has_its_own_registry(run, tmp_path: Path):
    other = write_run(tmp_path / "other", "run-other", users=25)
    first, second = create_app(run.output), create_app(other.output)
    assert first.state.registry is not second.state.registry
    with serving(first) as url_a, serving(second) as url_b:
        httpx.get(url_a + "/health")
        a = metric_samples(httpx.get(url_a + "/metrics").text)
        b = metric_samples(httpx.get(url_b + "/metrics").text)
    assert a[("training_data_users_total", ())] == 40 and b[("training_data_users_total", ())] == 25
    health = requests_key("GET", "/health", 200)
    assert a[health] == 1 and health not in b
