"""Charts as inline SVG, drawn on the server: no script and no library in the page.

Shapes carry classes (``bar normal``, ``bar flagged``, ``threshold``, ...) that the stylesheet colours, and a
``<title>`` with the exact figures, which browsers show on hover. Sizes are in viewBox units; the stylesheet
scales the charts to the column width.

    >>> histogram_svg(index.histogram, marker=0.81)        # the user's own score marked
    >>> bars_svg([("kafka_read", 3.4), ("parse", 2.0)], unit="s")
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from markupsafe import Markup

from streamguard.web.view import Histogram

_WIDTH, _HEIGHT = 640, 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 44, 12, 26, 34


def histogram_svg(histogram: Histogram, *, marker: float | None = None, label: str = "") -> Markup:
    """Users per score bin (flagged users stacked on top), the threshold, and optionally one score marked."""
    plot_w, plot_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM
    totals = [n + f for n, f in zip(histogram.normal, histogram.flagged, strict=True)]
    top = _nice_ceiling(max(totals, default=0))
    bins = len(totals)

    def x(score: float) -> float:
        return _LEFT + plot_w * min(max(score, 0.0), 1.0)

    def height(count: int) -> float:
        # A bin with users stays visible however many users the tallest bin holds.
        return 0.0 if count == 0 else max(1.5, plot_h * count / top)

    title = label or (f"Anomaly scores of {histogram.users:,} users in {bins} bins; "
                      f"threshold {histogram.threshold:.3f}")
    parts = [f'<svg class="chart histogram" viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" '
             f'aria-label="{escape(title)}">', f"<title>{escape(title)}</title>"]
    for tick in (0, top // 2, top) if top > 1 else (0, top):
        y = _TOP + plot_h - plot_h * tick / top
        parts.append(f'<line class="grid" x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text class="tick" x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:,}</text>')
    slot = plot_w / bins
    for i, (normal, flagged) in enumerate(zip(histogram.normal, histogram.flagged, strict=True)):
        low, high = histogram.edges[i], histogram.edges[i + 1]
        left, bottom = _LEFT + slot * i + 1, _TOP + plot_h
        tip = f"score {low:.2f}–{high:.2f}: {normal + flagged:,} users ({flagged:,} flagged)"
        for count, kind in ((normal, "normal"), (flagged, "flagged")):
            if count == 0:
                continue
            h = height(count)
            bottom -= h
            parts.append(f'<rect class="bar {kind}" x="{left:.1f}" y="{bottom:.1f}" width="{slot - 2:.1f}" '
                         f'height="{h:.1f}"><title>{escape(tip)}</title></rect>')
    for score in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<text class="tick" x="{x(score):.1f}" y="{_HEIGHT - _BOTTOM + 16}" '
                     f'text-anchor="middle">{score:g}</text>')
    parts.append(f'<text class="axis" x="{_LEFT + plot_w / 2:.1f}" y="{_HEIGHT - 4}" '
                 'text-anchor="middle">anomaly score</text>')
    parts.append(_vertical("threshold", x(histogram.threshold), f"threshold {histogram.threshold:.3f}", plot_h))
    if marker is not None:
        parts.append(_vertical("marker", x(marker), f"this user {marker:.3f}", plot_h, below=True))
    parts.append("</svg>")
    return Markup("".join(parts))


def bars_svg(items: Sequence[tuple[str, float]], *, unit: str, digits: int = 2) -> Markup:
    """One horizontal bar per ``(label, value)``, scaled to the largest, the value written after it."""
    row, label_w, value_w = 24, 130, 80
    height = row * len(items) + 8
    bar_w = _WIDTH - label_w - value_w
    largest = max((value for _, value in items), default=0.0)
    summary = ", ".join(f"{label} {value:,.{digits}f} {unit}" for label, value in items)
    parts = [f'<svg class="chart bars" viewBox="0 0 {_WIDTH} {height}" role="img" aria-label="{escape(summary)}">']
    for i, (label, value) in enumerate(items):
        y = 4 + row * i
        w = 0.0 if largest <= 0 else bar_w * value / largest
        text = f"{value:,.{digits}f} {unit}"
        parts.append(
            f'<text class="label" x="{label_w - 8}" y="{y + 16}" text-anchor="end">{escape(label)}</text>'
            f'<rect class="bar stage" x="{label_w}" y="{y + 3}" width="{max(w, 1.0):.1f}" height="{row - 8}">'
            f"<title>{escape(label)}: {escape(text)}</title></rect>"
            f'<text class="value" x="{label_w + w + 6:.1f}" y="{y + 16}">{escape(text)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _vertical(kind: str, x: float, text: str, plot_h: float, *, below: bool = False) -> str:
    # Labels sit inside the chart: to the left of a line in the right half, to the right otherwise.
    anchor, dx = ("end", -4) if x > _LEFT + (_WIDTH - _LEFT - _RIGHT) / 2 else ("start", 4)
    y = _TOP - 8 if not below else _TOP + 12
    return (f'<line class="{kind}" x1="{x:.1f}" x2="{x:.1f}" y1="{_TOP - 4}" y2="{_TOP + plot_h:.1f}"/>'
            f'<text class="{kind}-label" x="{x + dx:.1f}" y="{y}" text-anchor="{anchor}">{escape(text)}</text>')


def _nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5 times a power of ten that is at least ``value`` (at least 1)."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power
