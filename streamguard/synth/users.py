"""The synthetic user population: names, homes, devices, activity volume, and which users turn anomalous.

Everything here is drawn once per generator configuration from the plan RNG, so every worker process rebuilds
the
same population. Use :func:`make_users`::

    users = make_users(np.random.default_rng(1), count=50, anomalous=5)
    [u.name for u in users if u.behaviour]          # e.g. ['erin', 'ivan', ...]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streamguard.errors import DataError
from streamguard.synth.anomalies import BEHAVIOURS
from streamguard.synth.catalog import CITIES, CITY_IPS_PER_CITY, HOME_CITIES, USER_AGENTS

NAMED_USERS: tuple[str, ...] = (
    "admin", "manager", "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
    "ivan", "judy", "mallory", "oscar", "peggy", "trent", "victor", "walter", "svc_backup", "svc_deploy",
)
NEVER_ANOMALOUS: frozenset[str] = frozenset({"admin", "manager"})
"""Kept normal so that a demo can always ask about a known-normal user."""

@dataclass(frozen=True, slots=True)
class UserProfile:
    """One user: where they normally log in from, on which machine, and how busy they are."""

    name: str
    home_ips: tuple[str, ...]
    home_city: int
    travel_city: int
    hostname: str
    user_agent: str
    weight: float
    """Share of all normal activity; lognormal, so a few users are much busier than the rest."""
    behaviour: str | None = None


def user_names(count: int) -> list[str]:
    """The first ``count`` user names: the named list, then ``user_0021``, ``user_0022``, …"""
    named = list(NAMED_USERS[:count])
    return named + [f"user_{i:04d}" for i in range(len(NAMED_USERS) + 1, count + 1)]


def check_population(users: int, anomalous: int, quiet: int = 0) -> None:
    """Raise DataError unless ``users`` users can hold ``anomalous`` anomalous and ``quiet`` quiet ones."""
    if users < 1:
        raise DataError(f"need at least one user, not {users}")
    eligible = sum(name not in NEVER_ANOMALOUS for name in user_names(users))
    if not 0 <= anomalous <= eligible:
        raise DataError(
            f"anomalous users must be between 0 and {eligible} for {users} users "
            f"({', '.join(sorted(NEVER_ANOMALOUS))} stay normal), not {anomalous}"
        )
    if quiet < 0 or (quiet and anomalous + quiet >= eligible):
        raise DataError(
            f"quiet users must be between 0 and {max(0, eligible - anomalous - 1)} for {users} users with "
            f"{anomalous} anomalous (one normal user must remain besides {', '.join(sorted(NEVER_ANOMALOUS))}), "
            f"not {quiet}"
        )


def make_users(rng: np.random.Generator, count: int, anomalous: int) -> list[UserProfile]:
    """Draw ``count`` users; ``anomalous`` of them (never admin or manager) cycle through BEHAVIOURS."""
    check_population(count, anomalous)
    names = user_names(count)
    weights = rng.lognormal(mean=0.0, sigma=1.0, size=count)
    eligible = [i for i, name in enumerate(names) if name not in NEVER_ANOMALOUS]
    picked = [int(i) for i in rng.choice(eligible, size=anomalous, replace=False)] if anomalous else []
    # An anomalous user drowned in its own low volume would be invisible to per-user features.
    floor = float(np.median(weights))
    for i in picked:
        weights[i] = max(weights[i], floor)
    weights = weights / weights.sum()
    behaviour_of = {i: BEHAVIOURS[j % len(BEHAVIOURS)] for j, i in enumerate(picked)}

    users = []
    for i, name in enumerate(names):
        n_ips = 1 + int(rng.random() < 0.4)
        subnet = int(rng.integers(0, 64))
        home_ips = tuple(
            f"10.{subnet}.{int(rng.integers(0, 256))}.{int(rng.integers(2, 255))}" for _ in range(n_ips)
        )
        home_city = int(rng.integers(0, HOME_CITIES))
        travel_city = int(rng.integers(0, len(CITIES)))
        machine = "srv" if name.startswith("svc_") else "ws"
        users.append(UserProfile(
            name=name,
            home_ips=home_ips,
            home_city=home_city,
            travel_city=travel_city,
            hostname=f"{machine}-{name.replace('_', '-')}-{int(rng.integers(1, 100)):02d}",
            user_agent=USER_AGENTS[-1] if machine == "srv" else USER_AGENTS[int(rng.integers(0, 6))],
            weight=float(weights[i]),
            behaviour=behaviour_of.get(i),
        ))
    return users


def city_ips(rng: np.random.Generator) -> list[list[str]]:
    """For each city, CITY_IPS_PER_CITY public-looking addresses."""
    pools = []
    for city in range(len(CITIES)):
        first = 20 + (city * 7) % 180
        pools.append([
            f"{first}.{int(rng.integers(0, 256))}.{int(rng.integers(0, 256))}.{int(rng.integers(1, 255))}"
            for _ in range(CITY_IPS_PER_CITY)
        ])
    return pools
