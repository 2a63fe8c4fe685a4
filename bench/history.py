"""The benchmark history: one JSON record per run, appended to ``bench/history/history.jsonl``.

    >>> record = record_from_benchmark_json(json.loads(Path("run.json").read_text()), source="run.json")
    >>> add_engines(record, engines_run, source="engines.json")   # make bench: the engine series too
    >>> append(record)                      # one line, format 2 (documented in bench/README.md)
    >>> print_table(record)                 # the run's figures as a rich table

A record of ``pytest bench`` is built from pytest-benchmark's JSON alone (its ``commit_info``, and per benchmark the
``extra_info`` the bench tests store: every round's seconds, events read and records fetched, plus the run's
settings, topics, machine and versions under ``streamguard_bench``), so a saved JSON can be turned into a record
again later. The engine series (``bench/engines.py``) is built from that module's raw JSON the same way
(``record_from_engines`` alone, ``add_engines`` into a ``make bench`` record).

Format 2 adds ``series`` (what the run measured), the ``engines`` timings and ``engine_speedup`` ratios, and may
leave out a series the run did not measure. Format 1 records (before the engine seam) still load: :func:`load`
fills in their missing sections, and their cold-start phase and pipeline stage are ``spark_init`` where format 2
says ``engine_init`` (:func:`cold_phases` reads either).

``python -m bench.history`` prints the ratios of every recorded run; ``--chart`` re-renders the chart.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bench.figures import paired_ratio, summary

FORMAT = 2
READABLE_FORMATS = (1, 2)
BENCH_JSON_FORMAT = 1  # of the ``streamguard_bench`` block bench/conftest.py puts into pytest-benchmark's JSON
ENGINES_JSON_FORMAT = 1  # of bench/engines.py's raw JSON
SECTIONS = ("read", "pipeline", "cold", "engines")
RATIOS = ("read_speedup", "pipeline_speedup", "read_flatness", "pipeline_flatness", "engine_speedup")
HISTORY_DIR = Path(__file__).resolve().parent / "history"
HISTORY_FILE = HISTORY_DIR / "history.jsonl"
CHART_FILE = HISTORY_DIR / "ratios.png"
LABELS = ("bounded", "full-scan")


class HistoryError(ValueError):
    """A benchmark JSON or history line that does not have the documented shape."""


def _one(values: Iterable[Any]) -> Any:
    """The one value all rounds share, or the sorted distinct values when they differ."""
    distinct = sorted(set(values))
    return distinct[0] if len(distinct) == 1 else distinct


def _series(benchmarks: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(stage, label-or-phase, size-or-"") -> extra_info, for every bench test in the JSON."""
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    for bench in benchmarks:
        info = bench.get("extra_info") or {}
        stage = info.get("stage")
        if stage in ("read", "pipeline"):
            found[(stage, info["strategy"], str(info["events"]))] = info
        elif stage == "cold":
            found[("cold", info["phase"], "")] = info
    return found


def _timing(info: Mapping[str, Any]) -> dict[str, Any]:
    timing: dict[str, Any] = {**summary(info["seconds"]), "events_read": _one(info["events_read"]),
                              "records_scanned": _one(info["records_scanned"])}
    stages = [s for s in info.get("stage_seconds") or [] if s]
    if info.get("stage") == "pipeline" and stages:
        timing["stages_median"] = {name: summary([s[name] for s in stages])["median"] for name in stages[0]}
    return timing


