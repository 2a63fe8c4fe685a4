"""The package's floors: contracts import no engine, serving and the assistant start without pyspark, and the
embedded engine runs a whole job without loading pyspark."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _modules_after_import(statement: str) -> set[str]:
    probe = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return {name.split(".")[0] for name in done.stdout.split()}


@pytest.mark.parametrize("module", ["streamguard.contracts", "streamguard.features", "streamguard.report"])
def test_contracts_import_no_engine(module: str) -> None:
    loaded = _modules_after_import(f"import {module}")
    assert not loaded & {"pyspark", "sklearn", "duckdb", "confluent_kafka", "py4j"}


@pytest.mark.parametrize("module", ["streamguard.serve.app", "streamguard.assistant", "streamguard.cli"])
def test_serving_and_the_assistant_start_without_pyspark_or_sklearn(module: str) -> None:
    loaded = _modules_after_import(f"import {module}")
    assert not loaded & {"pyspark", "py4j", "sklearn"}


def test_the_embedded_engine_and_the_pipeline_do_not_load_pyspark() -> None:
    loaded = _modules_after_import("import streamguard.pipeline, streamguard.engines.embedded, streamguard.detect")
    assert "duckdb" in loaded
    assert not loaded & {"pyspark", "py4j"}
