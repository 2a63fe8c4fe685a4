"""The benchmark history record (format 2), built from a real pytest-benchmark JSON and a real engine-series JSON
(fixtures/bench/); format 1 records (fixtures/bench/history-format1.jsonl, the first two committed runs) still load,
print and chart."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from bench.chart import render
from bench.figures import paired_ratio, summary
from bench.history import (
    FORMAT,
    HistoryError,
    add_engines,
    append,
    cold_phases,
    load,
    print_history,
    print_table,
    record_from_benchmark_json,
    record_from_engines,
)

GOLDEN = Path(__file__).resolve().parent.parent / "fixtures" / "bench"
RUN = GOLDEN / "benchmark-run.json"
ENGINES_RUN = GOLDEN / "engines-run.json"
FORMAT1 = GOLDEN / "history-format1.jsonl"


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


def test_load_refuses_an_unknown_format(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_text('{"format": 3}\n')
    with pytest.raises(HistoryError, match="not a format 1 or 2 record"):
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


@pytest.fixture
def engines_run() -> dict:
    return json.loads(ENGINES_RUN.read_text())


def test_a_bench_record_is_format_2_and_says_what_it_measured(record):
    assert record["format"] == FORMAT == 2
    assert record["series"] == ["read", "pipeline", "cold"]
    assert record["timings"]["engines"] == {} and record["ratios"]["engine_speedup"] == {}


def test_engine_series_goes_into_the_bench_record(record, engines_run):
    add_engines(record, engines_run, source="fixtures/bench/engines-run.json")
    assert record["series"] == ["read", "pipeline", "cold", "engines"]
    assert record["engines_json"] == "fixtures/bench/engines-run.json"
    assert record["settings"]["engines"]["spark_master"] == "local[*]"
    assert "bench-1000000-s42" in [t["topic"] for t in record["topics"]]
    sizes = {str(n) for n in engines_run["settings"]["sizes"]}
    assert set(record["timings"]["engines"]) == sizes
    for size in sizes:
        embedded, spark = (engines_run["series"][f"{engine}/{size}"] for engine in ("embedded", "spark"))
        pair = record["timings"]["engines"][size]
        assert pair["embedded"]["engine"] == "embedded" and pair["spark"]["engine"] == "spark"
        assert pair["embedded"]["events_read"] == pair["spark"]["records_scanned"] == int(size)
        assert pair["spark"]["rounds_seconds"] == spark["seconds"]
        assert pair["spark"]["peak_tree_rss_mb"]["median"] == summary(spark["peak_tree_rss_mb"])["median"]
        assert pair["embedded"]["stages_median"]["total"] > 0
        assert record["ratios"]["engine_speedup"][size] == paired_ratio(spark["seconds"], embedded["seconds"])


def test_an_engine_run_alone_makes_a_record_of_its_own(engines_run):
    record = record_from_engines(engines_run, source="engines.json")
    assert record["format"] == 2
    assert record["series"] == ["engines"]
    assert record["commit"] == engines_run["commit"]
    assert record["versions"]["duckdb"] and record["versions"]["pyspark"]
    assert record["machine"]["load_avg_start"] == engines_run["machine_start"]["load_avg"]
    assert record["timings"]["read"] == {} and record["ratios"]["read_speedup"] == {}
    assert json.loads(json.dumps(record)) == record


def test_another_json_is_not_an_engine_run():
    with pytest.raises(HistoryError, match="not an engine run"):
        record_from_engines({"format": 1})


def test_format_1_records_load_with_every_section_and_the_old_phase_name():
    old = load(FORMAT1)
    assert [r["format"] for r in old] == [1, 1]
    for r in old:
        assert r["series"] == ["read", "pipeline", "cold"]
        assert r["timings"]["engines"] == {} and r["ratios"]["engine_speedup"] == {}
        assert "spark_init" in r["timings"]["cold"]
        assert set(cold_phases(r)) == {"engine_init", "first_read"}
        assert cold_phases(r)["engine_init"] == r["timings"]["cold"]["spark_init"]
    assert old[0]["ratios"]["read_speedup"]["1000000"] == pytest.approx(27.941)


def test_old_and_new_records_share_one_history(record, engines_run, tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_text(FORMAT1.read_text())
    append(add_engines(record, engines_run), path)
    append(record_from_engines(engines_run), path)
    records = load(path)
    assert [r["format"] for r in records] == [1, 1, 2, 2]
    out = io.StringIO()
    console = Console(file=out, width=200)
    for r in records:
        print_table(r, console)
    print_history(records, console)
    text = out.getvalue()
    speedup = records[-1]["ratios"]["engine_speedup"]["1000000"]
    assert f"{speedup:.1f}×" in text  # the engine table of the last record
    assert f"{speedup:.2f}" in text  # its column in the history table
    assert "peak RSS spark" in text
    assert "cold start: engine init" in text  # format 1's spark_init under its new name
    png = render(records, tmp_path / "ratios.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
