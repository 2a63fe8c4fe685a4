"""The gate's second check: a cold ``streamguard run`` on the embedded engine must stay far faster than on Spark.

The scenario is the ``engines`` block of ``bench/baseline.json``: ``max_events`` events (1,000) of the gate's topic,
``python -m streamguard run --engine embedded`` against ``--engine spark`` (``local[*]``), each a fresh process
timed until its last process exits (``bench/engines.py``), interleaved rounds after a discarded warm-up. The figure
is the median of the per-round ratios spark / embedded; it fails below the floor (never below 4×) or when a run's
report names another engine or another event count.

    >>> check = EngineCheck(EngineBaseline.from_dict(data["engines"], "baseline"), EngineMeasurement.from_dict(m))
    >>> check.compute().speedup, check.fails()          # 12.3, None
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Any

from bench.figures import paired_ratio, summary
from bench.gate_fields import BaselineError, count, number

ENGINE_ABSOLUTE_FLOOR = 4.0
ENGINES = ("embedded", "spark")


@dataclass(frozen=True, slots=True)
class EngineScenario:
    max_events: int
    rounds: int
    warmup_rounds: int

    @classmethod
    def from_dict(cls, data: Any, where: str) -> EngineScenario:
        if not isinstance(data, dict):
            raise BaselineError(f"{where}: 'engines.scenario' must be an object")
        return cls(max_events=count(data, "max_events", where, 1), rounds=count(data, "rounds", where, 1),
                   warmup_rounds=count(data, "warmup_rounds", where, 0))


@dataclass(frozen=True, slots=True)
class EngineBaseline:
    """``engines`` in ``bench/baseline.json``: the scenario and the floor of the embedded/Spark speedup."""

    scenario: EngineScenario
    floor: float
    measured: dict[str, Any]

    @classmethod
    def from_dict(cls, data: Any, where: str) -> EngineBaseline:
        if not isinstance(data, dict):
            raise BaselineError(f"{where}: 'engines' must be an object")
        floor = number(data, "floor", f"{where}: engines")
        if floor < ENGINE_ABSOLUTE_FLOOR:
            raise BaselineError(f"{where}: engines floor {floor:g}× is below {ENGINE_ABSOLUTE_FLOOR:g}×, the least "
                                f"the gate accepts")
        measured = data.get("measured", {})
        if not isinstance(measured, dict):
            raise BaselineError(f"{where}: 'engines.measured' must be an object")
        return cls(EngineScenario.from_dict(data.get("scenario"), where), floor, measured)


@dataclass(frozen=True, slots=True)
class EngineSide:
    """One engine's rounds: seconds, events read, records fetched, the engine each report names, peak tree RSS."""

    seconds: tuple[float, ...]
    events_read: tuple[int, ...]
    records_scanned: tuple[int, ...]
    engines_reported: tuple[str, ...]
    peak_tree_rss_mb: tuple[float, ...] = ()

    @classmethod
    def from_dict(cls, data: Any, where: str) -> EngineSide:
        if not isinstance(data, dict):
            raise BaselineError(f"{where} must be an object")
        try:
            side = cls(tuple(float(s) for s in data["seconds"]), tuple(int(n) for n in data["events_read"]),
                       tuple(int(n) for n in data["records_scanned"]), tuple(str(e) for e in data["engines_reported"]),
                       tuple(float(m) for m in data.get("peak_tree_rss_mb") or ()))
        except (KeyError, TypeError, ValueError) as exc:
            raise BaselineError(f"{where}: needs lists seconds, events_read, records_scanned, engines_reported "
                                f"({exc})") from exc
        lengths = {len(side.seconds), len(side.events_read), len(side.records_scanned), len(side.engines_reported)}
        if not side.seconds or len(lengths) != 1:
            raise BaselineError(f"{where}: seconds, events_read, records_scanned and engines_reported need the same, "
                                f"non-zero length")
        if min(side.seconds) <= 0:
            raise BaselineError(f"{where}: a round took no time")
        return side


