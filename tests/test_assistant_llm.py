"""The optional LLM phrasing, against a fake OpenAI-compatible server on 127.0.0.1 (real HTTP calls)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from serve_fixtures import FixtureRun, metric_samples, serving, write_run

from streamguard.assistant import LlmConfig
from streamguard.errors import ConfigError
from streamguard.serve import create_app

API_KEY = "sk-test-123"


@dataclass
class FakeModel:
    """What the fake answers next, and every request it got."""

    content: str = ""
    status: int = 200
    usage: dict[str, int] = field(default_factory=lambda: {"prompt_tokens": 120, "completion_tokens": 30})
    requests: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def complete(request: Request) -> JSONResponse:
            self.requests.append({"body": await request.json(),
                                  "authorization": request.headers.get("authorization")})
            if self.status != 200:
                return JSONResponse({"error": {"message": "overloaded"}}, status_code=self.status)
            return JSONResponse({"id": "chatcmpl-1", "object": "chat.completion", "model": "fake",
                                 "choices": [{"index": 0, "finish_reason": "stop",
                                              "message": {"role": "assistant", "content": self.content}}],
                                 "usage": self.usage})

        return app


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> FixtureRun:
    return write_run(tmp_path_factory.mktemp("llm") / "out", "20260105T000000Z-dddddd")


@pytest.fixture
def fake() -> Iterator[tuple[FakeModel, str]]:
    model = FakeModel()
    with serving(model.app()) as url:
        yield model, url + "/v1"


@pytest.fixture
def api(run: FixtureRun, fake: tuple[FakeModel, str]) -> Iterator[str]:
    config = LlmConfig(base_url=fake[1], model="fake-model", api_key=API_KEY, prompt_usd_per_1k=0.5,
                       completion_usd_per_1k=1.5)
    with serving(create_app(run.output, llm=config)) as url:
        yield url


def query(api: str, question: str) -> dict[str, Any]:
    response = httpx.post(api + "/api/assistant/query", json={"question": question})
    assert response.status_code == 200, response.text
    return response.json()


def test_the_model_phrases_the_answer_from_the_real_facts(api, fake, run):
    model, _ = fake
    score = f"{run.row('erin')['anomaly_score']:.3f}"
    model.content = f"Erin looks compromised: score {score}, well above the 0.600 threshold."
    body = query(api, "Is user erin anomalous?")
    assert (body["answer"], body["phrased_by"]) == (model.content, "llm")
    sent = model.requests[0]
    assert sent["authorization"] == f"Bearer {API_KEY}"
    assert sent["body"]["model"] == "fake-model"
    prompt = sent["body"]["messages"][-1]["content"]
    facts = json.loads(prompt.split("Facts (JSON):\n", 1)[1].split("\n\nQuestion:", 1)[0])
    assert facts["user"] == "erin" and facts["is_anomalous"] is True
    assert facts["anomaly_score"] == round(run.row("erin")["anomaly_score"], 3)
    sent_features = [f["feature"] for f in facts["most_unusual_features"]]
    assert sent_features == [d["feature"] for d in body["deviations"]]
    assert "Question: Is user erin anomalous?" in prompt and f"anomaly score {score}" in prompt

    metrics = metric_samples(httpx.get(api + "/metrics").text)
    assert metrics[("streamguard_assistant_llm_tokens_total", (("kind", "prompt"),))] == 120
    assert metrics[("streamguard_assistant_llm_tokens_total", (("kind", "completion"),))] == 30
    expected_cost = 120 / 1000 * 0.5 + 30 / 1000 * 1.5
    assert metrics[("streamguard_assistant_llm_cost_usd_total", ())] == pytest.approx(expected_cost)
    assert metrics[("streamguard_assistant_answers_total", (("phrased_by", "llm"),))] == 1


def test_a_failing_model_falls_back_to_the_template(api, fake, run):
    model, _ = fake
    model.status = 500
    body = query(api, "Is user manager anomalous?")
    assert body["phrased_by"] == "template"
    assert "manager is not anomalous" in body["answer"]
    metrics = metric_samples(httpx.get(api + "/metrics").text)
    assert metrics[("streamguard_assistant_llm_requests_total", (("outcome", "error"),))] == 1
    assert metrics[("streamguard_assistant_llm_tokens_total", (("kind", "prompt"),))] == 0


def test_an_answer_without_the_real_score_is_rejected(api, fake, run):
    model, _ = fake
    model.content = "Erin is fine, nothing to see."
    body = query(api, "Is user erin anomalous?")
    assert body["phrased_by"] == "template"
    assert f"{run.row('erin')['anomaly_score']:.3f}" in body["answer"]
    metrics = metric_samples(httpx.get(api + "/metrics").text)
    assert metrics[("streamguard_assistant_llm_requests_total", (("outcome", "rejected"),))] == 1


def test_unknown_users_do_not_call_the_model(api, fake):
    model, _ = fake
    assert "no user 'zed'" in query(api, "Is user zed anomalous?")["answer"]
    assert model.requests == []


def test_config_comes_from_the_environment_and_masks_the_key():
    assert LlmConfig.from_env({}) is None
    assert LlmConfig.from_env({"STREAMGUARD_LLM_BASE_URL": "http://127.0.0.1:1/v1"}) is None
    config = LlmConfig.from_env({
        "STREAMGUARD_LLM_BASE_URL": "http://127.0.0.1:1/v1/", "STREAMGUARD_LLM_MODEL": "m",
        "STREAMGUARD_LLM_API_KEY": API_KEY, "STREAMGUARD_LLM_PROMPT_USD_PER_1K": "0.25",
    })
    assert config is not None
    assert (config.base_url, config.model, config.prompt_usd_per_1k, config.completion_usd_per_1k) == (
        "http://127.0.0.1:1/v1", "m", 0.25, 0.0)
    assert API_KEY not in repr(config) and "***" in repr(config)
    with pytest.raises(ConfigError, match="STREAMGUARD_LLM_PROMPT_USD_PER_1K must be a number"):
        LlmConfig.from_env({"STREAMGUARD_LLM_BASE_URL": "x", "STREAMGUARD_LLM_MODEL": "m",
                            "STREAMGUARD_LLM_PROMPT_USD_PER_1K": "cheap"})

