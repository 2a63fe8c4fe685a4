"""The scale benchmark's plain parts: which points it measures, on which topics, and what it makes of them.

    >>> [p.key for p in points(AXES)][:3]
    ['p4-e1000-u50', 'p4-e100000-u50', 'p64-e100000-u50']
    >>> loglog_slope([1_000, 100_000], [0.01, 1.0])      # a stage that grows linearly in its axis
    1.0
    >>> stage_peaks([(10.0, 100), (10.5, 300), (11.0, 200)], {"kafka_read": (10.4, 10.9)})
    {'kafka_read': 300}

No I/O and no engine here (bench/scale.py runs things), so the fit, the stage split of the memory timeline and
the history record's shape are unit-tested on their own (tests/test_bench_scale.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

FORMAT = 1  # of a bench/history/scale.jsonl record (bench/SCALE.md)
ENGINES = ("embedded", "spark")
STAGES = ("plan", "engine_init", "kafka_read", "parse", "features", "detection", "export", "total")
PIPELINE_STAGES = STAGES[:-1]
SEED = 42
# The report's stage seconds have millisecond resolution; a stage that took "0.0 s" is drawn and fitted at this.
SECONDS_FLOOR = 0.001


@dataclass(frozen=True, slots=True, order=True)
class Point:
    """One configuration run: the topic's partition count, the slice read (events) and the users in the topic."""

    partitions: int
    events: int
    users: int

    @property
    def key(self) -> str:
        return f"p{self.partitions}-e{self.events}-u{self.users}"

    def value(self, axis: str) -> int:
        return {"partitions": self.partitions, "events": self.events, "users": self.users}[axis]


