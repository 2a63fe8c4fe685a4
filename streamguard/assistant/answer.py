"""Answers to questions about one user's batch result, in plain sentences with the run's real figures.

    >>> with ApiSource.connect("http://127.0.0.1:8081") as source:
    ...     print(answer_question("Is user manager anomalous?", source=source).answer)
    User manager is not anomalous in run 20260105T...: its anomaly score 0.231 does not exceed ...

An answer names the score against the detector's threshold, the user's events, average threat score,
failed-auth rate and unique IPs, and the features that most set the user apart: the largest standardised
deviations ``(value - mean) / std`` against all users of the run, each with its documented definition. A user
absent from the data gets "no user ... in the training data"; a question naming nobody gets a hint. With an
:class:`LlmConfig` the model rewords the answer from the same facts; on any failure the template answer
stands.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from streamguard.assistant.llm import AssistantMetrics, LlmConfig, phrase
from streamguard.assistant.resolve import resolve_user
from streamguard.assistant.source import FactSource
from streamguard.errors import StreamguardError
from streamguard.serve.models import FeaturesResponse

log = logging.getLogger(__name__)

TOP_DEVIATIONS = 3


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Deviation(_Model):
    """How far one feature of the user lies from the population, in population standard deviations."""

    feature: str
    definition: str
    unit: str
    value: float
    population_mean: float
    population_std: float
    z_score: float


class AssistantAnswer(_Model):
    question: str
    answer: str
    phrased_by: Literal["template", "llm"]
    user: str | None = Field(description="The user the answer is about; None when the question named none.")
    known_user: bool = Field(description="Whether the training data holds that user.")
    is_anomaly: bool | None = None
    anomaly_score: float | None = None
    threshold: float | None = None
    run_id: str
    deviations: list[Deviation] = Field(default_factory=list)


def deviations(row: BaseModel, population: FeaturesResponse, top: int = TOP_DEVIATIONS) -> list[Deviation]:
    """The ``top`` features of ``row`` furthest from the population mean; constant features are skipped."""
    found = []
    for feature in population.features:
        if feature.std <= 0:
            continue
        value = float(getattr(row, feature.name))
        found.append(Deviation(
            feature=feature.name, definition=feature.definition, unit=feature.unit, value=value,
            population_mean=feature.mean, population_std=feature.std,
            z_score=(value - feature.mean) / feature.std,
        ))
    found.sort(key=lambda d: (-abs(d.z_score), d.feature))
    return [d for d in found[:top] if d.z_score != 0]


def answer_question(question: str, *, source: FactSource, user_id: str | None = None,
                    llm: LlmConfig | None = None, metrics: AssistantMetrics | None = None) -> AssistantAnswer:
    """Answer ``question`` about the user it names (or ``user_id``) from ``source``'s facts."""
    metrics = metrics or AssistantMetrics()
    stats: Any = source.stats()
    resolved = resolve_user(question, lookup=source.user, user_id=user_id)
    if resolved.name is None:
        text = ("I could not tell which user the question is about. Name one, for example "
                f"\"Is user manager anomalous?\" (run {stats.run_id} holds {stats.total_users:,} users).")
        return _done(metrics, AssistantAnswer(question=question, answer=text, phrased_by="template",
                                              user=None, known_user=False, run_id=stats.run_id))
    if resolved.row is None:
        text = (f"There is no user {resolved.name!r} in the training data of run {stats.run_id} "
                f"({stats.total_users:,} users); check the spelling, or list the anomalous users at "
                "/api/training-data/anomalies.")
        return _done(metrics, AssistantAnswer(question=question, answer=text, phrased_by="template",
                                              user=resolved.name, known_user=False, run_id=stats.run_id))

    row: Any = resolved.row
    population = source.population()
    found = deviations(row, population)
    answer = AssistantAnswer(
        question=question, answer=_describe(row, stats, population.users, found), phrased_by="template",
        user=row.user, known_user=True, is_anomaly=row.is_anomaly == 1, anomaly_score=row.anomaly_score,
        threshold=stats.threshold, run_id=stats.run_id, deviations=found,
    )
    if llm is not None:
        try:
            text = phrase(llm, _facts(answer, row, stats, population.users), question, answer.answer, metrics,
                          must_quote=f"{row.anomaly_score:.3f}")
        except StreamguardError as exc:
            log.warning("%s", exc)
        else:
            answer = answer.model_copy(update={"answer": text, "phrased_by": "llm"})
    return _done(metrics, answer)


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
        apart = f"Its features furthest from the average of the {users:,} users, not enough to flag it: "
    figures = (f" It had {row.total_events:,} events, an average threat score of {row.avg_threat_score:.3f}, "
               f"a failed-auth rate of {row.failed_auth_rate:.1%} and {row.unique_ips:,} unique IPs.")
    if not found:
        return verdict + figures + " None of its features differs from the population's average."
    return verdict + figures + " " + apart + "; ".join(_deviation_text(d) for d in found) + "."


def _deviation_text(d: Deviation) -> str:
    direction = "above" if d.z_score > 0 else "below"
    return (f"{d.feature} is {_number(d.value)} against a mean of {_number(d.population_mean)} "
            f"({abs(d.z_score):.1f} standard deviations {direction}; {d.definition.rstrip('.')})")


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
             "standard_deviations_from_mean": round(d.z_score, 1)}
            for d in answer.deviations
        ],
    }
