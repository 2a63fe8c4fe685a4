"""The optional LLM phrasing, against a fake OpenAI-compatible server on 127.0.0.1 (real HTTP calls).

The fake can be told to answer well, fail, send something that is not a completion, contradict the facts, or
hold every request until the test lets it go (a slow model), which shows the ordering the API promises: data
routes answer while model calls are outstanding, a full concurrency limit answers with the template at once,
and the timeout ends a call the model never answers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from serve_fixtures import FixtureRun, metric_samples, serving, write_run

from streamguard.assistant import FALLBACK_REASONS, ApiSource, LlmConfig, answer_question
from streamguard.errors import ConfigError
from streamguard.serve import create_app
from streamguard.serve.process import free_port

API_KEY = "sk-test-123"
LOCAL_URL = "http://127.0.0.1:1/v1"
ASK_TIMEOUT_S = 60.0  # a test that hangs fails instead; never reached when the API behaves
WAIT_S = 30.0


@dataclass
class FakeModel:
    """What the fake answers next, and every request it got.

    ``body`` replaces the whole JSON reply and ``raw`` the bytes; ``held`` keeps requests waiting until
    :meth:`release` (``waiting`` counts them).
    """

    content: str = ""
    status: int = 200
    usage: Any = field(default_factory=lambda: {"prompt_tokens": 120, "completion_tokens": 30})
    body: Any = None
    raw: bytes | None = None
    held: bool = False
    requests: list[dict[str, Any]] = field(default_factory=list)
    waiting: int = 0
    answered: int = 0
    _released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self._released.set()

    def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"the fake model never saw {what} (waiting={self.waiting}, "
                                     f"answered={self.answered}, requests={len(self.requests)})")
            time.sleep(0.01)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def complete(request: Request) -> Response:
            self.requests.append({"body": await request.json(),
                                  "authorization": request.headers.get("authorization")})
            if self.held:
                self.waiting += 1
                try:
                    while not self._released.is_set():
                        await asyncio.sleep(0.01)
                finally:
                    self.waiting -= 1
            self.answered += 1
            if self.status != 200:
                return JSONResponse({"error": {"message": "overloaded"}}, status_code=self.status)
            if self.raw is not None:
                return Response(self.raw, media_type="application/json")
            if self.body is not None:
                return JSONResponse(self.body)
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
        try:
            yield model, url + "/v1"
        finally:
            model.release()  # requests still held would keep the server from stopping


def llm_config(fake: tuple[FakeModel, str], **overrides: Any) -> LlmConfig:
    settings: dict[str, Any] = {"base_url": fake[1], "model": "fake-model", "api_key": API_KEY,
                                "prompt_usd_per_1k": 0.5, "completion_usd_per_1k": 1.5, **overrides}
    return LlmConfig(**settings)


@pytest.fixture
def api(run: FixtureRun, fake: tuple[FakeModel, str]) -> Iterator[str]:
    with serving(create_app(run.output, llm=llm_config(fake))) as url:
        yield url


def query(api: str, question: str) -> dict[str, Any]:
    response = httpx.post(api + "/api/assistant/query", json={"question": question}, timeout=ASK_TIMEOUT_S)
    assert response.status_code == 200, response.text
    return response.json()


def fallbacks(api: str) -> dict[str, float]:
    samples = metric_samples(httpx.get(api + "/metrics").text)
    return {reason: samples[("streamguard_assistant_llm_fallbacks_total", (("reason", reason),))]
            for reason in FALLBACK_REASONS}


def test_the_model_phrases_the_answer_from_the_real_facts(api, fake, run):
    model, _ = fake
    score = f"{run.row('erin')['anomaly_score']:.3f}"
    model.content = f"Erin looks compromised: score {score}, well above the 0.600 threshold."
    body = query(api, "Is user erin anomalous?")
    assert (body["answer"], body["phrased_by"], body["llm_fallback"]) == (model.content, "llm", None)
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
    assert set(fallbacks(api).values()) == {0}


def _completion(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": "chatcmpl-1", "object": "chat.completion",
                            "choices": [{"index": 0, "message": {"role": "assistant", "content": "{score}"}}],
                            "usage": {"prompt_tokens": 10, "completion_tokens": 5}}
    body.update(changes)
    return body


# (what the fake is told, the user asked about, the reason the reply must be refused with)
BAD_REPLIES: dict[str, tuple[dict[str, Any], str, str]] = {
    "server error": ({"status": 500}, "erin", "http_error"),
    "not json": ({"raw": b"<html>502 Bad Gateway</html>"}, "erin", "not_json"),
    "json but a list": ({"raw": b"[1, 2, 3]"}, "erin", "malformed"),
    "over a MiB": ({"raw": b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'}, "erin", "malformed"),
    "no choices": ({"body": {"id": "chatcmpl-1", "object": "chat.completion"}}, "erin", "malformed"),
    "empty choices": ({"body": _completion(choices=[])}, "erin", "malformed"),
    "choice without message": ({"body": _completion(choices=[{"index": 0}])}, "erin", "malformed"),
    "usage not an object": ({"body": _completion(usage="lots")}, "erin", "malformed"),
    "usage a list": ({"body": _completion(usage=[120, 30])}, "erin", "malformed"),
    "negative tokens": ({"body": _completion(usage={"prompt_tokens": -5, "completion_tokens": 3})}, "erin",
                        "malformed"),
    "fractional tokens": ({"body": _completion(usage={"prompt_tokens": 5, "completion_tokens": 2.5})}, "erin",
                          "malformed"),
    "tokens as text": ({"body": _completion(usage={"prompt_tokens": "5", "completion_tokens": 2})}, "erin",
                       "malformed"),
    "content not text": ({"body": _completion(choices=[{"message": {"content": {"text": "hi"}}}])}, "erin",
                         "malformed"),
    "empty content": ({"content": "   "}, "erin", "empty"),
    "null content": ({"body": _completion(choices=[{"message": {"content": None}}])}, "erin", "empty"),
    "score dropped": ({"content": "Erin is anomalous, clearly."}, "erin", "missing_score"),
    "flagged user called normal": ({"content": "Erin is not anomalous: score {score}."}, "erin",
                                   "wrong_verdict"),
    "flagged user below threshold": ({"content": "Erin's score {score} does not exceed the threshold."},
                                     "erin", "wrong_verdict"),
    "normal user called anomalous": ({"content": "Manager is flagged as anomalous with score {score}."},
                                     "manager", "wrong_verdict"),
    "normal user above threshold": ({"content": "Manager scores {score}, above the threshold."}, "manager",
                                    "wrong_verdict"),
    "another score": ({"content": "Erin is anomalous: score {score}, up from 0.123."}, "erin", "wrong_figure"),
    "a wrong feature value": ({"content": "Erin is anomalous (score {score}) with {wrong_ips} unique IPs."},
                              "erin", "wrong_figure"),
    "another user": ({"content": "Erin is anomalous with score {score}, just like mallory."}, "erin",
                     "other_user"),
}


@pytest.mark.parametrize("told, user, reason", BAD_REPLIES.values(), ids=BAD_REPLIES.keys())
def test_a_bad_reply_falls_back_to_the_template_logged_and_counted(run, fake, told, user, reason, caplog):
    model, _ = fake
    score = f"{run.row(user)['anomaly_score']:.3f}"
    values = {"score": score, "wrong_ips": int(run.row(user)["unique_ips"]) + 7}
    for name, value in told.items():
        if name == "body":
            value = json.loads(json.dumps(value).replace("{score}", score))
        elif name == "content":
            value = value.format(**values)
        setattr(model, name, value)
    with serving(create_app(run.output)) as plain:
        template = query(plain, f"Is user {user} anomalous?")
    caplog.set_level(logging.WARNING, logger="streamguard.assistant")
    with serving(create_app(run.output, llm=llm_config(fake))) as api:
        body = query(api, f"Is user {user} anomalous?")
        counted = fallbacks(api)
    assert len(model.requests) == 1
    assert (body["phrased_by"], body["llm_fallback"]) == ("template", reason)
    assert body["answer"] == template["answer"]
    assert counted == {name: (1 if name == reason else 0) for name in FALLBACK_REASONS}
    lines = [record.getMessage() for record in caplog.records if record.name.startswith("streamguard.assistant")]
    assert len(lines) == 1 and f"({reason})" in lines[0], lines
    assert "\n" not in lines[0] and len(lines[0]) < 400


def test_an_unreachable_model_falls_back(run):
    config = LlmConfig(base_url=f"http://127.0.0.1:{free_port('127.0.0.1')}/v1", model="m")
    with serving(create_app(run.output, llm=config)) as api:
        body = query(api, "Is user erin anomalous?")
        assert (body["phrased_by"], body["llm_fallback"]) == ("template", "http_error")
        assert fallbacks(api)["http_error"] == 1


def test_a_model_that_never_answers_is_cut_off_by_the_timeout(run, fake):
    model, _ = fake
    model.held = True
    with serving(create_app(run.output, llm=llm_config(fake, timeout_s=0.5))) as api:
        body = query(api, "Is user erin anomalous?")
        assert (body["phrased_by"], body["llm_fallback"]) == ("template", "timeout")
        assert fallbacks(api)["timeout"] == 1
    # The model got the request and had not answered when the API gave up on it.
    assert len(model.requests) == 1 and model.answered == 0


def ask_in_background(pool: ThreadPoolExecutor, api: str, question: str) -> Future[dict[str, Any]]:
    return pool.submit(query, api, question)


def test_slow_model_calls_never_hold_up_the_data_routes(run, fake):
    model, _ = fake
    model.held = True
    model.content = f"Erin looks compromised: score {run.row('erin')['anomaly_score']:.3f}."
    asks = 45  # more than the thread pool's 40 threads, which these calls once filled
    config = llm_config(fake, max_concurrent=64, timeout_s=ASK_TIMEOUT_S)
    with serving(create_app(run.output, llm=config)) as api, ThreadPoolExecutor(asks) as pool:
        pending = [ask_in_background(pool, api, "Is user erin anomalous?") for _ in range(asks)]
        model.wait_for(lambda: model.waiting == asks, f"{asks} requests waiting at once")
        for path in ("/api/training-data/anomalies/erin", "/api/training-data/anomalies", "/users/erin",
                     "/api/training-data/stats", "/health"):
            assert httpx.get(api + path, timeout=ASK_TIMEOUT_S).status_code == 200, path
        # Every data answer came while all the model calls were still outstanding.
        assert model.waiting == asks and model.answered == 0
        assert not any(future.done() for future in pending)
        model.release()
        answers = [future.result() for future in pending]
    assert {answer["phrased_by"] for answer in answers} == {"llm"}


def test_a_full_concurrency_limit_answers_with_the_template_at_once(run, fake):
    model, _ = fake
    model.held = True
    model.content = f"Erin looks compromised: score {run.row('erin')['anomaly_score']:.3f}."
    config = llm_config(fake, max_concurrent=2, timeout_s=ASK_TIMEOUT_S)
    with serving(create_app(run.output, llm=config)) as api, ThreadPoolExecutor(2) as pool:
        in_flight = [ask_in_background(pool, api, "Is user erin anomalous?") for _ in range(2)]
        model.wait_for(lambda: model.waiting == 2, "the two calls the limit allows")
        over = query(api, "Is user erin anomalous?")
        assert (over["phrased_by"], over["llm_fallback"]) == ("template", "busy")
        assert "erin is anomalous" in over["answer"]
        assert model.waiting == 2 and len(model.requests) == 2  # answered before the held calls, not sent
        assert fallbacks(api)["busy"] == 1
        model.release()
        assert {future.result()["phrased_by"] for future in in_flight} == {"llm"}
        # The slots are free again.
        assert query(api, "Is user erin anomalous?")["phrased_by"] == "llm"


def test_unknown_users_do_not_call_the_model(api, fake):
    model, _ = fake
    assert "no user 'zed'" in query(api, "Is user zed anomalous?")["answer"]
    assert model.requests == []


def test_the_blocking_entry_point_phrases_too(run, fake):
    """``streamguard ask`` calls answer_question over HTTP facts, outside any event loop."""
    model, _ = fake
    model.content = f"Mallory is anomalous: score {run.row('mallory')['anomaly_score']:.3f}."
    with serving(create_app(run.output)) as plain, ApiSource.connect(plain) as source:
        answer = answer_question("Is user mallory anomalous?", source=source, llm=llm_config(fake))
        assert (answer.answer, answer.phrased_by) == (model.content, "llm")
        model.content = "Mallory is fine."
        answer = answer_question("Is user mallory anomalous?", source=source, llm=llm_config(fake))
        assert (answer.phrased_by, answer.llm_fallback) == ("template", "missing_score")


def test_config_comes_from_the_environment_and_masks_the_key():
    assert LlmConfig.from_env({}) is None
    assert LlmConfig.from_env({"STREAMGUARD_LLM_BASE_URL": "http://127.0.0.1:1/v1"}) is None
    config = LlmConfig.from_env({
        "STREAMGUARD_LLM_BASE_URL": "http://127.0.0.1:1/v1/", "STREAMGUARD_LLM_MODEL": "m",
        "STREAMGUARD_LLM_API_KEY": API_KEY, "STREAMGUARD_LLM_PROMPT_USD_PER_1K": "0.25",
        "STREAMGUARD_LLM_TIMEOUT_S": "2.5", "STREAMGUARD_LLM_MAX_CONCURRENT": "8",
    })
    assert config is not None
    assert (config.base_url, config.model, config.prompt_usd_per_1k, config.completion_usd_per_1k,
            config.timeout_s, config.max_concurrent) == ("http://127.0.0.1:1/v1", "m", 0.25, 0.0, 2.5, 8)
    assert API_KEY not in repr(config) and "***" in repr(config)
    defaults = LlmConfig.from_env({"STREAMGUARD_LLM_BASE_URL": LOCAL_URL, "STREAMGUARD_LLM_MODEL": "m"})
    assert defaults is not None and (defaults.timeout_s, defaults.max_concurrent) == (10.0, 4)


@pytest.mark.parametrize("name, raw, message", [
    ("STREAMGUARD_LLM_PROMPT_USD_PER_1K", "cheap", "must be a number"),
    ("STREAMGUARD_LLM_TIMEOUT_S", "0", "must be above 0"),
    ("STREAMGUARD_LLM_TIMEOUT_S", "-1", "not below 0"),
    ("STREAMGUARD_LLM_TIMEOUT_S", "nan", "not below 0"),
    ("STREAMGUARD_LLM_MAX_CONCURRENT", "0", "must be at least 1"),
    ("STREAMGUARD_LLM_MAX_CONCURRENT", "2.5", "must be a whole number"),
])
def test_a_bad_setting_is_a_config_error_naming_it(name, raw, message):
    with pytest.raises(ConfigError, match=f"{name} .*{message}"):
        LlmConfig.from_env({"STREAMGUARD_LLM_BASE_URL": LOCAL_URL, "STREAMGUARD_LLM_MODEL": "m", name: raw})


@pytest.mark.parametrize("base_url", ["127.0.0.1:11434/v1", "ftp://127.0.0.1/v1", "http://[::1"])
def test_a_base_url_that_is_not_http_is_a_config_error(base_url):
    with pytest.raises(ConfigError, match="STREAMGUARD_LLM_BASE_URL"):
        LlmConfig.from_env({"STREAMGUARD_LLM_BASE_URL": base_url, "STREAMGUARD_LLM_MODEL": "m"})