CENTRE = Point(partitions=4, events=100_000, users=50)
AXES: dict[str, tuple[int, ...]] = {
    "partitions": (4, 64, 1_000),
    "events": (1_000, 100_000, 1_000_000, 10_000_000),
    "users": (50, 10_000, 100_000),
}


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic the benchmark seeds (keyed by event, so records spread evenly over every partition)."""

    events: int
    partitions: int
    users: int

    @property
    def name(self) -> str:
        return f"scale-{self.events}e-{self.partitions}p-{self.users}u-s{SEED}"


def axis_points(axis: str, values: Iterable[int], centre: Point = CENTRE) -> list[Point]:
    """The points of one axis: the centre with that one coordinate varied."""
    points = []
    for value in values:
        coordinates = {"partitions": centre.partitions, "events": centre.events, "users": centre.users, axis: value}
        points.append(Point(**coordinates))
    return points


def points(axes: Mapping[str, Iterable[int]], centre: Point = CENTRE) -> list[Point]:
    """Every distinct point of ``axes`` (the centre once), cheapest first: by events, then partitions, then users."""
    found = {point for axis, values in axes.items() for point in axis_points(axis, values, centre)}
    return sorted(found, key=lambda p: (p.events, p.partitions, p.users))


def topic_for(point: Point, axes: Mapping[str, Iterable[int]], centre: Point = CENTRE) -> TopicSpec:
    """The topic ``point`` reads: points on the slice axis (the centre's partitions and users) share one topic as
    large as the largest slice, and read its first N records; any other point reads a topic of exactly its slice."""
    if point.partitions == centre.partitions and point.users == centre.users:
        largest = max([point.events, centre.events, *axes.get("events", ())])
        return TopicSpec(largest, point.partitions, point.users)
    return TopicSpec(point.events, point.partitions, point.users)


def loglog_slope(xs: Sequence[float], ys: Sequence[float], floor: float = SECONDS_FLOOR) -> float | None:
    """Least-squares slope of log(y) against log(x): 1.0 grows linearly, 0.0 is flat; None with fewer than two
    distinct x. Values below ``floor`` are fitted at ``floor`` (a stage too short to time is flat, not -inf)."""
    pairs = [(math.log(x), math.log(max(y, floor))) for x, y in zip(xs, ys, strict=True) if x > 0]
    if len({x for x, _ in pairs}) < 2:
        return None
    mean_x = sum(x for x, _ in pairs) / len(pairs)
    mean_y = sum(y for _, y in pairs) / len(pairs)
    spread = sum((x - mean_x) ** 2 for x, _ in pairs)
    return round(sum((x - mean_x) * (y - mean_y) for x, y in pairs) / spread, 2)


def stage_windows(ends: Sequence[tuple[str, float, float]]) -> dict[str, tuple[float, float]]:
    """(start, end) unix time of each stage from (stage, end time, seconds) as the pipeline logs them."""
    return {name: (end - seconds, end) for name, end, seconds in ends}


def stage_peaks(
    timeline: Sequence[tuple[float, float]], windows: Mapping[str, tuple[float, float]]
) -> dict[str, float]:
    """The highest tree RSS sampled during each stage; a stage shorter than the sampling interval gets the sample
    nearest its end (what the tree held then), and a stage with no sample at all near it gets none."""
    peaks: dict[str, float] = {}
    if not timeline:
        return peaks
    for name, (start, end) in windows.items():
        inside = [rss for at, rss in timeline if start <= at <= end]
        if inside:
            peaks[name] = max(inside)
        else:
            peaks[name] = min(timeline, key=lambda sample: abs(sample[0] - end))[1]
    return peaks


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def point_figures(samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Median seconds per stage and peak tree RSS (whole run and per stage) over a point's samples."""
    first = samples[0]
    stages = {name: round(median([s["stage_seconds"].get(name, 0.0) for s in samples]), 3) for name in STAGES}
    rss_stages = {name: round(median([s["stage_rss_mb"][name] for s in samples]), 1)
                  for name in PIPELINE_STAGES if all(name in s["stage_rss_mb"] for s in samples)}
    return {"rounds": len(samples), "events_read": first["events_read"], "records_scanned": first["records_scanned"],
            "users_found": first.get("users_found"),
            "wall_seconds": round(median([s["seconds"] for s in samples]), 3),
            # CPU seconds of every process of the tree (user + system): what the work costs whatever the load
            "cpu_seconds": (round(median([s["cpu_seconds"] for s in samples]), 2)
                            if all("cpu_seconds" in s for s in samples) else None),
            "stage_seconds": stages,
            "peak_tree_rss_mb": round(median([s["peak_tree_rss_mb"] for s in samples]), 1),
            "stage_rss_mb": rss_stages,
            "load_avg": [s["load_avg"] for s in samples]}


def slopes(results: Mapping[str, Mapping[str, Mapping[str, Any]]], axes: Mapping[str, Iterable[int]],
           centre: Point = CENTRE) -> dict[str, dict[str, dict[str, dict[str, float | None]]]]:
    """Fitted log-log slopes: engine -> axis -> {"seconds": {stage: slope}, "rss": {stage or "peak": slope},
    "seconds_top": {stage: slope}}.

    ``seconds`` fits every point of the axis; ``seconds_top`` only its two largest, where the work outweighs the
    fixed costs that flatten the small points (a stage that costs c + k·x has slope 1 only once k·x dominates c).
    ``results`` is engine -> point key -> :func:`point_figures`; an axis uses whichever of its points were measured.
    """
    fitted: dict[str, dict[str, dict[str, dict[str, float | None]]]] = {}
    for engine, by_point in results.items():
        for axis, values in axes.items():
            measured = sorted(((p.value(axis), by_point[p.key]) for p in axis_points(axis, values, centre)
                               if p.key in by_point), key=lambda pair: pair[0])
            xs = [x for x, _ in measured]
            seconds = {stage: loglog_slope(xs, [f["stage_seconds"][stage] for _, f in measured]) for stage in STAGES}
            top = {stage: loglog_slope(xs[-2:], [f["stage_seconds"][stage] for _, f in measured[-2:]])
                   for stage in STAGES}
            rss: dict[str, float | None] = {"peak": loglog_slope(xs, [f["peak_tree_rss_mb"] for _, f in measured])}
            for stage in PIPELINE_STAGES:
                if all(stage in f["stage_rss_mb"] for _, f in measured):
                    rss[stage] = loglog_slope(xs, [f["stage_rss_mb"][stage] for _, f in measured])
            fitted.setdefault(engine, {})[axis] = {"seconds": seconds, "rss": rss, "seconds_top": top}
    return fitted


def growth_word(slope: float | None) -> str:
    """How a slope reads: flat, sublinear, linear, superlinear."""
    if slope is None:
        return "not measured"
    if slope < 0.2:
        return "flat"
    if slope < 0.8:
        return "sublinear"
    if slope <= 1.2:
        return "linear"
    return "superlinear"


def check_record(record: Mapping[str, Any]) -> None:
    """Raise ValueError unless ``record`` has the documented shape of a scale.jsonl line (format 1)."""
    if record.get("format") != FORMAT:
        raise ValueError(f"scale record format {record.get('format')!r}, expected {FORMAT}")
    for key in ("date", "commit", "machine", "versions", "settings", "results", "slopes", "missing"):
        if key not in record:
            raise ValueError(f"scale record lacks {key!r}")
    for engine, by_point in record["results"].items():
        if engine not in ENGINES:
            raise ValueError(f"scale record names an unknown engine {engine!r}")
        for key, figures in by_point.items():
            missing = [stage for stage in STAGES if stage not in figures.get("stage_seconds", {})]
            if missing or "peak_tree_rss_mb" not in figures:
                raise ValueError(f"scale record {engine}/{key} lacks {missing or 'peak_tree_rss_mb'}")
