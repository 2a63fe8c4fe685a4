from __future__ import annotations

from pathlib import Path

import pytest

from streamguard.config import load_run_config
from streamguard.errors import ConfigError


def test_flags_override_environment_override_file_override_defaults(tmp_path: Path):
    config_file = tmp_path / "run.yaml"
    config_file.write_text("topic: from-file\nmax_events: 10\ncontamination: 0.1\nspark_master: local[1]\n")
    env = {"STREAMGUARD_MAX_EVENTS": "20", "STREAMGUARD_KAFKA_BOOTSTRAP": "env:9092",
           "STREAMGUARD_CONTAMINATION": "0.2"}
    config = load_run_config(flags={"contamination": 0.3, "topic": None}, config_file=config_file, env=env)
    assert config.topic == "from-file"          # file (no flag, no env)
    assert config.max_events == 20              # env over file
    assert config.contamination == 0.3         # flag over env
    assert config.bootstrap == "env:9092"
    assert config.spark_master == "local[1]"
    assert config.read_strategy == "bounded"    # default
    assert config.output == Path("out/latest")


def test_unknown_file_setting_and_bad_values_are_config_errors(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("topic: t\nmax_event: 10\n")
    with pytest.raises(ConfigError, match="max_event"):
        load_run_config(flags={"bootstrap": "b"}, config_file=bad, env={})
    with pytest.raises(ConfigError, match="max_events"):
        load_run_config(flags={"topic": "t", "bootstrap": "b"}, env={"STREAMGUARD_MAX_EVENTS": "many"})
    with pytest.raises(ConfigError, match="read_strategy"):
        load_run_config(flags={"topic": "t", "bootstrap": "b", "read_strategy": "sideways"}, env={})
    with pytest.raises(ConfigError, match="topic"):
        load_run_config(flags={"bootstrap": "b"}, env={})


def test_empty_yaml_values_mean_not_set_and_fallbacks_lose_to_everything(tmp_path: Path):
    config_file = tmp_path / "run.yaml"
    config_file.write_text("topic: t\noutput:\nbootstrap: file:9092\n")
    config = load_run_config(flags={}, config_file=config_file, env={}, fallbacks={"bootstrap": "daemon:1"})
    assert config.output == Path("out/latest")
    assert config.bootstrap == "file:9092"  # the file beats the running broker's address
    fallback_only = load_run_config(flags={"topic": "t"}, env={}, fallbacks={"bootstrap": "daemon:1"})
    assert fallback_only.bootstrap == "daemon:1"


def test_detector_and_isolation_settings_are_checked_as_configuration():
    with pytest.raises(ConfigError, match="algorithm"):
        load_run_config(flags={"topic": "t", "bootstrap": "b", "algorithm": "dbscan"}, env={})
    with pytest.raises(ConfigError, match="contamination"):
        load_run_config(flags={"topic": "t", "bootstrap": "b", "contamination": 0.9}, env={})
    with pytest.raises(ConfigError, match="isolation_level"):
        load_run_config(flags={"topic": "t", "bootstrap": "b", "isolation_level": "dirty"}, env={})
    with pytest.raises(ConfigError, match="STREAMGUARD_KAFKA_BOOTSTRAP"):
        load_run_config(flags={"topic": "t"}, env={})


def test_model_settings_come_from_flags_environment_or_file(tmp_path: Path):
    model = tmp_path / "m.skops"
    model.write_bytes(b"not checked here, only that it exists")
    config_file = tmp_path / "run.yaml"
    config_file.write_text(f"topic: t\nbootstrap: b\nmodel: {model}\n")
    config = load_run_config(flags={}, config_file=config_file, env={})
    assert config.model == model and config.save_model is None
    assert config.contamination is None  # the outlier rule by default
    assert config.to_dict()["model"] == str(model)
    from_env = load_run_config(flags={"topic": "t", "bootstrap": "b"},
                               env={"STREAMGUARD_SAVE_MODEL": str(tmp_path / "new.skops"),
                                    "STREAMGUARD_OUTLIER_MADS": "6"})
    assert from_env.save_model == tmp_path / "new.skops" and from_env.detector().outlier_mads == 6.0


def test_model_and_save_model_together_or_a_missing_model_are_config_errors(tmp_path: Path):
    model = tmp_path / "m.skops"
    model.write_bytes(b"x")
    with pytest.raises(ConfigError, match="not both"):
        load_run_config(flags={"topic": "t", "bootstrap": "b", "model": model, "save_model": tmp_path / "n"},
                        env={})
    with pytest.raises(ConfigError, match="not a file"):
        load_run_config(flags={"topic": "t", "bootstrap": "b", "model": tmp_path / "absent.skops"}, env={})
    with pytest.raises(ConfigError, match="outlier_mads"):
        load_run_config(flags={"topic": "t", "bootstrap": "b", "outlier_mads": -1}, env={})
