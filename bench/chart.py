"""The history chart: speedups, flatness and bounded timings of every recorded run, and the engines cold
(speedup of the embedded engine over Spark, embedded seconds), per run (matplotlib, Agg, PNG); below them,
on their own axis, the detection-quality runs (``bench/history/quality.jsonl``, ``python -m bench.quality``).

    >>> render(history.load(), Path("bench/history/ratios.png"))     # quality runs read from their history

Records of either history format are drawn; a run that did not measure a series has no point in its panels.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

GATE_FLOOR_HINT = 10.0  # drawn for orientation; the gate's own floor is in bench/baseline.json
ENGINE_GATE_FLOOR_HINT = 4.0  # the gate's engine floor at 1,000 events (bench/baseline.json), for orientation
QUALITY_HISTORY = Path(__file__).resolve().parent / "history" / "quality.jsonl"
QUALITY_SLICE = 100_000  # the slice the quality goals are set at (bench/quality.py)
QUALITY_SEED = 42  # bench.quality's default seed
QUALITY_POPULATIONS = ("u50", "u1k", "u10k", "quiet")


def _label(record: Mapping[str, Any]) -> str:
    commit = str(record["commit"].get("id") or "?")[:7] + ("*" if record["commit"].get("dirty") else "")
    return f"{commit}\n{str(record['date'])[5:10]}"


def _sizes(records: Sequence[Mapping[str, Any]], stage: str) -> list[str]:
    return sorted({size for r in records for size in r["timings"].get(stage) or {}}, key=int)


def _points(records: Sequence[Mapping[str, Any]], get) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for index, record in enumerate(records):
        value = get(record)
        if value is not None:
            xs.append(index)
            ys.append(value)
    return xs, ys


def load_quality(path: Path = QUALITY_HISTORY) -> list[dict[str, Any]]:
    """The quality history's records, oldest first (none when the file does not exist)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def render(records: Sequence[Mapping[str, Any]], path: Path,
           quality: Sequence[Mapping[str, Any]] | None = None) -> Path:
    """Draw the chart of ``records`` (oldest first) into ``path``; returns the path.

    ``quality`` are the detection-quality records (None: read from ``bench/history/quality.jsonl``); with none,
    the quality panel says so."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: PLC0415

    fig, (speed, flat, times, engines, cold, quality_axis) = plt.subplots(6, 1, figsize=(10, 22))
    for axis in (speed, flat, times, engines):  # the speed runs share one axis; the quality runs have their own
        axis.sharex(cold)
        axis.tick_params(labelbottom=False)
    markers = "osD^v<>"
    for stage, style in (("read", "-"), ("pipeline", "--")):
        for n, size in enumerate(_sizes(records, stage)):
            xs, ys = _points(records, lambda r, s=size, st=stage: r["ratios"].get(f"{st}_speedup", {}).get(s))
            speed.plot(xs, ys, style, marker=markers[n % len(markers)], label=f"{stage}, {int(size):,} events")
            xs, ys = _points(records, lambda r, s=size, st=stage: r["ratios"].get(f"{st}_flatness", {}).get(s))
            if ys:
                flat.plot(xs, ys, style, marker=markers[n % len(markers)], label=f"{stage} bounded, {int(size):,}")
            xs, _ = _points(records, lambda r, s=size, st=stage: (r["timings"].get(st) or {}).get(s, {}).get("bounded"))
            timing = [records[x]["timings"][stage][size]["bounded"] for x in xs]
            medians = [t["median"] for t in timing]
            spread = [[m - t["min"] for m, t in zip(medians, timing, strict=True)],
                      [t["max"] - m for m, t in zip(medians, timing, strict=True)]]
            times.errorbar(xs, medians, yerr=spread, fmt=style, marker=markers[n % len(markers)], capsize=3,
                           label=f"{stage} bounded, {int(size):,}")
    speed.axhline(GATE_FLOOR_HINT, color="grey", linestyle=":", linewidth=1, label=f"{GATE_FLOOR_HINT:.0f}× floor")
    speed.set_yscale("log")
    speed.set_ylabel("full scan / bounded (×)")
    speed.set_title("Speedup of the bounded read (1,000 events) over the full scan, median of paired rounds")
    flat.axhline(1.0, color="grey", linestyle=":", linewidth=1)
    low, high = flat.get_ylim()
    flat.set_ylim(min(low, 0.5), max(high, 1.5))  # so noise around 1.0 does not look like a trend
    flat.set_ylabel("t(size) / t(smallest)")
    base = next((r["flatness_base"] for r in reversed(records) if r.get("flatness_base")), None)
    flat.set_title(f"Flatness: bounded time against topic size (1.0 = flat; base {base:,} events)" if base
                   else "Flatness")
    times.set_ylabel("seconds (median, min–max)")
    times.set_yscale("log")
    times.set_title("Bounded timings (warm Spark session)")
    _draw_engines(records, engines, cold, markers)
    cold.set_xticks(range(len(records)), [_label(r) for r in records], fontsize=8)
    cold.set_xlim(-0.5, max(len(records) - 0.5, 0.5))
    for axis in (speed, times, engines, cold):  # after set_yscale, which resets the formatters
        axis.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axis.yaxis.set_minor_formatter(NullFormatter())
    _draw_quality(load_quality() if quality is None else quality, quality_axis, markers)
    for axis in (speed, flat, times, engines, cold, quality_axis):
        axis.grid(True, which="both", alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=8, loc="best")
    quality_axis.legend(fontsize=7, loc="lower left", ncol=3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _draw_engines(records: Sequence[Mapping[str, Any]], speed: Any, seconds: Any, markers: str) -> None:
    """The engines cold (whole ``streamguard run`` processes): speedup spark / embedded, and seconds per N."""
    for n, size in enumerate(_sizes(records, "engines")):
        marker, color = markers[n % len(markers)], f"C{n}"
        xs, ys = _points(records, lambda r, s=size: r["ratios"].get("engine_speedup", {}).get(s))
        speed.plot(xs, ys, "-", marker=marker, color=color, label=f"{int(size):,} events")
        for engine, style, alpha in (("embedded", "-", 1.0), ("spark", ":", 0.5)):
            xs, _ = _points(records, lambda r, s=size, e=engine: (r["timings"].get("engines") or {}).get(s, {}).get(e))
            timing = [records[x]["timings"]["engines"][size][engine] for x in xs]
            medians = [t["median"] for t in timing]
            spread = [[m - t["min"] for m, t in zip(medians, timing, strict=True)],
                      [t["max"] - m for m, t in zip(medians, timing, strict=True)]]
            seconds.errorbar(xs, medians, yerr=spread, fmt=style, marker=marker, color=color, capsize=3, alpha=alpha,
                             label=f"{engine}, {int(size):,} events")
    speed.axhline(ENGINE_GATE_FLOOR_HINT, color="grey", linestyle=":", linewidth=1,
                  label=f"{ENGINE_GATE_FLOOR_HINT:g}× gate floor (1,000 events)")
    speed.axhline(1.0, color="grey", linestyle="-", linewidth=0.5)
    speed.set_yscale("log")
    low, high = speed.get_ylim()
    speed.set_ylim(min(low, 0.8), high * 1.5)  # room above the highest point for the legend
    speed.set_ylabel("spark / embedded (×)")
    speed.set_title("Engines, cold whole process (streamguard run): embedded speedup over Spark local[*], "
                    "median of paired rounds", fontsize=10)
    seconds.set_yscale("log")
    seconds.set_ylabel("seconds (median, min–max)")
    seconds.set_title("Engines, cold whole process: seconds from spawn to the last exit (Spark dotted)", fontsize=10)


def _quality_points(records: Sequence[Mapping[str, Any]], population: str, topic_events: int, rule: str,
                    figure: str) -> tuple[list[int], list[float]]:
    def get(record: Mapping[str, Any]) -> float | None:
        # Runs with another seed (--seed) are checks of one draw's luck, not points of the history's line.
        return next((r[figure] for r in record.get("results", []) if r["population"] == population
                     and r["slice"] == QUALITY_SLICE and r["topic_events"] == topic_events and r["rule"] == rule
                     and r.get("seed", QUALITY_SEED) == QUALITY_SEED), None)

    return _points(records, get)


def _draw_quality(records: Sequence[Mapping[str, Any]], axis: Any, markers: str) -> None:
    """Recall (solid) and precision (dashed) of the detector at the goal slice per population, per quality run;
    1M-event topics lighter; the u10k bound of a classifier trained on the truth dotted."""
    topics = sorted({r["topic_events"] for record in records for r in record.get("results", [])
                     if r["slice"] == QUALITY_SLICE})
    for n, population in enumerate(QUALITY_POPULATIONS):
        for topic_events in topics:
            alpha = 1.0 if topic_events == QUALITY_SLICE else 0.4
            suffix = "" if topic_events == QUALITY_SLICE else f", {topic_events:,}-event topic"
            for figure, style in (("recall", "-"), ("precision", "--")):
                xs, ys = _quality_points(records, population, topic_events, "now", figure)
                if ys:
                    axis.plot(xs, ys, style, marker=markers[n % len(markers)], color=f"C{n}", alpha=alpha,
                              label=f"{population}{suffix}" if figure == "recall" else "_nolegend_")
    for topic_events in topics:
        xs, ys = _quality_points(records, "u10k", topic_events, "oracle_best", "recall")
        if ys:
            axis.plot(xs, ys, ":", marker="x", color="black", alpha=1.0 if topic_events == QUALITY_SLICE else 0.4,
                      label=f"u10k bound: trained on the truth, {topic_events:,}-event topic")
    axis.axhline(0.9, color="grey", linestyle=":", linewidth=1, label="recall goal 0.9")
    axis.axhline(0.8, color="grey", linestyle="-.", linewidth=1, label="precision goal 0.8")
    axis.set_ylim(0.0, 1.05)
    axis.set_ylabel("recall / precision")
    axis.set_title(f"Detection quality at {QUALITY_SLICE:,}-event slices per quality run: recall solid, precision "
                   "dashed (bench/quality.py)"
                   if records else "Detection quality: no run recorded", fontsize=10)
    axis.set_xticks(range(len(records)), [_label({**r, "date": r.get("recorded_at", "")}) for r in records],
                    fontsize=8)
    axis.set_xlim(-0.5, max(len(records) - 0.5, 0.5))


def render_scale(records: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """The scale benchmark's cost curves (bench/scale.py), log-log: per axis, seconds per stage and peak tree RSS
    per stage against the axis, embedded solid and Spark dashed. For each axis, later records that measured that axis
    replace earlier figures of the same engine and point, so a run that measured only some points of an axis adds to
    what was measured before, and a centre point measured for one axis does not move the curves of the others."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    from bench.scale_model import CENTRE, SECONDS_FLOOR, STAGES, Point, axis_points  # noqa: PLC0415

    results: dict[str, dict[str, dict[str, Any]]] = {}  # axis -> engine -> point key -> figures
    axes: dict[str, list[int]] = {}
    for record in records:
        for axis, values in record["settings"]["axes"].items():
            axes[axis] = sorted(set(axes.get(axis, [])) | set(values))
            for engine, by_point in record["results"].items():
                results.setdefault(axis, {}).setdefault(engine, {}).update(by_point)
    centre = Point(**records[-1]["settings"]["centre"]) if records else CENTRE
    titles = {"partitions": "partitions (slice {events:,}, {users:,} users)",
              "events": "events read (slice; {partitions} partitions, {users:,} users)",
              "users": "users in the topic ({partitions} partitions, slice {events:,})"}
    fig, panels = plt.subplots(len(axes), 2, figsize=(14, 4.6 * len(axes)), squeeze=False)
    styles = {"embedded": "-", "spark": "--"}
    for row, (axis, values) in enumerate(axes.items()):
        seconds_ax, rss_ax = panels[row]
        for engine, by_point in sorted(results.get(axis, {}).items()):
            measured = [(p.value(axis), by_point[p.key]) for p in axis_points(axis, values, centre)
                        if p.key in by_point]
            if not measured:
                continue
            xs = [x for x, _ in measured]
            for n, stage in enumerate(STAGES):
                color = "black" if stage == "total" else f"C{n}"
                seconds_ax.plot(xs, [max(f["stage_seconds"][stage], SECONDS_FLOOR) for _, f in measured],
                                styles.get(engine, ":"), marker="o", markersize=3, color=color,
                                linewidth=2 if stage == "total" else 1, label=f"{engine} {stage}")
                if stage != "total" and all(stage in f["stage_rss_mb"] for _, f in measured):
                    rss_ax.plot(xs, [f["stage_rss_mb"][stage] for _, f in measured], styles.get(engine, ":"),
                                marker="o", markersize=3, color=color, linewidth=1, label=f"{engine} {stage}")
            rss_ax.plot(xs, [f["peak_tree_rss_mb"] for _, f in measured], styles.get(engine, ":"), marker="s",
                        color="black", linewidth=2, label=f"{engine} peak (whole run)")
        label = titles[axis].format(partitions=centre.partitions, events=centre.events, users=centre.users)
        for panel, ylabel in ((seconds_ax, "seconds (median)"), (rss_ax, "peak tree RSS, MB")):
            panel.set_xscale("log")
            panel.set_yscale("log")
            panel.set_xlabel(label)
            panel.set_ylabel(ylabel)
            panel.grid(True, which="both", alpha=0.3)
        seconds_ax.set_title(f"Seconds per stage against {axis} (embedded solid, Spark local[*] dashed)", fontsize=10)
        rss_ax.set_title(f"Peak memory of the process tree during each stage against {axis}", fontsize=10)
    if axes:
        handles, labels = panels[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=8, fontsize=7)
    latest = records[-1] if records else None
    if latest:
        loads = [load[0][0] for record in records for by_point in record["results"].values()
                 for figures in by_point.values() for load in figures["load_avg"] if load and load[0]]
        span = f"{min(loads):.0f}–{max(loads):.0f}" if loads else "?"
        fig.suptitle(f"Scale: cold streamguard run, per stage ({len(records)} run(s), latest "
                     f"{str(latest['date'])[:16]} UTC, commit {str(latest['commit'].get('id') or '?')[:7]}; "
                     f"{latest['machine']['cpu_count']} shared CPUs at load average {span})", fontsize=11)
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
