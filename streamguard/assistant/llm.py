"""Optional phrasing by a language model behind an OpenAI-compatible ``/chat/completions`` endpoint.

Off unless both ``STREAMGUARD_LLM_BASE_URL`` (e.g. ``http://127.0.0.1:11434/v1``) and
``STREAMGUARD_LLM_MODEL`` are set; ``STREAMGUARD_LLM_API_KEY`` is sent as a bearer token when set. Token
prices (USD per 1,000 tokens) come from ``STREAMGUARD_LLM_PROMPT_USD_PER_1K`` and
``STREAMGUARD_LLM_COMPLETION_USD_PER_1K`` (default 0) and feed ``assistant_llm_cost_usd_total``.

    >>> config = LlmConfig.from_env()          # None when not configured
    >>> text = phrase(config, facts, question, draft, metrics)

The model gets the facts as JSON and the template answer as a draft, and is told to use no other figure. Its
text is accepted only if it still quotes the user's anomaly score as the draft does; otherwise, and on any
HTTP or format problem, :func:`phrase` raises StreamguardError and the caller keeps the template answer.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, Counter

from streamguard.errors import ConfigError, StreamguardError

ENV_BASE_URL = "STREAMGUARD_LLM_BASE_URL"
ENV_MODEL = "STREAMGUARD_LLM_MODEL"
ENV_API_KEY = "STREAMGUARD_LLM_API_KEY"
ENV_PROMPT_PRICE = "STREAMGUARD_LLM_PROMPT_USD_PER_1K"
ENV_COMPLETION_PRICE = "STREAMGUARD_LLM_COMPLETION_USD_PER_1K"
ENV_TIMEOUT = "STREAMGUARD_LLM_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 20.0

SYSTEM_PROMPT = (
    "You are a security analyst's assistant. Answer the question about one user of a batch "
    "anomaly-detection run in two to four plain sentences. Use only the facts given as JSON; quote every "
    "figure exactly as written in the draft answer, including the anomaly score with three decimals; never "
    "invent a figure."
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

    def __repr__(self) -> str:
        key = "***" if self.api_key else None
        return (f"LlmConfig(base_url={self.base_url!r}, model={self.model!r}, api_key={key!r}, "
                f"prompt_usd_per_1k={self.prompt_usd_per_1k}, "
                f"completion_usd_per_1k={self.completion_usd_per_1k}, timeout_s={self.timeout_s})")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LlmConfig | None:
        """The configuration in the environment, or None when base URL or model is unset."""
        env = os.environ if env is None else env
        base_url, model = env.get(ENV_BASE_URL, "").strip(), env.get(ENV_MODEL, "").strip()
        if not base_url or not model:
            return None
        return cls(base_url=base_url.rstrip("/"), model=model, api_key=env.get(ENV_API_KEY) or None,
                   prompt_usd_per_1k=_number(env, ENV_PROMPT_PRICE, 0.0),
                   completion_usd_per_1k=_number(env, ENV_COMPLETION_PRICE, 0.0),
                   timeout_s=_number(env, ENV_TIMEOUT, DEFAULT_TIMEOUT_S))

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
    if value < 0:
        raise ConfigError(f"{name} must not be negative, not {raw!r}")
    return value


class AssistantMetrics:
    """The assistant's counters, on the registry given (the app's, or a private one in the CLI)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry if registry is not None else CollectorRegistry()
        self.answers = Counter("assistant_answers", "Assistant answers, by who phrased them.", ["phrased_by"],
                               registry=registry)
        self.llm_requests = Counter("assistant_llm_requests", "Calls to the language model, by outcome.",
                                    ["outcome"], registry=registry)
        self.llm_tokens = Counter("assistant_llm_tokens", "Tokens the language model reported, by kind.",
                                  ["kind"], registry=registry)
        self.llm_cost = Counter("assistant_llm_cost_usd", "Cost of the language model calls (set prices).",
                                registry=registry)
        # Children exist from the start so dashboards see zeros rather than no series.
        for phrased_by in ("template", "llm"):
            self.answers.labels(phrased_by=phrased_by)
        for outcome in ("ok", "error", "rejected"):
            self.llm_requests.labels(outcome=outcome)
        for kind in ("prompt", "completion"):
            self.llm_tokens.labels(kind=kind)


def phrase(config: LlmConfig, facts: Mapping[str, Any], question: str, draft: str, metrics: AssistantMetrics,
           *, must_quote: str | None = None) -> str:
    """The model's wording of ``draft``; raises StreamguardError when it fails or drops ``must_quote``."""
    payload = {
        "model": config.model,
        "temperature": 0,
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": f"Facts (JSON):\n{json.dumps(facts, indent=1)}\n\n"
                                        f"Question: {question}\n\nDraft answer: {draft}"},
        ],
    }
    headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
    try:
        response = httpx.post(f"{config.base_url}/chat/completions", json=payload, headers=headers,
                              timeout=config.timeout_s)
        response.raise_for_status()
        body = response.json()
        text = str(body["choices"][0]["message"]["content"]).strip()
        usage = body.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens", 0))
        completion_tokens = int(usage.get("completion_tokens", 0))
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
        metrics.llm_requests.labels(outcome="error").inc()
        problem = str(exc) or type(exc).__name__
        raise StreamguardError(f"the language model at {config.base_url} failed: {problem}") from exc
    metrics.llm_tokens.labels(kind="prompt").inc(prompt_tokens)
    metrics.llm_tokens.labels(kind="completion").inc(completion_tokens)
    metrics.llm_cost.inc(config.cost_usd(prompt_tokens, completion_tokens))
    if not text or (must_quote is not None and must_quote not in text):
        metrics.llm_requests.labels(outcome="rejected").inc()
        raise StreamguardError(f"the language model's answer dropped the figure {must_quote!r}; "
                               "using the template")
    metrics.llm_requests.labels(outcome="ok").inc()
    return text
