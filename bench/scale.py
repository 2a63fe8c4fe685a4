"""Scale: what a cold ``streamguard run`` costs per stage, in seconds and peak memory, as its work grows.

    python -m bench.scale                           # all three axes, both engines; record + chart (long: see SCALE.md)
    python -m bench.scale --axes events --engines embedded --max-minutes 20
    python -m bench.scale --seed-only               # seed (or check) the topics and stop
    python -m bench.scale --chart-only              # redraw bench/history/scale.png from the history

Three axes, one varied at a time around a centre of 4 partitions, a 100,000-event slice and 50 users
(``bench.scale_model.AXES``): partitions 4 / 64 / 1,000; slice 1k / 100k / 1M / 10M events; users 50 / 10,000 /
100,000. Every point runs as ``python -m streamguard run --topic T --max-events N --engine E`` in a fresh process
tree (Spark on ``local[*]``) under ``bench/proctree.py``, which times it to its last process's exit and samples the
tree's memory; ``bench/scale_child.py`` notes when each pipeline stage ends, so the memory timeline is split by
stage. Each run's report must show the engine asked for and exactly N events read (and fetched), else the run
fails. The engines are interleaved (each point: embedded, then Spark) and the load average is kept with every
sample, since this machine is shared.

Topics (``scale-<events>e-<partitions>p-<users>u-s42``, keyed by event so every partition holds records) are seeded
once on the benchmark broker of ``bench/topics.py`` with its data in ``$STREAMGUARD_STATE_DIR/scale-kafka`` (or
``STREAMGUARD_BENCH_KAFKA_DIR``, or ``STREAMGUARD_KAFKA_BOOTSTRAP``'s cluster) and reused. ``--max-minutes`` stops
starting new runs past a budget; what was measured is recorded and what was not is listed under ``missing``. The
raw samples are written to ``.benchmarks/scale-<UTC>.json`` after every run, so an interrupted run can still be
recorded with ``--record-from``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.scale_model import (
    AXES,
    CENTRE,
    ENGINES,
    FORMAT,
    PIPELINE_STAGES,
    STAGES,
    Point,
    TopicSpec,
    check_record,
    point_figures,
    points,
    slopes,
    stage_peaks,
    stage_windows,
    topic_for,
)
from streamguard._proc import state_dir

log = logging.getLogger("bench.scale")

REPO = Path(__file__).resolve().parent.parent
HISTORY_FILE = REPO / "bench" / "history" / "scale.jsonl"
CHART_FILE = REPO / "bench" / "history" / "scale.png"
DATA_STATE, TRUTH_STATE = "scale-kafka", "scale-truth"  # parts of the state dir (streamguard._proc.state_dir)
SPARK_MASTER = "local[*]"
SAMPLE_INTERVAL = 0.1
ROUNDS = 2
BIG_EVENTS = 10_000_000  # points reading this many events or more run once, after the first round
WARMUP = 1  # discarded runs of the cheapest point per engine before any measured one (page cache, JIT, jars)
_CHILD_TIMEOUT_S = 3600
_REPORT = "anomaly_report.json"


class ScaleRunFailed(RuntimeError):
    """A ``streamguard run`` child failed, or its report does not show the work its point stands for."""


def ensure_topic(bootstrap: str, spec: TopicSpec) -> float | None:
    """Seed ``spec`` unless the broker holds it complete; returns the seconds seeding took (None when reused)."""
    from bench.topics import TopicMismatch, _wait_gone, broker_kind  # noqa: PLC0415
    from streamguard.kafka.admin import delete_topic, partition_count, topic_exists, watermarks  # noqa: PLC0415
    from streamguard.synth.seed import seed_topic  # noqa: PLC0415

    if topic_exists(bootstrap, spec.name):
        sizes = [w.size for w in _readable(watermarks, bootstrap, spec.name, partition_count(bootstrap, spec.name))]
        if len(sizes) == spec.partitions and sum(sizes) == spec.events:
            log.info("reusing %s", spec.name)
            return None
        if broker_kind() == "external":
            raise TopicMismatch(f"{spec.name} holds {sum(sizes):,} records in {len(sizes)} partitions; delete it")
        log.warning("%s holds %s records, not %s; seeding it again", spec.name, f"{sum(sizes):,}", f"{spec.events:,}")
        delete_topic(bootstrap, spec.name)
        _wait_gone(bootstrap, spec.name)
    anomalous = max(1, min(5, spec.users // 10))
    result = seed_topic(bootstrap, spec.name, events=spec.events, partitions=spec.partitions, users=spec.users,
                        anomalous_users=anomalous, key="event_id", progress=False,
                        truth_path=state_dir(TRUTH_STATE) / f"{spec.name}.json")
    log.info("seeded %s in %.1f s (%s events/s)", spec.name, result.seconds, f"{result.events_per_s:,.0f}")
    return round(result.seconds, 2)


def _readable(watermarks: Any, bootstrap: str, topic: str, partitions: int, timeout_s: float = 120.0) -> list:
    # A broker restarted on its old data answers metadata before every partition is loaded again.
    from streamguard.errors import BrokerUnreachable  # noqa: PLC0415

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return watermarks(bootstrap, topic, partitions)
        except BrokerUnreachable:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def _child_env() -> dict[str, str]:
    from bench.engines import _child_env as engines_env  # noqa: PLC0415

    return engines_env()


def run_once(bootstrap: str, topic: str, point: Point, engine: str) -> dict[str, Any]:
    """One cold ``streamguard run`` of ``point`` on ``engine``: wall seconds, stage seconds, peak RSS (tree and per
    stage), the load average, checked against its report."""
    with tempfile.TemporaryDirectory(prefix="streamguard-bench-scale-") as tmp:
        work = Path(tmp)
        output, tree_file, stages_file, log_file = work / "out", work / "tree.json", work / "stages.jsonl", work / "log"
        command = [sys.executable, "-m", "bench.proctree", "--result", str(tree_file), "--timeline",
                   "--interval", str(SAMPLE_INTERVAL), "--timeout", str(_CHILD_TIMEOUT_S), "--",
                   sys.executable, "-m", "bench.scale_child", str(stages_file),
                   "run", "--topic", topic, "--bootstrap", bootstrap, "--max-events", str(point.events),
                   "--engine", engine, "-o", str(output)]
        if engine == "spark":
            command += ["--spark-master", SPARK_MASTER]
        load_before = _load()
        import subprocess  # noqa: PLC0415

        with log_file.open("w") as logged:
            done = subprocess.run(command, cwd=REPO, env=_child_env(), stdout=logged,  # noqa: S603
                                  stderr=subprocess.STDOUT, check=False, timeout=_CHILD_TIMEOUT_S + 120)
        tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-12:])
        if done.returncode != 0 or not tree_file.exists():
            raise ScaleRunFailed(f"{engine}/{point.key}: streamguard run exited with {done.returncode}:\n{tail}")
        tree = json.loads(tree_file.read_text())
        try:
            report = json.loads((output / _REPORT).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ScaleRunFailed(f"{engine}/{point.key}: no readable {_REPORT} ({exc}):\n{tail}") from exc
        ends = [tuple(json.loads(line)) for line in stages_file.read_text().splitlines() if line.strip()]
    run = report["run"]
    records_read = run["records_read"] if "records_read" in run else run["events_read"]  # report v2, v1
    if run["engine"] != engine:
        raise ScaleRunFailed(f"{engine}/{point.key}: the report says the {run['engine']} engine ran")
    if records_read != point.events or run["records_scanned"] != point.events:
        raise ScaleRunFailed(f"{engine}/{point.key}: read {records_read:,} events "
                             f"({run['records_scanned']:,} fetched), expected exactly {point.events:,}")
    missing = [stage for stage in PIPELINE_STAGES if stage not in {name for name, _, _ in ends}]
    if missing:
        raise ScaleRunFailed(f"{engine}/{point.key}: the child logged no end for stages {missing}")
    timeline = [(at, rss) for at, rss in tree["timeline"]]
    return {
        "engine": engine, "point": point.key, "seconds": tree["seconds"], "main_seconds": tree["main_seconds"],
        "events_read": records_read, "records_scanned": run["records_scanned"],
        "users_found": report["total_users"], "stage_seconds": run["stage_seconds"],
        "peak_tree_rss_mb": tree["peak_tree_rss_mb"], "peak_by_name": tree["peak_tree_by_name"],
        "cpu_seconds": round(sum(p["user_seconds"] + p["system_seconds"] for p in tree["processes"]), 2),
        "stage_rss_mb": stage_peaks(timeline, stage_windows(ends)),
        "load_avg": [load_before, _load()],
    }


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def schedule(axes: Mapping[str, Sequence[int]], engines: Sequence[str], rounds: int,
             warmup: int = WARMUP) -> list[tuple[Point, str, bool]]:
    """(point, engine, is warm-up) in run order: warm-up runs of the cheapest point, the first round of the points
    below BIG_EVENTS (cheapest first), each big point once (the long pole, so started early), then the remaining
    rounds; engines interleaved at every point."""
    ordered = points(axes)
    small = [p for p in ordered if p.events < BIG_EVENTS]
    big = [p for p in ordered if p.events >= BIG_EVENTS]
    runs = [(ordered[0], engine, True) for _ in range(warmup) for engine in engines]
    runs += [(point, engine, False) for point in small for engine in engines]
    runs += [(point, engine, False) for point in big for engine in engines]
    return runs + [(point, engine, False) for _ in range(rounds - 1) for point in small for engine in engines]


def measure(args: argparse.Namespace, raw_path: Path) -> dict[str, Any]:
    from bench.machine import commit_info, machine_info, versions  # noqa: PLC0415
    from bench.topics import bench_broker, broker_kind  # noqa: PLC0415

    axes = {axis: AXES[axis] if axis not in args.values else args.values[axis] for axis in args.axes}
    raw: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(), "commit": commit_info(), "machine_start": machine_info(),
        "broker": broker_kind(), "versions": versions(broker=broker_kind()),
        "settings": {"axes": axes, "centre": dataclasses.asdict(CENTRE), "engines": list(args.engines),
                     "driver_memory": os.environ.get("STREAMGUARD_SPARK_DRIVER_MEMORY") or "default (4g)",
                     "rounds": args.rounds, "big_events": BIG_EVENTS, "big_rounds": 1, "warmup_runs": args.warmup,
                     "spark_master": SPARK_MASTER, "sample_interval": SAMPLE_INTERVAL,
                     "max_minutes": args.max_minutes,
                     "command": "python -m streamguard run --topic T --max-events N --engine E -o <tmp>"},
        "topics": {}, "warmup": [], "samples": [], "failures": [], "missing": [],
    }
    began = time.monotonic()
    data_dir = Path(os.environ.get("STREAMGUARD_BENCH_KAFKA_DIR") or state_dir(DATA_STATE))
    with bench_broker(data_dir) as broker:
        specs = {point: topic_for(point, axes) for point in points(axes)}
        for spec in sorted(set(specs.values()), key=lambda s: s.events):
            seeded = ensure_topic(broker.bootstrap, spec)
            raw["topics"][spec.name] = {**dataclasses.asdict(spec), "seeded_seconds": seeded}
        if args.seed_only:
            return raw
        for point, engine, warmup in schedule(axes, args.engines, args.rounds, args.warmup):
            if args.max_minutes and time.monotonic() - began > args.max_minutes * 60:
                raw["missing"].append({"engine": engine, "point": point.key, "why": "past --max-minutes"})
                continue
            try:
                sample = run_once(broker.bootstrap, specs[point].name, point, engine)
            except ScaleRunFailed as exc:
                log.error("%s", exc)
                raw["failures"].append({"engine": engine, "point": point.key, "error": str(exc)[-2000:]})
            else:
                raw["warmup" if warmup else "samples"].append(sample)
                _show(sample, warmup)
            raw_path.write_text(json.dumps(raw, indent=1) + "\n")
    raw["machine_end"] = machine_info()
    raw_path.write_text(json.dumps(raw, indent=1) + "\n")
    return raw


def _show(sample: Mapping[str, Any], warmup: bool) -> None:
    stages = " ".join(f"{name} {sample['stage_seconds'][name]:.2f}" for name in STAGES)
    load = sample["load_avg"][0][0] if sample["load_avg"][0] else "?"
    print(f"  {'warm-up ' if warmup else ''}{sample['engine']:<8} {sample['point']:<22} {sample['seconds']:8.2f} s  "
          f"peak tree {sample['peak_tree_rss_mb']:,.0f} MB  load {load}  [{stages}]", flush=True)


def record_from_raw(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The history record (format 1, bench/SCALE.md) of a raw run."""
    axes = {axis: tuple(values) for axis, values in raw["settings"]["axes"].items()}
    by_case: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for sample in raw["samples"]:
        by_case.setdefault((sample["engine"], sample["point"]), []).append(sample)
    results: dict[str, dict[str, Any]] = {}
    for (engine, key), samples in sorted(by_case.items()):
        results.setdefault(engine, {})[key] = point_figures(samples)
    machine = {key: raw["machine_start"][key] for key in ("cpu_count", "cpu_model", "memory_gb", "platform")}
    machine["load_avg_start"] = raw["machine_start"]["load_avg"]
    machine["load_avg_end"] = (raw.get("machine_end") or {}).get("load_avg")
    record = {
        "format": FORMAT, "date": raw["date"], "commit": raw["commit"], "machine": machine,
        "versions": raw["versions"], "broker": raw["broker"], "settings": raw["settings"], "topics": raw["topics"],
        "results": results, "slopes": slopes(results, axes),
        "missing": list(raw["missing"]) + [{k: f[k] for k in ("engine", "point", "error")} for f in raw["failures"]],
    }
    check_record(record)
    return record


