"""Hand durations measured by the harness to pytest-benchmark, so its statistics and JSON describe them.

pytest-benchmark times one callable per test; the benchmark needs two series measured in alternation (bounded,
full scan, bounded, ...). The harness measures the interleaved rounds once, and each test replays its series:
the test's timer is a clock that moves only when a replayed round tells it to, so pytest-benchmark records each
round as exactly the seconds the harness measured, in order, and computes its usual statistics on them.

    pytestmark = pytest.mark.benchmark(timer=CLOCK)

    def test_read(benchmark, read_series):
        replay(benchmark, read_series["read/bounded/100000"])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class ReplayClock:
    """A clock that advances only through :meth:`advance`; callable like ``time.perf_counter``."""

    def __init__(self) -> None:
        self._now = 0.0

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds

    def __repr__(self) -> str:
        return "bench.replay.CLOCK"


CLOCK = ReplayClock()


def replay(benchmark: Any, seconds: Sequence[float], extra_info: dict[str, Any], *, group: str) -> None:
    """Record ``seconds`` as the rounds of ``benchmark`` (a pytest-benchmark fixture timed by CLOCK)."""
    rounds = iter(seconds)
    benchmark.group = group
    benchmark.extra_info.update(extra_info)
    benchmark.pedantic(lambda: CLOCK.advance(next(rounds)), rounds=len(seconds), iterations=1, warmup_rounds=0)
