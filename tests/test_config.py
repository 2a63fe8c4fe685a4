"""Run configuration: every precedence level, every type error with its exit code and one-line message, and the
command line failing on a bad setting before it contacts Kafka."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from streamguard.config import RunConfig, env_names, load_run_config
from streamguard.detect.settings import DetectorConfig
from streamguard.errors import ConfigError, DetectionError, InvalidOffsetSpec, StreamguardError
from streamguard.kafka.bootstrap import ENV_BOOTSTRAP, RUNNING_BROKER, find_bootstrap, resolve_bootstrap

REQUIRED = {"topic": "t", "bootstrap": "b:9092"}
HANG_GUARD_S = 120  # not a timing assert: a command that hangs must not hang the suite


def _load(flags: Mapping[str, Any] | None = None, *, file: str | None = None, env: Mapping[str, str] | None = None,
          tmp_path: Path, running: str | None = None) -> RunConfig:
    config_file = None
    if file is not None:
        config_file = tmp_path / "run.yaml"
        config_file.write_text(file)
    return load_run_config(flags=flags or {}, config_file=config_file, env=env or {},
                           running_broker=lambda: running)


# setting, file text, environment text, flag value, the value each would give
PRECEDENCE = [
    ("max_events", "7", "8", 9, (7, 8, 9)),
    ("contamination", "0.1", "0.2", 0.3, (0.1, 0.2, 0.3)),
    ("outlier_mads", "3", "3.5", 4.0, (3.0, 3.5, 4.0)),
    ("random_state", "0", "4294967295", 5, (0, 4294967295, 5)),
    ("output", "from/file", "from/env", Path("from/flag"), (Path("from/file"), Path("from/env"), Path("from/flag"))),
    ("read_strategy", "full-scan", "bounded", "full-scan", ("full-scan", "bounded", "full-scan")),
    ("engine", "spark", "embedded", "auto", ("spark", "embedded", "auto")),
    ("spark_master", "local[1]", "local[2]", "spark://h:7077", ("local[1]", "local[2]", "spark://h:7077")),
    ("start", "latest", "earliest", "1700000000000", ("latest", "earliest", "1700000000000")),
]


@pytest.mark.parametrize(("name", "in_file", "in_env", "as_flag", "expected"), PRECEDENCE,
                         ids=[row[0] for row in PRECEDENCE])
def test_each_level_beats_the_ones_below(tmp_path: Path, name: str, in_file: str, in_env: str, as_flag: Any,
                                         expected: tuple[Any, Any, Any]) -> None:
    default = RunConfig.model_fields[name].default
    env = {env_names()[name]: in_env}
    file = f"{name}: {in_file}\n"
    assert getattr(_load(REQUIRED, tmp_path=tmp_path), name) == default
    assert getattr(_load(REQUIRED, file=file, tmp_path=tmp_path), name) == expected[0]
    assert getattr(_load(REQUIRED, file=file, env=env, tmp_path=tmp_path), name) == expected[1]
    assert getattr(_load({**REQUIRED, name: as_flag}, file=file, env=env, tmp_path=tmp_path), name) == expected[2]
    assert expected[0] != default and len(set(expected)) > 1  # each level is seen to change the value


def test_empty_values_mean_not_set(tmp_path: Path) -> None:
    config = _load({"topic": "t", "max_events": None}, file="output:\nmax_events: 5\nbootstrap: f:1\n",
                   env={"STREAMGUARD_OUTPUT": "", "STREAMGUARD_MAX_EVENTS": ""}, tmp_path=tmp_path)
    assert config.output == Path("out/latest")  # the file's empty key and the empty variable: the default
    assert config.max_events == 5              # a None flag and an empty variable leave the file's value


def test_yaml_dates_and_epoch_numbers_stay_offset_specs(tmp_path: Path) -> None:
    dated = _load(REQUIRED, file="start: 2026-01-01T00:00:00Z\nend: 2026-01-02\n", tmp_path=tmp_path)
    assert (dated.start, dated.end) == ("2026-01-01T00:00:00Z", "2026-01-02")
    assert _load(REQUIRED, file="start: 1700000000000\n", tmp_path=tmp_path).start == "1700000000000"


# source, setting, the value as that source gives it, exit code, words the one-line message holds
BAD_VALUES = [
    ("file", "max_events", "true", 2, "must be a whole number, got true"),
    ("file", "max_events", "10.7", 2, "must be a whole number, got 10.7"),
    ("file", "max_events", "'10'", 2, "must be a whole number, got '10'"),
    ("file", "max_events", "0", 2, "must be at least 1, got 0"),
    ("file", "last", "-3", 2, "must be at least 1, got -3"),
    ("file", "top_n", "false", 2, "must be a whole number, got false"),
    ("file", "n_estimators", "1.5", 2, "must be a whole number, got 1.5"),
    ("file", "n_estimators", "0", 2, "must be at least 1"),
    ("file", "random_state", "4294967296", 2, "must be at most 4294967295, got 4294967296"),
    ("file", "random_state", "-1", 2, "must be at least 0, got -1"),
    ("file", "random_state", "true", 2, "must be a whole number, got true"),
    ("file", "contamination", "0.9", 2, "must be at most 0.5, got 0.9"),
    ("file", "contamination", "0", 2, "must be greater than 0"),
    ("file", "contamination", "true", 2, "must be a number, got true"),
    ("file", "outlier_mads", "-1", 2, "must be greater than 0, got -1"),
    ("file", "outlier_mads", ".nan", 2, "must be a finite number"),
    ("file", "outlier_mads", "'many'", 2, "must be a number, got 'many'"),
    ("file", "topic", "5", 2, "must be text, got 5"),
    ("file", "output", "''", 2, "must not be empty"),
    ("file", "read_strategy", "sideways", 2, "must be 'bounded' or 'full-scan', got 'sideways'"),
    ("file", "isolation_level", "no", 2, "must be 'read_committed' or 'read_uncommitted', got false"),
    ("file", "algorithm", "dbscan", 2, "must be 'isolation_forest' or 'kmeans'"),
    ("file", "engine", "turbo", 2, "'embedded'"),
    ("file", "start", "99999999999999999999", 22, "after 9999-12-31"),
    ("file", "end", "soon", 22, "neither milliseconds since the epoch nor an ISO-8601 time"),
    ("env", "max_events", "many", 2, "must be a whole number, got 'many'"),
    ("env", "max_events", "10.7", 2, "must be a whole number, got '10.7'"),
    ("env", "max_events", "true", 2, "must be a whole number, got 'true'"),
    ("env", "random_state", "-5", 2, "must be at least 0"),
    ("env", "contamination", "nan", 2, "must be a finite number"),
    ("env", "top_n", "0", 2, "must be at least 1"),
    ("env", "engine", "turbo", 2, "'spark'"),
    ("env", "topic", " ", 2, "must not be empty"),
    ("env", "start", "99999999999999999999", 22, "after 9999-12-31"),
    ("flag", "max_events", True, 2, "must be a whole number, got true"),
    ("flag", "max_events", 10.7, 2, "must be a whole number, got 10.7"),
    ("flag", "contamination", 0.9, 2, "must be at most 0.5"),
    ("flag", "random_state", 2**32, 2, "must be at most 4294967295"),
    ("flag", "start", "99999999999999999999", 22, "after 9999-12-31"),
    ("flag", "end", "99999999999999999999", 22, "after 9999-12-31"),
    ("flag", "start", '{"0": 99999999999999999999}', 22, "outside -2 .. 9223372036854775807"),
    ("flag", "start", "yesterday", 22, "neither milliseconds since the epoch nor an ISO-8601 time"),
]


@pytest.mark.parametrize(("source", "name", "value", "code", "words"), BAD_VALUES,
                         ids=[f"{row[0]}-{row[1]}-{row[2]}" for row in BAD_VALUES])
def test_a_bad_value_is_one_line_naming_the_setting_and_its_source(
    tmp_path: Path, source: str, name: str, value: Any, code: int, words: str
) -> None:
    others = {key: required for key, required in REQUIRED.items() if key != name}
    if source == "file":
        given = {"file": f"{name}: {value}\n", "flags": others}
        where = f"{name} from config file {tmp_path / 'run.yaml'}"
    elif source == "env":
        given = {"env": {env_names()[name]: value}, "flags": others}
        where = f"{name} from environment STREAMGUARD_{name.upper()}"
    else:
        given = {"flags": {**REQUIRED, name: value}}
        where = f"{name} from flag --{name.replace('_', '-')}"
    with pytest.raises(StreamguardError) as raised:
        _load(given["flags"], file=given.get("file"), env=given.get("env"), tmp_path=tmp_path)
    message = str(raised.value)
    assert raised.value.exit_code == code
    assert "\n" not in message
    assert words in message
    assert where in message


def test_every_bad_value_is_reported_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        _load(REQUIRED, file="max_events: true\ntop_n: 1.5\n", env={"STREAMGUARD_RANDOM_STATE": "x"},
              tmp_path=tmp_path)
    assert [clause.split(" from ")[0] for clause in str(raised.value).split("; ")] == [
        "max_events", "random_state", "top_n"]


def test_a_value_overridden_by_a_higher_level_is_not_checked(tmp_path: Path) -> None:
    config = _load({**REQUIRED, "max_events": 3}, file="max_events: true\n", tmp_path=tmp_path)
    assert config.max_events == 3


@pytest.mark.parametrize(("file", "words"), [
    ("max_event: 3\n", "unknown setting(s) max_event (did you mean max_events?)"),
    ("kafka_properties: {}\n", "unknown setting(s) kafka_properties"),
    ("topic: t\nsasl: {}\n", "unknown setting(s) sasl"),
    ("- a list\n", "must hold a mapping of settings"),
    ("topic: [\n", "is not valid YAML"),
    ("kafka: 3\n", "the kafka section must be a mapping"),
])
def test_a_file_that_is_not_settings_is_a_config_error(tmp_path: Path, file: str, words: str) -> None:
    with pytest.raises(ConfigError) as raised:
        _load(REQUIRED, file=file, tmp_path=tmp_path)
    assert words in str(raised.value) and str(tmp_path / "run.yaml") in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(("flags", "env", "words"), [
    ({"last": 5}, {"STREAMGUARD_MAX_EVENTS": "3"},
     "not both (last from flag --last, max_events from environment STREAMGUARD_MAX_EVENTS)"),
    ({"last": 5, "read_strategy": "full-scan"}, {}, "last needs the bounded read strategy"),
    ({"start": "resume"}, {"STREAMGUARD_READ_STRATEGY": "full-scan"},
     "start resume needs the bounded read strategy"),
    ({"model": Path("/no/such.skops")}, {}, "is not a file (model from flag --model)"),
])
def test_settings_that_conflict_name_where_each_came_from(tmp_path: Path, flags: dict, env: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")):
        _load({**REQUIRED, **flags}, env=env, tmp_path=tmp_path)


def test_model_and_save_model_together_are_a_config_error(tmp_path: Path) -> None:
    model = tmp_path / "m.skops"
    model.write_bytes(b"only its existence is checked here")
    assert _load({**REQUIRED, "model": model}, tmp_path=tmp_path).to_dict()["model"] == str(model)
    with pytest.raises(ConfigError, match="not both"):
        _load({**REQUIRED, "model": model}, env={"STREAMGUARD_SAVE_MODEL": str(tmp_path / "n")}, tmp_path=tmp_path)


def test_topic_must_be_given(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="topic is not set: pass --topic, set STREAMGUARD_TOPIC"):
        _load({"bootstrap": "b:1"}, tmp_path=tmp_path)


def test_run_config_built_directly_is_as_strict() -> None:
    for bad in ({"max_events": True}, {"max_events": 10.7}, {"random_state": -1}, {"n_estimators": 0},
                {"engine": "turbo"}, {"unknown": 1}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            RunConfig(**REQUIRED, **bad)
    with pytest.raises(InvalidOffsetSpec, match="after 9999-12-31"):
        RunConfig(**REQUIRED, start="99999999999999999999")
    config = RunConfig(**REQUIRED, output="o", contamination=1 / 20, kafka_properties={"sasl.password": "s3cret"})
    assert config.output == Path("o") and config.contamination == 0.05
    assert "s3cret" not in repr(config) and config.to_dict()["kafka_properties"] == {"sasl.password": "***"}
    assert config.kafka_properties.for_librdkafka()["sasl.password"] == "s3cret"


def test_detector_config_refuses_a_seed_numpy_cannot_take() -> None:
    with pytest.raises(DetectionError, match="random_state"):
        DetectorConfig(random_state=2**32)


# flag, STREAMGUARD_KAFKA_BOOTSTRAP, the file's bootstrap:, the running broker, expected address and origin
BOOTSTRAP_LEVELS = [
    ("f:1", "e:1", "y:1", "d:1", "f:1", "flag --bootstrap"),
    (None, "e:1", "y:1", "d:1", "e:1", f"environment {ENV_BOOTSTRAP}"),
    (None, "", "y:1", "d:1", "y:1", "config file"),
    (None, None, None, "d:1", "d:1", RUNNING_BROKER),
]


@pytest.mark.parametrize(("flag", "env", "file", "running", "address", "origin"), BOOTSTRAP_LEVELS)
def test_the_bootstrap_address_has_one_precedence(tmp_path: Path, flag: str | None, env: str | None,
                                                  file: str | None, running: str, address: str, origin: str) -> None:
    environment = {} if env is None else {ENV_BOOTSTRAP: env}
    found = resolve_bootstrap(flag, env=environment, file_value=file, config_file=tmp_path / "run.yaml",
                              running_broker=lambda: running)
    assert found.address == address and found.origin.startswith(origin)
    run = _load({"topic": "t", "bootstrap": flag}, file=f"bootstrap: {file}\n" if file else None, env=environment,
                tmp_path=tmp_path, running=running)
    assert run.bootstrap == address


def test_without_a_bootstrap_address_the_error_says_how_to_give_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pass --bootstrap, set STREAMGUARD_KAFKA_BOOTSTRAP.*kafka start"):
        _load({"topic": "t"}, tmp_path=tmp_path)
    with pytest.raises(ConfigError, match=r"bootstrap from config file .*: must be host:port text, got 9092"):
        _load({"topic": "t"}, file="bootstrap: 9092\n", tmp_path=tmp_path)
    assert find_bootstrap(env={}, running_broker=None) is None  # the providers never use the running broker


def test_env_names_are_the_documented_ones() -> None:
    names = env_names()
    assert names["bootstrap"] == "STREAMGUARD_KAFKA_BOOTSTRAP"
    assert names["kafka_properties"] == "STREAMGUARD_KAFKA_PROPERTIES"
    assert names["max_events"] == "STREAMGUARD_MAX_EVENTS"


@pytest.fixture
def silent_listener() -> Iterator[socket.socket]:
    """A TCP port that accepts connections and never answers: a Kafka client would connect to it and wait."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener


