"""Answers about a batch result, in plain sentences with the run's real figures: about one user, or lists.

    >>> with ApiSource.connect("http://127.0.0.1:8081") as source:
    ...     print(answer_question("Is user manager anomalous?", source=source).answer)
    User manager is not anomalous in run 20260105T...: its anomaly score 0.231 does not exceed ...
    ...     print(answer_question("Who are the top anomalies?", source=source).answer)

An answer about a user names the score against the detector's threshold, the user's events, average threat
score, failed-auth rate and unique IPs, and what sets the user apart: the model features on which it lies
furthest from the run's average *in the risky direction the feature registry declares*, in population standard
deviations, each with its documented definition. Features the detector does not use, and deviations on the safe
side (fewer failures than average), are never cited: they are not why a user is flagged. A user absent from the
data gets "no user ... in the training data"; a question naming nobody gets a hint. "Who are the top
anomalies?", "List the anomalous users" and "How many users are anomalous?" are answered from the run's
anomaly list (``kind`` ``list`` / ``count``). With an :class:`LlmConfig` the model rewords a user answer from
the same facts; when its reply fails or contradicts them the template answer stands (``llm_fallback`` says
why: :mod:`streamguard.assistant.llm`, :mod:`streamguard.assistant.check`).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from streamguard.assistant.check import check_reply
from streamguard.assistant.llm import (
    AssistantMetrics,
    FallbackReason,
    LlmConfig,
    Phrased,
    Phraser,
    Rejection,
)
from streamguard.assistant.resolve import candidates, resolve_user
from streamguard.assistant.source import FactSource
from streamguard.contracts.features import FEATURE_BY_NAME
from streamguard.report import TopAnomaly
from streamguard.serve.models import USER_MAX_LENGTH, FeaturesResponse

TOP_DEVIATIONS = 3
DEFAULT_LIST = 10
MAX_LIST = 100
_FLAGGED = r"(?:anomal\w*|flagged|suspicious|compromised|risky|outliers?)"
_COUNT = re.compile(rf"\bhow\s+many\b.*\b{_FLAGGED}", re.IGNORECASE)
_LIST = re.compile(rf"\b(?:who|which|list|show|top|most|name)\b.*\b{_FLAGGED}", re.IGNORECASE)
_TOP_N = re.compile(r"\b(?:top|first|the)\s+(\d{1,3})\b", re.IGNORECASE)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Deviation(_Model):
    """How far one model feature of the user lies from the population, in population standard deviations;
    ``z_score`` is positive in the feature's risky direction (``risk``)."""

    feature: str
    definition: str
    unit: str
    risk: Literal["higher", "lower"]
    value: float
    population_mean: float
    population_std: float
    z_score: float


class AssistantAnswer(_Model):
    question: str
    answer: str
    phrased_by: Literal["template", "llm"] = Field(
        description="Who worded the answer: the template, or the language model (from the same facts).")
    llm_fallback: FallbackReason | None = Field(
        default=None, description="Why a configured language model's wording was not used (the template "
                                  "answer stands): busy, timeout, http_error, not_json, malformed, empty, "
                                  "missing_score, wrong_verdict, wrong_figure or other_user.")
    kind: Literal["user", "unknown_user", "no_user", "list", "count"] = Field(
        default="user", description="What was answered: one user, a user the data lacks, nobody named, the "
                                    "list of anomalous users, or their number.")
    user: str | None = Field(description="The user the answer is about; None when the question named none.")
    known_user: bool = Field(description="Whether the training data holds that user.")
    is_anomaly: bool | None = None
    anomaly_score: float | None = None
    threshold: float | None = None
    run_id: str
    deviations: list[Deviation] = Field(default_factory=list)
    anomalous_users: int | None = Field(default=None, description="Users flagged in the run (list, count).")
    anomalies: list[TopAnomaly] = Field(default_factory=list, description="The most anomalous users (list).")


def deviations(row: BaseModel, population: FeaturesResponse, top: int = TOP_DEVIATIONS) -> list[Deviation]:
    """The ``top`` model features on which ``row`` lies furthest from the population mean in the feature's risky
    direction; features outside the model, constant ones and deviations on the safe side are left out."""
    found = []
    for feature in population.features:
        registered = FEATURE_BY_NAME.get(feature.name)
        if registered is None or not registered.detector_uses or registered.risk is None or feature.std <= 0:
            continue
        value = float(getattr(row, feature.name))
        sign = 1.0 if registered.risk == "higher" else -1.0
        z_score = sign * (value - feature.mean) / feature.std
        if z_score > 0:
            found.append(Deviation(
                feature=feature.name, definition=feature.definition, unit=feature.unit, risk=registered.risk,
                value=value, population_mean=feature.mean, population_std=feature.std, z_score=z_score,
            ))
    found.sort(key=lambda d: (-d.z_score, d.feature))
    return found[:top]


