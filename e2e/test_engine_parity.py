"""The embedded engine and Spark compute the same thing: local Spark, and a real standalone Spark cluster.

One topic built to be awkward: uneven partitions and an empty one, every malformed kind the generator makes plus
records no generator of ours writes (bytes that are not UTF-8, another producer's layout, strict-JSON violations),
injected anomalous users. Each engine runs the same slice; the outputs must agree: the same users, features equal
within 1e-9 relative, the same quarantine counts per reason, the same scores and flags, the same Parquet schema.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest

from e2e.conftest import unique_topic
from e2e.spark_cluster_fixture import spark_cluster, spark_cluster_2w  # noqa: F401 - fixtures
from streamguard.config import RunConfig
from streamguard.contracts import FEATURE_COLUMNS
from streamguard.export import QUARANTINE, TRAINING_DATA
from streamguard.pipeline import run_pipeline
from streamguard.report import REPORT_FILE, AnomalyReport
from streamguard.synth.generator import generate_messages

EVENTS = 6_000
# Position i of the stream goes to partition SPREAD[i % 20]: 55% / 30% / 15%, partition 3 stays empty.
SPREAD = [0] * 11 + [1] * 6 + [2] * 3
# Records from outside our generator, each with the quarantine reason it must get.
FOREIGN = [
    (b"\xff\xfe{\"user\": \"x\"}", "invalid_utf8"),
    (b"{\"user\": \"caf\xe9\"}", "invalid_utf8"),
    (b"{'event_id': 'evt_00000000000000000000000000000000'}", "invalid_json"),
    (b"{\"a\": 1} trailing", "invalid_json"),
    (b"{\"a\": 1}{\"b\": 2}", "invalid_json"),
    (b"[1, 2, 3]", "wrong_type"),
    (b"{\"eventId\": \"x\", \"userName\": \"y\", \"ts\": \"2026-01-01T00:00:00Z\"}", "missing_required"),
]
REL_TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def awkward_topic(bootstrap: str, request: pytest.FixtureRequest) -> tuple[str, dict[str, int]]:
    """The topic, and the quarantine reasons of the foreign records by reason."""
    topic = unique_topic("parity")
    records = [
        (SPREAD[i % len(SPREAD)], value, timestamp)
        for i, (_, value, timestamp) in enumerate(
            generate_messages(EVENTS, seed=11, users=30, anomalous_users=3, invalid_rate=0.02, workers=0)
        )
    ]
    last_ms = records[-1][2]
    records += [(1, value, last_ms) for value, _ in FOREIGN]
    request.getfixturevalue("produce")(topic, records, partitions=4)
    foreign: dict[str, int] = {}
    for _, reason in FOREIGN:
        foreign[reason] = foreign.get(reason, 0) + 1
    return topic, foreign


def _outputs(output: Path) -> tuple[AnomalyReport, pd.DataFrame, pd.DataFrame, ds.Dataset]:
    report = AnomalyReport.model_validate_json((output / REPORT_FILE).read_text())
    training = ds.dataset(output / TRAINING_DATA, format="parquet", partitioning="hive")
    table = training.to_table().to_pandas().sort_values("user", ignore_index=True)
    quarantine = ds.dataset(output / QUARANTINE, format="parquet").to_table().to_pandas()
    return report, table, quarantine, training


def _assert_same(embedded: Path, other: Path) -> None:
    report_a, table_a, quarantine_a, training_a = _outputs(embedded)
    report_b, table_b, quarantine_b, training_b = _outputs(other)
    assert report_a.run.engine == "embedded" and report_b.run.engine == "spark"
    assert list(table_a["user"]) == list(table_b["user"])
    for column in (*FEATURE_COLUMNS, "anomaly_score"):
        a, b = table_a[column].to_numpy(np.float64), table_b[column].to_numpy(np.float64)
        assert np.allclose(a, b, rtol=REL_TOLERANCE, atol=1e-12), f"{column} differs between engines"
    assert list(table_a["is_anomaly"].astype(int)) == list(table_b["is_anomaly"].astype(int))
    assert report_a.run.quarantined_by_reason == report_b.run.quarantined_by_reason
    assert (quarantine_a["reason"].value_counts().to_dict() == quarantine_b["reason"].value_counts().to_dict())
    keys = ["partition", "offset"]
    assert (quarantine_a.sort_values(keys)[keys].to_numpy() == quarantine_b.sort_values(keys)[keys].to_numpy()).all()
    assert [(f.name, f.type) for f in training_a.schema] == [(f.name, f.type) for f in training_b.schema]
    assert report_a.run.detector.threshold == pytest.approx(report_b.run.detector.threshold, rel=REL_TOLERANCE)
    assert (report_a.total_users, report_a.anomalous_users) == (report_b.total_users, report_b.anomalous_users)
    assert [t.user for t in report_a.top_anomalies] == [t.user for t in report_b.top_anomalies]


@pytest.fixture(scope="module")
def embedded_run(bootstrap: str, awkward_topic, tmp_path_factory) -> Path:
    topic, _ = awkward_topic
    output = tmp_path_factory.mktemp("embedded") / "out"
    run_pipeline(RunConfig(topic=topic, bootstrap=bootstrap, output=output, max_events=EVENTS, engine="embedded"),
                 progress=False)
    return output


def test_embedded_run_quarantines_every_foreign_record_under_its_reason(embedded_run, awkward_topic):
    _, foreign = awkward_topic
    report, _, quarantine, _ = _outputs(embedded_run)
    assert report.run.records_read == EVENTS
    foreign_rows = quarantine[quarantine["partition"] == 1].sort_values("offset").tail(len(FOREIGN))
    assert list(foreign_rows["reason"]) == [reason for _, reason in FOREIGN]
    utf8 = foreign_rows[foreign_rows["reason"] == "invalid_utf8"]
    assert utf8["value_text"].isna().all() and utf8["value"].map(len).gt(0).all()
    for reason, count in foreign.items():
        assert report.run.quarantined_by_reason[reason] >= count


def test_spark_local_gives_what_the_embedded_engine_gives(spark, bootstrap, awkward_topic, embedded_run, tmp_path):
    topic, _ = awkward_topic
    output = tmp_path / "spark"
    run_pipeline(RunConfig(topic=topic, bootstrap=bootstrap, output=output, max_events=EVENTS, engine="spark"),
                 spark=spark, progress=False)
    _assert_same(embedded_run, output)


def test_a_time_range_reads_the_same_on_both_engines(spark, bootstrap, awkward_topic, tmp_path):
    topic, _ = awkward_topic
    stamps = sorted(timestamp for _, _, timestamp in generate_messages(EVENTS, seed=11, users=30,
                                                                        anomalous_users=3, invalid_rate=0.02,
                                                                        workers=0))
    start, end = str(stamps[len(stamps) // 4]), str(stamps[3 * len(stamps) // 4])
    outputs = {}
    for engine, kwargs in (("embedded", {}), ("spark", {"spark": spark})):
        outputs[engine] = tmp_path / engine
        run_pipeline(RunConfig(topic=topic, bootstrap=bootstrap, output=outputs[engine], start=start, end=end,
                               engine=engine), progress=False, **kwargs)
    report, *_ = _outputs(outputs["embedded"])
    expected = sum(start_ms <= s < end_ms for s in stamps for start_ms, end_ms in [(int(start), int(end))])
    assert report.run.records_read == expected
    _assert_same(outputs["embedded"], outputs["spark"])


@pytest.mark.parametrize("cluster", ["spark_cluster", "spark_cluster_2w"], ids=["1-worker", "2-workers"])
def test_a_standalone_spark_cluster_gives_what_the_embedded_engine_gives(
    cluster: str, bootstrap: str, awkward_topic, embedded_run, tmp_path, request: pytest.FixtureRequest
):
    # With two workers, tasks land on both executors: the output must not change with the cluster's shape.
    master = request.getfixturevalue(cluster)
    topic, _ = awkward_topic
    output = tmp_path / "cluster"
    # A driver process of its own: this one already holds the local session (one SparkContext per process).
    result = _streamguard("run", "--topic", topic, "--bootstrap", bootstrap, "--max-events", str(EVENTS),
                          "--spark-master", master, "--output", str(output))
    assert result.returncode == 0, result.stderr[-2000:]
    report, *_ = _outputs(output)
    assert report.run.config["spark_master"] == master and report.run.config["engine"] == "auto"
    _assert_same(embedded_run, output)


def _streamguard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streamguard", *args], capture_output=True, text=True,
                          timeout=600, check=False)


def test_parsing_in_worker_processes_gives_what_one_process_gives(
    bootstrap: str, awkward_topic, embedded_run, tmp_path, monkeypatch: pytest.MonkeyPatch
):
    # Large slices are parsed by worker processes while the read goes on; force that path on this small topic.
    from streamguard.engines import embedded  # noqa: PLC0415

    monkeypatch.setattr(embedded, "PARALLEL_PARSE_MIN_RECORDS", 1)
    monkeypatch.setattr("streamguard.kafka.consume.BATCH_RECORDS", 500)
    topic, _ = awkward_topic
    output = tmp_path / "workers"
    engine = embedded.EmbeddedEngine(bootstrap=bootstrap, workers=2)
    run_pipeline(RunConfig(topic=topic, bootstrap=bootstrap, output=output, max_events=EVENTS), progress=False,
                 engine=engine)
    assert engine._pool is None, "the worker pool outlived the run"
    same, *_ = _outputs(output)
    reference, *_ = _outputs(embedded_run)
    assert same.run.quarantined_by_reason == reference.run.quarantined_by_reason
    assert same.run.records_read == reference.run.records_read == EVENTS
    assert [t.model_dump() for t in same.top_anomalies] == [t.model_dump() for t in reference.top_anomalies]