def _connected(listener: socket.socket) -> bool:
    listener.setblocking(False)
    try:
        connection, _ = listener.accept()
    except BlockingIOError:
        return False
    connection.close()
    return True


def _streamguard(*args: str, env: Mapping[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streamguard", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **env}, timeout=HANG_GUARD_S, check=False)


@pytest.mark.parametrize(("args", "file", "env", "code", "words"), [
    ((), "max_events: true\n", {}, 2, "max_events from config file"),
    ((), "random_state: 99999999999\n", {}, 2, "random_state from config file"),
    ((), "", {"STREAMGUARD_N_ESTIMATORS": "lots"}, 2, "n_estimators from environment STREAMGUARD_N_ESTIMATORS"),
    (("--start", "99999999999999999999"), "", {}, 22, "(start from flag --start)"),
    (("--end", "99999999999999999999"), "", {}, 22, "(end from flag --end)"),
    (("--max-events", "0"), "", {}, 2, "max_events from flag --max-events: must be at least 1"),
])
def test_run_with_a_bad_setting_exits_before_contacting_kafka(
    tmp_path: Path, silent_listener: socket.socket, args: tuple[str, ...], file: str, env: dict[str, str],
    code: int, words: str,
) -> None:
    config_file = tmp_path / "run.yaml"
    config_file.write_text(file or "{}\n")
    port = silent_listener.getsockname()[1]
    done = _streamguard("run", "--topic", "t", "--bootstrap", f"127.0.0.1:{port}", "--config", str(config_file),
                        "-o", str(tmp_path / "out"), *args,
                        env={"STREAMGUARD_STATE_DIR": str(tmp_path / "state"), **env}, cwd=tmp_path)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == code, done.stderr
    assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0], done.stderr
    assert not _connected(silent_listener)  # the error came first: nothing dialled the broker address
    assert not (tmp_path / "out").exists()


def test_seed_without_a_broker_is_a_config_error(tmp_path: Path) -> None:
    done = _streamguard("seed", "--topic", "t", "--events", "10",
                        env={"STREAMGUARD_STATE_DIR": str(tmp_path / "state"), ENV_BOOTSTRAP: ""}, cwd=tmp_path)
    assert done.returncode == ConfigError.exit_code, done.stderr
    assert "no Kafka broker given" in done.stderr
