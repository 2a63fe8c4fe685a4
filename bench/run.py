"""``make bench``: run the benchmarks, append one history record, print the figures, redraw the chart.

    python -m bench.run --events 100000,1000000        # the default sizes (make bench)
    python -m bench.run --events 10000000              # 10M on request (seeded once, then cached)
    python -m bench.run --no-history                   # measure and print only
    python -m bench.run --no-engines                   # without the engine series (about 20 minutes here)

Runs ``pytest bench`` in a child process (its broker and Spark JVMs end with it), with pytest-benchmark writing
its JSON to ``.benchmarks/`` (gitignored; ``--json`` picks another path), then the engine series of
``bench/engines.py`` (cold ``streamguard run`` processes, embedded against Spark, on the 1M-event topic; raw JSON
in ``.benchmarks/engines-<UTC>.json``). The record built from both goes to ``bench/history/history.jsonl`` and the
chart to ``bench/history/ratios.png``; a failed run records nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench import engines, history

_REPO = Path(__file__).resolve().parent.parent
_TIMEOUT_S = 4 * 3600  # pytest-timeout per test; the first test of a series waits for all its rounds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--events", default="100000,1000000", help="comma-separated topic sizes (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=5, help="read-stage rounds (default %(default)s)")
    parser.add_argument("--pipeline-rounds", type=int, default=3, help="pipeline rounds (default %(default)s)")
    parser.add_argument("--warmup", type=int, default=1, help="discarded warm-up rounds (default %(default)s)")
    parser.add_argument("--cold-rounds", type=int, default=3, help="cold starts (default %(default)s)")
    parser.add_argument("--json", type=Path, help="pytest-benchmark JSON path (default .benchmarks/bench-<UTC>.json)")
    parser.add_argument("--history", type=Path, default=history.HISTORY_FILE, help="history file to append to")
    parser.add_argument("--chart", type=Path, default=history.CHART_FILE, help="chart to redraw")
    parser.add_argument("--no-history", action="store_true", help="do not append a record or redraw the chart")
    parser.add_argument("-k", dest="keyword",
                        help="pytest -k expression (a partial run: no engine series, no history)")
    parser.add_argument("--engine-sizes", default=",".join(map(str, engines.SIZES)),
                        help="events per run of the engine series (default %(default)s)")
    parser.add_argument("--engine-rounds", type=int, default=engines.ROUNDS,
                        help="engine series rounds (default %(default)s)")
    parser.add_argument("--engine-big-rounds", type=int, default=engines.BIG_ROUNDS,
                        help=f"engine series rounds from {engines.BIG_SIZE:,} events (default %(default)s)")
    parser.add_argument("--no-engines", action="store_true", help="skip the engine series")
    args = parser.parse_args(argv)
    try:
        engine_sizes = [int(part.replace("_", "")) for part in args.engine_sizes.split(",")]
    except ValueError as exc:
        parser.error(f"--engine-sizes must be comma-separated integers: {exc}")

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    json_path = (args.json or _REPO / ".benchmarks" / f"bench-{stamp}.json").resolve()
    json_path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "pytest", str(_REPO / "bench"), "-p", "no:cacheprovider", "-q",
        f"--timeout={_TIMEOUT_S}", f"--benchmark-json={json_path}",
        "--benchmark-columns=min,median,max,rounds", "--benchmark-sort=name",
        f"--bench-events={args.events}", f"--bench-rounds={args.rounds}",
        f"--bench-pipeline-rounds={args.pipeline_rounds}", f"--bench-warmup={args.warmup}",
        f"--bench-cold-rounds={args.cold_rounds}",
    ]
    if args.keyword:
        command += ["-k", args.keyword]
    print("$ " + " ".join(command[1:]), flush=True)
    code = subprocess.run(command, cwd=_REPO, check=False).returncode
    if code != 0:
        print(f"bench failed (pytest exit {code}); no history record written", file=sys.stderr)
        return code

    record = history.record_from_benchmark_json(json.loads(json_path.read_text()), source=_relative(json_path))
    if not (args.no_engines or args.keyword):
        try:
            run = engines.run_series(engine_sizes, rounds=args.engine_rounds, big_rounds=args.engine_big_rounds,
                                     warmup=args.warmup)
        except Exception as exc:  # noqa: BLE001 - any failure of the series means no record
            print(f"engine series failed: {type(exc).__name__}: {exc}; no history record written", file=sys.stderr)
            return 1
        engines_json = engines.save_json(run, None)
        engines.print_figures(run)
        history.add_engines(record, run, source=_relative(engines_json))
    history.print_table(record)
    if args.no_history or args.keyword:
        return 0
    history.append(record, args.history)
    from bench.chart import render  # noqa: PLC0415 - matplotlib only when drawing

    records = history.load(args.history)
    render(records, args.chart)
    print(f"history: {_relative(args.history)} ({len(records)} runs); chart: {_relative(args.chart)}")
    return 0


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(_REPO))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
