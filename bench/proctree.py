"""Run one command and time it until its last descendant has exited, with the peak memory of its process tree.

    python -m bench.proctree --result run.json -- python -m streamguard run --engine spark ...

A command that starts a JVM (Spark's driver is a child of the Python process, its Python workers are the JVM's
children) is not done when its own process exits: the JVM shuts down after it. So this wrapper makes itself a
*child subreaper* (Linux ``PR_SET_CHILD_SUBREAPER``): every descendant that outlives its parent is re-parented here
instead of to init, and the clock stops when ``wait4`` has reaped the last one. Each reaped process brings its own
``ru_maxrss`` (the kernel's exact peak RSS of that process, or of its largest reaped child when bigger).

A thread also samples the tree's resident memory from ``/proc`` (``statm``) every ``--interval`` seconds and keeps
the highest sum. A child whose memory figures equal its parent's exactly is a fork or vfork that has not exec'd yet
(the JVM starting Spark's Python workers, Python starting a helper), sharing its parent's pages: it is counted once,
with its parent. Other pages shared between processes count once per process, so the sum is an upper bound of what
the tree needs; and a spike shorter than the interval can fall between two samples.

The result (``--result``, JSON) holds ``seconds`` (spawn to the last exit), ``main_seconds`` (spawn to the
command's own exit), ``returncode``, ``peak_tree_rss_mb``, ``peak_tree_by_name`` (that peak split by process name),
``samples`` and ``processes`` (each reaped process: ``pid``, ``name``, ``maxrss_mb``, ``exit_seconds``, CPU
seconds); with ``--timeline`` also ``timeline``, every sample as ``[unix time, tree RSS MB]`` (the scale
benchmark splits the peak by pipeline stage with it). The command's output goes to this wrapper's stdout/stderr.
Exit status: the command's, or 124 when it (or a lingering descendant) had to be killed. Standard library only, so
the wrapper costs little next to what it measures.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
PR_SET_PDEATHSIG = 1
EXIT_KILLED = 124
_PAGE = os.sysconf("SC_PAGE_SIZE")
_MB = 2**20


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}, {value}) failed")


def _stat(pid: str) -> tuple[int, str] | None:
    """(parent pid, name) of ``pid`` from /proc, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = text[text.index("(") + 1:text.rindex(")")]
    return int(text[text.rindex(")") + 2:].split(" ", 2)[1]), name


