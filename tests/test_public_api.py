"""The library surface is exactly what we mean to offer, and the report schema shipped matches the models."""

from __future__ import annotations

import json

import streamguard
from streamguard.errors import EXIT_CODES, StreamguardError
from streamguard.report import generated_schema, report_schema

INTENDED = {
    "AnomalyReport", "BrokerError", "BrokerProvider", "BrokerStartTimeout", "BrokerUnreachable", "ConfigError",
    "DataError", "DetectionError", "ExternalBroker", "InvalidOffsetSpec", "LocalBroker", "NothingToRead",
    "OutputError", "PartitionRange", "ReadError", "ReadPlan", "RunConfig", "RunResult", "SetupError",
    "StreamguardError", "TopAnomaly", "TopicNotFound", "broker_from_env", "load_run_config", "plan_read",
    "run_pipeline",
}


def test_exported_names_are_exactly_the_intended_ones():
    assert set(streamguard.__all__) == INTENDED
    assert all(hasattr(streamguard, name) for name in INTENDED)


def test_every_error_has_a_distinct_exit_code_under_one_root():
    codes = list(EXIT_CODES.values())
    assert len(codes) == len(set(codes))
    assert all(issubclass(getattr(streamguard, name, StreamguardError), StreamguardError) for name in EXIT_CODES
               if hasattr(streamguard, name))
    assert 0 not in codes


def test_shipped_report_schema_equals_the_one_generated_from_the_models():
    # Fails when report.py changes without `python -m streamguard.report` regenerating the shipped file.
    assert json.dumps(report_schema(), sort_keys=True) == json.dumps(generated_schema(), sort_keys=True)


def test_every_export_resolves_lazily_to_its_module():
    import subprocess
    import sys

    probe = ("import sys, streamguard; assert 'pyspark' not in sys.modules and 'sklearn' not in sys.modules; "
             "[getattr(streamguard, n) for n in streamguard.__all__]; print('ok')")
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    assert completed.stdout.strip() == "ok", completed.stderr
