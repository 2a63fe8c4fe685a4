"""Optional phrasing by a language model behind an OpenAI-compatible ``/chat/completions`` endpoint.

Off unless both ``STREAMGUARD_LLM_BASE_URL`` (e.g. ``http://127.0.0.1:11434/v1``) and
``STREAMGUARD_LLM_MODEL`` are set; ``STREAMGUARD_LLM_API_KEY`` is sent as a bearer token when set.

    STREAMGUARD_LLM_TIMEOUT_S              10     the whole call, connect to last byte; then the template
    STREAMGUARD_LLM_MAX_CONCURRENT         4      calls in flight per process; past it, the template at once
    STREAMGUARD_LLM_PROMPT_USD_PER_1K      0      token prices, for assistant_llm_cost_usd_total
    STREAMGUARD_LLM_COMPLETION_USD_PER_1K  0

    >>> phraser = Phraser(LlmConfig.from_env(), metrics)
    >>> outcome = await phraser.phrase(facts, question, draft, check=lambda text: None)
    >>> outcome.text or draft                   # None when the template answer stands; outcome.fallback says why

The model gets the facts as JSON and the template answer as a draft. Its reply is used only when it is a
well-formed completion (JSON, at least one choice, non-empty text, ``usage`` absent or an object of
non-negative integers) and ``check`` finds nothing wrong in it (see :mod:`streamguard.assistant.check`).
Otherwise the template answer stands: one log line says why, and ``assistant_llm_fallbacks_total{reason}``
counts it, ``reason`` one of :data:`FALLBACK_REASONS`. A call never waits for a free slot: when
``max_concurrent`` calls are in flight the answer is the template at once (reason ``busy``), since the
template holds the same facts and a waiting request would only hold a connection longer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

import httpx
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from streamguard.errors import ConfigError

log = logging.getLogger(__name__)

ENV_BASE_URL = "STREAMGUARD_LLM_BASE_URL"
ENV_MODEL = "STREAMGUARD_LLM_MODEL"
ENV_API_KEY = "STREAMGUARD_LLM_API_KEY"
ENV_PROMPT_PRICE = "STREAMGUARD_LLM_PROMPT_USD_PER_1K"
ENV_COMPLETION_PRICE = "STREAMGUARD_LLM_COMPLETION_USD_PER_1K"
ENV_TIMEOUT = "STREAMGUARD_LLM_TIMEOUT_S"
ENV_MAX_CONCURRENT = "STREAMGUARD_LLM_MAX_CONCURRENT"
# The template answer is ready before the call starts, so waiting long for mere wording buys little; a hosted
# model words four sentences in a few seconds, a local one on a CPU may need the rest.
DEFAULT_TIMEOUT_S = 10.0
# Local model servers answer a handful of requests at a time; more in flight only queue there.
DEFAULT_MAX_CONCURRENT = 4
# A completion of a few sentences is a few KiB; a larger body is not one, and is not held in memory.
MAX_REPLY_BYTES = 1024 * 1024
_DETAIL_CHARS = 160

FallbackReason = Literal[
    "busy",            # max_concurrent calls already in flight: not called
    "timeout",         # no whole reply within timeout_s
    "http_error",      # connection refused or reset, or a non-2xx status
    "not_json",        # the body is not JSON
    "malformed",       # not a completion: no choices, usage not an object, tokens not integers >= 0, over 1 MiB
    "empty",           # the completion's text is empty
    "missing_score",   # the text does not quote the user's anomaly score
    "wrong_verdict",   # calls a flagged user normal, or a normal one anomalous
    "wrong_figure",    # a number that is none of the facts' (another score, a wrong feature value)
    "other_user",      # names a user of the run other than the one asked about
]
FALLBACK_REASONS: tuple[str, ...] = get_args(FallbackReason)

SYSTEM_PROMPT = (
    "You are a security analyst's assistant. Answer the question about one user of a batch "
    "anomaly-detection run in two to four plain sentences. Use only the facts given as JSON; quote every "
    "figure exactly as written in the draft answer, including the anomaly score with three decimals; never "
    "invent a figure and name no other user."
)


@dataclass(frozen=True, kw_only=True)
class LlmConfig:
    """Where and how to call the model. ``repr`` masks the API key."""

    base_url: str
    model: str
    api_key: str | None = None
    prompt_usd_per_1k: float = 0.0
    completion_usd_per_1k: float = 0.0
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_concurrent: int = DEFAULT_MAX_CONCURRENT

    def __post_init__(self) -> None:
        try:
            scheme = httpx.URL(self.base_url).scheme
        except httpx.InvalidURL as exc:
            raise ConfigError(f"{ENV_BASE_URL} is not a URL: {self.base_url!r}") from exc
        if scheme not in ("http", "https"):
            raise ConfigError(f"{ENV_BASE_URL} must be an http:// or https:// URL, not {self.base_url!r}")
        if not self.timeout_s > 0:
            raise ConfigError(f"the language model's timeout must be above 0 seconds, not {self.timeout_s}")
        if self.max_concurrent < 1:
            raise ConfigError(f"the language model's concurrency limit must be at least 1, not "
                              f"{self.max_concurrent}")

    def __repr__(self) -> str:
        key = "***" if self.api_key else None
        return (f"LlmConfig(base_url={self.base_url!r}, model={self.model!r}, api_key={key!r}, "
                f"prompt_usd_per_1k={self.prompt_usd_per_1k}, "
                f"completion_usd_per_1k={self.completion_usd_per_1k}, timeout_s={self.timeout_s}, "
                f"max_concurrent={self.max_concurrent})")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LlmConfig | None:
        """The configuration in the environment, or None when base URL or model is unset."""
        env = os.environ if env is None else env
        base_url, model = env.get(ENV_BASE_URL, "").strip(), env.get(ENV_MODEL, "").strip()
        if not base_url or not model:
            return None
        timeout_s = _number(env, ENV_TIMEOUT, DEFAULT_TIMEOUT_S)
        if timeout_s == 0:
            raise ConfigError(f"{ENV_TIMEOUT} must be above 0, not {env[ENV_TIMEOUT]!r}")
        return cls(base_url=base_url.rstrip("/"), model=model, api_key=env.get(ENV_API_KEY) or None,
                   prompt_usd_per_1k=_number(env, ENV_PROMPT_PRICE, 0.0),
                   completion_usd_per_1k=_number(env, ENV_COMPLETION_PRICE, 0.0),
                   timeout_s=timeout_s, max_concurrent=_count(env, ENV_MAX_CONCURRENT, DEFAULT_MAX_CONCURRENT))

    def cost_usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        prompt_usd = prompt_tokens * self.prompt_usd_per_1k
        return (prompt_usd + completion_tokens * self.completion_usd_per_1k) / 1000


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from exc
    if not value >= 0 or value == float("inf"):
        raise ConfigError(f"{name} must be a finite number not below 0, not {raw!r}")
    return value


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from exc
    if value < 1:
        raise ConfigError(f"{name} must be at least 1, not {raw!r}")
    return value


class AssistantMetrics:
    """The assistant's counters, on the registry given (the app's, or a private one in the CLI)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry if registry is not None else CollectorRegistry()
        self.answers = Counter("assistant_answers", "Assistant answers, by who phrased them.", ["phrased_by"],
                               registry=registry)
        self.llm_requests = Counter("assistant_llm_requests", "Calls to the language model, by outcome.",
                                    ["outcome"], registry=registry)
        self.llm_fallbacks = Counter("assistant_llm_fallbacks",
                                     "Answers the language model should have worded that kept the template "
                                     "answer, by reason.", ["reason"], registry=registry)
        self.llm_tokens = Counter("assistant_llm_tokens", "Tokens the language model reported, by kind.",
                                  ["kind"], registry=registry)
        self.llm_cost = Counter("assistant_llm_cost_usd", "Cost of the language model calls (set prices).",
                                registry=registry)
        # Children exist from the start so dashboards see zeros rather than no series.
        for phrased_by in ("template", "llm"):
            self.answers.labels(phrased_by=phrased_by)
        for outcome in ("ok", "error", "rejected"):
            self.llm_requests.labels(outcome=outcome)
        for reason in FALLBACK_REASONS:
            self.llm_fallbacks.labels(reason=reason)
        for kind in ("prompt", "completion"):
            self.llm_tokens.labels(kind=kind)


