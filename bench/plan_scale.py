"""Planner scaling: what the plan stage of a cold CLI run costs at 4, 64 and 1,000 partitions.

    python -m bench.plan_scale                          # 15 rounds per size on the bench broker, record appended
    python -m bench.plan_scale --baseline-rev a1b2c3d   # also the planner of that commit, interleaved, same topics

Every round runs ``plan_read`` (start ``earliest``, ``--max-events`` 1,000) in a fresh Python process
(``python -c``), the way ``streamguard run`` pays for it: a new admin client, no metadata cached. The child times
``plan_read`` alone (``plan`` seconds, and the CPU seconds its process spent meanwhile; interpreter start-up and
imports are reported apart, in ``process``), checks that the plan covers every partition and exactly
``min(max_events, available)`` records, and prints one JSON line. Rounds are interleaved over sizes (and
planners), after one discarded warm-up round; before them, a few in-process plans per topic warm the broker (the
client stays cold: every round is a new process).

Topics ``plan-scale-<N>p`` hold a few records per partition (seeding is not the point) on the benchmark broker of
``bench/topics.py`` (or ``STREAMGUARD_KAFKA_BOOTSTRAP``'s cluster); they are created once and reused. Each run
appends one JSON record to ``bench/history/plan_scale.jsonl`` (format in ``bench/PLAN_SCALE.md``).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka import Producer

from bench.figures import summary
from bench.machine import machine_info, versions
from bench.topics import BenchSetupError, bench_broker, broker_kind
from streamguard.errors import BrokerUnreachable
from streamguard.kafka.admin import ensure_topic, partition_count, watermarks

FORMAT = 1
REPO = Path(__file__).resolve().parent.parent
HISTORY_FILE = REPO / "bench" / "history" / "plan_scale.jsonl"
SIZES = (4, 64, 1_000)
ROUNDS = 15
WARMUP_ROUNDS = 1
MAX_EVENTS = 1_000
RECORDS_PER_PARTITION = 3
BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
GOAL_SECONDS = {4: 0.1, 1_000: 0.3}  # plan seconds, median and every round
GOAL_MAX_OVER_MEDIAN = 2.0
BROKER_WARMUP_PLANS = 20  # in-process plans per topic before any measured round
_CHILD_TIMEOUT_S = 120

# The child: plain ``python -c`` so that it imports whichever ``streamguard`` its working directory holds (this
# checkout, or a baseline commit exported to a temporary directory).
_CHILD = """
import json, sys, time
began = time.perf_counter()
import streamguard
from streamguard.kafka.plan import plan_read
imported, cpu = time.perf_counter(), time.process_time()
plan = plan_read(sys.argv[1], sys.argv[2], max_events=int(sys.argv[3]))
planned, cpu = time.perf_counter(), time.process_time() - cpu
print(json.dumps({"plan_s": planned - imported, "cpu_s": cpu, "import_s": imported - began,
                  "partitions": len(plan.watermarks), "planned": plan.planned_records,
                  "available": plan.available_records, "package": streamguard.__file__}))
"""


class PlanScaleError(RuntimeError):
    """A child failed or returned a wrong plan; the measurement is not recorded."""


@dataclass(frozen=True, slots=True)
class Planner:
    """A planner to measure: ``current`` (this checkout) or ``baseline`` (a commit's ``streamguard/``)."""

    name: str
    root: Path
    commit: str | None = None


def topic_name(partitions: int) -> str:
    return f"plan-scale-{partitions}p"


def ensure_plan_topic(bootstrap: str, partitions: int) -> str:
    """The topic of ``partitions`` partitions with RECORDS_PER_PARTITION records each; topped up when short."""
    name = topic_name(partitions)
    if ensure_topic(bootstrap, name, partitions, timeout_s=120.0):
        short = dict.fromkeys(range(partitions), 0)  # the producer waits for the new partitions' leaders
    else:
        found = partition_count(bootstrap, name)
        if found != partitions:
            raise BenchSetupError(f"topic {name} has {found} partitions, not {partitions}; delete it and run again")
        short = {w.partition: w.high for w in _readable_watermarks(bootstrap, name, partitions)
                 if w.high < RECORDS_PER_PARTITION}
    if short:
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "log_level": 0})
        for partition, high in short.items():
            for i in range(high, RECORDS_PER_PARTITION):
                producer.produce(name, json.dumps({"p": partition, "i": i}).encode(), partition=partition,
                                 timestamp=BASE_MS + i * 1_000)
            producer.poll(0)
        if producer.flush(120):
            raise BenchSetupError(f"could not write the records of {name}")
    return name


def _readable_watermarks(bootstrap: str, topic: str, partitions: int, timeout_s: float = 60.0) -> list:
    # A broker restarted on its old data answers metadata before it has loaded every partition; until then
    # ListOffsets fails (e.g. UNKNOWN_LEADER_EPOCH). Measure once every partition answers.
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return watermarks(bootstrap, topic, partitions)
        except BrokerUnreachable as exc:
            if time.monotonic() > deadline:
                raise BenchSetupError(f"{topic}: partitions still not readable after {timeout_s:.0f} s: {exc}") from exc
            time.sleep(0.5)


