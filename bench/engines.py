"""The engines, cold, whole process: ``python -m streamguard run --engine embedded`` against ``--engine spark``.

    python -m bench.engines                          # 1k, 100k and 1M events of bench-1000000-s42; history + chart
    python -m bench.engines --sizes 1000 --rounds 5  # one size, more rounds
    python -m bench.engines --no-history             # measure and print only

What a user pays for one run: every sample is a fresh ``python -m streamguard run --topic T --max-events N
--engine E -o <tmp>`` (Spark on ``local[*]``), timed from spawn until its last process has exited (the Spark JVM
and its Python workers included) by ``bench/proctree.py``, which also records the peak memory of the process tree.
Rounds are interleaved (for each size: embedded, then spark), so both engines of a ratio ran seconds apart; a
discarded warm-up round comes first. Every sample's ``anomaly_report.json`` must say ``run.engine`` is the engine
asked for and ``run.events_read == N`` (and ``records_scanned == N``), else the run fails: a fast wrong answer is
not a figure.

In code (the gate uses this on its own topic):

    >>> series = measure(bootstrap, topic, [EngineCase("embedded", 1000, 3), EngineCase("spark", 1000, 3)], warmup=1)
    >>> paired_ratio(series["spark/1000"].seconds, series["embedded/1000"].seconds)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.figures import paired_ratio, summary
from bench.topics import BenchTopic

log = logging.getLogger(__name__)

FORMAT = 1  # of the raw JSON this module writes (--json); the history record is described in bench/README.md
ENGINES = ("embedded", "spark")
SPARK_MASTER = "local[*]"
TOPIC_EVENTS = 1_000_000
SIZES = (1_000, 100_000, 1_000_000)
ROUNDS, BIG_ROUNDS, BIG_SIZE, WARMUP = 3, 2, 1_000_000, 1
# (least embedded/Spark speedup, most embedded median seconds) per size; reported, not enforced (the gate is).
TARGETS: dict[int, tuple[float, float | None]] = {1_000: (7.0, 3.0), 100_000: (5.0, 6.0), 1_000_000: (1.0, None)}
SAMPLE_INTERVAL = 0.1
_CHILD_TIMEOUT_S = 1800
_REPO = Path(__file__).resolve().parent.parent
_REPORT = "anomaly_report.json"


class EngineRunFailed(RuntimeError):
    """A ``streamguard run`` child failed (non-zero exit, killed, or no report)."""


class EngineCheckFailed(RuntimeError):
    """A run's report does not show the work its case stands for (wrong engine or event count)."""


@dataclass(frozen=True, slots=True)
class EngineCase:
    """One engine reading ``max_events`` events, measured ``rounds`` times.

    ``forced`` runs another engine on this side (the gate's ``--force-engine`` check that it can fail).
    """

    engine: str
    max_events: int
    rounds: int = ROUNDS
    forced: str | None = None

    @property
    def run_engine(self) -> str:
        return self.forced or self.engine

    @property
    def key(self) -> str:
        return f"{self.engine}/{self.max_events}"


@dataclass(frozen=True, slots=True)
class EngineSample:
    seconds: float  # spawn to the exit of the last process of the tree
    main_seconds: float  # spawn to the exit of the streamguard process itself
    events_read: int
    records_scanned: int
    engine: str  # as the report says
    peak_tree_rss_mb: float  # sampled sum over the process tree
    peak_process_rss_mb: float  # the largest single process's peak (wait4 ru_maxrss)
    peak_by_name: dict[str, float] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    seq: int = -1


@dataclass(slots=True)
class EngineSeries:
    case: EngineCase
    samples: list[EngineSample] = field(default_factory=list)
    warmup: list[EngineSample] = field(default_factory=list)

    @property
    def seconds(self) -> list[float]:
        return [s.seconds for s in self.samples]

    def to_dict(self) -> dict[str, Any]:
        """Every round's figures, column by column (the ``--json`` and gate-measurement shape)."""
        columns = {name: [getattr(s, name) for s in self.samples]
                   for name in (f.name for f in dataclasses.fields(EngineSample))}
        reported = columns.pop("engine")
        return {"engine": self.case.engine, "run_engine": self.case.run_engine, "max_events": self.case.max_events,
                **columns, "engines_reported": reported, "warmup_seconds": [s.seconds for s in self.warmup]}


