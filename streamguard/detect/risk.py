"""The one-sided risk transform: how far each model feature of a user lies in its risky direction.

For each model feature the registry declares whether higher or lower values are risky (``Feature.risk``). A
user's value becomes a *risky deviation* in robust standard deviations, clipped at 0 in the safe direction:

    r = max(0, sign * (e - median(e)) / (1.4826 * MAD(e)))

so a user who is unusual only by being safer than the rest (fewer failures, lower threat scores, no night
work) maps to 0 on every feature, the same point as a perfectly typical user, and the detector cannot tell it
apart from normal. ``e`` is the feature itself, or for a rate or mean over a user's own events the *evidence*
of a difference from the pooled rate, ``(x - p) * sqrt(n)`` with ``n`` the events the rate is over
(``SUPPORT``): 2 failed logins out of 3 say less than 200 out of 300, and without this the quietest users'
chance rates outrank real attacks on large populations (bench/QUALITY.md). Median and MAD instead of mean and
standard deviation keep the few anomalous users from setting the scale they are measured against; a feature
with a MAD of 0 (most users at one value, e.g. no burst at all) falls back to its standard deviation, then 1.

    >>> transform = RiskTransform.fit(sample, ("failed_auth_rate", "unique_ips"))
    >>> transform.transform(frame)           # (rows, features) float64 array, >= 0
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from streamguard.contracts.features import FEATURE_BY_NAME
from streamguard.errors import DetectionError

MAD_TO_STD = 1.4826
# A rate or mean over a user's own events -> the count of events it is over.
SUPPORT: dict[str, str] = {
    "avg_threat_score": "total_events",
    "failed_auth_rate": "auth_attempt_count",
    "unusual_hour_rate": "total_events",
    "weekend_rate": "total_events",
    "ip_diversity_score": "total_events",
    "rare_ip_ratio": "unique_ips",
    "blocked_rate": "total_events",
    "unsigned_process_rate": "process_execution_count",
}


def input_columns(columns: tuple[str, ...]) -> tuple[str, ...]:
    """The model features plus the counts their rates are over (what the fit sample and scoring read)."""
    supports = [SUPPORT[name] for name in columns if name in SUPPORT]
    return tuple(dict.fromkeys([*columns, *supports]))


def risk_signs(columns: tuple[str, ...]) -> np.ndarray:
    """+1 for a feature whose higher values are risky, -1 for lower, from the feature registry."""
    signs = []
    for name in columns:
        feature = FEATURE_BY_NAME.get(name)
        if feature is None or feature.risk is None:
            raise DetectionError(f"feature {name} declares no risky direction in the registry")
        signs.append(1.0 if feature.risk == "higher" else -1.0)
    return np.array(signs, dtype=np.float64)


@dataclass(frozen=True, kw_only=True)
class RiskTransform:
    """Fitted constants of the transform, one entry per feature (``supports[i]`` empty: not a rate)."""

    columns: tuple[str, ...]
    supports: tuple[str, ...]
    signs: np.ndarray = field(repr=False)
    pooled: np.ndarray = field(repr=False)
    center: np.ndarray = field(repr=False)
    scale: np.ndarray = field(repr=False)

    @classmethod
    def fit(cls, sample: pd.DataFrame, columns: tuple[str, ...]) -> RiskTransform:
        """Fit on the fit sample (finite values only; the caller checks)."""
        supports = tuple(SUPPORT.get(name, "") for name in columns)
        values = _matrix(sample, columns)
        counts = _counts(sample, supports)
        pooled = np.zeros(len(columns), dtype=np.float64)
        for j, support in enumerate(supports):
            if support:
                total = counts[:, j].sum()
                pooled[j] = float((values[:, j] * counts[:, j]).sum() / total) if total > 0 else 0.0
        evidence = _evidence(values, counts, pooled, supports)
        center = np.median(evidence, axis=0)
        scale = MAD_TO_STD * np.median(np.abs(evidence - center), axis=0)
        spread = evidence.std(axis=0)
        scale = np.where(scale > 0, scale, np.where(spread > 0, spread, 1.0))
        return cls(columns=columns, supports=supports, signs=risk_signs(columns), pooled=pooled, center=center,
                   scale=scale)

    @property
    def input_columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*self.columns, *(s for s in self.supports if s)]))

    def deviations(self, frame: pd.DataFrame) -> np.ndarray:
        """Signed deviations in robust standard deviations, positive in the risky direction (NaN when unknown)."""
        values = _matrix(frame, self.columns)
        evidence = _evidence(values, _counts(frame, self.supports), self.pooled, self.supports)
        with np.errstate(invalid="ignore"):
            return self.signs * (evidence - self.center) / self.scale

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Risky deviations, >= 0; a missing or infinite value counts as no risky deviation."""
        deviations = self.deviations(frame)
        return np.where(np.isfinite(deviations), np.maximum(deviations, 0.0), 0.0)

    def to_dict(self) -> dict[str, object]:
        return {"columns": list(self.columns), "supports": list(self.supports), "signs": self.signs,
                "pooled": self.pooled, "center": self.center, "scale": self.scale}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> RiskTransform:
        arrays = {name: np.asarray(data[name], dtype=np.float64) for name in ("signs", "pooled", "center", "scale")}
        columns = tuple(str(name) for name in data["columns"])  # type: ignore[attr-defined]
        supports = tuple(str(name) for name in data["supports"])  # type: ignore[attr-defined]
        if any(len(values) != len(columns) for values in arrays.values()) or len(supports) != len(columns):
            raise DetectionError("the model's risk transform is inconsistent (lengths differ)")
        return cls(columns=columns, supports=supports, **arrays)


def _matrix(frame: pd.DataFrame, columns: tuple[str, ...]) -> np.ndarray:
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise DetectionError(f"the feature table lacks the column(s) {', '.join(missing)}")
    return frame.loc[:, list(columns)].to_numpy(dtype=np.float64, na_value=np.nan)


def _counts(frame: pd.DataFrame, supports: tuple[str, ...]) -> np.ndarray:
    counts = np.ones((len(frame), len(supports)), dtype=np.float64)
    for j, support in enumerate(supports):
        if support:
            counts[:, j] = _matrix(frame, (support,))[:, 0]
    return counts


def _evidence(values: np.ndarray, counts: np.ndarray, pooled: np.ndarray, supports: tuple[str, ...]) -> np.ndarray:
    rated = np.array([bool(s) for s in supports])
    # A rate over no event (e.g. no auth attempt) carries no evidence either way: weight 0, not 1.
    weights = np.sqrt(np.maximum(counts, 0.0))
    return np.where(rated, (values - pooled) * weights, values)