def print_table(record: Mapping[str, Any]) -> None:
    """Per engine and point: median seconds per stage, wall seconds, peak tree RSS, load average at the start."""
    head = " ".join(f"{name[:9]:>9}" for name in STAGES)
    for engine, by_point in record["results"].items():
        print(f"{engine}: {'point':<20} {head} {'wall':>8} {'peak MB':>8} {'load':>5}")
        for key, figures in sorted(by_point.items(), key=lambda item: Point(*_coordinates(item[0]))):
            stages = " ".join(f"{figures['stage_seconds'][name]:9.2f}" for name in STAGES)
            load = figures["load_avg"][0][0][0] if figures["load_avg"] and figures["load_avg"][0][0] else "?"
            print(f"{'':<{len(engine) + 2}}{key:<20} {stages} {figures['wall_seconds']:8.1f} "
                  f"{figures['peak_tree_rss_mb']:8,.0f} {load:>5}")


def _coordinates(key: str) -> tuple[int, int, int]:
    partitions, events, users = (int(part[1:]) for part in key.split("-"))
    return partitions, events, users


def print_slopes(record: Mapping[str, Any]) -> None:
    from bench.scale_model import growth_word  # noqa: PLC0415

    for engine, by_axis in record["slopes"].items():
        for axis, fitted in by_axis.items():
            seconds = ", ".join(f"{stage} {slope:+.2f}" for stage, slope in fitted["seconds"].items()
                                if slope is not None)
            peak = fitted["rss"].get("peak")
            print(f"{engine:<8} {axis:<10} seconds: {seconds or '-'}; peak RSS {peak if peak is not None else '-'}"
                  f" ({growth_word(fitted['seconds'].get('total'))} total)")