def cases_for(
    sizes: Iterable[int], *, rounds: int = ROUNDS, big_rounds: int = BIG_ROUNDS, forced: str | None = None
) -> list[EngineCase]:
    """Embedded then spark for each size, smallest first; sizes from BIG_SIZE up get ``big_rounds``."""
    return [EngineCase(engine, size, big_rounds if size >= BIG_SIZE else rounds, forced)
            for size in sorted(set(sizes)) for engine in ENGINES]


def _child_env() -> dict[str, str]:
    """This environment without run settings (STREAMGUARD_TOPIC, STREAMGUARD_ENGINE, ...) that would change the run."""
    from streamguard.config import env_names  # noqa: PLC0415

    settings = set(env_names().values())
    return {key: value for key, value in os.environ.items() if key not in settings}


def cli_command(bootstrap: str, topic: str, case: EngineCase, output: Path) -> list[str]:
    command = [sys.executable, "-m", "streamguard", "run", "--topic", topic, "--bootstrap", bootstrap,
               "--max-events", str(case.max_events), "--engine", case.run_engine, "-o", str(output)]
    return command + (["--spark-master", SPARK_MASTER] if case.run_engine == "spark" else [])


def run_once(bootstrap: str, topic: BenchTopic, case: EngineCase) -> EngineSample:
    """One cold ``streamguard run`` of ``case`` in a fresh process tree, checked against its report."""
    with tempfile.TemporaryDirectory(prefix="streamguard-bench-engines-") as tmp:
        work = Path(tmp)
        output, result_file, log_file = work / "out", work / "tree.json", work / "run.log"
        wrapper = [sys.executable, "-m", "bench.proctree", "--result", str(result_file),
                   "--interval", str(SAMPLE_INTERVAL), "--timeout", str(_CHILD_TIMEOUT_S), "--"]
        with log_file.open("w") as logged:
            done = subprocess.run(wrapper + cli_command(bootstrap, topic.name, case, output), cwd=_REPO,  # noqa: S603
                                  env=_child_env(), stdout=logged, stderr=subprocess.STDOUT, check=False,
                                  timeout=_CHILD_TIMEOUT_S + 60)
        tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-12:])
        if done.returncode != 0 or not result_file.exists():
            raise EngineRunFailed(f"{case.key}: streamguard run exited with {done.returncode}:\n{tail}")
        tree = json.loads(result_file.read_text())
        try:
            run = json.loads((output / _REPORT).read_text())["run"]
        except (OSError, KeyError, json.JSONDecodeError) as exc:
            raise EngineRunFailed(f"{case.key}: no readable {_REPORT} ({exc}):\n{tail}") from exc
    return EngineSample(
        seconds=tree["seconds"], main_seconds=tree["main_seconds"], events_read=run["records_read"],
        records_scanned=run["records_scanned"], engine=run["engine"], peak_tree_rss_mb=tree["peak_tree_rss_mb"],
        peak_process_rss_mb=max((p["maxrss_mb"] for p in tree["processes"]), default=0.0),
        peak_by_name=tree["peak_tree_by_name"], stage_seconds=run["stage_seconds"],
    )


def check(case: EngineCase, sample: EngineSample) -> None:
    """Raise EngineCheckFailed unless the report shows ``case``'s engine reading exactly ``case.max_events``."""
    if sample.engine != case.run_engine:
        raise EngineCheckFailed(f"{case.key}: the report says the {sample.engine} engine ran, not {case.run_engine}")
    if sample.events_read != case.max_events or sample.records_scanned != case.max_events:
        raise EngineCheckFailed(f"{case.key}: read {sample.events_read:,} events ({sample.records_scanned:,} "
                                f"fetched), expected exactly {case.max_events:,}")


def measure(
    bootstrap: str, topic: BenchTopic, cases: list[EngineCase], *, warmup: int = WARMUP,
    run: Callable[[EngineCase], EngineSample] | None = None,
    on_sample: Callable[[EngineCase, EngineSample, bool], None] | None = None,
) -> dict[str, EngineSeries]:
    """``warmup`` discarded rounds, then measured ones; each round runs every case that still needs rounds."""
    if warmup < 0 or any(case.rounds < 1 for case in cases):
        raise ValueError("need warmup >= 0 and at least one round per case")
    run = run or (lambda case: run_once(bootstrap, topic, case))
    series = {case.key: EngineSeries(case) for case in cases}
    seq = 0
    for index in range(warmup + max(case.rounds for case in cases)):
        is_warmup = index < warmup
        for case in cases:
            if not is_warmup and index - warmup >= case.rounds:
                continue
            sample = dataclasses.replace(run(case), seq=seq)
            check(case, sample)
            seq += 1
            (series[case.key].warmup if is_warmup else series[case.key].samples).append(sample)
            if on_sample is not None:
                on_sample(case, sample, is_warmup)
    return series


