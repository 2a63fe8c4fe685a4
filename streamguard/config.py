"""Run configuration, resolved in one place: flags > environment (``STREAMGUARD_<FIELD>``) > YAML file > defaults.

    >>> config = load_run_config(flags={"topic": "events", "max_events": 1000}, config_file=None)

Each setting has one type, declared once on ``RunConfig``, and its value is checked where it enters:

- flags and the file give typed values, checked strictly: ``max_events: true`` or ``10.7`` is no whole number;
- environment variables are text, read as the setting's type (``"20"`` is 20, ``"10.7"`` is an error);
- a key the file does not know is an error naming it (and the setting it probably meant).

Errors are one line naming the setting and where its value came from (flag, environment variable, config file),
raised before any broker is contacted or engine started: ConfigError (exit 2), or InvalidOffsetSpec (exit 22) for a
``start``/``end`` that does not parse. The bootstrap address has its own resolver
(``streamguard.kafka.bootstrap``), the Kafka client properties theirs (``streamguard.kafka.properties``); both are
called from here.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails

from streamguard.detect.settings import (
    ALGORITHMS,
    DEFAULT_ALGORITHM,
    DEFAULT_N_ESTIMATORS,
    DEFAULT_OUTLIER_MADS,
    DEFAULT_RANDOM_STATE,
    MAX_RANDOM_STATE,
    DetectorConfig,
)
from streamguard.engines import DEFAULT_ENGINE, DEFAULT_SPARK_MASTER, ENGINES, resolve_engine
from streamguard.errors import ConfigError, DetectionError, InvalidOffsetSpec
from streamguard.kafka.admin import ISOLATION_LEVELS
from streamguard.kafka.bootstrap import ENV_BOOTSTRAP, resolve_bootstrap, running_broker_address
from streamguard.kafka.plan import READ_STRATEGIES, parse_start, parse_timestamp
from streamguard.kafka.properties import ENV_PROPERTIES, KafkaProperties, resolve_kafka_properties

ENV_PREFIX = "STREAMGUARD_"
RESUME = "resume"
"""``start`` value: continue where the run published at ``output`` ended (see ``pipeline.resume_start``)."""
DEFAULT_OUTPUT = Path("out/latest")
DEFAULT_TOP_N = 10
_BOOTSTRAP, _KAFKA = "bootstrap", "kafka_properties"  # settings with resolvers of their own
_FILE_KAFKA_SECTION = "kafka"


def _whole_number_as_text(value: object) -> object:
    # YAML reads ``start: 1700000000000`` (epoch milliseconds) as a number; the offset spec is text.
    return str(value) if type(value) is int else value


def _not_empty_path(value: object) -> object:
    if isinstance(value, str) and not value.strip():
        raise ValueError("must not be empty")
    return value


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
OffsetSpecText = Annotated[Text, BeforeValidator(_whole_number_as_text)]
# Paths arrive as text from every source, so they are the one type read leniently (str -> Path).
PathSetting = Annotated[Path, BeforeValidator(_not_empty_path), Field(strict=False)]
AtLeastOne = Annotated[int, Field(ge=1)]
Share = Annotated[float, Field(gt=0, le=0.5, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Seed = Annotated[int, Field(ge=0, le=MAX_RANDOM_STATE)]


class SettingsConflict(ConfigError):
    """Settings that are fine alone but not together (``settings`` names them, so the message can say where
    each value came from)."""

    def __init__(self, message: str, *settings: str) -> None:
        super().__init__(message)
        self.settings = settings


class OffsetSpecError(InvalidOffsetSpec):
    """A ``start`` or ``end`` (``setting``) that does not parse: exit 22 like any invalid offset spec."""

    def __init__(self, message: str, setting: str) -> None:
        super().__init__(message)
        self.setting = setting


class RunConfig(BaseModel):
    """Everything one pipeline run needs; built directly or by ``load_run_config``. Immutable.

    ``start="resume"`` continues where the run published at ``output`` ended; ``commit_group`` commits this run's
    end offsets to that Kafka consumer group once the run is published. ``model`` scores with a saved model
    instead of fitting one (its threshold too, unless ``contamination`` is
    set); ``save_model`` writes the model fitted in this run. ``contamination`` None flags outliers (see
    ``streamguard.detect``); a share flags that share of the fit sample.

    Values are checked strictly (``max_events=True`` or ``10.7`` is a ConfigError, not 1 or 10).
    """

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid", arbitrary_types_allowed=True)

    topic: Text
    bootstrap: Text
    start: OffsetSpecText = "earliest"
    max_events: AtLeastOne | None = None
    end: OffsetSpecText | None = None
    output: PathSetting = DEFAULT_OUTPUT
    read_strategy: Literal[READ_STRATEGIES] = "bounded"  # type: ignore[valid-type]
    isolation_level: Literal[ISOLATION_LEVELS] = "read_committed"  # type: ignore[valid-type]
    algorithm: Literal[ALGORITHMS] = DEFAULT_ALGORITHM  # type: ignore[valid-type]
    contamination: Share | None = None
    outlier_mads: Positive = DEFAULT_OUTLIER_MADS
    n_estimators: AtLeastOne = DEFAULT_N_ESTIMATORS
    random_state: Seed = DEFAULT_RANDOM_STATE
    engine: Literal[ENGINES] = DEFAULT_ENGINE  # type: ignore[valid-type]
    spark_master: Text = DEFAULT_SPARK_MASTER
    top_n: AtLeastOne = DEFAULT_TOP_N
    model: PathSetting | None = None
    save_model: PathSetting | None = None
    commit_group: Text | None = None
    last: AtLeastOne | None = None
    kafka_properties: Annotated[KafkaProperties, BeforeValidator(KafkaProperties.of)] = Field(
        default_factory=KafkaProperties)

    @model_validator(mode="wrap")
    @classmethod
    def _one_line_errors(cls, data: Any, handler: Callable[[Any], RunConfig]) -> RunConfig:
        try:
            return handler(data)
        except ValidationError as exc:
            raise ConfigError("; ".join(_problem(error, origin=None) for error in exc.errors())) from None

    @model_validator(mode="after")
    def _consistent(self) -> RunConfig:
        if self.last is not None and self.max_events is not None:
            raise SettingsConflict("give either last (the N most recent records) or max_events (N from the start), "
                                   "not both", "last", "max_events")
        if self.last is not None and self.read_strategy != "bounded":
            raise SettingsConflict("last needs the bounded read strategy", "last", "read_strategy")
        if self.start == RESUME and self.read_strategy == "full-scan":
            raise SettingsConflict("start resume needs the bounded read strategy (a full scan reads past what it "
                                   "keeps)", "start", "read_strategy")
        if self.model is not None and self.save_model is not None:
            raise SettingsConflict("give either model (score with a saved model) or save_model (save the one "
                                   "fitted now), not both", "model", "save_model")
        if self.model is not None and not self.model.is_file():
            raise SettingsConflict(f"model {self.model} is not a file", "model")
        _check_offset_specs(self.start, self.end, self.topic)  # exit 22 now, not once the engine has started
        self.detector()  # the detector's own checks (feature registry, ...), as a configuration error
        return self

    def detector(self) -> DetectorConfig:
        try:
            return DetectorConfig(algorithm=self.algorithm, contamination=self.contamination,
                                  outlier_mads=self.outlier_mads, n_estimators=self.n_estimators,
                                  random_state=self.random_state)
        except DetectionError as exc:
            raise ConfigError(str(exc)) from exc

    def resolved_engine(self) -> str:
        """``embedded`` or ``spark``: ``auto`` resolved against ``spark_master``."""
        return resolve_engine(self.engine, spark_master=self.spark_master)

    def to_dict(self) -> dict[str, Any]:
        """The settings as the report records them: paths as text, secrets among the Kafka properties masked."""
        data = self.model_dump(exclude={_KAFKA})
        data[_KAFKA] = self.kafka_properties.masked()
        for name in ("output", "model", "save_model"):
            data[name] = None if data[name] is None else str(data[name])
        return data


def _check_offset_specs(start: str, end: str | None, topic: str) -> None:
    try:
        if start != RESUME:
            parse_start(start, topic)
    except InvalidOffsetSpec as exc:
        raise OffsetSpecError(str(exc), "start") from None
    try:
        if end is not None:
            parse_timestamp(end)
    except InvalidOffsetSpec as exc:
        raise OffsetSpecError(str(exc), "end") from None


SETTINGS: tuple[str, ...] = tuple(RunConfig.model_fields)
# One validator per setting, with the model's strictness, to check each value on its own and name its source.
_ADAPTERS = {name: TypeAdapter(Annotated[info.annotation, info], config=ConfigDict(strict=True))
             for name, info in RunConfig.model_fields.items() if name != _KAFKA}


def env_names() -> dict[str, str]:
    """Setting -> the environment variable that sets it (``STREAMGUARD_<FIELD>``, with two named otherwise)."""
    names = {name: ENV_PREFIX + name.upper() for name in SETTINGS}
    return names | {_BOOTSTRAP: ENV_BOOTSTRAP, _KAFKA: ENV_PROPERTIES}


def flag_name(setting: str) -> str:
    return "--" + setting.replace("_", "-")


@dataclass(frozen=True, slots=True)
class _Given:
    value: Any
    origin: str  # e.g. "flag --max-events", "environment STREAMGUARD_MAX_EVENTS", "config file run.yaml"
    is_text: bool  # environment values are text, read as the setting's type


def load_run_config(
    *,
    flags: Mapping[str, Any],
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    running_broker: Callable[[], str | None] | None = running_broker_address,
) -> RunConfig:
    """Merge flags (None means "not given") over environment over file over defaults into a checked RunConfig.

    The bootstrap address also falls back to the broker ``streamguard kafka start`` runs (``running_broker``;
    None: never), as ``streamguard.kafka.bootstrap`` documents.
    """
    environment = os.environ if env is None else env
    unknown_flags = sorted(set(flags) - set(SETTINGS))
    if unknown_flags:
        raise ConfigError(f"unknown setting(s) {', '.join(unknown_flags)}")
    from_file, kafka_section = _read_file(config_file)
    given: dict[str, _Given] = {}
    file_origin = f"config file {config_file}"
    env_name = env_names()
    for name in SETTINGS:
        if name in (_BOOTSTRAP, _KAFKA):
            continue
        if flags.get(name) is not None:
            given[name] = _Given(flags[name], f"flag {flag_name(name)}", is_text=False)
        elif environment.get(env_name[name]):
            given[name] = _Given(environment[env_name[name]], f"environment {env_name[name]}", is_text=True)
        elif from_file.get(name) is not None:  # a key left empty in YAML (``output:``) means "not set here"
            given[name] = _Given(from_file[name], file_origin, is_text=False)
    values, problems = _checked(given)
    if "topic" not in given:
        problems.append(f"topic is not set: pass {flag_name('topic')}, set {env_name['topic']} or put topic: in "
                        f"the config file")
    if problems:
        raise ConfigError("; ".join(problems))
    bootstrap = resolve_bootstrap(flags.get(_BOOTSTRAP), env=environment, file_value=from_file.get(_BOOTSTRAP),
                                  config_file=config_file, running_broker=running_broker)
    given[_BOOTSTRAP] = _Given(bootstrap.address, bootstrap.origin, is_text=False)
    values[_BOOTSTRAP] = bootstrap.address
    values[_KAFKA] = resolve_kafka_properties(flags.get(_KAFKA) or (), environment, kafka_section)
    try:
        return RunConfig(**values)
    except SettingsConflict as exc:
        sources = [f"{name} from {given[name].origin}" for name in exc.settings if name in given]
        raise ConfigError(str(exc) + (f" ({', '.join(sources)})" if sources else "")) from None
    except OffsetSpecError as exc:
        origin = given[exc.setting].origin if exc.setting in given else "default"
        raise InvalidOffsetSpec(f"{exc} ({exc.setting} from {origin})") from None


def _checked(given: Mapping[str, _Given]) -> tuple[dict[str, Any], list[str]]:
    """Each given value as its setting's type, and one message per value that is not."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name, item in given.items():
        adapter = _ADAPTERS[name]
        try:
            if item.is_text:
                values[name] = adapter.validate_strings(item.value)
            else:
                values[name] = adapter.validate_python(item.value)
        except ValidationError as exc:
            problems.extend(_problem(error, origin=item.origin, name=name) for error in exc.errors())
    return values, problems