def descendants(root: int) -> dict[int, tuple[int, str]]:
    """Every living descendant of ``root`` (not ``root`` itself): pid -> (parent pid, process name)."""
    children: dict[int, list[int]] = {}
    info: dict[int, tuple[int, str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (found := _stat(entry)) is not None:
            children.setdefault(found[0], []).append(int(entry))
            info[int(entry)] = found
    tree: dict[int, tuple[int, str]] = {}
    todo = list(children.get(root, ()))
    while todo:
        pid = todo.pop()
        tree[pid] = info[pid]
        todo.extend(children.get(pid, ()))
    return tree


def _statm(pid: int) -> tuple[int, ...] | None:
    """The memory figures of ``pid`` in pages (size, resident, shared, text, lib, data, dt), or None when gone."""
    try:
        return tuple(int(n) for n in Path(f"/proc/{pid}/statm").read_text().split())
    except (OSError, ValueError):
        return None


def tree_rss(tree: dict[int, tuple[int, str]]) -> dict[str, int]:
    """Resident bytes of ``tree`` per process name, a not yet exec'd fork counted once with its parent."""
    memory = {pid: _statm(pid) for pid in tree}
    by_name: dict[str, int] = {}
    for pid, (parent, name) in tree.items():
        figures = memory[pid]
        if figures is None or len(figures) < 2 or figures == memory.get(parent):
            continue
        by_name[name] = by_name.get(name, 0) + figures[1] * _PAGE
    return by_name


class TreeSampler(threading.Thread):
    """Samples the summed RSS of this process's descendants until :meth:`stop`; keeps the peak."""

    def __init__(self, interval: float, *, timeline: bool = False) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.timeline: list[tuple[float, float]] | None = [] if timeline else None
        self.peak = 0
        self.peak_by_name: dict[str, int] = {}
        self.samples = 0
        self.names: dict[int, str] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        while True:
            self.sample()
            if self._halt.wait(self.interval):
                return

    def sample(self) -> None:
        tree = descendants(os.getpid())
        self.names.update({pid: name for pid, (_, name) in tree.items()})
        by_name = tree_rss(tree)
        total = sum(by_name.values())
        self.samples += 1
        if self.timeline is not None:
            self.timeline.append((round(time.time(), 3), round(total / _MB, 1)))
        if total > self.peak:
            self.peak, self.peak_by_name = total, by_name

    def stop(self) -> None:
        self._halt.set()
        self.join()


def _kill_tree(sig: int) -> list[int]:
    tree = descendants(os.getpid())
    for pid in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    return sorted(tree)


class _Watchdog(threading.Thread):
    """Kills the tree when the command runs past ``timeout`` or a descendant lingers ``linger`` s after it."""

    def __init__(self, timeout: float, linger: float) -> None:
        super().__init__(daemon=True)
        self.deadline = time.monotonic() + timeout
        self.linger = linger
        self.main_exited = threading.Event()
        self.done = threading.Event()
        self.killed: list[int] = []

    def run(self) -> None:
        if not self.main_exited.wait(max(0.0, self.deadline - time.monotonic())):
            self._kill()
            return
        if not self.done.wait(max(0.0, min(self.deadline, time.monotonic() + self.linger) - time.monotonic())):
            self._kill()

    def _kill(self) -> None:
        self.killed = _kill_tree(signal.SIGTERM)
        if not self.done.wait(5):
            self.killed = sorted(set(self.killed) | set(_kill_tree(signal.SIGKILL)))


def run(command: list[str], *, interval: float, timeout: float, linger: float, timeline: bool = False) -> dict:
    """Run ``command`` to the end of its whole process tree (see the module docstring)."""
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    sampler = TreeSampler(interval, timeline=timeline)
    watchdog = _Watchdog(timeout, linger)
    began = time.perf_counter()
    child = subprocess.Popen(command, start_new_session=True)  # noqa: S603 - the caller's own command
    sampler.start()
    watchdog.start()
    processes, returncode, main_seconds, last = [], None, None, 0.0
    while True:
        try:
            pid, status, usage = os.wait4(-1, 0)
        except ChildProcessError:
            break
        now = last = time.perf_counter() - began
        name = sampler.names.get(pid) or (Path(command[0]).name if pid == child.pid else "?")
        processes.append({"pid": pid, "name": name,
                          "maxrss_mb": round(usage.ru_maxrss * 1024 / _MB, 1), "exit_seconds": round(now, 4),
                          "user_seconds": round(usage.ru_utime, 3), "system_seconds": round(usage.ru_stime, 3)})
        if pid == child.pid:
            returncode, main_seconds = os.waitstatus_to_exitcode(status), now
            child.returncode = returncode  # reaped here, so Popen must not wait for it
            watchdog.main_exited.set()
    watchdog.done.set()
    sampler.stop()
    return {
        "command": command, "seconds": round(last, 4), "main_seconds": round(main_seconds or last, 4),
        "returncode": returncode, "killed": watchdog.killed,
        "peak_tree_rss_mb": round(sampler.peak / _MB, 1),
        "peak_tree_by_name": {name: round(size / _MB, 1) for name, size in sorted(sampler.peak_by_name.items())},
        "samples": sampler.samples, "sample_interval": interval, "processes": processes,
        **({"timeline": sampler.timeline} if sampler.timeline is not None else {}),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.proctree", description=__doc__.splitlines()[0])
    parser.add_argument("--result", type=Path, required=True, help="write the JSON result here")
    parser.add_argument("--interval", type=float, default=0.1, help="RSS sampling interval, s (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=3600, help="kill the tree after this many s")
    parser.add_argument("--linger", type=float, default=60,
                        help="kill descendants still alive this many s after the command exited")
    parser.add_argument("--timeline", action="store_true", help="also keep every sample (unix time, tree RSS MB)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)  # the bench that started this wrapper died: end the tree too

    def stop(signum: int, _frame: object) -> None:
        _kill_tree(signal.SIGTERM)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    result = run(command, interval=args.interval, timeout=args.timeout, linger=args.linger, timeline=args.timeline)
    args.result.write_text(json.dumps(result, indent=1) + "\n")
    if result["killed"]:
        return EXIT_KILLED
    return result["returncode"] if result["returncode"] is not None else 1


if __name__ == "__main__":
    sys.exit(main())
