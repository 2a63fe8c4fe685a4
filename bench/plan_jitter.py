"""Where a slow cold plan waited: the planner's own timers and retries, or a machine with no free core.

    python -m bench.plan_jitter --bootstrap 127.0.0.1:9092 --topic plan-scale-4p --plans 60

Runs ``plan_read`` in ``--plans`` fresh processes, as ``bench.plan_scale`` does, but each with librdkafka's debug
log on (``debug=broker,metadata,admin,protocol``; every line carries librdkafka's own millisecond timestamp) and
notes, around the plan alone:

- ``plan_s`` and ``cpu_s``: wall and CPU seconds of the plan (all threads of the process);
- ``psi_some_s``: seconds during the plan in which some runnable task on this machine waited for a CPU
  (``/proc/pressure/cpu``, "some" total): 1.0 × ``plan_s`` means a core was short for the whole plan;
- ``gap_s`` and ``gap``: the longest silence in the debug log and the two lines around it, which says what the
  client was waiting for (a request sent and its answer received: the broker; a timer or a retry: the client).

A plan whose longest gap sits between a request and its response while ``psi_some_s`` is high waited for the
broker's JVM or this process to be scheduled, not for a timeout of ours; a gap of round size (0.1, 0.5, 1, 3 s)
between two unrelated lines would be a timer. ``--nice -15`` (root) runs the plans ahead of the machine's other
work, interleaved with plans at the usual niceness; renice the broker's JVM too (``renice -n -15 -p PID``) so both
ends of the conversation get a core when they need one (niceness orders processes within one cgroup only, so
work of other cgroups still competes). The summary prints the distribution and the slowest plans; ``--json`` writes
every plan's figures. A diagnostic, not a test: it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.figures import summary

REPO = Path(__file__).resolve().parent.parent
DEBUG = "broker,metadata,admin,protocol"
_LINE = re.compile(r"^%\d\|(?P<at>\d+\.\d+)\|(?P<fac>[A-Z_]+)\|[^|]*\|\s*(?P<text>.*)$")

_CHILD = """
import json, sys, time
from pathlib import Path
from streamguard.kafka.plan import plan_read
def psi():
    return int(Path("/proc/pressure/cpu").read_text().split()[4].split("=")[1]) / 1e6
began, cpu, pressure = time.time(), time.process_time(), psi()
plan = plan_read(sys.argv[1], sys.argv[2], max_events=1000,
                 properties={"debug": sys.argv[3], "log_level": "7"})
ended = time.time()
print(json.dumps({"began": began, "ended": ended, "plan_s": ended - began, "cpu_s": time.process_time() - cpu,
                  "psi_some_s": psi() - pressure, "partitions": len(plan.watermarks)}))
"""


def longest_gap(log: str, began: float, ended: float) -> tuple[float, list[str]]:
    """The longest silence between debug lines stamped within [began, ended] (and from ``began`` to the first)."""
    stamped = [(float(m["at"]), f"{m['fac']}: {m['text'][:160]}") for line in log.splitlines()
               if (m := _LINE.match(line)) and began - 0.001 <= float(m["at"]) <= ended + 0.001]
    previous, gap, around = (began, "plan starts"), 0.0, ["plan starts", "no debug line"]
    for at, text in [*stamped, (ended, "plan ends")]:
        if at - previous[0] > gap:
            gap, around = at - previous[0], [previous[1], text]
        previous = (at, text)
    return round(gap, 4), around


def plan_once(bootstrap: str, topic: str, nice: int = 0) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", _CHILD, bootstrap, topic, DEBUG], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=False, preexec_fn=(lambda: os.nice(nice)) if nice else None)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"plan of {topic} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    figures = json.loads(lines[-1])
    gap, around = longest_gap(done.stderr, figures["began"], figures["ended"])
    return {**{k: round(v, 4) for k, v in figures.items() if k not in ("began", "ended")}, "gap_s": gap,
            "gap": around}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.plan_jitter", description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", action="append", required=True, help="repeatable; plans alternate over topics")
    parser.add_argument("--plans", type=int, default=60, help="plans per topic (default %(default)s)")
    parser.add_argument("--json", type=Path, help="write every plan's figures here")
    parser.add_argument("--nice", type=int, default=0,
                        help="also run every plan at this niceness, interleaved with the plain ones (negative: "
                             "ahead of the machine's other work; needs root)")
    args = parser.parse_args(argv)
    levels = [0, args.nice] if args.nice else [0]
    plans: dict[str, list[dict[str, Any]]] = {f"{t} nice {n}": [] for t in args.topic for n in levels}
    for _ in range(args.plans):
        for topic in args.topic:
            for nice in levels:
                plans[f"{topic} nice {nice}"].append(plan_once(args.bootstrap, topic, nice))
    for topic, found in plans.items():
        seconds = [p["plan_s"] for p in found]
        stats = summary(seconds)
        slow = [p for p in found if p["plan_s"] > 2 * stats["median"]]
        print(f"{topic}: {len(found)} plans, median {stats['median']:.3f} s, max {stats['max']:.3f} s; "
              f"{len(slow)} above twice the median")
        print(f"  CPU per plan median {summary([p['cpu_s'] for p in found])['median']:.3f} s; CPU-pressure "
              f"share of the plan: median {summary([p['psi_some_s'] / p['plan_s'] for p in found])['median']:.2f},"
              f" in the slow plans {summary([p['psi_some_s'] / p['plan_s'] for p in slow])['median']:.2f}"
              if slow else "")
        for plan in sorted(found, key=lambda p: -p["plan_s"])[:5]:
            print(f"  {plan['plan_s']:.3f} s (CPU {plan['cpu_s']:.3f}, CPU pressure {plan['psi_some_s']:.3f} s); "
                  f"longest silence {plan['gap_s']:.3f} s between «{plan['gap'][0]}» and «{plan['gap'][1]}»")
    if args.json:
        args.json.write_text(json.dumps(plans, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