_REASONS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "int_type": lambda _: "must be a whole number",
    "int_parsing": lambda _: "must be a whole number",
    "int_from_float": lambda _: "must be a whole number",
    "float_type": lambda _: "must be a number",
    "float_parsing": lambda _: "must be a number",
    "finite_number": lambda _: "must be a finite number",
    "greater_than_equal": lambda ctx: f"must be at least {_number(ctx['ge'])}",
    "greater_than": lambda ctx: f"must be greater than {_number(ctx['gt'])}",
    "less_than_equal": lambda ctx: f"must be at most {_number(ctx['le'])}",
    "less_than": lambda ctx: f"must be less than {_number(ctx['lt'])}",
    "literal_error": lambda ctx: f"must be {ctx['expected']}",
    "string_type": lambda _: "must be text",
    "string_too_short": lambda _: "must not be empty",
    "path_type": lambda _: "must be a path",
    "missing": lambda _: "is not set",
    "extra_forbidden": lambda _: "is not a setting",
}


def _number(bound: float) -> str:
    return str(int(bound)) if isinstance(bound, float) and bound.is_integer() else str(bound)


def _problem(error: ErrorDetails, *, origin: str | None, name: str | None = None) -> str:
    """One clause: ``max_events from config file run.yaml: must be a whole number, got true``."""
    setting = name or ".".join(str(part) for part in error["loc"]) or "settings"
    reason_of = _REASONS.get(error["type"])
    reason = reason_of(error.get("ctx", {})) if reason_of else error["msg"].removeprefix("Value error, ")
    where = f" from {origin}" if origin else ""
    shown = "" if error["type"] == "missing" else f", got {_shown(error['input'])}"
    return f"{setting}{where}: {reason}{shown}"


