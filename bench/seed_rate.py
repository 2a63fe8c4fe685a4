"""Broker start time and seeding rate (issue goal: 1,000,000 events at 400k events/s or more).

    python -m bench.seed_rate [--events 1000000] [--rounds 3]

Starts a fresh local broker (a new data directory each round, so nothing is cached), times it until it answers
metadata, then seeds a new topic and reports events/s as measured by the seeder (first message to last
acknowledgement). A benchmark, not a test: it prints figures and asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from streamguard.kafka.local_broker import LocalBroker
from streamguard.synth.seed import seed_topic

GOAL_EVENTS_PER_S = 400_000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    table = Table("round", "broker start (s)", "seeded", "seconds", "events/s", title="Broker start and seeding")
    starts, rates = [], []
    for round_no in range(1, args.rounds + 1):
        with tempfile.TemporaryDirectory(prefix="sg-seed-rate-") as tmp, \
                LocalBroker(data_dir=Path(tmp) / "kafka") as broker:
            result = seed_topic(broker.bootstrap, "seed-rate", events=args.events, partitions=args.partitions,
                                truth_path=Path(tmp) / "truth.json", progress=False)
            starts.append(broker.start_seconds or 0.0)
            rates.append(result.events_per_s)
            table.add_row(str(round_no), f"{broker.start_seconds:.1f}", f"{result.events:,}",
                          f"{result.seconds:.2f}", f"{result.events_per_s:,.0f}")
    console = Console()
    console.print(table)
    median_rate = statistics.median(rates)
    console.print(f"median broker start {statistics.median(starts):.1f} s; median seeding rate "
                  f"{median_rate:,.0f} events/s ({median_rate / GOAL_EVENTS_PER_S:.0%} of the "
                  f"{GOAL_EVENTS_PER_S:,}/s goal)")


if __name__ == "__main__":
    main()