def show_sample(case: EngineCase, sample: EngineSample, warmup: bool) -> None:
    print(f"  {case.max_events:>9,}  {case.engine:<8}  {'warm-up' if warmup else 'round':<7} {sample.seconds:8.2f} s"
          f"  (own exit {sample.main_seconds:.2f} s)  peak tree {sample.peak_tree_rss_mb:,.0f} MB, largest process "
          f"{sample.peak_process_rss_mb:,.0f} MB  {sample.events_read:,} read", flush=True)


def figures(series: Mapping[str, EngineSeries]) -> dict[str, Any]:
    """Per size: each engine's summary (seconds, memory, stages) and the speedup spark / embedded of paired rounds."""
    timings: dict[str, dict[str, Any]] = {}
    speedup: dict[str, float] = {}
    for one in series.values():
        samples = one.samples
        timing = {**summary(one.seconds), "rounds_seconds": one.seconds,
                  "main_seconds_median": round(statistics.median(s.main_seconds for s in samples), 4),
                  "events_read": samples[0].events_read, "records_scanned": samples[0].records_scanned,
                  "peak_tree_rss_mb": summary([s.peak_tree_rss_mb for s in samples]),
                  "peak_process_rss_mb": summary([s.peak_process_rss_mb for s in samples]),
                  "stages_median": {name: round(statistics.median(s.stage_seconds[name] for s in samples), 3)
                                    for name in samples[0].stage_seconds}}
        timings.setdefault(str(one.case.max_events), {})[one.case.engine] = timing
    for size, pair in timings.items():
        embedded, spark = series.get(f"embedded/{size}"), series.get(f"spark/{size}")
        if "embedded" in pair and "spark" in pair and embedded and spark:
            speedup[size] = paired_ratio(spark.seconds, embedded.seconds)
    return {"timings": dict(sorted(timings.items(), key=lambda item: int(item[0]))),
            "engine_speedup": dict(sorted(speedup.items(), key=lambda item: int(item[0])))}


def target_verdicts(timings: Mapping[str, Any], speedup: Mapping[str, float]) -> list[tuple[str, bool]]:
    """Each target of TARGETS that this run measured: (what it says with the figure, met or not)."""
    verdicts = []
    for size, (least_ratio, most_seconds) in TARGETS.items():
        ratio, embedded = speedup.get(str(size)), (timings.get(str(size)) or {}).get("embedded")
        if ratio is not None:
            word = "not slower than Spark" if least_ratio == 1.0 else f"≥ {least_ratio:g}×"
            verdicts.append((f"{size:,} events: embedded/Spark {ratio:.1f}× (target {word})", ratio >= least_ratio))
        if most_seconds is not None and embedded:
            text = f"{size:,} events: embedded median {embedded['median']:.2f} s (target ≤ {most_seconds:g} s)"
            verdicts.append((text, embedded["median"] <= most_seconds))
    return verdicts


def _span(timing: Mapping[str, Any] | None) -> str:
    return f"{timing['median']:.2f} s ({timing['min']:.2f}–{timing['max']:.2f})" if timing else "-"


def _memory(timing: Mapping[str, Any] | None) -> str:
    if not timing:
        return "-"
    return (f"{timing['peak_tree_rss_mb']['median']:,.0f} MB "
            f"(largest process {timing['peak_process_rss_mb']['median']:,.0f})")


def print_figures(result: Mapping[str, Any], out: Any = None) -> None:
    """The run's table (medians, min–max, paired ratio, peak memory) and each target met or missed."""
    out = out or sys.stdout
    timings, speedup = result["timings"], result["engine_speedup"]
    print(f"{'events':>10}  {'embedded':>22}  {'spark':>22}  {'ratio':>6}  {'peak RSS embedded':>32}  "
          f"{'peak RSS spark':>32}", file=out)
    for size, pair in timings.items():
        ratio = speedup.get(size)
        print(f"{int(size):>10,}  {_span(pair.get('embedded')):>22}  {_span(pair.get('spark')):>22}  "
              f"{f'{ratio:.1f}×' if ratio else '-':>6}  {_memory(pair.get('embedded')):>32}  "
              f"{_memory(pair.get('spark')):>32}", file=out)
    print("  seconds: spawn to the exit of the last process (median, min–max); ratio: spark / embedded, median of "
          "paired rounds; peak RSS: sampled sum over the process tree (median)", file=out)
    for text, met in target_verdicts(timings, speedup):
        print(f"  {'met   ' if met else 'MISSED'}  {text}", file=out)


