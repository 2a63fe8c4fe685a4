"""The API's request and response models, derived from the report models and the feature registry.

Nothing here restates a field the report or ``streamguard.features`` already defines: list entries *are*
:class:`streamguard.report.TopAnomaly`, :class:`Stats` copies its fields (name, type, bounds, description)
from :class:`~streamguard.report.AnomalyReport` and its parts, and :data:`UserRow` has one field per entry of
``FEATURES``, described by the feature's documented definition and unit. Field names are the snake_case column
names of the training data, so a row from the API and a row from the Parquet files compare key by key.

    >>> row = UserRow.model_validate(httpx.get(f"{api}/api/training-data/anomalies/erin").json())
    >>> row.failed_auth_rate, row.is_anomaly
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, create_model

from streamguard.contracts import FEATURES
from streamguard.contracts.columns import USER_MAX_LENGTH
from streamguard.report import AnomalyReport, DetectorInfo, RunMetadata, TopAnomaly

__all__ = [
    "USER_MAX_LENGTH", "USER_PATTERN", "USER_RULE", "AnomalyPage", "AssistantQuery", "ErrorBody",
    "FeaturePopulation", "FeaturesResponse", "Health", "Stats", "TopAnomaly", "UserRow", "user_segment",
]

# Every name the parser lets through (streamguard.events.parse): 1 to 256 characters, no control characters.
USER_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]+$"
USER_RULE = f"a user name is 1 to {USER_MAX_LENGTH} characters, none of them a control character"


def user_segment(user: str) -> str:
    """``user`` percent-encoded whole, as the last segment of ``/api/training-data/anomalies/{user}``.

    Every character but letters, digits and ``_.-~`` is encoded, "/" included (the route takes it). A name of
    dots only has them encoded too: clients resolve a ``.`` or ``..`` segment away before sending.
    """
    if user.strip(".") == "":
        return user.replace(".", "%2E")
    return quote(user, safe="")


class _ApiModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _copied(model: type[BaseModel], name: str) -> tuple[Any, Any]:
    """``(annotation, FieldInfo)`` of ``model.name``, to declare the same field in another model."""
    info = model.model_fields[name]
    return info.annotation, info


class ErrorBody(_ApiModel):
    """Every non-2xx answer: a stable machine-readable ``error`` code and a sentence for people."""

    error: str = Field(examples=["unknown_user"])
    message: str
    errors: list[dict[str, Any]] | None = Field(default=None, description="Per-field problems (422 only).")


class AnomalyPage(_ApiModel):
    """One page of anomalous users, most anomalous first (ties by user name)."""

    run_id: str
    threshold: float = Field(description="The run's detector threshold, in anomaly_score units.")
    total: int = Field(ge=0, description="Anomalous users with anomaly_score >= min_score, over all pages.")
    offset: int = Field(ge=0)
    limit: int = Field(ge=1)
    min_score: float = Field(ge=0, le=1)
    items: list[TopAnomaly]


UserRow: type[BaseModel] = create_model(
    "UserRow",
    __base__=_ApiModel,
    __doc__="One user's row of the training data: every feature, its anomaly score and flag.",
    user=(str, Field(max_length=USER_MAX_LENGTH)),
    anomaly_score=_copied(TopAnomaly, "anomaly_score"),
    is_anomaly=(Literal[0, 1], Field(description="1 when the detector flagged the user (the partition).")),
    **{
        feature.name: (int | float, Field(description=f"{feature.definition} Unit: {feature.unit}."))
        for feature in FEATURES
    },
)


class FeaturePopulation(_ApiModel):
    """A feature's registry entry and its distribution over all users of the run (population std, ddof 0)."""

    name: str
    definition: str
    unit: str
    mean: float
    std: float = Field(ge=0)
    min: float
    max: float


class FeaturesResponse(_ApiModel):
    run_id: str
    users: int = Field(ge=0, description="Users the statistics are over (every row of the training data).")
    features: list[FeaturePopulation]


Stats: type[BaseModel] = create_model(
    "Stats",
    __base__=_ApiModel,
    __doc__="Totals of the loaded run, named and bounded as in the anomaly report.",
    run_id=_copied(RunMetadata, "run_id"),
    generated_at=_copied(RunMetadata, "generated_at"),
    topic=_copied(RunMetadata, "topic"),
    total_users=_copied(AnomalyReport, "total_users"),
    anomalous_users=_copied(AnomalyReport, "anomalous_users"),
    anomaly_rate=_copied(AnomalyReport, "anomaly_rate"),
    records_read=_copied(RunMetadata, "records_read"),
    records_valid=_copied(RunMetadata, "records_valid"),
    records_quarantined=_copied(RunMetadata, "records_quarantined"),
    algorithm=_copied(DetectorInfo, "algorithm"),
    threshold=_copied(DetectorInfo, "threshold"),
)


class Health(_ApiModel):
    """Always answered with HTTP 200 while the process runs; ``status`` says whether data is being served."""

    status: Literal["ok", "degraded"] = Field(
        description="'ok' when a run's training data is loaded, 'degraded' when there is none to serve."
    )
    data_available: bool
    data_age_seconds: float | None = Field(default=None, description="Seconds since the run's generated_at.")
    run_id: str | None = None
    topic: str | None = None
    records_read: int | None = None
    generated_at: str | None = None
    reason: str | None = Field(default=None, description="Why no data is available (degraded only).")


class AssistantQuery(_ApiModel):
    question: str = Field(min_length=1, max_length=2000, examples=["Is user manager anomalous?"])
    user_id: str | None = Field(
        default=None, max_length=USER_MAX_LENGTH, pattern=USER_PATTERN,
        description="The user to answer about; when absent it is found in the question.",
    )
