"""Small OS helpers the child-process services (Kafka broker, Spark cluster, API server) and the publisher share."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import time
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """``preexec_fn`` for a child that must not outlive its parent (Linux: SIGTERM when the parent thread ends)."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


ENV_STATE_DIR = "STREAMGUARD_STATE_DIR"
DEFAULT_STATE_DIR = ".streamguard"


def state_dir(part: str) -> Path:
    """Where one part of StreamGuard's state lives: ``$STREAMGUARD_STATE_DIR/<part>``, absolute.

    Everything that keeps state goes through here: the background broker (``kafka``), the Spark standalone cluster
    (``spark``), seeding's ground truth (``truth``), the bench's brokers and truths (``bench-kafka``, ...). The state
    dir defaults to ``./.streamguard``; an empty ``STREAMGUARD_STATE_DIR`` counts as unset.
    """
    return Path(os.environ.get(ENV_STATE_DIR) or DEFAULT_STATE_DIR).resolve() / part


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists (one owned by another user counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def log_tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of a log file, or a note that there is none."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def child_pids(command_contains: str) -> list[int]:
    """This process's children whose command line contains ``command_contains`` (Linux ``/proc``)."""
    me = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        if parent == me and command_contains in command:
            found.append(int(entry.name))
    return found


def stop_pids(pids: list[int], grace_s: float = 10.0) -> None:
    """SIGTERM each of ``pids``, SIGKILL what is still there after ``grace_s``; reaps our own children."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        alive = [pid for pid in pids if process_running(pid)]
        for pid in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait_s
        while any(process_running(pid) for pid in alive) and time.monotonic() < deadline:
            time.sleep(0.1)


def process_running(pid: int) -> bool:
    """Alive and not a zombie; an exited child of ours is reaped on the way."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        return pid_alive(pid) and Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return pid_alive(pid)
