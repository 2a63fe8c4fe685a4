"""``streamguard serve`` as a child process, and the names the serving and assistant packages offer."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest
from serve_fixtures import write_run

import streamguard.assistant
import streamguard.serve
from streamguard.errors import StreamguardError
from streamguard.serve.process import ApiServer


def test_the_server_process_serves_and_stops(tmp_path: Path):
    run = write_run(tmp_path / "out", "20260105T000000Z-ffffff")
    server = ApiServer(run.output, env={"STREAMGUARD_API_TOKEN": "t0ken"}).start()
    try:
        assert httpx.get(server.url + "/health").json()["run_id"] == run.run_id
        assert httpx.get(server.url + "/api/training-data/stats").status_code == 401
        authorised = httpx.get(server.url + "/api/training-data/stats",
                               headers={"Authorization": "Bearer t0ken"})
        assert authorised.json()["total_users"] == run.report.total_users
    finally:
        server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/health")


def test_a_server_that_cannot_start_fails_fast_with_its_log(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(StreamguardError, match=r"exited with code \d+ before answering /health"), \
                ApiServer(tmp_path, port=port, startup_timeout=60):
            pass


def test_exported_names_are_exactly_the_intended_ones():
    assert set(streamguard.serve.__all__) == {
        "DEFAULT_HOST", "DEFAULT_PORT", "METRICS_PATH", "ApiServer", "DataStore", "NoData", "Snapshot",
        "create_app", "load_snapshot", "serve",
    }
    assert all(getattr(streamguard.serve, name) is not None for name in streamguard.serve.__all__)
    assert set(streamguard.assistant.__all__) == {
        "FALLBACK_REASONS", "ApiSource", "AssistantAnswer", "AssistantMetrics", "Deviation", "FactSource",
        "LlmConfig", "Phraser", "Resolved", "answer_question", "answer_question_async", "deviations",
        "resolve_user",
    }
    with pytest.raises(AttributeError):
        _ = streamguard.serve.not_a_name
