"""The benchmark history record (format 1), built from a real pytest-benchmark JSON (fixtures/bench/)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from bench.chart import render
from bench.figures import paired_ratio, summary
from bench.history import FORMAT, HistoryError, append, load, print_history, print_table, record_from_benchmark_json

RUN = Path(__file__).resolve().parent.parent / "fixtures" / "bench" / "benchmark-run.json"


@pytest.fixture
def record() -> dict:
    return record_from_benchmark_json(json.loads(RUN.read_text()), source="fixtures/bench/benchmark-run.json")


def test_summary_and_paired_ratio():
    assert summary([0.31, 0.29, 0.40]) == {"min": 0.29, "median": 0.31, "max": 0.4, "mean": 0.3333, "rounds": 3}
    # Median of the per-round ratios (20, 22, 40), not the ratio of the medians.
    assert paired_ratio([6.0, 6.6, 4.0], [0.3, 0.3, 0.1]) == 22.0
    with pytest.raises(ValueError, match="same"):
        paired_ratio([1.0, 2.0], [1.0])


def test_record_carries_provenance(record):
    assert record["format"] == FORMAT
    assert record["commit"]["id"].startswith("7af2b187")
    assert record["date"].endswith("+00:00")
    assert record["machine"]["cpu_count"] == 2
    assert record["machine"]["memory_gb"] > 0
    assert record["versions"]["pyspark"] == "4.2.0"
    assert record["versions"]["kafka_broker"] == "4.1.1"
    assert [t["events"] for t in record["topics"]] == [100_000, 300_000]
    assert record["settings"]["rounds"] == 2


def test_record_timings_carry_what_was_read(record):
    read = record["timings"]["read"]
    assert read["100000"]["bounded"] == {"min": 0.2657, "median": 0.3175, "max": 0.3692, "mean": 0.3175,
                                         "rounds": 2, "events_read": 1000, "records_scanned": 1000}
    assert read["300000"]["full-scan"]["records_scanned"] == 300_000
    pipeline = record["timings"]["pipeline"]["100000"]["bounded"]
    assert pipeline["stages_median"]["kafka_read"] == pytest.approx(0.541)
    assert set(record["timings"]["cold"]) == {"spark_init", "first_read"}


def test_record_ratios_are_medians_of_paired_rounds(record):
    ratios = record["ratios"]
    # read 100k: 2.4614/0.2657 and 1.9985/0.3692 -> median 7.338
    assert ratios["read_speedup"] == {"100000": 7.338, "300000": 13.921}
    assert ratios["pipeline_speedup"]["100000"] == 0.826
    # bounded 300k against bounded 100k, round by round: 0.3186/0.2657 and 0.1918/0.3692
    assert ratios["read_flatness"] == {"300000": 0.859}
    assert record["flatness_base"] == 100_000


def test_a_json_without_bench_results_is_refused():
    with pytest.raises(HistoryError, match="not a bench run"):
        record_from_benchmark_json({"benchmarks": []})


def test_append_and_load_round_trip(record, tmp_path):
    path = tmp_path / "history.jsonl"
    append(record, path)
    append(record, path)
    assert load(path) == [json.loads(json.dumps(record))] * 2
    assert path.read_text().count("\n") == 2


def test_load_refuses_another_format(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_text('{"format": 2}\n')
    with pytest.raises(HistoryError, match="not a format 1 record"):
        load(path)


def test_tables_show_the_figures(record):
    out = io.StringIO()
    console = Console(file=out, width=160)
    print_table(record, console)
    print_history([record], console)
    text = out.getvalue()
    assert "7.3×" in text and "13.9×" in text
    assert "1,000 / 300,000" in text
    assert "t(300,000) / t(100,000)" in text


def test_chart_is_a_png(record, tmp_path):
    path = render([record, record], tmp_path / "ratios.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