def record_from_benchmark_json(data: Mapping[str, Any], *, source: str | None = None) -> dict[str, Any]:
    """The history record (format 2) of one pytest-benchmark JSON written by ``pytest bench``."""
    run = data.get("streamguard_bench")
    if not isinstance(run, dict) or run.get("format") != BENCH_JSON_FORMAT:
        raise HistoryError(f"not a bench run: the JSON lacks streamguard_bench (format {BENCH_JSON_FORMAT})")
    series = _series(data.get("benchmarks") or [])
    if not series:
        raise HistoryError("the JSON holds no bench results (did every test fail?)")
    sizes = sorted({int(size) for (stage, _, size) in series if stage != "cold"})
    commit = data.get("commit_info") or {}
    timings: dict[str, Any] = {section: {} for section in SECTIONS}
    ratios: dict[str, Any] = {kind: {} for kind in RATIOS}
    for (stage, label, size), info in sorted(series.items()):
        if stage == "cold":
            timings["cold"][label] = _timing(info)
        else:
            timings[stage].setdefault(size, {})[label] = _timing(info)
    for stage in ("read", "pipeline"):
        for size in map(str, sizes):
            pair = [series.get((stage, label, size)) for label in LABELS]
            if all(pair):
                ratios[f"{stage}_speedup"][size] = paired_ratio(pair[1]["seconds"], pair[0]["seconds"])
        base = series.get((stage, "bounded", str(sizes[0]))) if sizes else None
        for size in map(str, sizes[1:]):
            bounded = series.get((stage, "bounded", size))
            if base and bounded:
                ratios[f"{stage}_flatness"][size] = paired_ratio(bounded["seconds"], base["seconds"])
    return {
        "format": FORMAT,
        "series": [stage for stage in SECTIONS if timings[stage]],
        "date": data.get("datetime"),
        "commit": {"id": commit.get("id"), "branch": commit.get("branch"), "dirty": commit.get("dirty")},
        "machine": {**{k: v for k, v in run.get("machine_start", {}).items() if k != "load_avg"},
                    "load_avg_start": run.get("machine_start", {}).get("load_avg"),
                    "load_avg_end": (run.get("machine_end") or {}).get("load_avg")},
        "versions": run.get("versions", {}),
        "broker": run.get("broker"),
        "settings": run.get("settings", {}),
        "topics": run.get("topics", []),
        "timings": timings,
        "ratios": ratios,
        "flatness_base": sizes[0] if sizes else None,
        "benchmark_json": source,
        "engines_json": None,
    }


def _engine_timing(series: Mapping[str, Any]) -> dict[str, Any]:
    samples = list(zip(series["seconds"], series["main_seconds"], strict=True))
    stages = [s for s in series.get("stage_seconds") or [] if s]
    return {
        **summary(series["seconds"]), "rounds_seconds": list(series["seconds"]),
        "main_seconds_median": summary([main for _, main in samples])["median"],
        "events_read": _one(series["events_read"]), "records_scanned": _one(series["records_scanned"]),
        "engine": _one(series["engines_reported"]),
        "peak_tree_rss_mb": summary(series["peak_tree_rss_mb"]),
        "peak_process_rss_mb": summary(series["peak_process_rss_mb"]),
        "stages_median": {name: summary([s[name] for s in stages])["median"] for name in stages[0]} if stages else {},
    }


def _engine_section(run: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, float]]:
    if not isinstance(run, Mapping) or run.get("format") != ENGINES_JSON_FORMAT or "series" not in run:
        raise HistoryError(f"not an engine run: expected bench/engines.py's JSON (format {ENGINES_JSON_FORMAT})")
    timings: dict[str, dict[str, Any]] = {}
    for series in run["series"].values():
        timings.setdefault(str(series["max_events"]), {})[series["engine"]] = _engine_timing(series)
    speedup = {}
    for size in timings:
        pair = [run["series"].get(f"{engine}/{size}") for engine in ("spark", "embedded")]
        if all(pair):
            speedup[size] = paired_ratio(pair[0]["seconds"], pair[1]["seconds"])
    order = lambda item: int(item[0])  # noqa: E731
    return dict(sorted(timings.items(), key=order)), dict(sorted(speedup.items(), key=order))


def add_engines(record: dict[str, Any], run: Mapping[str, Any], *, source: str | None = None) -> dict[str, Any]:
    """Put the engine series of ``run`` (bench/engines.py's JSON) into ``record``; returns ``record``."""
    timings, speedup = _engine_section(run)
    record["timings"]["engines"] = timings
    record["ratios"]["engine_speedup"] = speedup
    record["settings"]["engines"] = run.get("settings", {})
    if run.get("topic") and all(t.get("topic") != run["topic"]["topic"] for t in record["topics"]):
        record["topics"].append(run["topic"])
    record["series"] = [stage for stage in SECTIONS if record["timings"].get(stage)]
    record["engines_json"] = source
    return record


