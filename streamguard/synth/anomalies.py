"""Anomalous behaviours: what an anomalous user does on top of its normal activity.

Each anomalous user keeps its normal events and adds a second stream of events (about ``share`` times its
normal volume) following one behaviour. The k-th anomalous user gets ``BEHAVIOURS[k % 5]``:

credential_stuffing
    Bursts of failed password logins from a foreign city: ~30 attempts packed into one 10-second bin
    (sub-second spacing), 5–50 ``attempts_count`` each, mostly ``failed``/``blocked``, threat score ~0.4.
    Separates on failed_auth_rate, burst counts, attempts.
impossible_travel
    Ordinary-looking activity (auth heavy) whose ``geo_location`` and source address jump between all 30
    cities, many within the same day. Separates on unique_locations.
off_hours_bulk_file_access
    Successful reads of sensitive files (HR, finance, database dumps) of tens of MB to GBs, only 00:00–05:59
    UTC. Separates on unusual_hour_rate, bytes read, file share.
malware_process
    Executions of unsigned binaries with suspicious command lines (encoded PowerShell, miners, reverse
    shells), often with admin/system privileges, threat score 0.7–1.0. Separates on max/avg threat_score.
ip_hopping
    Auth, network and DNS activity from a new public source address every time (each used once in the stream),
    at any hour, with more failures than usual. Separates on unique/rare source IP ratio.

Use :func:`intensity` for when a behaviour's events happen and :func:`shape` to overwrite their columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streamguard.synth import catalog
from streamguard.synth.columns import UNIQUE_IP, EventColumns, categorical
from streamguard.synth.timeline import (
    Timeline,
    burst_profile,
    diurnal_profile,
    night_profile,
    uniform_profile,
)

BEHAVIOURS: tuple[str, ...] = (
    "credential_stuffing", "impossible_travel", "off_hours_bulk_file_access", "malware_process", "ip_hopping",
)

AUTH, NETWORK, FILE, PROCESS, DNS = range(5)
SUCCESS, FAILED, BLOCKED, PENDING = range(4)
BURST_EVENTS = 30
"""Expected credential-stuffing events per 10-second burst."""


@dataclass(frozen=True, slots=True)
class BehaviourSpec:
    name: str
    share: float
    """Expected anomalous events relative to the user's own normal events."""
    timing: str
    type_mix: tuple[float, ...]
    status_mix: tuple[float, ...]
    score: tuple[str, float, float]
    """("beta", a, b) or ("uniform", low, high)."""


SPECS: dict[str, BehaviourSpec] = {
    spec.name: spec
    for spec in (
        BehaviourSpec("credential_stuffing", 0.6, "bursts", (1, 0, 0, 0, 0), (0.02, 0.90, 0.08, 0.0),
                      ("beta", 4.0, 6.0)),
        BehaviourSpec("impossible_travel", 0.5, "diurnal", (0.6, 0.2, 0.1, 0.05, 0.05),
                      (0.9, 0.08, 0.015, 0.005), ("beta", 2.0, 8.0)),
        BehaviourSpec("off_hours_bulk_file_access", 0.6, "night", (0, 0, 1, 0, 0), (0.97, 0.02, 0.01, 0.0),
                      ("beta", 2.0, 10.0)),
        BehaviourSpec("malware_process", 0.4, "uniform", (0, 0, 0, 1, 0), (0.7, 0.05, 0.25, 0.0),
                      ("uniform", 0.7, 1.0)),
        BehaviourSpec("ip_hopping", 0.6, "uniform", (0.5, 0.4, 0, 0, 0.1), (0.8, 0.15, 0.04, 0.01),
                      ("beta", 2.0, 8.0)),
    )
}


def intensity(
    spec: BehaviourSpec, tl: Timeline, rng: np.random.Generator, expected_events: float
) -> np.ndarray:
    """Per-bin intensity of a behaviour's events, summing to 1."""
    if spec.timing == "bursts":
        weights = burst_profile(tl, rng, round(expected_events / BURST_EVENTS))
    elif spec.timing == "night":
        weights = night_profile(tl)
    elif spec.timing == "diurnal":
        weights = diurnal_profile(tl)
    else:
        weights = uniform_profile(tl)
    return weights / weights.sum()


def _city_ip(city: np.ndarray, rng: np.random.Generator, city_ip_base: int) -> np.ndarray:
    per_city = catalog.CITY_IPS_PER_CITY
    return city_ip_base + city * per_city + rng.integers(0, per_city, city.size)


def shape(
    spec: BehaviourSpec,
    cols: EventColumns,
    sel: np.ndarray,
    rng: np.random.Generator,
    *,
    origin_city: int,
    city_ip_base: int,
) -> None:
    """Overwrite the columns of the events at positions ``sel`` with behaviour ``spec``.

    ``origin_city`` is where this user's attacker (credential stuffing) sits; ``city_ip_base`` is where the
    per-city addresses start in the plan's IP table.
    """
    n = sel.size
    if n == 0:
        return
    cols.event_type[sel] = categorical(rng, spec.type_mix, n)
    cols.status[sel] = categorical(rng, spec.status_mix, n)
    kind, a, b = spec.score
    score = rng.beta(a, b, n) if kind == "beta" else rng.uniform(a, b, n)
    cols.score_milli[sel] = np.rint(score * 1000)

    if spec.name == "credential_stuffing":
        cols.city[sel] = origin_city
        cols.source_ip[sel] = _city_ip(np.full(n, origin_city), rng, city_ip_base)
        cols.auth_type[sel] = 0
        cols.attempts[sel] = rng.integers(5, 51, n)
    elif spec.name == "impossible_travel":
        city = rng.integers(0, len(catalog.CITIES), n)
        cols.city[sel] = city
        cols.source_ip[sel] = _city_ip(city, rng, city_ip_base)
    elif spec.name == "off_hours_bulk_file_access":
        cols.file_operation[sel] = 0
        cols.file_path[sel] = rng.integers(catalog.SENSITIVE_FILES.start, catalog.SENSITIVE_FILES.stop, n)
        cols.file_size[sel] = np.minimum(rng.lognormal(18.0, 1.0, n), 8e9).astype(np.int64)
    elif spec.name == "malware_process":
        cols.process[sel] = rng.integers(catalog.MALWARE_PROCESSES.start, catalog.MALWARE_PROCESSES.stop, n)
        cols.signed[sel] = False
        cols.privileges[sel] = categorical(rng, (0.3, 0.5, 0.2), n)
    elif spec.name == "ip_hopping":
        cols.source_ip[sel] = UNIQUE_IP