@dataclass(frozen=True)
class Rejection:
    """Why a reply's text is not used: a reason from :data:`FALLBACK_REASONS` and a short detail."""

    reason: FallbackReason
    detail: str


@dataclass(frozen=True)
class Phrased:
    """The model's text, or None with the reason the template answer stands."""

    text: str | None
    fallback: FallbackReason | None = None


class _Usage(BaseModel):
    model_config = ConfigDict(extra="allow")
    prompt_tokens: StrictInt = Field(default=0, ge=0)
    completion_tokens: StrictInt = Field(default=0, ge=0)


class _Message(BaseModel):
    content: StrictStr | None = None


class _Choice(BaseModel):
    message: _Message


class _Completion(BaseModel):
    """The part of an OpenAI chat completion that is read; anything else in it is ignored."""

    choices: list[_Choice] = Field(min_length=1)
    usage: _Usage | None = None


class _Fallback(Exception):
    def __init__(self, reason: FallbackReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class Phraser:
    """Has the model word answers, with at most ``config.max_concurrent`` calls in flight per instance.

    One instance per server (the slots are its own); safe to use from several event loops and threads, since
    a slot is taken without waiting.
    """

    def __init__(self, config: LlmConfig, metrics: AssistantMetrics) -> None:
        self.config = config
        self._metrics = metrics
        self._slots = threading.BoundedSemaphore(config.max_concurrent)
        # Made once: building it loads the CA bundle (~0.2 s of CPU), which per call would stall the event loop.
        self._tls = httpx.create_ssl_context()

    async def phrase(self, facts: Mapping[str, Any], question: str, draft: str,
                     check: Callable[[str], Rejection | None]) -> Phrased:
        """The model's wording of ``draft``, or the reason it is not used (logged and counted)."""
        if not self._slots.acquire(blocking=False):
            return self._fall_back(_Fallback("busy", f"{self.config.max_concurrent} calls already in flight"))
        try:
            text = await self._complete(facts, question, draft)
            rejection = check(text)
            if rejection is not None:
                self._metrics.llm_requests.labels(outcome="rejected").inc()
                return self._fall_back(_Fallback(rejection.reason, rejection.detail))
        except _Fallback as fallback:
            return self._fall_back(fallback)
        finally:
            self._slots.release()
        self._metrics.llm_requests.labels(outcome="ok").inc()
        return Phrased(text)

    def _fall_back(self, fallback: _Fallback) -> Phrased:
        self._metrics.llm_fallbacks.labels(reason=fallback.reason).inc()
        log.warning("assistant: template answer given, the language model's wording not used (%s): %s",
                    fallback.reason, fallback)
        return Phrased(None, fallback.reason)

    async def _complete(self, facts: Mapping[str, Any], question: str, draft: str) -> str:
        """The completion's text; raises _Fallback for a failed call or a reply that is not a completion."""
        try:
            async with asyncio.timeout(self.config.timeout_s):
                body = await self._post(facts, question, draft)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise self._error("timeout", f"no reply from {self.config.base_url} within "
                                         f"{self.config.timeout_s:g} s") from exc
        except httpx.HTTPStatusError as exc:
            raise self._error("http_error", f"{self.config.base_url} answered "
                                            f"{exc.response.status_code}") from exc
        except httpx.HTTPError as exc:
            raise self._error("http_error", f"{self.config.base_url}: {exc or type(exc).__name__}") from exc
        try:
            completion = _Completion.model_validate_json(body)
        except ValidationError as exc:
            reason: FallbackReason = "not_json" if _is_not_json(exc) else "malformed"
            raise self._error(reason, _short(_first_problem(exc))) from exc
        usage = completion.usage or _Usage()
        self._metrics.llm_tokens.labels(kind="prompt").inc(usage.prompt_tokens)
        self._metrics.llm_tokens.labels(kind="completion").inc(usage.completion_tokens)
        self._metrics.llm_cost.inc(self.config.cost_usd(usage.prompt_tokens, usage.completion_tokens))
        text = (completion.choices[0].message.content or "").strip()
        if not text:
            self._metrics.llm_requests.labels(outcome="rejected").inc()
            raise _Fallback("empty", "the completion has no text")
        return text

    def _error(self, reason: FallbackReason, detail: str) -> _Fallback:
        self._metrics.llm_requests.labels(outcome="error").inc()
        return _Fallback(reason, detail)

    async def _post(self, facts: Mapping[str, Any], question: str, draft: str) -> bytes:
        payload = {
            "model": self.config.model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": f"Facts (JSON):\n{json.dumps(facts, indent=1)}\n\n"
                                            f"Question: {question}\n\nDraft answer: {draft}"},
            ],
        }
        headers = {"Authorization": f"Bearer {self.config.api_key}"} if self.config.api_key else {}
        async with (httpx.AsyncClient(timeout=self.config.timeout_s, verify=self._tls) as client,
                    client.stream("POST", f"{self.config.base_url}/chat/completions", json=payload,
                                  headers=headers) as response):
            response.raise_for_status()
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_REPLY_BYTES:
                    raise self._error("malformed", f"the reply is over {MAX_REPLY_BYTES:,} bytes")
            return bytes(body)


def _is_not_json(exc: ValidationError) -> bool:
    return any(error["type"] == "json_invalid" for error in exc.errors())


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "the body"
    return f"{where}: {error['msg']}"


def _short(text: str) -> str:
    return text if len(text) <= _DETAIL_CHARS else text[:_DETAIL_CHARS] + "…"