@contextmanager
def planners(baseline_rev: str | None) -> Iterator[list[Planner]]:
    """This checkout, and with ``baseline_rev`` that commit's ``streamguard/`` exported to a temporary directory."""
    current = Planner("current", REPO, _git("rev-parse", "HEAD"))
    if baseline_rev is None:
        yield [current]
        return
    commit = _git("rev-parse", "--verify", f"{baseline_rev}^{{commit}}")
    archive = subprocess.run(["git", "archive", "--format=tar", commit, "streamguard"], cwd=REPO,
                             capture_output=True, check=True).stdout
    with tempfile.TemporaryDirectory(prefix="plan-scale-baseline-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        yield [Planner("baseline", Path(tmp), commit), current]


def plan_once(planner: Planner, bootstrap: str, topic: str, partitions: int, max_events: int) -> dict:
    """One cold plan in a fresh process; checks the plan and returns the child's figures plus process seconds."""
    command = [sys.executable, "-c", _CHILD, bootstrap, topic, str(max_events)]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the working directory picks the package
    began = time.perf_counter()
    done = subprocess.run(command, cwd=planner.root, env=env, capture_output=True, text=True,
                          timeout=_CHILD_TIMEOUT_S, check=False)
    process_s = time.perf_counter() - began
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-8:])
        raise PlanScaleError(f"{planner.name} planner on {topic} exited with {done.returncode}:\n{tail}")
    result = json.loads(lines[-1])
    if Path(result["package"]).resolve().parent.parent != planner.root.resolve():
        raise PlanScaleError(f"{planner.name} planner imported {result['package']}, not the one in {planner.root}")
    expected = min(max_events, partitions * RECORDS_PER_PARTITION)
    if result["partitions"] != partitions or result["planned"] != expected:
        raise PlanScaleError(f"{planner.name} planner on {topic}: {result['partitions']} partitions and "
                             f"{result['planned']} records planned, not {partitions} and {expected}")
    return {"plan_s": round(result["plan_s"], 4), "cpu_s": round(result["cpu_s"], 4),
            "import_s": round(result["import_s"], 4), "process_s": round(process_s, 4)}


def warm_broker(bootstrap: str, topics: dict[int, str], plans: int = BROKER_WARMUP_PLANS) -> float:
    """Plan every topic a few times in this process, so that the broker, not the client, is warm.

    What a round measures is a cold client against a running broker; the bench broker has often just been
    started (its first ListOffsets over 1,000 partitions runs in an unwarmed JVM), which users' brokers are not.
    """
    from streamguard.kafka.plan import plan_read  # noqa: PLC0415 - the children import the planner themselves

    began = time.perf_counter()
    for _ in range(plans):
        for topic in topics.values():
            plan_read(bootstrap, topic, max_events=MAX_EVENTS)
    return time.perf_counter() - began


def measure(
    bootstrap: str, topics: dict[int, str], planner_list: Sequence[Planner], *, rounds: int, warmup: int,
    max_events: int, progress: bool = True,
) -> dict[str, dict[int, list[dict]]]:
    """Interleaved rounds: each round plans every size with every planner once; warm-up rounds are discarded."""
    samples: dict[str, dict[int, list[dict]]] = {p.name: {n: [] for n in topics} for p in planner_list}
    for index in range(warmup + rounds):
        for partitions, topic in topics.items():
            for planner in planner_list:
                sample = plan_once(planner, bootstrap, topic, partitions, max_events)
                if progress:
                    label = "warm-up" if index < warmup else f"round {index - warmup + 1}"
                    print(f"  {label:<9} {planner.name:<8} {partitions:>5} partitions  plan {sample['plan_s']:.4f} s"
                          f"  (process {sample['process_s']:.3f} s)", flush=True)
                if index >= warmup:
                    samples[planner.name][partitions].append(sample)
    return samples


def stats(series: list[dict]) -> dict:
    """summary() of the plan seconds, max/median, CPU and process medians; the raw rounds kept."""
    plan = [s["plan_s"] for s in series]
    cpu = summary([s["cpu_s"] for s in series])
    figures = summary(plan)
    return {**figures, "max_over_median": round(figures["max"] / figures["median"], 2),
            "cpu_median": cpu["median"], "cpu_max": cpu["max"],
            "process_median": summary([s["process_s"] for s in series])["median"],
            "import_median": summary([s["import_s"] for s in series])["median"], "seconds": plan,
            "cpu_seconds": [s["cpu_s"] for s in series]}


def goal_misses(current: dict[int, dict]) -> list[str]:
    """Why the current planner misses its goals (empty when it meets them)."""
    misses = []
    for partitions, limit in GOAL_SECONDS.items():
        if partitions in current and current[partitions]["max"] > limit:
            misses.append(f"{partitions} partitions: slowest plan {current[partitions]['max']:.3f} s > {limit} s")
    for partitions, figures in current.items():
        if figures["max_over_median"] > GOAL_MAX_OVER_MEDIAN:
            misses.append(f"{partitions} partitions: max/median {figures['max_over_median']:.2f} > "
                          f"{GOAL_MAX_OVER_MEDIAN}")
    return misses


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()


