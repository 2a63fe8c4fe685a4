"""The rare-event test: a user with more individually risky events than the population's rate explains.

Some features count events that are rare and risky each on its own (the registry's ``rare_events``: a night read
of one of the slice's largest files, a failed login with one of its highest attempt counts, an unsigned process
with elevated privileges). Fed to the Isolation Forest such a count is lost: each tree samples 256 users, and
when 1 user in 500 has any such event most trees never see one. Averaged into per-user rates it is lost too (one
event among ten). So each count is tested on its own, per user, against the rate of such events in the
population:

    k ~ Poisson(p * n)      k: the user's count, n: the user's events, p: the population's rate per event

A user's *surprise* is ``-log10`` of the chance of ``k`` or more such events under that rate (the largest over
the counts). The rate is estimated from the fit sample without the users the test flags (repeated until no more
change, so the users it finds do not inflate the rate they are judged against), with one event added (a
population without any still has a rate). A user is flagged when the surprise passes a cut: ``alpha`` is the
chance that a user whose counts follow the rates is flagged by any of them (Bonferroni over the counts). It is a
per-user false-alarm rate, not a bound on any false alarm in the whole population: a detector may raise a few
false alarms (its goal is precision 0.8), and a population-wide bound at 10,000 users needed three or more risky
events from a user of ten events, so it missed every attacker seen once or twice.

The surprise is merged into the detector's raw outlyingness as ``raw_at_cut * surprise / cut`` (the larger of the
two counts), where ``raw_at_cut`` is the raw threshold of the outlier rule: a user at the cut lies exactly at
the threshold, so the calibrated score, the flag and the report keep one meaning.

    >>> test = RareEventTest.fit(sample, ("night_large_file_events",), alpha=0.01, raw_at_cut=0.6)
    >>> raw = test.merge(raw, frame)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import poisson

from streamguard.errors import DetectionError

# The count a rate is per: every rare-event count is per event of the user.
EVENTS_COLUMN = "total_events"
MAX_ROUNDS = 50
# Beyond double precision a tail is 0; the surprise stops here instead of becoming infinite.
MAX_SURPRISE = 300.0


@dataclass(frozen=True, kw_only=True)
class RareEventTest:
    """Fitted constants: the counts tested, their rates per event, the surprise cut and its raw outlyingness."""

    columns: tuple[str, ...]
    rates: np.ndarray = field(repr=False)
    alpha: float
    cut: float
    raw_at_cut: float

    @classmethod
    def fit(cls, sample: pd.DataFrame, columns: tuple[str, ...], *, alpha: float, raw_at_cut: float) -> RareEventTest:
        """Estimate each count's rate on ``sample`` (the fit sample, finite values) and the cut for ``alpha``."""
        cut = float(-np.log10(alpha / max(len(columns), 1)))
        events = _column(sample, EVENTS_COLUMN) if columns else np.zeros(0)
        rates = np.array([_robust_rate(_column(sample, name), events, cut) for name in columns], dtype=np.float64)
        return cls(columns=columns, rates=rates, alpha=alpha, cut=cut, raw_at_cut=max(raw_at_cut, 0.0))

    @property
    def input_columns(self) -> tuple[str, ...]:
        return (*self.columns, EVENTS_COLUMN) if self.columns else ()

    def surprise(self, frame: pd.DataFrame) -> np.ndarray:
        """Per row, the largest ``-log10`` Poisson upper tail over the counts (0 without any such event)."""
        found = np.zeros(len(frame), dtype=np.float64)
        if not self.columns:
            return found
        events = _column(frame, EVENTS_COLUMN)
        for name, rate in zip(self.columns, self.rates, strict=True):
            found = np.maximum(found, _surprise(_column(frame, name), events, float(rate)))
        return found

    def merge(self, raw: np.ndarray, frame: pd.DataFrame) -> np.ndarray:
        """``raw`` outlyingness raised where the rare events say more: to ``raw_at_cut`` at the cut, beyond it above."""
        if not self.columns or self.cut <= 0:
            return raw
        return np.maximum(raw, self.raw_at_cut * self.surprise(frame) / self.cut)

    def to_dict(self) -> dict[str, object]:
        return {"columns": list(self.columns), "rates": self.rates, "alpha": self.alpha, "cut": self.cut,
                "raw_at_cut": self.raw_at_cut}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> RareEventTest:
        columns = tuple(str(name) for name in data["columns"])  # type: ignore[attr-defined]
        rates = np.asarray(data["rates"], dtype=np.float64)
        if len(rates) != len(columns):
            raise DetectionError("the model's rare-event test is inconsistent (lengths differ)")
        return cls(columns=columns, rates=rates, alpha=float(data["alpha"]),  # type: ignore[arg-type]
                   cut=float(data["cut"]), raw_at_cut=float(data["raw_at_cut"]))  # type: ignore[arg-type]


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        raise DetectionError(f"the feature table lacks the column {name}")
    return frame[name].to_numpy(dtype=np.float64, na_value=np.nan)


def _surprise(counts: np.ndarray, events: np.ndarray, rate: float) -> np.ndarray:
    expected = rate * np.maximum(np.nan_to_num(events), 0.0)
    counts = np.nan_to_num(counts)
    with np.errstate(divide="ignore"):
        surprise = -np.log10(poisson.sf(counts - 1, expected))
    return np.where(counts > 0, np.minimum(surprise, MAX_SURPRISE), 0.0)


def _robust_rate(counts: np.ndarray, events: np.ndarray, cut: float) -> float:
    """The rate per event among the users the test does not flag at that rate, plus one event."""
    total_events = max(float(events.sum()), 1.0)
    kept = np.ones(len(counts), dtype=bool)
    rate = (float(counts.sum()) + 1.0) / total_events
    for _ in range(MAX_ROUNDS):
        rate = (float(counts[kept].sum()) + 1.0) / max(float(events[kept].sum()), 1.0)
        now_kept = _surprise(counts, events, rate) <= cut
        if (now_kept == kept).all():
            break
        kept = now_kept
    return rate