def run_series(
    sizes: Iterable[int] = SIZES, *, rounds: int = ROUNDS, big_rounds: int = BIG_ROUNDS, warmup: int = WARMUP,
    topic_events: int = TOPIC_EVENTS, progress: bool = True,
) -> dict[str, Any]:
    """Start (or reuse) the bench broker and topic, measure, and return the raw run (``--json``'s shape)."""
    from bench.machine import commit_info, machine_info, versions  # noqa: PLC0415
    from bench.topics import bench_broker, broker_kind, ensure_topic  # noqa: PLC0415

    sizes = sorted(set(sizes))
    if not sizes or sizes[0] < 1 or sizes[-1] > topic_events:
        raise ValueError(f"sizes must lie between 1 and the topic's {topic_events:,} events")
    cases = cases_for(sizes, rounds=rounds, big_rounds=big_rounds)
    machine_start, commit = machine_info(), commit_info()
    with bench_broker() as broker:
        topic = ensure_topic(broker.bootstrap, topic_events, progress=progress)
        if progress:
            print(f"engines, cold: {', '.join(f'{n:,}' for n in sizes)} events of {topic.name}; "
                  f"{rounds} rounds ({big_rounds} from {BIG_SIZE:,} events) after {warmup} warm-up", flush=True)
        series = measure(broker.bootstrap, topic, cases, warmup=warmup, on_sample=show_sample if progress else None)
    return {
        "format": FORMAT, "date": datetime.now(UTC).isoformat(), "commit": commit, "machine_start": machine_start,
        "machine_end": machine_info(), "broker": broker_kind(), "versions": versions(broker=broker_kind()),
        "topic": topic.to_dict(),
        "settings": {"sizes": sizes, "rounds": {str(c.max_events): c.rounds for c in cases},
                     "warmup_rounds": warmup, "spark_master": SPARK_MASTER,
                     "driver_memory": os.environ.get("STREAMGUARD_SPARK_DRIVER_MEMORY") or "default (4g)",
                     "sample_interval": SAMPLE_INTERVAL,
                     "command": "python -m streamguard run --topic T --max-events N --engine E -o <tmp>"},
        "series": {key: one.to_dict() for key, one in series.items()},
        **figures(series),
    }


def main(argv: list[str] | None = None) -> int:
    from bench import history  # noqa: PLC0415
    from bench.topics import BenchSetupError  # noqa: PLC0415
    from streamguard.errors import StreamguardError  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m bench.engines", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="events per run (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="measured rounds (default %(default)s)")
    parser.add_argument("--big-rounds", type=int, default=BIG_ROUNDS,
                        help=f"measured rounds for sizes from {BIG_SIZE:,} events (default %(default)s)")
    parser.add_argument("--warmup", type=int, default=WARMUP, help="discarded warm-up rounds (default %(default)s)")
    parser.add_argument("--json", type=Path, help="raw JSON path (default .benchmarks/engines-<UTC>.json)")
    parser.add_argument("--history", type=Path, default=history.HISTORY_FILE, help="history file to append to")
    parser.add_argument("--chart", type=Path, default=history.CHART_FILE, help="chart to redraw")
    parser.add_argument("--no-history", action="store_true", help="do not append a record or redraw the chart")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("bench").setLevel(logging.INFO)
    try:
        sizes = [int(part.replace("_", "")) for part in args.sizes.split(",")]
        result = run_series(sizes, rounds=args.rounds, big_rounds=args.big_rounds, warmup=args.warmup)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (BenchSetupError, StreamguardError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except (EngineRunFailed, EngineCheckFailed) as exc:
        print(f"FAIL  {exc}", file=sys.stderr)
        return 1
    json_path = save_json(result, args.json)
    print_figures(result)
    if not args.no_history:
        record = history.record_from_engines(result, source=_relative(json_path))
        history.append(record, args.history)
        redraw(args.history, args.chart)
    return 0


def save_json(result: Mapping[str, Any], path: Path | None) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = (path or _REPO / ".benchmarks" / f"engines-{stamp}.json").resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    return path


def redraw(history_file: Path, chart: Path) -> None:
    from bench import history  # noqa: PLC0415
    from bench.chart import render  # noqa: PLC0415 - matplotlib only when drawing

    records = history.load(history_file)
    render(records, chart)
    print(f"history: {_relative(history_file)} ({len(records)} runs); chart: {_relative(chart)}")


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(_REPO))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
