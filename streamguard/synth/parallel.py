"""Building a stream's chunks in worker processes while the caller consumes them in order.

Chunk indices go into a FIFO task queue, at most ``window`` ahead of the chunk the caller needs next. Workers
take the next index when they are free; the caller, whenever the chunk it needs next is not ready, takes the
next index itself instead of waiting. So while the workers start up the caller builds the first chunks itself
and hands them out at once, and later it only builds what the workers have not got to.

Workers are forked only when the calling process runs a single OS thread (so no lock can be held across the
fork; a loaded BLAS thread pool, as numpy starts, already rules it out), and spawned otherwise (a spawned
worker re-imports the caller's main module and the package, which can take seconds of CPU). ``build`` and its
arguments are pickled either way, so the code is spawn-safe; ``method="spawn"`` forces it.

    for chunk in parallel_chunks(functools.partial(build_chunk, config), count=20, workers=2):
        ...

A worker's result goes through a pipe (pickled); send something small (see streamguard.synth.chunks).
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from streamguard.errors import StreamguardError

T = TypeVar("T")
_STOP = -1
_JOIN_TIMEOUT_S = 1.0
_RESULT_POLL_S = 0.05


def _work(build: Callable[[int], Any], tasks: Any, results: Any) -> None:
    while (index := tasks.get()) != _STOP:
        try:
            results.put((index, build(index), None))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, which re-raises it
            results.put((index, None, exc))
            return


def start_method() -> str:
    """"fork" when this process runs a single OS thread (Linux only), else "spawn"."""
    if sys.platform != "linux":
        return "spawn"
    try:
        threads = len(os.listdir("/proc/self/task"))
    except OSError:
        return "spawn"
    return "fork" if threads == 1 else "spawn"


def parallel_chunks(
    build: Callable[[int], T],
    *,
    count: int,
    workers: int,
    remote: Callable[[int], Any] | None = None,
    receive: Callable[[Any], T] | None = None,
    window: int | None = None,
    method: str | None = None,
    caller_builds: bool = True,
) -> Iterator[T]:
    """``build(i)`` for ``i`` in ``range(count)``, in order, computed by ``workers`` processes and the caller.

    Workers run ``remote(i)`` (default ``build``) and the caller turns what they send back into ``build(i)``'s
    result with ``receive`` (default: as is); ``remote`` must pickle (a module-level function or a
    ``functools.partial`` of one). A worker's exception is re-raised here; a worker that dies raises
    StreamguardError. At most ``window`` (default ``2·workers + 1``) chunks are built ahead of the one being
    consumed. With ``caller_builds=False`` the workers build every chunk.
    """
    remote = remote or build
    receive = receive or (lambda result: result)
    window = window or 2 * workers + 1
    ctx = multiprocessing.get_context(method or start_method())
    tasks, results = ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=_work, args=(remote, tasks, results), daemon=True) for _ in range(workers)]
    for proc in procs:
        proc.start()
    ready: dict[int, T] = {}
    fed = 0
    try:
        for wanted in range(count):
            while fed < min(count, wanted + window):
                tasks.put(fed)
                fed += 1
            while wanted not in ready:
                if _collect(ready, results, procs, receive, timeout=None):
                    continue
                if not caller_builds:
                    _collect(ready, results, procs, receive, timeout=_RESULT_POLL_S)
                    continue
                try:
                    # Fails while a worker is already waiting for the next index: then it is theirs.
                    index = tasks.get_nowait()
                except queue.Empty:
                    _collect(ready, results, procs, receive, timeout=_RESULT_POLL_S)
                    continue
                ready[index] = build(index)
            yield ready.pop(wanted)
    finally:
        for _ in procs:
            tasks.put(_STOP)
        deadline = time.monotonic() + _JOIN_TIMEOUT_S
        for proc in procs:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                # Still starting up, or busy with a chunk nobody will read: nothing left worth waiting for.
                proc.terminate()
                proc.join()
        for q in (tasks, results):
            q.cancel_join_thread()
            q.close()


def _collect(
    ready: dict[int, Any],
    results: Any,
    procs: list[Any],
    receive: Callable[[Any], Any],
    *,
    timeout: float | None,
) -> bool:
    """Move finished chunks into ``ready``, waiting up to ``timeout`` s for the first (None: no wait)."""
    got = False
    while True:
        try:
            if timeout is None or got:
                index, value, error = results.get_nowait()
            else:
                index, value, error = results.get(timeout=timeout)
        except queue.Empty:
            if timeout is not None and not got and not all(proc.is_alive() for proc in procs):
                codes = [proc.exitcode for proc in procs]
                raise StreamguardError(f"a generator worker process died (exit codes {codes})") from None
            return got
        if error is not None:
            raise error
        ready[index] = receive(value)
        got = True
