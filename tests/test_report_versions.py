"""Report schema versions: a version-1 report (counts named events_*) is still read, with its names mapped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from serve_fixtures import write_run

from streamguard.errors import OutputError
from streamguard.report import RENAMED_IN_V2, REPORT_FILE, SCHEMA_VERSION, AnomalyReport, report_json, validate_report
from streamguard.serve.data import load_snapshot


def _as_version_1(document: dict) -> dict:
    """What a report written before the rename held: no schema_version, the run's counts under their old names."""
    old_names = {new: old for old, new in RENAMED_IN_V2.items()}
    run = {old_names.get(key, key): value for key, value in document["run"].items()}
    return {key: value for key, value in document.items() if key != "schema_version"} | {"run": run}


def test_a_written_report_carries_the_current_version_and_the_new_names(tmp_path: Path) -> None:
    written = json.loads(report_json(write_run(tmp_path / "out", "run-a").report))
    assert written["schema_version"] == SCHEMA_VERSION == 2
    assert {"records_read", "records_valid", "records_quarantined", "quarantined_by_reason"} <= written["run"].keys()
    assert not set(RENAMED_IN_V2) & written["run"].keys()


def test_a_version_1_report_is_served_with_its_counts_under_the_new_names(tmp_path: Path) -> None:
    fixture = write_run(tmp_path / "out", "run-a")
    current = json.loads((fixture.run_dir / REPORT_FILE).read_text())
    (fixture.run_dir / REPORT_FILE).write_text(json.dumps(_as_version_1(current)))

    served = load_snapshot(fixture.run_dir).report

    assert served.schema_version == 1
    assert served.run.records_read == fixture.report.run.records_read
    assert served.run.records_quarantined == fixture.report.run.records_quarantined
    assert served.run.quarantined_by_reason == fixture.report.run.quarantined_by_reason
    assert served.model_copy(update={"schema_version": SCHEMA_VERSION}) == fixture.report


def test_the_shipped_schema_rejects_the_old_names_in_a_report_being_written(tmp_path: Path) -> None:
    document = _as_version_1(json.loads(report_json(write_run(tmp_path / "out", "run-a").report)))
    with pytest.raises(OutputError, match="run"):
        validate_report(document)


def test_a_report_mixing_old_and_new_names_for_one_count_is_refused(tmp_path: Path) -> None:
    document = json.loads(report_json(write_run(tmp_path / "out", "run-a").report))
    document["run"]["events_read"] = document["run"]["records_read"] + 1
    with pytest.raises(ValueError, match="records_read"):
        AnomalyReport.model_validate(document)
