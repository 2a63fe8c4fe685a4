"""The benchmark history: one JSON record per ``make bench`` run, appended to ``bench/history/history.jsonl``.

    >>> record = record_from_benchmark_json(json.loads(Path("run.json").read_text()), source="run.json")
    >>> append(record)                      # one line, format 1 (documented in bench/README.md)
    >>> print_table(record)                 # the run's figures as a rich table

A record is built from pytest-benchmark's JSON alone (its ``commit_info``, and per benchmark the ``extra_info``
the bench tests store: every round's seconds, events read and records fetched, plus the run's settings, topics,
machine and versions under ``streamguard_bench``), so a saved JSON can be turned into a record again later.

``python -m bench.history`` prints the ratios of every recorded run; ``--chart`` re-renders the chart.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bench.figures import paired_ratio, summary

FORMAT = 1
HISTORY_DIR = Path(__file__).resolve().parent / "history"
HISTORY_FILE = HISTORY_DIR / "history.jsonl"
CHART_FILE = HISTORY_DIR / "ratios.png"
LABELS = ("bounded", "full-scan")


class HistoryError(ValueError):
    """A benchmark JSON or history line that does not have the documented shape."""


def _one(values: Iterable[int]) -> int | list[int]:
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
    """The history record (format 1) of one pytest-benchmark JSON written by ``pytest bench``."""
    run = data.get("streamguard_bench")
    if not isinstance(run, dict) or run.get("format") != FORMAT:
        raise HistoryError("not a bench run: the JSON lacks streamguard_bench (format 1)")
    series = _series(data.get("benchmarks") or [])
    if not series:
        raise HistoryError("the JSON holds no bench results (did every test fail?)")
    sizes = sorted({int(size) for (stage, _, size) in series if stage != "cold"})
    commit = data.get("commit_info") or {}
    timings: dict[str, Any] = {"read": {}, "pipeline": {}, "cold": {}}
    ratios: dict[str, Any] = {"read_speedup": {}, "pipeline_speedup": {}, "read_flatness": {},
                              "pipeline_flatness": {}}
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
    }


def append(record: Mapping[str, Any], path: Path = HISTORY_FILE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        out.write(json.dumps(record, sort_keys=True) + "\n")


def load(path: Path = HISTORY_FILE) -> list[dict[str, Any]]:
    """Every record, oldest first; raises HistoryError on a line of another format or that is not JSON."""
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
        if not isinstance(record, dict) or record.get("format") != FORMAT:
            raise HistoryError(f"{path}:{number}: not a format {FORMAT} record")
        records.append(record)
    return records


def _span(timing: Mapping[str, Any] | None) -> str:
    if not timing:
        return "-"
    return f"{timing['median']:.3f} s ({timing['min']:.3f}–{timing['max']:.3f})"


def _fetched(timing: Mapping[str, Any] | None) -> str:
    return "-" if not timing else f"{timing['records_scanned']:,}"


def print_table(record: Mapping[str, Any], console: Any = None) -> None:
    """The run's timings and ratios as rich tables."""
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    console = console or Console(width=max(Console().width, 120))
    machine, commit, settings = record["machine"], record["commit"], record["settings"]
    title = (f"bench {record['date'][:19]}Z  commit {str(commit['id'])[:10]}{' (dirty)' if commit['dirty'] else ''}"
             f"  {machine['cpu_count']} CPUs, {machine['memory_gb']} GiB  load {machine['load_avg_start']}")
    table = Table(title=title, caption=f"{settings.get('max_events', 1000):,} events per run; median (min–max) of "
                  f"{settings.get('rounds')} read / {settings.get('pipeline_rounds')} pipeline rounds, interleaved")
    for column in ("stage", "topic events", "bounded", "full scan", "speedup", "fetched bounded / full"):
        table.add_column(column, justify="left" if column in ("stage",) else "right")
    for stage in ("read", "pipeline"):
        for size, pair in sorted(record["timings"][stage].items(), key=lambda item: int(item[0])):
            speedup = record["ratios"][f"{stage}_speedup"].get(size)
            table.add_row(stage, f"{int(size):,}", _span(pair.get("bounded")), _span(pair.get("full-scan")),
                          f"{speedup:.1f}×" if speedup else "-",
                          f"{_fetched(pair.get('bounded'))} / {_fetched(pair.get('full-scan'))}")
    console.print(table)
    extra = Table(show_header=True)
    extra.add_column("figure")
    extra.add_column("value", justify="right")
    base = record.get("flatness_base")
    for stage in ("read", "pipeline"):
        for size, ratio in record["ratios"][f"{stage}_flatness"].items():
            extra.add_row(f"flatness, {stage} bounded: t({int(size):,}) / t({base:,})", f"{ratio:.2f}")
    for phase, timing in record["timings"]["cold"].items():
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
                      *[f"{r['ratios'][k].get(s, float('nan')):.2f}" for k, s in keys])
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
