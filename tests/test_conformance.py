"""The conformance corpus (``fixtures/conformance/corpus.jsonl``) against every parser: one verdict per record.

The JSON Schema read literally (``schema_verdict``: strict JSON text, then the schema's errors mapped to reasons),
``validate_event``, ``classify_value`` (fast path with its reference fallback), the reference checks alone,
``classify_batch``, and the parse stage of both engines (which also count the unknown details words).
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from streamguard.contracts.columns import EVENT_TYPES, QUARANTINE_REASONS
from streamguard.engines.base import ParseCounts
from streamguard.events import validate_event
from streamguard.events.parse import CLASSIFIED_SCHEMA, _reference, classify_batch, classify_value, fast_event
from streamguard.events.schema import schema_verdict, strict_json
from streamguard.events.vocabulary import FIELD_NAMES, TOP_WORDS, WORD_FIELDS, unknown_words_summary
from streamguard.kafka.consume import RAW_SCHEMA

CORPUS_FILE = Path(__file__).resolve().parent.parent / "fixtures" / "conformance" / "corpus.jsonl"


def load_corpus() -> list[dict[str, Any]]:
    """The cases, each with its raw ``value`` (bytes) decoded from ``text`` or ``base64``."""
    cases = []
    # split("\n"), not splitlines(): a case may hold U+2028 or NEL, which splitlines() also breaks on.
    for line in filter(None, CORPUS_FILE.read_text(encoding="utf-8").split("\n")):
        case = json.loads(line)
        if ("text" in case) == ("base64" in case):
            raise ValueError(f"{case['name']}: exactly one of text and base64")
        case["value"] = case["text"].encode("utf-8") if "text" in case else base64.b64decode(case["base64"])
        cases.append(case)
    return cases


CORPUS = load_corpus()
IDS = [case["name"] for case in CORPUS]
EVENT_FIELDS = CLASSIFIED_SCHEMA.names[CLASSIFIED_SCHEMA.get_field_index("event_id"):]


def expected_reason(case: dict[str, Any]) -> str | None:
    return None if case["expected"] == "valid" else case["expected"]


def expected_word_counts(cases: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The report's unknown_detail_words the corpus's manifest implies (not computed by the code under test)."""
    words: dict[str, Counter[str]] = {name: Counter() for name in FIELD_NAMES}
    for case in cases:
        if "unknown_detail_word" in case:
            kind = json.loads(case["value"])["event_type"]
            details, name = WORD_FIELDS[kind]
            words[f"{details}.{name}"][case["unknown_detail_word"]] += 1
    return {
        field: {"records": sum(counter.values()), "distinct": len(counter),
                "top": dict(sorted(counter.items(), key=lambda item: (-item[1], item[0].encode()))[:TOP_WORDS])}
        for field, counter in words.items()
    }