@dataclass(frozen=True)
class Draft:
    """The template answer, and the facts a model may word it from (None: nothing for a model to word)."""

    answer: AssistantAnswer
    facts: dict[str, Any] | None = None


def draft_answer(question: str, *, source: FactSource, user_id: str | None = None) -> Draft:
    """The template answer to ``question`` about the user it names (or ``user_id``) from ``source``'s facts."""
    stats: Any = source.stats()
    resolved = resolve_user(question, lookup=source.user, user_id=user_id)
    # A list or count question names no user plainly; "Is user zed among the top anomalies?" is about zed.
    if resolved.row is None and user_id is None and not candidates(question)[0]:
        if _COUNT.search(question):
            return Draft(_count_answer(question, stats))
        if _LIST.search(question):
            return Draft(_list_answer(question, stats, source))
    if resolved.name is None:
        text = ("I could not tell which user the question is about. Name one, for example "
                f"\"Is user manager anomalous?\", or ask \"Who are the top anomalies?\" (run {stats.run_id} "
                f"holds {stats.total_users:,} users).")
        return Draft(AssistantAnswer(question=question, answer=text, phrased_by="template", kind="no_user",
                                     user=None, known_user=False, run_id=stats.run_id))
    if resolved.row is None:
        text = (f"There is no user {resolved.name!r} in the training data of run {stats.run_id} "
                f"({stats.total_users:,} users); check the spelling, or ask \"Who are the top anomalies?\".")
        return Draft(AssistantAnswer(question=question, answer=text, phrased_by="template", kind="unknown_user",
                                     user=resolved.name, known_user=False, run_id=stats.run_id))

    row: Any = resolved.row
    population = source.population()
    found = deviations(row, population)
    answer = AssistantAnswer(
        question=question, answer=_describe(row, stats, population.users, found), phrased_by="template",
        user=row.user, known_user=True, is_anomaly=row.is_anomaly == 1, anomaly_score=row.anomaly_score,
        threshold=stats.threshold, run_id=stats.run_id, deviations=found,
    )
    return Draft(answer, _facts(answer, row, stats, population.users))


async def answer_question_async(question: str, *, source: FactSource, user_id: str | None = None,
                                phraser: Phraser | None = None,
                                metrics: AssistantMetrics | None = None) -> AssistantAnswer:
    """Answer ``question`` from ``source``; with a ``phraser`` the model words a user answer, else (or when
    its reply is not used) the template answer stands. Waits on the model only, never on a thread."""
    metrics = metrics or AssistantMetrics()
    draft = draft_answer(question, source=source, user_id=user_id)
    if phraser is None or draft.facts is None:
        return _done(metrics, draft.answer)
    phrased = await phraser.phrase(draft.facts, question, draft.answer.answer, _checker(draft, question, source))
    return _done(metrics, _worded(draft.answer, phrased))


def answer_question(question: str, *, source: FactSource, user_id: str | None = None,
                    llm: LlmConfig | None = None, metrics: AssistantMetrics | None = None) -> AssistantAnswer:
    """Answer ``question`` about the user it names (or ``user_id``) from ``source``'s facts; blocking, for the
    CLI (a server awaits :func:`answer_question_async` with one :class:`Phraser` for all requests)."""
    metrics = metrics or AssistantMetrics()
    if llm is None:
        return _done(metrics, draft_answer(question, source=source, user_id=user_id).answer)
    return asyncio.run(answer_question_async(question, source=source, user_id=user_id,
                                             phraser=Phraser(llm, metrics), metrics=metrics))


def _checker(draft: Draft, question: str, source: FactSource) -> Callable[[str], Rejection | None]:
    facts = draft.facts or {}

    def known_user(name: str) -> bool:
        return 0 < len(name) <= USER_MAX_LENGTH and source.user(name) is not None

    return lambda text: check_reply(text, facts, grounding=(draft.answer.answer, question), known_user=known_user)


def _worded(answer: AssistantAnswer, phrased: Phrased) -> AssistantAnswer:
    if phrased.text is None:
        return answer.model_copy(update={"llm_fallback": phrased.fallback})
    return answer.model_copy(update={"answer": phrased.text, "phrased_by": "llm"})


