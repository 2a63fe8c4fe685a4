"""The conformance corpus through a real topic and both engines: every offset gets its expected verdict.

The corpus's raw bytes (``fixtures/conformance/corpus.jsonl``, plus a null value) go to partition 0 of a topic as
they are; partition 1 holds generated valid events, so that the run has users enough to fit a detector. The whole
topic is read by the embedded engine and by Spark (local); for each: every quarantined offset has the reason the
corpus expects and its raw bytes, every other offset of the corpus is a valid event, every offset is accounted for,
and the report counts the unknown details words the corpus holds.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest

from e2e.conftest import unique_topic
from streamguard.config import RunConfig
from streamguard.export import QUARANTINE
from streamguard.pipeline import run_pipeline
from streamguard.report import REPORT_FILE, AnomalyReport
from streamguard.synth.generator import generate_messages
from tests.test_conformance import CORPUS, expected_reason, expected_word_counts

GENERATED = 600
BASE_MS = 1_767_340_800_000
# The corpus, then a record with no value at all (a tombstone), on partition 0 in this order.
CORPUS_VALUES: list[bytes | None] = [case["value"] for case in CORPUS] + [None]
CORPUS_REASONS: list[str | None] = [expected_reason(case) for case in CORPUS] + ["empty_value"]


@pytest.fixture(scope="module")
def corpus_topic(request: pytest.FixtureRequest) -> str:
    topic = unique_topic("conformance")
    records: list[tuple[int, Any, int | None]] = [
        (0, value, BASE_MS + offset) for offset, value in enumerate(CORPUS_VALUES)
    ]
    records += [(1, value, timestamp) for _, value, timestamp in generate_messages(
        GENERATED, seed=5, users=25, anomalous_users=2, invalid_rate=0.0, workers=0)]
    request.getfixturevalue("produce")(topic, records, partitions=2)
    return topic


@pytest.mark.parametrize("engine", ["embedded", "spark"])
def test_every_offset_of_the_corpus_gets_its_verdict(engine: str, corpus_topic: str, bootstrap: str,
                                                     tmp_path: Path, request: pytest.FixtureRequest) -> None:
    output = tmp_path / engine
    kwargs = {"spark": request.getfixturevalue("spark")} if engine == "spark" else {}
    run_pipeline(RunConfig(topic=corpus_topic, bootstrap=bootstrap, output=output, engine=engine), progress=False,
                 **kwargs)
    report = AnomalyReport.model_validate_json((output / REPORT_FILE).read_text())
    quarantine = ds.dataset(output / QUARANTINE, format="parquet").to_table().to_pylist()

    total = len(CORPUS_VALUES) + GENERATED
    assert report.run.engine == engine
    assert report.run.records_read == total
    assert report.run.records_valid + report.run.records_quarantined == total
    assert len(quarantine) == report.run.records_quarantined
    assert all(row["partition"] == 0 for row in quarantine), "a generated valid event was quarantined"

    # Every offset of the corpus: quarantined under its reason with its bytes, or (expected valid) not quarantined.
    quarantined = {row["offset"]: row for row in quarantine}
    assert {offset: row["reason"] for offset, row in quarantined.items()} == {
        offset: reason for offset, reason in enumerate(CORPUS_REASONS) if reason is not None
    }
    for offset, row in quarantined.items():
        value = CORPUS_VALUES[offset]
        assert row["value"] == value, f"offset {offset}: the raw bytes were not kept"
        text = None if value is None or row["reason"] == "invalid_utf8" else value.decode("utf-8")
        assert row["value_text"] == text, f"offset {offset}"
    valid_in_corpus = sum(reason is None for reason in CORPUS_REASONS)
    assert report.run.records_valid == valid_in_corpus + GENERATED
    assert report.run.quarantined_by_reason == {
        reason: Counter(CORPUS_REASONS)[reason] for reason in report.run.quarantined_by_reason
    }

    words = report.run.unknown_detail_words
    assert words is not None
    assert {name: entry.model_dump() for name, entry in words.items()} == expected_word_counts(CORPUS)
