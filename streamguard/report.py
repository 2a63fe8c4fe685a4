"""The anomaly report: its models (pydantic) and the JSON Schema generated from them.

The models are the one source of truth: the pipeline builds an :class:`AnomalyReport`, validates the JSON it writes
against ``report.schema.json`` (shipped in the package and generated from these models; a unit test fails when the
two drift apart), and the API answers with the same models.

    >>> report = AnomalyReport.model_validate_json(path.read_text())
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from streamguard.errors import OutputError

REPORT_FILE = "anomaly_report.json"
SCHEMA_VERSION = 2
# Version 2 renamed the run's counts for what they count; reports of version 1 (no ``schema_version``) are read
# with these names mapped, so the API keeps serving them.
RENAMED_IN_V2 = {"events_read": "records_read", "events_valid": "records_valid",
                 "events_invalid": "records_quarantined", "invalid_by_reason": "quarantined_by_reason"}
STAGES = ("plan", "engine_init", "kafka_read", "parse", "features", "detection", "export", "total")
_SCHEMA_FILE = "report.schema.json"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TopAnomaly(_Model):
    user: str
    anomaly_score: float = Field(ge=0, le=1, description=(
        "Share of the model's fit sample whose raw outlyingness is lower or the same (1 = beyond every fitted "
        "user); comparable across runs scored by one model."))
    is_anomaly: bool | None = Field(default=None, description=(
        "Whether the score is above the detector's threshold (flagged); absent in reports written before the "
        "flag was recorded."))
    total_events: int = Field(ge=0)
    avg_threat_score: float = Field(ge=0, le=1)
    unique_ips: int = Field(ge=0)
    failed_auth_rate: float = Field(ge=0, le=1)


class PartitionPlan(_Model):
    partition: int = Field(ge=0)
    low: int
    high: int
    from_offset: int | None = Field(alias="from")
    until: int | None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, serialize_by_alias=True)


class ReadPlanInfo(_Model):
    topic: str
    strategy: str
    isolation_level: str
    start: str
    end: str | None
    max_events: int | None
    last: int | None = Field(default=None, description="--last N: the N most recent records were read; null otherwise.")
    planned_records: int = Field(ge=0)
    partitions: list[PartitionPlan]


class UnknownDetailWords(_Model):
    """The valid events of one run whose open-vocabulary details word (e.g. ``network_details.protocol``) is none of
    the schema's known words in any letter case; such events are accepted, not quarantined."""

    records: int = Field(ge=0, description="Valid events with an unknown word in this field.")
    distinct: int = Field(ge=0, description="Different unknown words (as written) in this field.")
    top: dict[str, int] = Field(description=(
        "The most frequent unknown words as written, with their counts; at most 20, by count then word."))


class StageSeconds(_Model):
    plan: float = Field(ge=0)
    engine_init: float = Field(ge=0, description="Starting the engine (a Spark session; a DuckDB connection).")
    kafka_read: float = Field(ge=0)
    parse: float = Field(ge=0)
    features: float = Field(ge=0)
    detection: float = Field(ge=0)
    export: float = Field(ge=0)
    total: float = Field(ge=0)


class Versions(_Model):
    package: str
    python: str
    spark: str | None = None
    duckdb: str | None = None
    kafka_client: str
    librdkafka: str


class ModelInfo(_Model):
    source: Literal["fitted", "loaded"] = Field(description="Fitted in this run, or loaded from a model file.")
    fitted_at: str = Field(description="When the model was fitted, UTC, ISO-8601.")
    rows_fitted: int = Field(ge=0, description="Users in the fit sample.")
    sampled: bool = Field(description="Whether the fit sample was a subset of that run's users.")
    versions: dict[str, str] = Field(description="Library versions the model was fitted with.")
    sha256: str | None = Field(description="SHA-256 of the model file (saved or loaded); None when not saved.")
    path: str | None = Field(description="The model file, when saved or loaded.")


class DetectorInfo(_Model):
    """The detector of a run. Fields that default to None are absent from reports of earlier versions, which
    the API still serves; ``raw_min``/``raw_max`` belong to those reports only (min-max scaled scores)."""

    algorithm: str
    params: dict[str, Any]
    feature_columns: list[str]
    support_columns: list[str] | None = Field(default=None,
                                              description="Event counts the rate features are weighed by.")
    rows_fitted: int = Field(ge=0)
    sampled: bool
    threshold: float = Field(description="Score above which a user is flagged (anomaly_score units).")
    threshold_rule: Literal["outlier", "share"] | None = Field(default=None, description=(
        "outlier: raw outlyingness params.outlier_mads robust standard deviations above the fit sample's median; "
        "share: a fixed contamination share of the fit sample."))
    raw_threshold: float
    raw_median: float | None = Field(default=None, description="Median raw outlyingness of the fit sample.")
    raw_mad: float | None = Field(default=None, ge=0,
                                  description="Median absolute deviation of the fit sample's raw outlyingness.")
    raw_min: float | None = None
    raw_max: float | None = None
    anomalies_in_fit: int = Field(ge=0)
    model: ModelInfo | None = None


