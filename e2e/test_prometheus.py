"""A real Prometheus scraping a real ``streamguard serve``, with the shipped scrape config and alert rules.

The API serves a small published run (``tests/serve_fixtures.write_run``) on a free port; Prometheus runs with
a copy of ``monitoring/prometheus.yml`` in which only the target address and the intervals differ (job name,
metrics path and rule files as shipped, ``alerts.yml`` beside it). The test waits, bounded, until Prometheus'
query API returns samples for every metric the Grafana dashboard queries (names parsed from the dashboard
JSON), and checks that every dashboard expression and the alert rules evaluate.

Needs the ``prometheus`` binary (``make system-deps``): skipped without it, failed without it under CI=true.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from streamguard._proc import free_port, log_tail
from streamguard.serve.process import ApiServer
from tests.prometheus_tools import ALERTS, PROMETHEUS_CONFIG, dashboard_exprs, dashboard_metric_names, require_tool
from tests.serve_fixtures import write_run

JOB = "streamguard-api"
SCRAPE_INTERVAL = "1s"
STARTUP_TIMEOUT_S = 30.0
SAMPLES_TIMEOUT_S = 60.0


def scrape_config(shipped: Path, target: str) -> dict[str, Any]:
    """The shipped config with ``target`` as the API's address and 1 s intervals; nothing else changed."""
    config = yaml.safe_load(shipped.read_text())
    config["global"]["scrape_interval"] = config["global"]["evaluation_interval"] = SCRAPE_INTERVAL
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == JOB]
    for static in job["static_configs"]:
        static["targets"] = [target]
    return config


@contextmanager
def prometheus(binary: str, config: dict[str, Any], workdir: Path) -> Iterator[str]:
    """Run ``binary`` on a free port with ``config`` (rule files copied beside it); yields its URL."""
    for rule_file in config.get("rule_files", []):
        shutil.copy(PROMETHEUS_CONFIG.parent / rule_file, workdir / rule_file)
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    address = f"127.0.0.1:{free_port()}"
    log_path = workdir / "prometheus.log"
    command = [binary, f"--config.file={config_path}", f"--storage.tsdb.path={workdir / 'data'}",
               f"--web.listen-address={address}", "--storage.tsdb.retention.time=1h"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   cwd=workdir)
    url = f"http://{address}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not _ready(url):
            if process.poll() is not None:
                pytest.fail(f"prometheus exited with code {process.returncode}; log {log_path}:\n"
                            f"{log_tail(log_path)}")
            if time.monotonic() > deadline:
                pytest.fail(f"prometheus on {url} not ready within {STARTUP_TIMEOUT_S:.0f} s; log:\n"
                            f"{log_tail(log_path)}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def query(url: str, expr: str) -> dict[str, Any]:
    response = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=5.0)
    return response.json()


@pytest.fixture
def prometheus_binary() -> str:
    return require_tool("prometheus")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ApiServer]:
    run = write_run(tmp_path / "out", "20260105T000000Z-prom00")
    with ApiServer(run.output, log_path=tmp_path / "serve.log").start() as server:
        yield server


def test_prometheus_scrapes_every_metric_the_dashboard_queries(prometheus_binary: str, served: ApiServer,
                                                               tmp_path: Path):
    names = dashboard_metric_names()
    assert len(names) >= 10, names
    config = scrape_config(PROMETHEUS_CONFIG, f"{served.host}:{served.port}")
    shipped = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    assert [(job["job_name"], job.get("metrics_path")) for job in config["scrape_configs"]] == [
        (job["job_name"], job.get("metrics_path")) for job in shipped["scrape_configs"]]
    workdir = tmp_path / "prometheus"
    workdir.mkdir()
    with prometheus(prometheus_binary, config, workdir) as url:
        # Requests for the histogram's and the assistant's series (the server's start asked /health already).
        httpx.post(served.url + "/api/assistant/query", json={"question": "Is user erin anomalous?"})
        missing = set(names)
        deadline = time.monotonic() + SAMPLES_TIMEOUT_S
        while missing and time.monotonic() < deadline:
            missing = {name for name in missing if not query(url, f'{name}{{job="{JOB}"}}')["data"]["result"]}
            if missing:
                time.sleep(0.5)
        targets = httpx.get(f"{url}/api/v1/targets", timeout=5.0).json()["data"]["activeTargets"]
        assert not missing, (f"no samples within {SAMPLES_TIMEOUT_S:.0f} s for {sorted(missing)}; targets: "
                             f"{[(t['scrapeUrl'], t['health'], t['lastError']) for t in targets]}")
        (target,) = targets
        assert (target["health"], target["labels"]["job"], target["scrapeUrl"]) == (
            "up", JOB, f"{served.url}/metrics")

        for expr in dashboard_exprs():
            answer = query(url, expr)
            assert answer["status"] == "success", (expr, answer)

        users = query(url, "training_data_users_total")["data"]["result"]
        assert [float(sample["value"][1]) for sample in users] == [40.0]

        expected = {rule["alert"] for group in yaml.safe_load(ALERTS.read_text())["groups"]
                    for rule in group["rules"]}
        loaded: dict[str, str] = {}
        deadline = time.monotonic() + SAMPLES_TIMEOUT_S
        while time.monotonic() < deadline:
            groups = httpx.get(f"{url}/api/v1/rules", timeout=5.0).json()["data"]["groups"]
            loaded = {rule["name"]: rule["health"] for group in groups for rule in group["rules"]}
            if set(loaded) == expected and set(loaded.values()) == {"ok"}:
                break
            time.sleep(0.5)
        assert loaded == dict.fromkeys(expected, "ok")
        # A fresh run served, no errors: nothing fires.
        alerts = httpx.get(f"{url}/api/v1/alerts", timeout=5.0).json()["data"]["alerts"]
        assert [alert for alert in alerts if alert["state"] == "firing"] == []
