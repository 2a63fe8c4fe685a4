"""The arithmetic every figure goes through, so the history, the table and the gate agree on it.

    >>> summary([0.31, 0.29, 0.40])["median"]
    0.31
    >>> paired_ratio(full_scan=[6.0, 6.6], bounded=[0.3, 0.3])     # median of 20.0 and 22.0
    21.0

A ratio of two series measured in the same interleaved rounds is the median of the per-round ratios: round i of
one against round i of the other, which ran seconds apart, so a slow spell of the machine cancels out.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def summary(seconds: Sequence[float]) -> dict[str, float | int]:
    """min / median / max / mean of a series, and how many rounds it has."""
    if not seconds:
        raise ValueError("a series needs at least one round")
    return {"min": round(min(seconds), 4), "median": round(statistics.median(seconds), 4),
            "max": round(max(seconds), 4), "mean": round(statistics.fmean(seconds), 4), "rounds": len(seconds)}


def paired_ratio(numerator: Sequence[float], denominator: Sequence[float]) -> float:
    """Median over rounds of ``numerator[i] / denominator[i]``; both series must have the same rounds."""
    if len(numerator) != len(denominator) or not numerator:
        raise ValueError(f"paired series need the same, non-zero number of rounds "
                         f"({len(numerator)} vs {len(denominator)})")
    if min(denominator) <= 0:
        raise ValueError("a denominator round took no time")
    return round(statistics.median(n / d for n, d in zip(numerator, denominator, strict=True)), 3)