class RunMetadata(_Model):
    run_id: str
    engine: str = Field(description="The engine that ran the stages: embedded or spark.")
    topic: str
    bootstrap: str
    read_strategy: str
    plan: ReadPlanInfo
    records_scanned: int = Field(ge=0, description="Kafka records Spark fetched (a full scan reads the topic).")
    records_read: int = Field(ge=0, description="Records that entered parsing (version 1: events_read).")
    records_valid: int = Field(ge=0, description="Records that parsed as valid events (version 1: events_valid).")
    records_quarantined: int = Field(ge=0, description=(
        "Records written to the quarantine instead (version 1: events_invalid)."))
    quarantined_by_reason: dict[str, int] = Field(description=(
        "records_quarantined by reason (version 1: invalid_by_reason)."))
    stage_seconds: StageSeconds
    versions: Versions
    detector: DetectorInfo
    next_offsets: dict[str, int] | None = Field(default=None, description=(
        "Per partition, the offset after the last one this run read (a partition with nothing to read: its start "
        "offset): where the next --start resume begins. Absent in reports of earlier versions."))
    resumed_from: str | None = Field(default=None, description="The run whose next_offsets this run started at.")
    read_accounting: dict[str, Any] | None = Field(default=None, description=(
        "What the read covered per partition and in total (streamguard.kafka.accounting): offsets spanned, records "
        "fetched, offsets skipped, records read."))
    unknown_detail_words: dict[str, UnknownDetailWords] | None = Field(default=None, description=(
        "Per open-vocabulary details field (network_details.protocol, file_details.operation, "
        "process_details.user_privileges), the unknown words the valid events carried. Absent in reports of "
        "earlier versions."))
    time_window: dict[str, Any] | None = Field(default=None, description=(
        "Earliest and latest event time of the valid events and Kafka time of every record read (ms and UTC)."))
    config: dict[str, Any]
    outputs: dict[str, str]
    generated_at: str = Field(description="UTC, ISO-8601.")

    @model_validator(mode="before")
    @classmethod
    def _version_1_names(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not any(old in data for old in RENAMED_IN_V2):
            return data
        if both := [f"{old} and {new}" for old, new in RENAMED_IN_V2.items() if old in data and new in data]:
            raise ValueError(f"a run holds one count under two names: {', '.join(both)}")
        return {RENAMED_IN_V2.get(key, key): value for key, value in data.items()}


class AnomalyReport(_Model):
    schema_version: Literal[1, 2] = Field(default=SCHEMA_VERSION, description=(
        "2 since the run's counts are named records_*; a report with the old names (and no version) is version 1, "
        "read with them mapped (see RENAMED_IN_V2)."))
    total_users: int = Field(ge=0)
    anomalous_users: int = Field(ge=0)
    anomaly_rate: float = Field(ge=0, le=1)
    top_anomalies: list[TopAnomaly]
    run: RunMetadata

    @model_validator(mode="before")
    @classmethod
    def _version_1(cls, data: Any) -> Any:
        run = data.get("run") if isinstance(data, dict) else None
        if isinstance(run, dict) and "schema_version" not in data and any(old in run for old in RENAMED_IN_V2):
            return {"schema_version": 1, **data}
        return data


def generated_schema() -> dict[str, Any]:
    """The report's JSON Schema (2020-12) as pydantic derives it from the models."""
    schema = AnomalyReport.model_json_schema(by_alias=True, mode="serialization")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://streamguard.dev/schemas/anomaly_report.schema.json", **schema}


@cache
def report_schema() -> dict[str, Any]:
    """The shipped ``report.schema.json``."""
    return json.loads(resources.files("streamguard").joinpath(_SCHEMA_FILE).read_text())


def validate_report(document: dict[str, Any]) -> None:
    """Raise OutputError when ``document`` does not satisfy the shipped report schema."""
    import jsonschema  # noqa: PLC0415 - a third of a second; only writing or checking a report needs it

    validator = jsonschema.Draft202012Validator(report_schema())
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.path) or "(root)"
        raise OutputError(f"the report does not match its schema at {where}: {first.message}")


def report_json(report: AnomalyReport) -> str:
    """The report as written to disk, validated against the shipped schema first."""
    document = report.model_dump(mode="json", by_alias=True)
    validate_report(document)
    return json.dumps(document, indent=2, sort_keys=False) + "\n"


def main() -> None:
    """``python -m streamguard.report``: regenerate report.schema.json from the models."""
    target = resources.files("streamguard").joinpath(_SCHEMA_FILE)
    with resources.as_file(target) as path:
        path.write_text(json.dumps(generated_schema(), indent=2) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
