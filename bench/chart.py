"""The history chart: speedups, flatness and bounded timings of every recorded run, and the engines cold
(speedup of the embedded engine over Spark, embedded seconds), per run (matplotlib, Agg, PNG).

    >>> render(history.load(), Path("bench/history/ratios.png"))

Records of either history format are drawn; a run that did not measure a series has no point in its panels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

GATE_FLOOR_HINT = 10.0  # drawn for orientation; the gate's own floor is in bench/baseline.json
ENGINE_GATE_FLOOR_HINT = 4.0  # the gate's engine floor at 1,000 events (bench/baseline.json), for orientation


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


def render(records: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Draw the chart of ``records`` (oldest first) into ``path``; returns the path."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: PLC0415

    fig, (speed, flat, times, engines, cold) = plt.subplots(5, 1, figsize=(10, 18), sharex=True)
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
    for axis in (speed, flat, times, engines, cold):
        axis.grid(True, which="both", alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=8, loc="best")
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
