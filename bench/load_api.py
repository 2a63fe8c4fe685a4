"""Load benchmark of the API (a measurement, not a test): wrk on ``GET /api/training-data/anomalies/<user>``.

    python -m bench.load_api                                  # a fixture run of 10,000 users, 10 s
    python -m bench.load_api --data out/demo --user manager   # an existing output
    python -m bench.load_api --json                           # one JSON object instead of the summary

Starts ``streamguard serve`` on 127.0.0.1 (a free port) as a child process, checks that the route answers 200,
runs ``wrk --latency`` for a bounded time, stops the server, and prints requests/s and the latency percentiles
(p99 included). Needs ``wrk`` on PATH (Debian: ``apt-get install -y wrk``). Targets only 127.0.0.1. wrk and
the server share the machine's CPUs, so compare figures only between runs on the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from streamguard.serve.process import ApiServer

MAX_DURATION_S = 60
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


@dataclass(frozen=True)
class LoadResult:
    route: str
    users: int | None
    duration_s: int
    threads: int
    connections: int
    requests: int
    requests_per_s: float
    latency_ms: dict[str, float]
    non_2xx: int
    socket_errors: str | None
    cpus: int | None
    python: str
    measured_at: str


def parse_wrk(output: str) -> tuple[int, float, dict[str, float], int, str | None]:
    """``(requests, requests/s, {percentile: ms}, non-2xx count, socket errors)`` from ``wrk --latency``."""
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    if rate is None or total is None:
        raise SystemExit(f"could not read wrk's output:\n{output}")
    percentiles = {f"p{p}": float(value) * _UNITS[unit]
                   for p, value, unit in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M)}
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(r"Socket errors:\s+(.+)", output)
    return (int(total.group(1)), float(rate.group(1)), percentiles, int(non_2xx.group(1)) if non_2xx else 0,
            socket_errors.group(1).strip() if socket_errors else None)


def run(data: Path | None, users: int, user: str, duration: int, threads: int,
        connections: int) -> LoadResult:
    fixture = data is None
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install -y wrk)")
    with tempfile.TemporaryDirectory(prefix="sg-load-") as scratch:
        if fixture:
            from tests.serve_fixtures import write_run  # noqa: PLC0415 (a test helper, only for the fixture)

            data = write_run(Path(scratch) / "out", "bench-load", users=users).output
        env = {"STREAMGUARD_API_TOKEN": "", "STREAMGUARD_LLM_BASE_URL": ""}
        with ApiServer(data, env=env, log_path=Path(scratch) / "serve.log").start() as server:
            route = f"/api/training-data/anomalies/{user}"
            check = httpx.get(server.url + route)
            if check.status_code != 200:
                raise SystemExit(f"{route} answered {check.status_code}: {check.text[:200]}")
            completed = subprocess.run(
                [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", server.url + route],
                capture_output=True, text=True, timeout=duration + 30, check=True,
            )
    requests, rate, latency, non_2xx, socket_errors = parse_wrk(completed.stdout)
    return LoadResult(route="/api/training-data/anomalies/{user}", users=users if fixture else None,
                      duration_s=duration, threads=threads, connections=connections, requests=requests,
                      requests_per_s=rate, latency_ms=latency, non_2xx=non_2xx, socket_errors=socket_errors,
                      cpus=os.cpu_count(), python=platform.python_version(),
                      measured_at=datetime.now(UTC).isoformat(timespec="seconds"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="An output path; default: a fixture run.")
    parser.add_argument("--users", type=int, default=10_000, help="Users in the fixture run.")
    parser.add_argument("--user", default="erin", help="The user to request.")
    parser.add_argument("--duration", type=int, default=10, help=f"Seconds of load (<= {MAX_DURATION_S}).")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--json", action="store_true", help="Print the result as one JSON object.")
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= MAX_DURATION_S:
        parser.error(f"--duration must be between 1 and {MAX_DURATION_S}")
    result = run(args.data, args.users, args.user, args.duration, args.threads, args.connections)
    if args.json:
        print(json.dumps(asdict(result)))
        return
    latency = result.latency_ms
    print(f"GET {result.route}: {result.requests_per_s:,.0f} requests/s over {result.duration_s} s "
          f"({result.threads} threads, {result.connections} connections, {result.cpus} CPUs)")
    print("latency: " + ", ".join(f"{name} {value:.2f} ms" for name, value in latency.items()))
    if result.non_2xx or result.socket_errors:
        print(f"errors: {result.non_2xx} non-2xx responses; socket errors: {result.socket_errors}")
        sys.exit(1)


if __name__ == "__main__":
    main()