def raw_batch(values: list[bytes | None]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist(
        [{"topic": "conformance", "partition": 0, "offset": offset, "timestamp": 1_767_340_800_000 + offset,
          "value": value} for offset, value in enumerate(values)],
        schema=RAW_SCHEMA,
    )


def test_the_corpus_is_big_enough_and_covers_every_reason_and_event_type() -> None:
    assert len(CORPUS) >= 40
    assert len(set(IDS)) == len(IDS)
    verdicts = Counter(case["expected"] for case in CORPUS)
    assert set(verdicts) == {"valid", *QUARANTINE_REASONS}
    valid_types = {json.loads(case["value"])["event_type"] for case in CORPUS if case["expected"] == "valid"}
    assert valid_types == set(EVENT_TYPES)
    assert any(case["source"].startswith("https://") for case in CORPUS)
    assert all("unknown_detail_word" not in case or case["expected"] == "valid" for case in CORPUS)


@pytest.mark.parametrize("case", CORPUS, ids=IDS)
def test_the_json_schema_gives_the_expected_verdict(case: dict[str, Any]) -> None:
    assert schema_verdict(case["value"]) == expected_reason(case)


@pytest.mark.parametrize("case", CORPUS, ids=IDS)
def test_validate_event_accepts_exactly_the_valid_documents(case: dict[str, Any]) -> None:
    try:
        document = strict_json(case["value"].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        assert case["expected"] in ("empty_value", "invalid_utf8", "invalid_json")
        return
    assert case["expected"] not in ("empty_value", "invalid_utf8", "invalid_json")
    errors = validate_event(document)
    assert (errors == []) == (case["expected"] == "valid"), errors


@pytest.mark.parametrize("case", CORPUS, ids=IDS)
def test_classify_value_gives_the_expected_verdict_and_word(case: dict[str, Any]) -> None:
    reason, columns = classify_value(case["value"])
    assert reason == expected_reason(case)
    event = dict(zip(EVENT_FIELDS, columns, strict=True))
    assert event["unknown_detail_word"] == case.get("unknown_detail_word")
    if reason is None:
        document = json.loads(case["value"])
        assert (event["event_id"], event["user"], event["event_type"]) == (
            document["event_id"], document["user"], document["event_type"])
        assert event["timestamp"] == document["timestamp"] and type(event["timestamp"]) is int


@pytest.mark.parametrize("case", CORPUS, ids=IDS)
def test_the_reference_path_alone_agrees_and_the_fast_path_never_accepts_more(case: dict[str, Any]) -> None:
    value = case["value"]
    if case["expected"] in ("empty_value", "invalid_utf8"):
        return  # decided before either path runs
    assert _reference(value) == classify_value(value)
    if case["expected"] != "valid":
        assert fast_event(value) is None


def test_classify_batch_gives_every_offset_its_verdict() -> None:
    batch = classify_batch(raw_batch([case["value"] for case in CORPUS]))
    rows = batch.to_pylist()
    assert [row["offset"] for row in rows] == list(range(len(CORPUS)))
    assert [row["reason"] for row in rows] == [expected_reason(case) for case in CORPUS]
    assert [row["unknown_detail_word"] for row in rows] == [case.get("unknown_detail_word") for case in CORPUS]
    for row, case in zip(rows, CORPUS, strict=True):
        if row["reason"] is not None:
            assert row["value"] == case["value"]
            assert row["value_text"] == (None if row["reason"] == "invalid_utf8" else case["value"].decode())


def test_the_unknown_words_summary_orders_by_count_then_word_and_keeps_the_top() -> None:
    rows = [{"event_type": "network_connection", "word": word, "records": count, "field_records": 6,
             "field_distinct": 3} for word, count in (("b", 2), ("a", 2), ("SCTP", 2))]
    summary = unknown_words_summary(rows)
    assert list(summary["network_details.protocol"]["top"]) == ["SCTP", "a", "b"]
    assert summary["file_details.operation"] == {"records": 0, "distinct": 0, "top": {}}


def engine_parse_counts(engine_name: str, values: list[bytes | None], spark: Any = None) -> ParseCounts:
    raw = raw_batch(values)
    if engine_name == "embedded":
        from streamguard.engines.embedded import EmbeddedEngine  # noqa: PLC0415

        engine = EmbeddedEngine(bootstrap="127.0.0.1:9", workers=1)
        engine.start()
        try:
            engine._raw = [raw]  # what read() leaves for parse(), without a broker
            return engine.parse()
        finally:
            engine.close()
    from pyspark.sql.pandas.types import from_arrow_schema  # noqa: PLC0415

    from streamguard.engines.spark import SparkEngine  # noqa: PLC0415

    frame = spark.createDataFrame(pa.Table.from_batches([raw]).to_pandas(), from_arrow_schema(RAW_SCHEMA))
    engine = SparkEngine(bootstrap="127.0.0.1:9", master="local[2]", session=spark)
    try:
        engine._raw = frame.repartition(3)
        return engine.parse()
    finally:
        engine.close()


def test_both_engines_parse_the_corpus_alike_and_count_the_unknown_words(spark) -> None:
    # Twice over, so that counts are above one and the order by count is exercised.
    values = [case["value"] for case in CORPUS] * 2
    expected_by_reason = Counter(reason for case in CORPUS if (reason := expected_reason(case)) is not None)
    words = expected_word_counts(CORPUS * 2)
    assert words["process_details.user_privileges"]["records"] > 0
    for engine_name in ("embedded", "spark"):
        counts = engine_parse_counts(engine_name, values, spark)
        assert counts.valid == 2 * sum(case["expected"] == "valid" for case in CORPUS), engine_name
        assert counts.by_reason == {reason: 2 * n for reason, n in expected_by_reason.items()}, engine_name
        assert counts.unknown_detail_words == words, engine_name