def _count_answer(question: str, stats: Any) -> AssistantAnswer:
    text = (f"{stats.anomalous_users:,} of the {stats.total_users:,} users of run {stats.run_id} are anomalous "
            f"({stats.anomaly_rate:.1%}): their anomaly score exceeds the {stats.algorithm} threshold of "
            f"{stats.threshold:.3f}.")
    return AssistantAnswer(question=question, answer=text, phrased_by="template", kind="count", user=None,
                           known_user=False, threshold=stats.threshold, run_id=stats.run_id,
                           anomalous_users=stats.anomalous_users)


def _list_answer(question: str, stats: Any, source: FactSource) -> AssistantAnswer:
    asked = _TOP_N.search(question)
    limit = min(MAX_LIST, max(1, int(asked.group(1)))) if asked else DEFAULT_LIST
    lister = getattr(source, "anomalies", None)
    items: list[TopAnomaly] = [] if lister is None else list(lister(limit).items)
    if stats.anomalous_users == 0:
        text = (f"No user of run {stats.run_id} is anomalous: none of its {stats.total_users:,} users scores above "
                f"the {stats.algorithm} threshold of {stats.threshold:.3f}.")
    elif not items:
        text = (f"{stats.anomalous_users:,} of the {stats.total_users:,} users of run {stats.run_id} are "
                f"anomalous; the list is at /api/training-data/anomalies.")
    else:
        names = "; ".join(f"{item.user} (score {item.anomaly_score:.3f}, {item.total_events:,} events)"
                          for item in items)
        shown = "" if len(items) >= stats.anomalous_users else f"the {len(items)} most anomalous: "
        text = (f"{stats.anomalous_users:,} of the {stats.total_users:,} users of run {stats.run_id} are "
                f"anomalous (score above the {stats.algorithm} threshold of {stats.threshold:.3f}), "
                f"{shown or 'most anomalous first: '}{names}.")
    return AssistantAnswer(question=question, answer=text, phrased_by="template", kind="list", user=None,
                           known_user=False, threshold=stats.threshold, run_id=stats.run_id,
                           anomalous_users=stats.anomalous_users, anomalies=items)


def _done(metrics: AssistantMetrics, answer: AssistantAnswer) -> AssistantAnswer:
    metrics.answers.labels(phrased_by=answer.phrased_by).inc()
    return answer


def _describe(row: Any, stats: Any, users: int, found: list[Deviation]) -> str:
    if row.is_anomaly == 1:
        verdict = (f"User {row.user} is anomalous in run {stats.run_id}: its anomaly score "
                   f"{row.anomaly_score:.3f} exceeds the {stats.algorithm} threshold of "
                   f"{stats.threshold:.3f}.")
        apart = f"What sets it apart from the {users:,} users of the run: "
    else:
        verdict = (f"User {row.user} is not anomalous in run {stats.run_id}: its anomaly score "
                   f"{row.anomaly_score:.3f} does not exceed the {stats.algorithm} threshold of "
                   f"{stats.threshold:.3f}.")
        apart = (f"Its model features furthest on the risky side of the average of the {users:,} users, not "
                 "enough to flag it: ")
    figures = (f" It had {row.total_events:,} events, an average threat score of {row.avg_threat_score:.3f}, "
               f"a failed-auth rate of {row.failed_auth_rate:.1%} and {row.unique_ips:,} unique IPs.")
    if not found:
        return verdict + figures + " None of the model's features lies on the risky side of the average."
    return verdict + figures + " " + apart + "; ".join(_deviation_text(d) for d in found) + "."


def _deviation_text(d: Deviation) -> str:
    direction = "above" if d.risk == "higher" else "below"
    return (f"{d.feature} is {_number(d.value)} against a mean of {_number(d.population_mean)} "
            f"({d.z_score:.1f} standard deviations {direction}; {d.definition.rstrip('.')})")


def _number(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.3f}"


def _facts(answer: AssistantAnswer, row: Any, stats: Any, users: int) -> dict[str, Any]:
    return {
        "user": row.user, "run_id": stats.run_id, "is_anomalous": answer.is_anomaly,
        "anomaly_score": round(row.anomaly_score, 3), "threshold": round(stats.threshold, 3),
        "algorithm": stats.algorithm, "total_events": row.total_events,
        "avg_threat_score": round(row.avg_threat_score, 3),
        "failed_auth_rate": round(row.failed_auth_rate, 3),
        "unique_ips": row.unique_ips, "users_in_run": users,
        "most_unusual_features": [
            {"feature": d.feature, "definition": d.definition, "value": d.value,
             "population_mean": round(d.population_mean, 3),
             "risky_direction": d.risk, "standard_deviations_to_the_risky_side": round(d.z_score, 1)}
            for d in answer.deviations
        ],
    }