def _commit_info() -> dict:
    dirty = bool(_git("status", "--porcelain", "--", "streamguard", "bench"))
    return {"id": _git("rev-parse", "HEAD"), "branch": _git("rev-parse", "--abbrev-ref", "HEAD"), "dirty": dirty}


def print_table(record: dict) -> None:
    print(f"plan stage, fresh process per round, {record['settings']['rounds']} rounds per size "
          f"(start earliest, max_events {record['settings']['max_events']:,})")
    print(f"  {'planner':<9}{'partitions':>11}{'median':>10}{'min':>10}{'max':>10}{'max/med':>9}{'cpu med':>10}"
          f"{'cpu max':>10}{'process':>10}")
    for name, by_size in record["planners"].items():
        for partitions, f in by_size.items():
            print(f"  {name:<9}{int(partitions):>11,}{f['median']:>9.4f}s{f['min']:>9.4f}s{f['max']:>9.4f}s"
                  f"{f['max_over_median']:>8.2f}×{f['cpu_median']:>9.4f}s{f['cpu_max']:>9.4f}s"
                  f"{f['process_median']:>9.3f}s")
    goals = record["goals"]
    print("goals (current planner): " + ("met" if goals["met"] else "MISSED: " + "; ".join(goals["misses"])))


def run(args: argparse.Namespace) -> dict:
    started = datetime.now(UTC)
    commit = _commit_info()  # before anything runs: others may commit to this checkout meanwhile
    machine_start = machine_info()
    with bench_broker() as broker, planners(args.baseline_rev) as planner_list:
        bootstrap = broker.bootstrap
        began = time.perf_counter()
        topics = {n: ensure_plan_topic(bootstrap, n) for n in args.partitions}
        print(f"topics ready in {time.perf_counter() - began:.1f} s: {', '.join(topics.values())}", flush=True)
        print(f"broker warmed by {BROKER_WARMUP_PLANS} in-process plans per topic in "
              f"{warm_broker(bootstrap, topics):.1f} s", flush=True)
        samples = measure(bootstrap, topics, planner_list, rounds=args.rounds, warmup=args.warmup,
                          max_events=args.max_events)
        planner_commits = {p.name: p.commit for p in planner_list}
    by_planner = {name: {str(n): stats(series) for n, series in by_size.items()} for name, by_size in samples.items()}
    misses = goal_misses({int(n): f for n, f in by_planner["current"].items()})
    machine_end = machine_info()
    return {
        "format": FORMAT,
        "date": started.isoformat(),
        "commit": commit,
        "machine": {**{k: v for k, v in machine_start.items() if k != "load_avg"},
                    "load_avg_start": machine_start["load_avg"], "load_avg_end": machine_end["load_avg"]},
        "versions": versions(broker=broker_kind()),
        "broker": broker_kind(),
        "settings": {"partitions": list(args.partitions), "records_per_partition": RECORDS_PER_PARTITION,
                     "max_events": args.max_events, "start": "earliest", "rounds": args.rounds,
                     "warmup_rounds": args.warmup, "broker_warmup_plans": BROKER_WARMUP_PLANS,
                     "planner_commits": planner_commits},
        "planners": by_planner,
        "goals": {"seconds": {str(n): s for n, s in GOAL_SECONDS.items()}, "max_over_median": GOAL_MAX_OVER_MEDIAN,
                  "met": not misses, "misses": misses},
    }


def _sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(part.replace("_", "")) for part in text.split(",")})
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"partition counts must be comma-separated integers: {exc}") from exc
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError("partition counts must be at least 1")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.plan_scale", description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=_sizes, default=list(SIZES),
                        help="comma-separated partition counts (default 4,64,1000)")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"measured rounds per size (default {ROUNDS})")
    parser.add_argument("--warmup", type=int, default=WARMUP_ROUNDS, help="discarded warm-up rounds (default 1)")
    parser.add_argument("--max-events", type=int, default=MAX_EVENTS, help="plan_read's max_events (default 1000)")
    parser.add_argument("--baseline-rev", help="also measure the planner of this git revision, interleaved")
    parser.add_argument("--no-history", action="store_true", help=f"do not append to {HISTORY_FILE.name}")
    parser.add_argument("--json", type=Path, help="also write the record to this file")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.warmup < 0 or args.max_events < 1:
        parser.error("--rounds and --max-events must be at least 1, --warmup at least 0")
    try:
        record = run(args)
    except (BenchSetupError, PlanScaleError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_table(record)
    line = json.dumps(record, sort_keys=True)
    if args.json:
        args.json.write_text(line + "\n")
    if not args.no_history:
        HISTORY_FILE.parent.mkdir(parents=True, exist_ok=True)
        with HISTORY_FILE.open("a") as out:
            out.write(line + "\n")
        print(f"appended to {HISTORY_FILE.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
