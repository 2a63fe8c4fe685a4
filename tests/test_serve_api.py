"""The API's routes over a published fixture run: answers, errors, validation, auth, the report contract, and
the hardening: local docs, HEAD, the body limit, bounded 422s."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from serve_fixtures import ANOMALOUS, FixtureRun, metric_samples, serving, write_run

from streamguard.assistant import ApiSource
from streamguard.events.parse import classify_value
from streamguard.features import FEATURE_COLUMNS, FEATURES
from streamguard.report import REPORT_FILE, AnomalyReport, validate_report
from streamguard.serve import app as app_module
from streamguard.serve import create_app
from streamguard.serve.limits import MAX_BODY_BYTES
from streamguard.serve.models import Stats, UserRow, user_segment

TOKEN = "s3cret-token"
SAMPLE_EVENTS = Path(__file__).resolve().parent.parent / "fixtures" / "events" / "valid_sample.jsonl"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> FixtureRun:
    return write_run(tmp_path_factory.mktemp("api") / "out", "20260105T000000Z-aaaaaa")


@pytest.fixture(scope="module")
def client(run: FixtureRun) -> Iterator[httpx.Client]:
    with serving(create_app(run.output)) as url, httpx.Client(base_url=url) as http:
        yield http


def test_report_is_served_as_written_and_matches_the_schema(client, run):
    response = client.get("/api/training-data/report")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == (run.run_dir / REPORT_FILE).read_bytes()
    validate_report(response.json())
    assert AnomalyReport.model_validate(response.json()) == run.report


def test_anomalies_are_sorted_paged_and_counted(client, run):
    expected = (run.frame[run.frame.is_anomaly == 1]
                .sort_values(["anomaly_score", "user"], ascending=[False, True])["user"].tolist())
    assert sorted(expected) == sorted(ANOMALOUS)
    first = client.get("/api/training-data/anomalies", params={"limit": 2}).json()
    rest = client.get("/api/training-data/anomalies", params={"limit": 2, "offset": 2}).json()
    assert first["total"] == rest["total"] == len(expected)
    assert [item["user"] for item in first["items"] + rest["items"]] == expected
    assert first["threshold"] == run.report.run.detector.threshold
    assert first["run_id"] == run.run_id
    top = run.row(expected[0])
    fields = ("anomaly_score", "total_events", "avg_threat_score", "unique_ips", "failed_auth_rate")
    assert first["items"][0] == {"user": expected[0], **{name: top[name] for name in fields}, "is_anomaly": True}


def test_min_score_filters_the_anomalies(client, run):
    scores = sorted(run.frame.loc[run.frame.is_anomaly == 1, "anomaly_score"], reverse=True)
    cut = scores[1]
    page = client.get("/api/training-data/anomalies", params={"min_score": cut}).json()
    assert page["total"] == 2
    assert [item["anomaly_score"] for item in page["items"]] == scores[:2]
    assert client.get("/api/training-data/anomalies", params={"min_score": 1}).json()["total"] == 0


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 1001}, {"offset": -1}, {"min_score": 1.5},
                                    {"min_score": "high"}])
def test_bad_paging_is_422(client, params):
    response = client.get("/api/training-data/anomalies", params=params)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_request"
    assert next(iter(params)) in body["message"]


def test_an_anomalous_user_has_its_full_row(client, run):
    response = client.get("/api/training-data/anomalies/erin")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"user", "anomaly_score", "is_anomaly", *FEATURE_COLUMNS}
    assert body == {"user": "erin", **run.row("erin")}
    assert body["is_anomaly"] == 1
    assert isinstance(body["total_events"], int) and isinstance(body["avg_threat_score"], float)


def test_a_normal_user_is_200_not_404(client, run):
    response = client.get("/api/training-data/anomalies/manager")
    assert response.status_code == 200
    assert response.json()["is_anomaly"] == 0
    assert response.json()["anomaly_score"] == run.row("manager")["anomaly_score"]


def test_an_unknown_user_is_404_and_says_so(client):
    response = client.get("/api/training-data/anomalies/nobody")
    assert response.status_code == 404
    body = response.json()
    assert body["error"] == "unknown_user"
    assert "unknown user 'nobody'" in body["message"]


def test_an_unknown_route_is_a_different_404(client):
    body = client.get("/api/training-data/nothing-here").json()
    assert body["error"] == "not_found"


@pytest.mark.parametrize("name", ["x" * 257, "tab%09inside", "bell%07", "nul%00"])
def test_a_name_the_parser_would_refuse_is_422_with_the_rule(client, name):
    response = client.get(f"/api/training-data/anomalies/{name}")
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_request"
    assert "user: a user name is 1 to 256 characters, none of them a control character" in body["message"]


@pytest.mark.parametrize("name", ["bad name", "x" * 256, "semi;colon", "quote'd", "ünïcode", "emoji 🛡"])
def test_every_name_the_parser_accepts_is_valid_and_merely_unknown(client, name):
    response = client.get("/api/training-data/anomalies/" + quote(name, safe=""))
    assert response.status_code == 404
    assert response.json()["error"] != "invalid_request"


def test_stats_are_the_reports_totals(client, run):
    stats = Stats.model_validate(client.get("/api/training-data/stats").json())
    report = run.report
    assert stats.model_dump() == {
        "run_id": report.run.run_id, "generated_at": report.run.generated_at, "topic": report.run.topic,
        "total_users": report.total_users, "anomalous_users": report.anomalous_users,
        "anomaly_rate": report.anomaly_rate, "records_read": report.run.records_read,
        "records_valid": report.run.records_valid, "records_quarantined": report.run.records_quarantined,
        "algorithm": "isolation_forest", "threshold": report.run.detector.threshold,
    }
    assert stats.total_users == len(run.frame) and stats.anomalous_users == int(run.frame.is_anomaly.sum())


def test_features_carry_the_registry_and_population_statistics(client, run):
    body = client.get("/api/training-data/features").json()
    assert body["users"] == len(run.frame)
    assert [f["name"] for f in body["features"]] == list(FEATURE_COLUMNS)
    by_name = {f["name"]: f for f in body["features"]}
    for feature in FEATURES:
        served = by_name[feature.name]
        assert (served["definition"], served["unit"]) == (feature.definition, feature.unit)
        column = run.frame[feature.name].astype(float)
        assert served["mean"] == pytest.approx(column.mean())
        assert served["std"] == pytest.approx(column.std(ddof=0))


def test_health_reports_the_loaded_run(client, run):
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["data_available"] is True
    assert body["run_id"] == run.run_id
    assert body["topic"] == run.report.run.topic
    assert body["records_read"] == run.report.run.records_read
    assert 0 <= body["data_age_seconds"] < 3600


def test_openapi_documents_the_routes_with_the_report_models(client):
    spec = client.get("/openapi.json").json()
    assert {"/api/training-data/report", "/api/training-data/anomalies",
            "/api/training-data/anomalies/{user}", "/api/training-data/stats", "/api/training-data/features",
            "/api/assistant/query", "/health"} <= set(spec["paths"])
    schemas = spec["components"]["schemas"]
    assert {"AnomalyReport", "TopAnomaly", "UserRow", "Stats"} <= set(schemas)
    described = schemas["UserRow"]["properties"]["failed_auth_rate"]["description"]
    assert described.startswith(next(f.definition for f in FEATURES if f.name == "failed_auth_rate"))
    assert "/metrics" not in spec["paths"]


def test_user_row_model_accepts_what_the_api_serves(client):
    row = UserRow.model_validate(client.get("/api/training-data/anomalies/svc_backup").json())
    assert row.user == "svc_backup"


@pytest.fixture(scope="module")
def guarded(run: FixtureRun) -> Iterator[str]:
    with serving(create_app(run.output, token=TOKEN)) as url:
        yield url


@pytest.mark.parametrize("path", ["/api/training-data/report", "/api/training-data/anomalies",
                                  "/api/training-data/anomalies/erin", "/api/training-data/stats",
                                  "/api/training-data/features"])
def test_a_token_guards_the_data_routes(guarded, path):
    missing = httpx.get(guarded + path)
    wrong = httpx.get(guarded + path, headers={"Authorization": "Bearer nope"})
    right = httpx.get(guarded + path, headers={"Authorization": f"Bearer {TOKEN}"})
    assert missing.status_code == wrong.status_code == 401
    assert missing.json()["error"] == "unauthorized"
    assert missing.headers["www-authenticate"] == "Bearer"
    assert right.status_code == 200


def test_a_token_guards_the_assistant_but_not_health_or_metrics(guarded):
    question = {"question": "Is user erin anomalous?"}
    assert httpx.post(guarded + "/api/assistant/query", json=question).status_code == 401
    assert httpx.post(guarded + "/api/assistant/query", json=question,
                      headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert httpx.get(guarded + "/health").status_code == 200
    assert httpx.get(guarded + "/metrics").status_code == 200


def test_no_data_is_404_for_the_report_and_503_elsewhere(tmp_path: Path):
    with serving(create_app(tmp_path / "never-written")) as url:
        report = httpx.get(url + "/api/training-data/report")
        assert report.status_code == 404 and report.json()["error"] == "no_report"
        for path in ("/api/training-data/anomalies", "/api/training-data/anomalies/erin",
                     "/api/training-data/stats", "/api/training-data/features"):
            response = httpx.get(url + path)
            assert response.status_code == 503, path
            assert response.json()["error"] == "no_training_data"
        health = httpx.get(url + "/health")
        assert health.status_code == 200
        assert health.json()["status"] == "degraded" and health.json()["data_available"] is False
        assert "no run has been published" in health.json()["reason"]


def test_error_bodies_are_json_objects_with_code_and_message(client):
    body = client.post("/api/training-data/stats").json()
    assert body == {"error": "method_not_allowed", "message": "Method Not Allowed"}
    assert json.loads(client.get("/api/training-data/anomalies/nobody").text).keys() == {"error", "message"}


def test_docs_are_served_from_local_assets_with_the_spec_inline(client):
    assert app_module.swagger_assets() is not None, "no Swagger UI 5 files: install fastapi-swagger (pyproject)"
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    links = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert links and all(link.startswith("/docs/assets/") for link in links), links  # nothing from a CDN
    assert "https://" not in page.text.split("<script>")[0]
    assert '"title": "StreamGuard training data API"' in page.text  # the OpenAPI document, inline
    for link in links:
        asset = client.get(link)
        assert asset.status_code == 200, link
        assert asset.headers["content-type"].split(";")[0] in ("text/javascript", "text/css")
    bundle = client.get("/docs/assets/swagger-ui-bundle.js").text
    assert re.search(r'PACKAGE_VERSION:"([5-9]|\d\d)\.', bundle), "Swagger UI 5+ renders OpenAPI 3.1"
    assert client.get("/docs/assets/..%2F__init__.py").status_code == 404
    assert client.get("/redoc").status_code == 404


def test_docs_without_swagger_ui_are_a_plain_page(run, monkeypatch):
    monkeypatch.setattr(app_module, "swagger_assets", lambda: None)
    with serving(create_app(run.output)) as url:
        page = httpx.get(url + "/docs")
        asset = httpx.get(url + "/docs/assets/swagger-ui.css")
    assert page.status_code == 200
    assert "<script" not in page.text and "https://" not in page.text
    assert "<code>/api/training-data/anomalies/{user}</code>" in page.text
    assert asset.status_code == 404


def test_a_token_guards_the_docs_and_the_openapi_document(guarded):
    for path in ("/docs", "/openapi.json"):
        assert httpx.get(guarded + path).status_code == 401, path
        assert httpx.get(guarded + path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200, path
    # Swagger UI's own files hold nothing of ours; a browser fetches them without the header.
    assert httpx.get(guarded + "/docs/assets/swagger-ui.css").status_code == 200


def get_routes(app) -> list[str]:
    """The path of every GET route of ``app``, path parameters filled in."""
    filled = {"{user}": "erin", "{name}": "swagger-ui.css"}
    paths = []
    for route in app.routes:
        if "GET" in (getattr(route, "methods", None) or ()):
            path = route.path_format
            for parameter, value in filled.items():
                path = path.replace(parameter, value)
            paths.append(path)
    return paths


def test_every_get_route_answers_head(run):
    app = create_app(run.output)
    paths = get_routes(app)
    assert {"/health", "/metrics", "/docs", "/openapi.json", "/api/training-data/anomalies/{user}".replace(
        "{user}", "erin")} <= set(paths)
    with serving(app) as url, httpx.Client(base_url=url) as http:
        for path in paths:
            get, head = http.get(path), http.head(path)
            assert head.status_code == get.status_code == 200, path
            assert head.content == b"", path
            assert head.headers["content-type"] == get.headers["content-type"], path
    assert "head" not in json.dumps(app.openapi()["paths"]).lower().replace("header", "")


def test_head_is_guarded_like_get(guarded):
    assert httpx.head(guarded + "/api/training-data/stats").status_code == 401
    assert httpx.head(guarded + "/api/training-data/stats",
                      headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert httpx.head(guarded + "/health").status_code == 200


def test_a_body_over_the_limit_is_413(client):
    over = json.dumps({"question": "x" * MAX_BODY_BYTES}).encode()
    response = client.post("/api/assistant/query", content=over, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"] == "request_too_large"
    assert f"{MAX_BODY_BYTES:,} bytes" in response.json()["message"]


def test_a_chunked_body_over_the_limit_is_413(client):
    def chunks():
        yield b'{"question": "'
        for _ in range(MAX_BODY_BYTES // 1024 + 1):
            yield b"x" * 1024
        yield b'"}'

    response = client.post("/api/assistant/query", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"] == "request_too_large"


def test_a_body_at_the_limit_is_read(client):
    body = json.dumps({"question": "Is user erin anomalous?"}).encode()
    body = body[:-1] + b" " * (MAX_BODY_BYTES - len(body)) + b"}"
    assert len(body) == MAX_BODY_BYTES
    response = client.post("/api/assistant/query", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    assert response.json()["user"] == "erin"


def test_a_413_is_counted_under_its_route(run):
    with serving(create_app(run.output, max_body_bytes=100)) as url:
        assert httpx.post(url + "/api/assistant/query", json={"question": "x" * 200}).status_code == 413
        values = metric_samples(httpx.get(url + "/metrics").text)
    labels = (("method", "POST"), ("route", "/api/assistant/query"), ("status", "413"))
    assert values[("streamguard_http_requests_total", labels)] == 1


def test_a_422_never_echoes_a_large_input(client):
    question = "why " * 5_000  # 20,000 characters, under the body limit, over the field's 2,000
    response = client.post("/api/assistant/query", json={"question": question})
    assert response.status_code == 422
    assert len(response.content) < 2_000
    (error,) = response.json()["errors"]
    assert error["loc"] == ["body", "question"]
    assert error["input"].startswith("why why") and "20,000 characters, truncated" in error["input"]

    long_name = "a" * 5_000
    response = client.get(f"/api/training-data/anomalies/{long_name}")
    assert response.status_code == 422 and len(response.content) < 2_000
    assert long_name not in response.text


def test_a_422_lists_a_bounded_number_of_problems(client):
    body = {"question": "Is user erin anomalous?", **{f"extra_{i:04d}_{'k' * 200}": i for i in range(200)}}
    response = client.post("/api/assistant/query", json=body)
    assert response.status_code == 422
    assert len(response.json()["errors"]) == 10
    assert "and 190 more problem(s)" in response.json()["message"]
    assert len(response.content) < 10_000
    assert all(len(part) < 100 for error in response.json()["errors"] for part in map(str, error["loc"]))


def test_a_422_for_a_long_query_parameter_stays_small(client):
    response = client.get("/api/training-data/anomalies", params={"limit": "9" * 20_000})
    assert response.status_code == 422 and len(response.content) < 2_000
    assert "9" * 200 not in response.text


# Ids the parser accepts (checked below) that a URL carries only percent-encoded, or not as a plain segment.
ODD_IDS = ["bad name", " padded ", "x" * 256, "a/b", "/leading", "trailing/", "a//b", "50%", "%2F", "what?",
           "q?x=1#f", "#tag", "emoji 🛡", "ünïcödé", "back\\slash", "+plus&amp", ".", "..", "...", "../..",
           "a/../b"]


@pytest.fixture(scope="module")
def odd_run(tmp_path_factory: pytest.TempPathFactory) -> FixtureRun:
    return write_run(tmp_path_factory.mktemp("odd") / "out", "20260105T000000Z-cccccc", extra_users=ODD_IDS)


@pytest.fixture(scope="module")
def odd_api(odd_run: FixtureRun) -> Iterator[str]:
    with serving(create_app(odd_run.output)) as url:
        yield url


@pytest.mark.parametrize("user", ODD_IDS)
def test_every_user_id_the_pipeline_accepts_can_be_fetched(odd_api, odd_run, user):
    event = json.loads(SAMPLE_EVENTS.read_text(encoding="utf-8").splitlines()[0])
    reason, _columns = classify_value(json.dumps({**event, "user": user}).encode())
    assert reason is None, f"the parser refuses {user!r}: {reason}"
    url = f"{odd_api}/api/training-data/anomalies/{user_segment(user)}"
    response = httpx.get(url)
    assert response.status_code == 200, response.text
    assert response.json()["user"] == user
    assert response.json()["anomaly_score"] == pytest.approx(odd_run.row(user)["anomaly_score"])
    assert httpx.head(url).status_code == 200
    with ApiSource.connect(odd_api) as source:  # the assistant's CLI reaches users the same way
        row = source.user(user)
    assert row is not None and row.user == user  # type: ignore[attr-defined]
    answer = httpx.post(odd_api + "/api/assistant/query", json={"question": "Is it anomalous?", "user_id": user})
    assert answer.status_code == 200 and answer.json()["user"] == user


def test_user_segment_encodes_everything_a_path_would_change():
    assert user_segment("a/b?c#d%e f") == "a%2Fb%3Fc%23d%25e%20f"
    assert user_segment("..") == "%2E%2E" and user_segment(".") == "%2E"
    assert user_segment("a.b") == "a.b"
    assert quote("emoji 🛡", safe="") == user_segment("emoji 🛡")