def slopes_markdown(record: Mapping[str, Any]) -> str:
    """The record's slopes as a markdown table: a row per engine and axis, a column per stage and for peak RSS."""
    lines = ["| engine | axis | fit | " + " | ".join(STAGES) + " | peak RSS |",
             "|---|---|---|" + "---:|" * (len(STAGES) + 1)]
    for engine, by_axis in record["slopes"].items():
        for axis, fitted in by_axis.items():
            for fit, key in (("all points", "seconds"), ("two largest", "seconds_top")):
                cells = [fitted[key].get(stage) for stage in STAGES]
                cells.append(fitted["rss"].get("peak") if key == "seconds" else None)
                text = " | ".join("–" if c is None else f"{c:+.2f}" for c in cells)
                lines.append(f"| {engine} | {axis} | {fit} | {text} |")
    return "\n".join(lines)


def load_history(path: Path = HISTORY_FILE) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for record in records:
        check_record(record)
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--axes", nargs="+", default=list(AXES), choices=list(AXES))
    parser.add_argument("--partitions", help="partition counts, comma-separated (default 4,64,1000)")
    parser.add_argument("--events", help="slices, comma-separated (default 1000,100000,1000000,10000000)")
    parser.add_argument("--users", help="user counts, comma-separated (default 50,10000,100000)")
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES))
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"measured rounds per point below "
                        f"{BIG_EVENTS:,} events (default %(default)s; bigger points run once)")
    parser.add_argument("--warmup", type=int, default=WARMUP, help="discarded runs per engine (default %(default)s)")
    parser.add_argument("--max-minutes", type=float, help="start no run after this many minutes")
    parser.add_argument("--seed-only", action="store_true", help="seed or check the topics, then stop")
    parser.add_argument("--record-from", type=Path, help="record a raw JSON of an earlier (interrupted) run")
    parser.add_argument("--chart-only", action="store_true", help="redraw the chart from the history")
    parser.add_argument("--markdown", action="store_true", help="also print the slopes as a markdown table")
    parser.add_argument("--no-history", action="store_true", help="do not append a record or redraw the chart")
    parser.add_argument("--history", type=Path, default=HISTORY_FILE)
    parser.add_argument("--chart", type=Path, default=CHART_FILE)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("bench").setLevel(logging.INFO)
    try:
        args.values = {axis: [int(v.replace("_", "")) for v in text.split(",")]
                       for axis in AXES if (text := getattr(args, axis)) is not None}
    except ValueError:
        parser.error("axis values are integers, comma-separated")
    if args.chart_only:
        return _redraw(args.history, args.chart)
    if args.record_from is not None:
        raw = json.loads(args.record_from.read_text())
    else:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        raw_path = REPO / ".benchmarks" / f"scale-{stamp}.json"
        raw_path.parent.mkdir(parents=True, exist_ok=True)
        from bench.topics import BenchSetupError  # noqa: PLC0415
        from streamguard.errors import StreamguardError  # noqa: PLC0415

        try:
            raw = measure(args, raw_path)
        except (BenchSetupError, StreamguardError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 3
        print(f"raw samples: {raw_path}")
        if args.seed_only:
            return 0
    record = record_from_raw(raw)
    print_table(record)
    print_slopes(record)
    if args.markdown:
        print(slopes_markdown(record))
    if record["missing"]:
        print(f"not measured: {', '.join(m['engine'] + '/' + m['point'] for m in record['missing'])}")
    if not args.no_history:
        args.history.parent.mkdir(parents=True, exist_ok=True)
        with args.history.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        _redraw(args.history, args.chart)
    return 1 if not record["results"] else 0


def _redraw(history: Path, chart: Path) -> int:
    from bench.chart import render_scale  # noqa: PLC0415 - matplotlib only when drawing

    records = load_history(history)
    if not records:
        print(f"no scale records in {history}", file=sys.stderr)
        return 1
    render_scale(records, chart)
    print(f"history: {history} ({len(records)} runs); chart: {chart}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
