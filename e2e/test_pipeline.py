"""The batch job end to end on a real broker: report, training data, quarantine, detection, atomicity.

The module's run uses the default (embedded) engine; the tests about reading and failing run on both engines.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import jsonschema
import pyarrow.dataset as ds
import pytest

from e2e.conftest import unique_topic
from streamguard.config import RunConfig
from streamguard.errors import BrokerUnreachable, NothingToRead
from streamguard.features import FEATURE_COLUMNS
from streamguard.kafka.local_broker import LocalBroker
from streamguard.pipeline import RunResult, run_pipeline
from streamguard.report import REPORT_FILE, STAGES, report_schema
from streamguard.synth.seed import seed_topic
from streamguard.synth.truth import GroundTruth, load_truth

EVENTS = 30_000
# The generator's malformed kinds and the quarantine reason each must land under.
REASON_OF_KIND = {"not_json": "invalid_json", "truncated_json": "invalid_json", "wrong_type": "wrong_type",
                  "missing_required": "missing_required", "out_of_range": "out_of_range",
                  "empty_value": "empty_value"}
# Recall of the injected users at the default contamination (0.10), measured on this topic: 4 of 4.
RECALL_FLOOR = 0.75


@pytest.fixture(scope="module")
def seeded(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, GroundTruth]:
    topic = unique_topic("pipeline")
    result = seed_topic(bootstrap, topic, events=EVENTS, partitions=4, seed=5, users=40, anomalous_users=4,
                        invalid_rate=0.01, truth_path=tmp_path_factory.mktemp("truth") / "truth.json",
                        progress=False)
    return topic, load_truth(result.truth_path)


@pytest.fixture(scope="module")
def full_run(bootstrap, seeded, tmp_path_factory) -> RunResult:
    topic, _ = seeded
    output = tmp_path_factory.mktemp("run") / "out"
    return run_pipeline(RunConfig(topic=topic, bootstrap=bootstrap, output=output), progress=False)


@pytest.fixture(params=["embedded", "spark"])
def engine_kwargs(request: pytest.FixtureRequest) -> dict:
    """``run_pipeline`` keyword arguments for one engine (Spark on the session's shared local session)."""
    return {"spark": request.getfixturevalue("spark")} if request.param == "spark" else {}


def test_report_passes_its_schema_and_counts_every_record(full_run, seeded):
    _, truth = seeded
    document = json.loads((full_run.output / REPORT_FILE).read_text())
    jsonschema.Draft202012Validator(report_schema()).validate(document)
    run = document["run"]
    assert run["records_read"] == run["records_scanned"] == run["plan"]["planned_records"] == EVENTS
    assert run["records_valid"] == truth.valid_events
    assert run["records_quarantined"] == truth.invalid_events
    assert set(run["stage_seconds"]) == set(STAGES)
    assert run["engine"] == "embedded" and run["versions"]["duckdb"]
    assert document["total_users"] == truth.users


def test_malformed_messages_land_in_quarantine_with_exact_counts(full_run, seeded):
    _, truth = seeded
    expected: dict[str, int] = {}
    for kind, count in truth.invalid_counts.items():
        expected[REASON_OF_KIND[kind]] = expected.get(REASON_OF_KIND[kind], 0) + count
    quarantined = ds.dataset(full_run.output / "quarantine").to_table().to_pandas()
    assert quarantined["reason"].value_counts().to_dict() == {k: v for k, v in expected.items() if v}
    by_reason = full_run.report.run.quarantined_by_reason
    assert by_reason == {reason: expected.get(reason, 0) for reason in by_reason}
    assert quarantined[["partition", "offset"]].drop_duplicates().shape[0] == len(quarantined)
    assert set(quarantined.columns) >= {"topic", "partition", "offset", "value", "reason"}


def test_training_data_has_the_documented_schema_and_one_row_per_user(full_run, seeded):
    _, truth = seeded
    table = ds.dataset(full_run.output / "training_data", partitioning="hive").to_table().to_pandas()
    assert list(table.columns[: 1 + len(FEATURE_COLUMNS)]) == ["user", *FEATURE_COLUMNS]
    assert {"anomaly_score", "is_anomaly"} <= set(table.columns)
    assert table["user"].is_unique and len(table) == truth.users
    assert table["anomaly_score"].between(0, 1).all()
    assert int(table["is_anomaly"].astype(int).sum()) == full_run.report.anomalous_users
    assert table["total_events"].sum() == truth.valid_events


def test_injected_anomalous_users_are_found(full_run, seeded):
    _, truth = seeded
    table = ds.dataset(full_run.output / "training_data", partitioning="hive").to_table().to_pandas()
    flagged = set(table.loc[table["is_anomaly"].astype(int) == 1, "user"])
    injected = set(truth.anomalous_user_names)
    recall = len(flagged & injected) / len(injected)
    assert recall >= RECALL_FLOOR, f"recall {recall:.2f}: flagged {sorted(flagged)}, injected {sorted(injected)}"


def test_bounded_run_reads_exactly_max_events(engine_kwargs, bootstrap, seeded, tmp_path):
    topic, _ = seeded
    result = run_pipeline(RunConfig(topic=topic, bootstrap=bootstrap, output=tmp_path / "o", max_events=2_345),
                          progress=False, **engine_kwargs)
    assert result.report.run.records_read == result.report.run.records_scanned == 2_345
    assert result.report.run.records_valid + result.report.run.records_quarantined == 2_345


def test_full_scan_fetches_the_topic_and_keeps_max_events(engine_kwargs, bootstrap, seeded, tmp_path):
    topic, _ = seeded
    result = run_pipeline(RunConfig(topic=topic, bootstrap=bootstrap, output=tmp_path / "o", max_events=1_000,
                                    read_strategy="full-scan"), progress=False, **engine_kwargs)
    assert result.report.run.records_scanned == EVENTS
    assert result.report.run.records_read == 1_000


def test_latest_with_nothing_new_is_nothing_to_read_and_keeps_previous_output(bootstrap, seeded, full_run):
    topic, _ = seeded
    before = (full_run.output / REPORT_FILE).read_text()
    with pytest.raises(NothingToRead, match="nothing to read"):
        run_pipeline(RunConfig(topic=topic, bootstrap=bootstrap, output=full_run.output, start="latest"),
                     progress=False)
    assert (full_run.output / REPORT_FILE).read_text() == before


class _StopBrokerAfterPlanning(logging.Handler):
    """Stops the broker right after the pipeline logs its plan, i.e. between planning and reading."""

    def __init__(self, broker: LocalBroker) -> None:
        super().__init__()
        self.broker = broker

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("plan:"):
            self.broker.stop()


def test_broker_stopped_mid_run_leaves_the_previous_output_intact(engine_kwargs, tmp_path):
    output = tmp_path / "out"
    pipeline_log = logging.getLogger("streamguard.pipeline")
    with LocalBroker() as broker:
        topic = unique_topic("doomed")
        seed_topic(broker.bootstrap, topic, events=3_000, partitions=2, users=12, anomalous_users=1,
                   truth_path=tmp_path / "truth.json", progress=False)
        first = run_pipeline(RunConfig(topic=topic, bootstrap=broker.bootstrap, output=output), progress=False,
                             **engine_kwargs)
        published = (output / REPORT_FILE).read_text()
        handler = _StopBrokerAfterPlanning(broker)
        pipeline_log.addHandler(handler)
        previous_level = pipeline_log.level
        pipeline_log.setLevel(logging.INFO)
        try:
            with pytest.raises(BrokerUnreachable, match="Kafka did not answer"):
                run_pipeline(RunConfig(topic=topic, bootstrap=broker.bootstrap, output=output), progress=False,
                             **engine_kwargs)
        finally:
            pipeline_log.removeHandler(handler)
            pipeline_log.setLevel(previous_level)
    assert (output / REPORT_FILE).read_text() == published
    assert output.resolve() == first.run_dir.resolve()
    runs = [p for p in Path(f"{output}.runs").iterdir() if p.is_dir()]
    assert runs == [first.run_dir]
