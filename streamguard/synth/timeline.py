"""When events happen: activity intensity over the generated span, and turning quantiles into timestamps.

The span is ``days`` days ending at the fixed ``REFERENCE_END_MS`` (never the wall clock), cut into
``BIN_S``-second bins. Every source of events (normal activity, each anomalous user) has an intensity per bin;
their sum is the stream's intensity and its cumulative sum the CDF. Chunk ``i`` of the stream takes the
``i``-th slice of that CDF's quantiles, so chunks cover consecutive time windows, and sorted quantiles give
non-decreasing timestamps::

    tl = Timeline(days=7)
    weights = diurnal_profile(tl)
    cdf = np.cumsum(weights) / weights.sum()
    ms, bins = quantiles_to_ms(tl, cdf, np.sort(rng.uniform(0.0, 0.5, 1000)))
"""

from __future__ import annotations

import numpy as np

REFERENCE_END_MS = 1_767_571_200_000
"""2026-01-05T00:00:00Z, a Monday 00:00 UTC: the exclusive end of every generated span."""

BIN_S = 10
"""Bin width; fine enough that a credential-stuffing burst packed into one bin has sub-second spacing."""

DAY_S = 86_400


class Timeline:
    """The ``days``-day span ending at REFERENCE_END_MS, as BIN_S-second bins with their hour and weekday."""

    def __init__(self, days: int) -> None:
        self.days = days
        self.start_ms = REFERENCE_END_MS - days * DAY_S * 1000
        self.end_ms = REFERENCE_END_MS
        self.bins = days * DAY_S // BIN_S
        seconds = np.arange(self.bins, dtype=np.int64) * BIN_S
        self.hour = (seconds // 3600) % 24
        self.day = seconds // DAY_S
        # The span starts at midnight ``days`` days before a Monday; Monday is weekday 0.
        self.weekday = (self.day - days) % 7


def diurnal_profile(tl: Timeline) -> np.ndarray:
    """Office activity: weekdays 08–18 UTC busy, shoulders and weekends light, nights rare."""
    weekday = tl.weekday < 5
    office = (tl.hour >= 8) & (tl.hour < 18)
    shoulder = ((tl.hour >= 6) & (tl.hour < 8)) | ((tl.hour >= 18) & (tl.hour < 22))
    weights = np.full(tl.bins, 0.01)
    weights[~weekday & (office | shoulder)] = 0.06
    weights[weekday & shoulder] = 0.12
    weights[weekday & office] = 1.0
    return weights


def night_profile(tl: Timeline) -> np.ndarray:
    """00:00–05:59 UTC every day, nothing else."""
    return (tl.hour < 6).astype(np.float64)


def uniform_profile(tl: Timeline) -> np.ndarray:
    return np.ones(tl.bins)


def burst_profile(tl: Timeline, rng: np.random.Generator, bursts: int) -> np.ndarray:
    """``bursts`` single-bin bursts at random bins (a bin drawn twice holds a double burst)."""
    weights = np.zeros(tl.bins)
    np.add.at(weights, rng.integers(0, tl.bins, size=max(bursts, 1)), 1.0)
    return weights


def quantiles_to_ms(tl: Timeline, cdf: np.ndarray, quantiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Timestamps (int64 ms) and bins of ``quantiles`` under the per-bin, piecewise-uniform CDF ``cdf``.

    Non-decreasing quantiles give non-decreasing timestamps, all in [start_ms, end_ms), and every returned bin
    has positive intensity.
    """
    bins = np.minimum(np.searchsorted(cdf, quantiles, side="right"), tl.bins - 1)
    before = np.where(bins > 0, cdf[bins - 1], 0.0)
    width = cdf[bins] - before
    frac = np.divide(quantiles - before, width, out=np.zeros_like(quantiles), where=width > 0)
    frac = np.clip(frac, 0.0, 1.0)
    offset_ms = ((bins + frac) * (BIN_S * 1000)).astype(np.int64)
    return np.minimum(tl.start_ms + offset_ms, tl.end_ms - 1), bins