@dataclass(frozen=True, slots=True)
class EngineMeasurement:
    """What the gate's engine check measured (``engines`` in ``--json`` and in the golden files)."""

    scenario: EngineScenario
    topic_events: int
    embedded: EngineSide
    spark: EngineSide
    forced_engine: str | None = None

    @classmethod
    def from_dict(cls, data: Any, where: str = "measurement") -> EngineMeasurement:
        if not isinstance(data, dict):
            raise BaselineError(f"{where}: 'engines' must be an object")
        return cls(EngineScenario.from_dict(data.get("scenario"), where), count(data, "topic_events", where, 1),
                   EngineSide.from_dict(data.get("embedded"), f"{where}: engines.embedded"),
                   EngineSide.from_dict(data.get("spark"), f"{where}: engines.spark"), data.get("forced_engine"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class EngineResult:
    speedup: float
    embedded: dict[str, float | int]
    spark: dict[str, float | int]
    round_ratios: tuple[float, ...]
    floor: float


class EngineCheck:
    """Judge an :class:`EngineMeasurement` (None: not measured) against an :class:`EngineBaseline`."""

    def __init__(self, baseline: EngineBaseline, measurement: EngineMeasurement | None) -> None:
        self.baseline = baseline
        self.measurement = measurement

    def compute(self) -> EngineResult:
        m = self.measurement
        if m is None:
            raise ValueError("no engine measurement to compute")
        return EngineResult(
            speedup=paired_ratio(m.spark.seconds, m.embedded.seconds), embedded=summary(m.embedded.seconds),
            spark=summary(m.spark.seconds),
            round_ratios=tuple(round(s / e, 2) for s, e in zip(m.spark.seconds, m.embedded.seconds, strict=True)),
            floor=self.baseline.floor,
        )

    def invalid(self) -> str | None:
        """Why the measurement cannot be judged (missing, another scenario, a run that did other work), or None."""
        m = self.measurement
        if m is None:
            return "the baseline asks for the engine check and the measurement has none"
        if m.scenario != self.baseline.scenario:
            return f"the measured engine scenario {m.scenario} is not the baseline's {self.baseline.scenario}"
        if len(m.embedded.seconds) != len(m.spark.seconds):
            return "the two engines were not measured in the same rounds"
        want = m.scenario.max_events
        for name, side in (("embedded", m.embedded), ("spark", m.spark)):
            engine = m.forced_engine or name
            if any(reported != engine for reported in side.engines_reported):
                return f"the {name} side's reports name the engines {list(side.engines_reported)}, not {engine}"
            if any(n != want for n in side.events_read) or any(n != want for n in side.records_scanned):
                return (f"the {name} side read {list(side.events_read)} events ({list(side.records_scanned)} "
                        f"fetched), not exactly {want:,} each round")
        return None

    def fails(self) -> str | None:
        """Why the engine check fails, or None when it passes."""
        wrong = self.invalid()
        if wrong:
            return f"invalid measurement: {wrong}"
        result = self.compute()
        if result.speedup < result.floor:
            return (f"engines: embedded/Spark {result.speedup:.1f}× at {self.baseline.scenario.max_events:,} events "
                    f"is below the floor of {result.floor:g}×")
        return None

    def lines(self) -> list[str]:
        """The figures, as the gate prints them (nothing when the measurement is missing or invalid)."""
        if self.invalid():
            return []
        m, r = self.measurement, self.compute()
        forced = f" (both sides forced to {m.forced_engine})" if m.forced_engine else ""
        lines = [f"engines, cold whole process: {m.scenario.max_events:,} events of a topic of {m.topic_events:,}, "
                 f"streamguard run --engine embedded vs spark{forced}; {m.scenario.rounds} interleaved rounds after "
                 f"{m.scenario.warmup_rounds} warm-up",
                 f"  {'round':>5}  {'embedded':>10}  {'spark':>10}  {'ratio':>7}"]
        lines += [f"  {index:>5}  {e:>8.2f} s  {s:>8.2f} s  {ratio:>6.1f}×"
                  for index, (e, s, ratio) in enumerate(zip(m.embedded.seconds, m.spark.seconds, r.round_ratios,
                                                            strict=True), start=1)]
        for name, side, stats in (("embedded", m.embedded, r.embedded), ("spark", m.spark, r.spark)):
            memory = (f", peak tree RSS {statistics.median(side.peak_tree_rss_mb):,.0f} MB"
                      if side.peak_tree_rss_mb else "")
            lines.append(f"  {name:<9} median {stats['median']:.2f} s ({stats['min']:.2f}–{stats['max']:.2f}); "
                         f"{statistics.median(side.events_read):,.0f} events read per run{memory}")
        lines.append(f"  engine speedup {r.speedup:.1f}× (median of paired rounds); floor {r.floor:g}×")
        return lines


def measure_engines(
    bootstrap: str, topic: Any, scenario: EngineScenario, *, forced_engine: str | None = None, progress: bool = True
) -> EngineMeasurement:
    """Run the engine scenario on ``topic`` (a ``BenchTopic``) through ``bench.engines``."""
    from bench.engines import cases_for, measure, show_sample  # noqa: PLC0415

    cases = cases_for([scenario.max_events], rounds=scenario.rounds, big_rounds=scenario.rounds, forced=forced_engine)
    series = measure(bootstrap, topic, cases, warmup=scenario.warmup_rounds,
                     on_sample=show_sample if progress else None)

    def side(engine: str) -> EngineSide:
        samples = series[f"{engine}/{scenario.max_events}"].samples
        return EngineSide(tuple(s.seconds for s in samples), tuple(s.events_read for s in samples),
                          tuple(s.records_scanned for s in samples), tuple(s.engine for s in samples),
                          tuple(s.peak_tree_rss_mb for s in samples))

    return EngineMeasurement(scenario, sum(topic.partition_sizes), side("embedded"), side("spark"), forced_engine)