def record_from_engines(run: Mapping[str, Any], *, source: str | None = None) -> dict[str, Any]:
    """The history record (format 2) of an engine series run alone (``python -m bench.engines``)."""
    from bench.machine import commit_info, versions  # noqa: PLC0415

    if not isinstance(run, Mapping) or run.get("format") != ENGINES_JSON_FORMAT:
        raise HistoryError(f"not an engine run: expected bench/engines.py's JSON (format {ENGINES_JSON_FORMAT})")
    start, end = run.get("machine_start") or {}, run.get("machine_end") or {}
    record = {
        "format": FORMAT,
        "series": [],
        "date": run.get("date"),
        "commit": dict(run.get("commit") or commit_info()),
        "machine": {**{k: v for k, v in start.items() if k != "load_avg"}, "load_avg_start": start.get("load_avg"),
                    "load_avg_end": end.get("load_avg")},
        "versions": run.get("versions") or versions(broker=run.get("broker", "local")),
        "broker": run.get("broker"),
        "settings": {},
        "topics": [],
        "timings": {section: {} for section in SECTIONS},
        "ratios": {kind: {} for kind in RATIOS},
        "flatness_base": None,
        "benchmark_json": None,
    }
    return add_engines(record, run, source=source)


def upgrade(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with every section a format 2 reader expects (a format 1 record has no engines); same format."""
    timings = record.setdefault("timings", {})
    ratios = record.setdefault("ratios", {})
    for section in SECTIONS:
        timings.setdefault(section, {})
    for kind in RATIOS:
        ratios.setdefault(kind, {})
    record.setdefault("series", [stage for stage in SECTIONS if timings[stage]])
    record.setdefault("settings", {})
    record.setdefault("engines_json", None)
    return record


def cold_phases(record: Mapping[str, Any]) -> dict[str, Any]:
    """The cold-start timings under format 2 names: ``engine_init`` (``spark_init`` in format 1) and ``first_read``."""
    cold = dict(record["timings"].get("cold") or {})
    if "spark_init" in cold and "engine_init" not in cold:
        cold["engine_init"] = cold.pop("spark_init")
    return cold


def append(record: Mapping[str, Any], path: Path = HISTORY_FILE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        out.write(json.dumps(record, sort_keys=True) + "\n")


def load(path: Path = HISTORY_FILE) -> list[dict[str, Any]]:
    """Every record, oldest first, upgraded (see :func:`upgrade`); raises HistoryError on a line of an unknown
    format or that is not JSON."""
    if not path.exists():
        return []
    records = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise HistoryError(f"{path}:{number}: not JSON ({exc.msg})") from exc
        if not isinstance(record, dict) or record.get("format") not in READABLE_FORMATS:
            raise HistoryError(f"{path}:{number}: not a format {' or '.join(map(str, READABLE_FORMATS))} record")
        records.append(upgrade(record))
    return records


def _span(timing: Mapping[str, Any] | None) -> str:
    if not timing:
        return "-"
    return f"{timing['median']:.3f} s ({timing['min']:.3f}–{timing['max']:.3f})"


def _fetched(timing: Mapping[str, Any] | None) -> str:
    return "-" if not timing else f"{timing['records_scanned']:,}"


def _memory(timing: Mapping[str, Any] | None) -> str:
    if not timing:
        return "-"
    return f"{timing['peak_tree_rss_mb']['median']:,.0f} ({timing['peak_process_rss_mb']['median']:,.0f})"


def print_table(record: Mapping[str, Any], console: Any = None) -> None:
    """The run's timings and ratios as rich tables (only the series the run measured)."""
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    record = upgrade(json.loads(json.dumps(record)))
    console = console or Console(width=max(Console().width, 120))
    machine, commit, settings = record["machine"], record["commit"], record["settings"]
    title = (f"bench {str(record['date'])[:19]}Z  commit {str(commit['id'])[:10]}"
             f"{' (dirty)' if commit['dirty'] else ''}  {machine['cpu_count']} CPUs, {machine['memory_gb']} GiB  "
             f"load {machine['load_avg_start']}")
    timings, ratios = record["timings"], record["ratios"]
    if timings["read"] or timings["pipeline"]:
        table = Table(title=title, caption=f"{settings.get('max_events', 1000):,} events per run; median (min–max) "
                      f"of {settings.get('rounds')} read / {settings.get('pipeline_rounds')} pipeline rounds, "
                      f"interleaved")
        for column in ("stage", "topic events", "bounded", "full scan", "speedup", "fetched bounded / full"):
            table.add_column(column, justify="left" if column in ("stage",) else "right")
        for stage in ("read", "pipeline"):
            for size, pair in sorted(timings[stage].items(), key=lambda item: int(item[0])):
                speedup = ratios[f"{stage}_speedup"].get(size)
                table.add_row(stage, f"{int(size):,}", _span(pair.get("bounded")), _span(pair.get("full-scan")),
                              f"{speedup:.1f}×" if speedup else "-",
                              f"{_fetched(pair.get('bounded'))} / {_fetched(pair.get('full-scan'))}")
        console.print(table)
        title = None
    if timings["engines"]:
        engines = settings.get("engines") or {}
        table = Table(title=title, caption=f"cold `streamguard run` processes, Spark on "
                      f"{engines.get('spark_master', 'local[*]')}; seconds from spawn to the last process's exit, "
                      f"median (min–max), interleaved; speedup: spark / embedded of paired rounds; peak RSS: sampled "
                      f"sum over the process tree (largest single process), MB")
        for column in ("events", "embedded", "spark", "speedup", "peak RSS embedded", "peak RSS spark"):
            table.add_column(column, justify="right")
        for size, pair in timings["engines"].items():
            speedup = ratios["engine_speedup"].get(size)
            table.add_row(f"{int(size):,}", _span(pair.get("embedded")), _span(pair.get("spark")),
                          f"{speedup:.1f}×" if speedup else "-", _memory(pair.get("embedded")),
                          _memory(pair.get("spark")))
        console.print(table)
    extra = Table(show_header=True)
    extra.add_column("figure")
    extra.add_column("value", justify="right")
    base = record.get("flatness_base")
    for stage in ("read", "pipeline"):
        for size, ratio in ratios[f"{stage}_flatness"].items():
            extra.add_row(f"flatness, {stage} bounded: t({int(size):,}) / t({base:,})", f"{ratio:.2f}")
    for phase, timing in cold_phases(record).items():
        extra.add_row(f"cold start: {phase.replace('_', ' ')}", _span(timing))
    if extra.row_count:
        console.print(extra)


def print_history(records: list[Mapping[str, Any]], console: Any = None) -> None:
    """One row per recorded run: date, commit and every ratio."""
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    keys = sorted({(kind, size) for r in records for kind, by_size in r["ratios"].items() for size in by_size},
                  key=lambda k: (k[0], int(k[1])))
    table = Table(title=f"bench history ({len(records)} runs)")
    table.add_column("date (UTC)")
    table.add_column("commit")
    for kind, size in keys:
        table.add_column(f"{kind.replace('_', ' ')} {int(size):,}", justify="right")
    for r in records:
        table.add_row(str(r["date"])[:16], str(r["commit"]["id"])[:8],
                      *[f"{r['ratios'][k][s]:.2f}" if s in r["ratios"].get(k, {}) else "-" for k, s in keys])
    (console or Console(width=max(Console().width, 120))).print(table)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.history", description="Print the benchmark history.")
    parser.add_argument("--file", type=Path, default=HISTORY_FILE)
    parser.add_argument("--last", action="store_true", help="the last run's full table instead")
    parser.add_argument("--chart", type=Path, nargs="?", const=CHART_FILE, help=f"re-render the chart ({CHART_FILE})")
    args = parser.parse_args(argv)
    records = load(args.file)
    if not records:
        raise SystemExit(f"no records in {args.file}")
    if args.last:
        print_table(records[-1])
    else:
        print_history(records)
    if args.chart:
        from bench.chart import render  # noqa: PLC0415

        print(f"chart: {render(records, args.chart)}")


if __name__ == "__main__":
    main()