def _shown(value: object) -> str:
    """The value as the file would spell it (``true``, ``null``), text quoted, cut short."""
    spelled = {True: "true", False: "false", None: "null"}
    text = spelled[value] if value is None or isinstance(value, bool) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _YamlLoader(yaml.SafeLoader):
    """Safe YAML without its date type: ``start: 2026-01-01T00:00:00Z`` stays the text the offset spec parser reads."""


_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _read_file(path: Path | None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The file's settings, and its ``kafka:`` section of client properties (None when absent)."""
    if path is None:
        return {}, None
    try:
        loaded = yaml.load(path.read_text(), Loader=_YamlLoader) or {}  # noqa: S506 - a SafeLoader subclass
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {_yaml_problem(exc)}") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings, not {type(loaded).__name__}")
    kafka_section = loaded.pop(_FILE_KAFKA_SECTION, None)
    if kafka_section is not None and not isinstance(kafka_section, dict):
        raise ConfigError(f"config file {path}: the kafka section must be a mapping of client properties")
    unknown = sorted(str(key) for key in loaded if key not in SETTINGS or key == _KAFKA)
    if unknown:
        raise ConfigError(f"config file {path}: unknown setting(s) {_with_suggestions(unknown)}")
    return loaded, kafka_section


def _with_suggestions(unknown: Iterable[str]) -> str:
    known = [name for name in SETTINGS if name != _KAFKA] + [_FILE_KAFKA_SECTION]
    named = []
    for key in unknown:
        close = difflib.get_close_matches(key, known, n=1)
        named.append(f"{key} (did you mean {close[0]}?)" if close else key)
    return ", ".join(named)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        return f"{exc.problem or exc.context} at line {exc.problem_mark.line + 1}"
    return " ".join(str(exc).split())
