"""The CI gate: the bounded read must stay far faster than the full scan, and a cold run on the embedded engine
far faster than on Spark, each measured inside one run.

    python -m bench.gate                              # measure, compare with bench/baseline.json, exit 1 on failure
    python -m bench.gate --force-strategy full-scan   # the manual check: both sides scan, so the gate must fail
    python -m bench.gate --force-engine spark         # the same for the engine check: both sides run Spark
    python -m bench.gate --measurement saved.json     # judge a saved measurement without running anything

The scenario is fixed in ``bench/baseline.json``: the read stage (the pipeline's ``kafka_read``) of 1,000 events,
bounded against a full scan of one cached topic, in interleaved rounds after a discarded warm-up. The figure is
the median of the per-round ratios full scan / bounded. It fails when that speedup is below the floor (never
below 10×), or has dropped from the baseline figure by more than the allowed percentage, or when a side did not
read what it claims (bounded: exactly 1,000 events; full scan: the whole topic).

The second check (``engines`` in the baseline, :mod:`bench.gate_engines`) times whole ``streamguard run`` processes
on the same topic, ``--engine embedded`` against ``--engine spark``, and fails when the cold speedup at 1,000 events
is below its floor (never below 4×). A baseline without ``engines`` judges the read stage alone.

In code, :class:`Gate` judges a measurement against a baseline:

    >>> gate = Gate(Baseline.load(path), GateMeasurement.from_dict(data))
    >>> gate.compute().speedup, gate.fails()          # 24.1, None
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.figures import paired_ratio, summary
from bench.gate_engines import EngineBaseline, EngineCheck, EngineMeasurement
from bench.gate_fields import BaselineError, count, number

FORMAT = 1
BASELINE_FILE = Path(__file__).resolve().parent / "baseline.json"
ABSOLUTE_FLOOR = 10.0
EXIT_PASS, EXIT_FAIL, EXIT_BAD_INPUT, EXIT_SETUP = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class Scenario:
    events: int
    partitions: int
    seed: int
    max_events: int
    rounds: int
    warmup_rounds: int

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Scenario:
        if not isinstance(data, dict):
            raise BaselineError(f"{where}: 'scenario' must be an object")
        scenario = cls(events=count(data, "events", where, 2), partitions=count(data, "partitions", where, 1),
                       seed=count(data, "seed", where, 0), max_events=count(data, "max_events", where, 1),
                       rounds=count(data, "rounds", where, 1), warmup_rounds=count(data, "warmup_rounds", where, 0))
        if scenario.max_events >= scenario.events:
            raise BaselineError(f"{where}: max_events must be smaller than the topic ({scenario.events:,} events)")
        return scenario


@dataclass(frozen=True, slots=True)
class Baseline:
    """``bench/baseline.json``: the scenario, the floor, the baseline speedup and the allowed drop (see README)."""

    scenario: Scenario
    floor: float
    baseline_speedup: float
    max_drop_pct: float
    measured: dict[str, Any]
    engines: EngineBaseline | None = None

    @classmethod
    def from_dict(cls, data: Any, where: str = "baseline") -> Baseline:
        if not isinstance(data, dict):
            raise BaselineError(f"{where}: must be a JSON object")
        if data.get("format") != FORMAT:
            raise BaselineError(f"{where}: 'format' must be {FORMAT}, not {data.get('format')!r}")
        floor = number(data, "floor", where)
        speedup = number(data, "baseline_speedup", where)
        drop = number(data, "max_drop_pct", where)
        if floor < ABSOLUTE_FLOOR:
            raise BaselineError(f"{where}: floor {floor:g}× is below {ABSOLUTE_FLOOR:g}×, the least the gate accepts")
        if speedup < floor:
            raise BaselineError(f"{where}: baseline_speedup {speedup:g}× is below the floor {floor:g}×")
        if not 0 < drop < 100:
            raise BaselineError(f"{where}: max_drop_pct must lie strictly between 0 and 100, not {drop:g}")
        measured = data.get("measured", {})
        if not isinstance(measured, dict):
            raise BaselineError(f"{where}: 'measured' must be an object")
        engines = EngineBaseline.from_dict(data["engines"], where) if "engines" in data else None
        return cls(Scenario.from_dict(data.get("scenario"), where), floor, speedup, drop, measured, engines)

    @classmethod
    def load(cls, path: Path) -> Baseline:
        try:
            data = json.loads(path.read_text())
        except OSError as exc:
            raise BaselineError(f"cannot read {path}: {exc.strerror}") from exc
        except json.JSONDecodeError as exc:
            raise BaselineError(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from exc
        return cls.from_dict(data, str(path))

    @property
    def threshold(self) -> float:
        """The least speedup that passes: the floor, or the baseline less the allowed drop if that is higher."""
        return max(self.floor, self.baseline_speedup * (1 - self.max_drop_pct / 100))


@dataclass(frozen=True, slots=True)
class Side:
    """One side's rounds: seconds, events read and records fetched, in round order."""

    seconds: tuple[float, ...]
    events_read: tuple[int, ...]
    records_scanned: tuple[int, ...]

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Side:
        if not isinstance(data, dict):
            raise BaselineError(f"{where} must be an object")
        try:
            side = cls(tuple(float(s) for s in data["seconds"]), tuple(int(n) for n in data["events_read"]),
                       tuple(int(n) for n in data["records_scanned"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise BaselineError(f"{where}: needs lists seconds, events_read, records_scanned ({exc})") from exc
        if not side.seconds or not len(side.seconds) == len(side.events_read) == len(side.records_scanned):
            raise BaselineError(f"{where}: seconds, events_read and records_scanned need the same, non-zero length")
        if min(side.seconds) <= 0:
            raise BaselineError(f"{where}: a round took no time")
        return side


@dataclass(frozen=True, slots=True)
class GateMeasurement:
    """What one gate run measured (also the format of ``--json`` and of the golden files in fixtures/bench/)."""

    scenario: Scenario
    topic_events: int
    bounded: Side
    full_scan: Side
    forced_strategy: str | None = None
    engines: EngineMeasurement | None = None  # None: the engine check was not run

    @classmethod
    def from_dict(cls, data: Any, where: str = "measurement") -> GateMeasurement:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise BaselineError(f"{where}: not a format {FORMAT} gate measurement")
        engines = EngineMeasurement.from_dict(data["engines"], where) if data.get("engines") is not None else None
        return cls(Scenario.from_dict(data.get("scenario"), where), count(data, "topic_events", where, 1),
                   Side.from_dict(data.get("bounded"), f"{where}: bounded"),
                   Side.from_dict(data.get("full_scan"), f"{where}: full_scan"), data.get("forced_strategy"),
                   engines)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, **asdict(self)}


@dataclass(frozen=True, slots=True)
class GateResult:
    speedup: float
    bounded: dict[str, float | int]
    full_scan: dict[str, float | int]
    round_ratios: tuple[float, ...]
    floor: float
    baseline_speedup: float
    max_drop_pct: float
    threshold: float
    drop_pct: float  # how far below the baseline the speedup is (negative: above it)


class Gate:
    """Judge a :class:`GateMeasurement` against a :class:`Baseline`."""

    def __init__(self, baseline: Baseline, measurement: GateMeasurement) -> None:
        self.baseline = baseline
        self.measurement = measurement
        self.engines = EngineCheck(baseline.engines, measurement.engines) if baseline.engines else None

    def compute(self) -> GateResult:
        m, b = self.measurement, self.baseline
        speedup = paired_ratio(m.full_scan.seconds, m.bounded.seconds)
        return GateResult(
            speedup=speedup, bounded=summary(m.bounded.seconds), full_scan=summary(m.full_scan.seconds),
            round_ratios=tuple(round(f / s, 2) for f, s in zip(m.full_scan.seconds, m.bounded.seconds, strict=True)),
            floor=b.floor, baseline_speedup=b.baseline_speedup, max_drop_pct=b.max_drop_pct, threshold=b.threshold,
            drop_pct=round(100 * (b.baseline_speedup - speedup) / b.baseline_speedup, 1),
        )

    def _wrong_reads(self) -> str | None:
        m = self.measurement
        want = m.scenario.max_events
        if len(m.bounded.seconds) != len(m.full_scan.seconds):
            return "the two sides were not measured in the same rounds"
        if m.scenario != self.baseline.scenario:
            return f"the measured scenario {m.scenario} is not the baseline's {self.baseline.scenario}"
        if any(n != want for n in m.bounded.events_read):
            return f"the bounded side read {list(m.bounded.events_read)} events, not exactly {want:,} each round"
        if any(n != want for n in m.full_scan.events_read):
            return f"the full-scan side read {list(m.full_scan.events_read)} events, not exactly {want:,} each round"
        if any(n != m.topic_events for n in m.full_scan.records_scanned):
            return (f"the full scan fetched {list(m.full_scan.records_scanned)} records, not the whole topic "
                    f"({m.topic_events:,}) each round")
        return None

    def read_fails(self) -> str | None:
        """Why the read-stage check fails, or None when it passes."""
        wrong = self._wrong_reads()
        if wrong:
            return f"invalid measurement: {wrong}"
        result = self.compute()
        if result.speedup < result.floor:
            return f"speedup {result.speedup:.1f}× is below the floor of {result.floor:g}×"
        if result.speedup < result.threshold:
            return (f"speedup {result.speedup:.1f}× dropped {result.drop_pct:.0f}% below the baseline "
                    f"{result.baseline_speedup:g}× (at most {result.max_drop_pct:g}% allowed, i.e. "
                    f"{result.threshold:.1f}×)")
        return None

    def failures(self) -> list[str]:
        """Every failed check's message: the read stage first, then the engines (when the baseline has them)."""
        found = [self.read_fails(), self.engines.fails() if self.engines else None]
        return [message for message in found if message]

    def fails(self) -> str | None:
        """Why the gate fails (every failed check, joined), or None when it passes."""
        return "; ".join(self.failures()) or None


def report(gate: Gate, *, out: Any = None) -> str | None:
    """Print the figures and the verdict of each check; return the failure message (None on a pass)."""
    out = out or sys.stdout
    m = gate.measurement
    read_failure = gate.read_fails()
    if read_failure and read_failure.startswith("invalid measurement"):
        print(f"FAIL  {read_failure}", file=out)
    else:
        r = gate.compute()
        forced = f" (both sides forced to {m.forced_strategy})" if m.forced_strategy else ""
        print(f"read stage: {m.scenario.max_events:,} events, bounded vs full scan{forced}, topic of "
              f"{m.topic_events:,} events; {m.scenario.rounds} interleaved rounds after {m.scenario.warmup_rounds} "
              f"warm-up", file=out)
        print(f"  {'round':>5}  {'bounded':>10}  {'full scan':>10}  {'ratio':>7}", file=out)
        for index, (b, f, ratio) in enumerate(zip(m.bounded.seconds, m.full_scan.seconds, r.round_ratios,
                                                  strict=True), start=1):
            print(f"  {index:>5}  {b:>8.3f} s  {f:>8.3f} s  {ratio:>6.1f}×", file=out)
        for name, side, stats in (("bounded", m.bounded, r.bounded), ("full scan", m.full_scan, r.full_scan)):
            print(f"  {name:<9} median {stats['median']:.3f} s ({stats['min']:.3f}–{stats['max']:.3f}); "
                  f"{statistics.median(side.events_read):,.0f} events read, "
                  f"{statistics.median(side.records_scanned):,.0f} records fetched per round", file=out)
        print(f"  speedup {r.speedup:.1f}× (median of paired rounds); floor {r.floor:g}×, baseline "
              f"{r.baseline_speedup:g}× with at most {r.max_drop_pct:g}% drop → threshold {r.threshold:.1f}×",
              file=out)
        print(f"FAIL  {read_failure}" if read_failure else f"PASS  speedup {r.speedup:.1f}× ≥ {r.threshold:.1f}×",
              file=out)
    if gate.engines is not None:
        for line in gate.engines.lines():
            print(line, file=out)
        engine_failure = gate.engines.fails()
        if engine_failure:
            print(f"FAIL  {engine_failure}", file=out)
        else:
            result = gate.engines.compute()
            print(f"PASS  engine speedup {result.speedup:.1f}× ≥ {result.floor:g}×", file=out)
    return gate.fails()


def measure(
    baseline: Baseline, *, force_strategy: str | None = None, force_engine: str | None = None,
    skip_engines: bool = False, progress: bool = True,
) -> GateMeasurement:
    """Run the baseline's scenarios on the bench broker (local, or STREAMGUARD_KAFKA_BOOTSTRAP's cluster): the read
    stage in one warm Spark session, then (after that session stopped) the engines in fresh processes."""
    from bench.gate_engines import measure_engines  # noqa: PLC0415
    from bench.harness import bench_spark, cases_for, interleave, read_once, stop_spark  # noqa: PLC0415
    from bench.topics import bench_broker, ensure_topic  # noqa: PLC0415

    s = baseline.scenario
    clock = _Phases()
    with bench_broker() as broker:
        clock.lap("broker")
        topic = ensure_topic(broker.bootstrap, s.events, partitions=s.partitions, seed=s.seed, progress=progress)
        clock.lap("topic (seeded)" if topic.seeded_seconds is not None else "topic (cached)")
        spark = bench_spark()
        try:
            clock.lap("spark")

            def show(case, sample, warmup):  # noqa: ANN001, ANN202
                if progress:
                    print(f"  {'warm-up' if warmup else 'round':<7} {case.label:<9} {sample.seconds:8.3f} s  "
                          f"{sample.events_read:,} read, {sample.records_scanned:,} fetched", flush=True)

            cases = cases_for("read", [topic], max_events=s.max_events, force_strategy=force_strategy)
            series = interleave(cases, rounds=s.rounds, warmup=s.warmup_rounds,
                                run=lambda case: read_once(spark, broker.bootstrap, case), on_sample=show)
            clock.lap("measurement")
        finally:
            stop_spark(spark)
        engines = None
        if baseline.engines is not None and not skip_engines:
            engines = measure_engines(broker.bootstrap, topic, baseline.engines.scenario, forced_engine=force_engine,
                                      progress=progress)
            clock.lap("engines")

    def side(label: str) -> Side:
        samples = series[f"read/{label}/{topic.events}"].samples
        return Side(tuple(x.seconds for x in samples), tuple(x.events_read for x in samples),
                    tuple(x.records_scanned for x in samples))

    print(f"  timings: {clock}", flush=True)
    return GateMeasurement(s, sum(topic.partition_sizes), side("bounded"), side("full-scan"), force_strategy,
                           engines)


class _Phases:
    def __init__(self) -> None:
        self.started = self.last = time.monotonic()
        self.laps: list[tuple[str, float]] = []

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.laps.append((name, now - self.last))
        self.last = now

    def __str__(self) -> str:
        parts = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.laps)
        return f"{parts}; total {time.monotonic() - self.started:.1f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gate", description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, default=BASELINE_FILE, help=f"default {BASELINE_FILE.name}")
    parser.add_argument("--force-strategy", choices=("bounded", "full-scan"),
                        help="run both sides with this read strategy (full-scan proves the gate can fail)")
    parser.add_argument("--force-engine", choices=("embedded", "spark"),
                        help="run both sides of the engine check on this engine (spark proves it can fail)")
    parser.add_argument("--skip-engines", action="store_true",
                        help="measure the read stage only (the engine check then fails: nothing measured)")
    parser.add_argument("--json", type=Path, help="also write the measurement to this file")
    parser.add_argument("--measurement", type=Path, help="judge this saved measurement instead of measuring")
    parser.add_argument("--quiet", action="store_true", help="no per-round progress lines")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("bench").setLevel(logging.INFO)
    try:
        baseline = Baseline.load(args.baseline)
        if args.measurement:
            measurement = GateMeasurement.from_dict(json.loads(args.measurement.read_text()), str(args.measurement))
        else:
            measurement = _measure_or_explain(baseline, args)
    except BaselineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except _SetupFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SETUP
    except _ChecksFailed as exc:
        print(f"FAIL  invalid measurement: {exc}")
        return EXIT_FAIL
    if args.json:
        args.json.write_text(json.dumps(measurement.to_dict(), indent=2) + "\n")
    return EXIT_FAIL if report(Gate(baseline, measurement)) else EXIT_PASS


class _SetupFailed(Exception):
    pass


class _ChecksFailed(Exception):
    pass


def _measure_or_explain(baseline: Baseline, args: argparse.Namespace) -> GateMeasurement:
    from bench.engines import EngineCheckFailed, EngineRunFailed  # noqa: PLC0415
    from bench.harness import CheckFailed, MeasurementFailed  # noqa: PLC0415
    from bench.topics import BenchSetupError  # noqa: PLC0415
    from streamguard.errors import StreamguardError  # noqa: PLC0415

    try:
        return measure(baseline, force_strategy=args.force_strategy, force_engine=args.force_engine,
                       skip_engines=args.skip_engines, progress=not args.quiet)
    except (CheckFailed, EngineCheckFailed) as exc:
        raise _ChecksFailed(str(exc)) from exc
    except (BenchSetupError, MeasurementFailed, EngineRunFailed, StreamguardError) as exc:
        raise _SetupFailed(str(exc)) from exc


if __name__ == "__main__":
    sys.exit(main())
