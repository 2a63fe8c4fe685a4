"""Run configuration, read in one place: flags > environment (``STREAMGUARD_<FIELD>``) > YAML file > defaults.

    >>> config = load_run_config(flags={"topic": "events", "max_events": 1000}, config_file=None)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from streamguard.detect.settings import (
    DEFAULT_N_ESTIMATORS,
    DEFAULT_OUTLIER_MADS,
    DEFAULT_RANDOM_STATE,
    DetectorConfig,
)
from streamguard.engines import DEFAULT_ENGINE, DEFAULT_SPARK_MASTER, resolve_engine
from streamguard.errors import ConfigError, DetectionError
from streamguard.kafka.admin import ISOLATION_LEVELS
from streamguard.kafka.plan import READ_STRATEGIES
from streamguard.kafka.properties import KafkaProperties, resolve_kafka_properties

ENV_PREFIX = "STREAMGUARD_"
RESUME = "resume"
"""``start`` value: continue where the run published at ``output`` ended (see ``pipeline.resume_start``)."""
DEFAULT_OUTPUT = Path("out/latest")
DEFAULT_TOP_N = 10
# The bootstrap address keeps the name the broker providers use.
_ENV_NAMES = {"bootstrap": "STREAMGUARD_KAFKA_BOOTSTRAP"}
# Resolved by streamguard.kafka.properties from flags, STREAMGUARD_KAFKA_PROPERTIES and the file's ``kafka:`` section.
_KAFKA = "kafka_properties"
_FILE_KAFKA_SECTION = "kafka"


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """Everything one pipeline run needs.

    ``start="resume"`` continues where the run published at ``output`` ended; ``commit_group`` commits this run's
    end offsets to that Kafka consumer group once the run is published. ``model`` scores with a saved model
    instead of fitting one (its threshold too, unless ``contamination`` is
    set); ``save_model`` writes the model fitted in this run. ``contamination`` None flags outliers (see
    ``streamguard.detect``); a share flags that share of the fit sample.
    """

    topic: str
    bootstrap: str
    start: str = "earliest"
    max_events: int | None = None
    end: str | None = None
    output: Path = DEFAULT_OUTPUT
    read_strategy: str = "bounded"
    isolation_level: str = "read_committed"
    algorithm: str = "isolation_forest"
    contamination: float | None = None
    outlier_mads: float = DEFAULT_OUTLIER_MADS
    n_estimators: int = DEFAULT_N_ESTIMATORS
    random_state: int = DEFAULT_RANDOM_STATE
    engine: str = DEFAULT_ENGINE
    spark_master: str = DEFAULT_SPARK_MASTER
    top_n: int = DEFAULT_TOP_N
    model: Path | None = None
    save_model: Path | None = None
    commit_group: str | None = None
    last: int | None = None
    kafka_properties: KafkaProperties = field(default_factory=KafkaProperties)

    def __post_init__(self) -> None:
        if self.read_strategy not in READ_STRATEGIES:
            raise ConfigError(f"read_strategy must be one of {', '.join(READ_STRATEGIES)}, not {self.read_strategy!r}")
        if self.max_events is not None and self.max_events < 1:
            raise ConfigError(f"max_events must be at least 1, not {self.max_events}")
        if self.last is not None and self.last < 1:
            raise ConfigError(f"last must be at least 1, not {self.last}")
        if self.last is not None and self.max_events is not None:
            raise ConfigError("give either last (the N most recent records) or max_events (N from the start), "
                              "not both")
        if self.top_n < 1:
            raise ConfigError(f"top_n must be at least 1, not {self.top_n}")
        if self.isolation_level not in ISOLATION_LEVELS:
            raise ConfigError(f"isolation_level must be one of {', '.join(ISOLATION_LEVELS)}, "
                              f"not {self.isolation_level!r}")
        resolve_engine(self.engine, spark_master=self.spark_master)
        if self.start == RESUME and self.read_strategy == "full-scan":
            raise ConfigError("--start resume needs the bounded read strategy (a full scan reads past what it keeps)")
        if self.commit_group is not None and not self.commit_group.strip():
            raise ConfigError("commit_group must not be empty")
        if self.model is not None and self.save_model is not None:
            raise ConfigError("give either model (score with a saved model) or save_model (save the one fitted "
                              "now), not both")
        if self.model is not None and not Path(self.model).is_file():
            raise ConfigError(f"model {self.model} is not a file")
        self.detector()  # validates algorithm, contamination and n_estimators now, as a configuration error

    def detector(self) -> DetectorConfig:
        try:
            return DetectorConfig(algorithm=self.algorithm,  # type: ignore[arg-type]
                                  contamination=self.contamination, outlier_mads=self.outlier_mads,
                                  n_estimators=self.n_estimators, random_state=self.random_state)
        except DetectionError as exc:
            raise ConfigError(str(exc)) from exc

    def resolved_engine(self) -> str:
        """``embedded`` or ``spark``: ``auto`` resolved against ``spark_master``."""
        return resolve_engine(self.engine, spark_master=self.spark_master)

    def to_dict(self) -> dict[str, Any]:
        """The settings as the report records them: secrets among the Kafka properties masked."""
        data = dataclasses.asdict(dataclasses.replace(self, kafka_properties=KafkaProperties()))
        data["kafka_properties"] = self.kafka_properties.masked()
        for name in ("output", "model", "save_model"):
            data[name] = None if data[name] is None else str(data[name])
        return data


def _coerce(name: str, value: Any) -> Any:
    field_type = {f.name: f.type for f in fields(RunConfig)}[name]
    if value is None or value == "":
        return None
    try:
        if "int" in str(field_type):
            return int(value)
        if "float" in str(field_type):
            return float(value)
        if "Path" in str(field_type):
            return Path(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name}: {value!r} is not a valid {field_type}") from exc
    return str(value)


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    found = {}
    for f in fields(RunConfig):
        if f.name == _KAFKA:
            continue
        name = _ENV_NAMES.get(f.name, ENV_PREFIX + f.name.upper())
        if env.get(name):
            found[f.name] = _coerce(f.name, env[name])
    return found


def _from_file(path: Path | None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The file's settings, and its ``kafka:`` section of client properties (None when absent)."""
    if path is None:
        return {}, None
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings")
    kafka_section = loaded.pop(_FILE_KAFKA_SECTION, None)
    if kafka_section is not None and not isinstance(kafka_section, dict):
        raise ConfigError(f"config file {path}: the kafka section must be a mapping of client properties")
    known = {f.name for f in fields(RunConfig)} - {_KAFKA}
    unknown = sorted(set(loaded) - known)
    if unknown:
        raise ConfigError(f"config file {path}: unknown setting(s) {', '.join(unknown)}")
    # A key left empty in YAML (``output:``) means "not set here", not None.
    return {key: _coerce(key, value) for key, value in loaded.items() if value is not None}, kafka_section


def load_run_config(
    *,
    flags: Mapping[str, Any],
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    fallbacks: Mapping[str, Any] | None = None,
) -> RunConfig:
    """Merge flags (None means "not given") over environment over file over ``fallbacks`` over defaults.

    ``fallbacks`` are values found elsewhere that any explicit setting beats, e.g. the bootstrap address of the
    broker ``streamguard kafka start`` runs.
    """
    environment = os.environ if env is None else env
    merged: dict[str, Any] = {key: value for key, value in (fallbacks or {}).items() if value is not None}
    from_file, kafka_section = _from_file(config_file)
    merged.update(from_file)
    merged.update(_from_env(environment))
    merged.update({key: _coerce(key, value) for key, value in flags.items() if value is not None and key != _KAFKA})
    merged[_KAFKA] = resolve_kafka_properties(flags.get(_KAFKA) or (), environment, kafka_section)
    for required in ("topic", "bootstrap"):
        if not merged.get(required):
            env_name = _ENV_NAMES.get(required, ENV_PREFIX + required.upper())
            raise ConfigError(f"{required} is not set (--{required} flag, {env_name} or config file)")
    return RunConfig(**merged)
