"""The local broker as a background service for ``streamguard kafka start|status|stop``.

State lives in ``<state dir>/kafka/state.json`` (state dir: ``$STREAMGUARD_STATE_DIR`` or ``./.streamguard``), the
data directory beside it, so topics survive a stop and a later start.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from streamguard._proc import pid_alive
from streamguard.errors import BrokerError
from streamguard.kafka.broker import metadata_answers
from streamguard.kafka.local_broker import LocalBroker

_STOP_WAIT_S = 30.0


def state_dir() -> Path:
    return Path(os.environ.get("STREAMGUARD_STATE_DIR", ".streamguard")).resolve() / "kafka"


@dataclass(frozen=True, slots=True)
class BrokerState:
    pid: int
    bootstrap: str
    data_dir: str
    log_path: str
    started_at: float


@dataclass(frozen=True, slots=True)
class BrokerStatus:
    state: BrokerState | None
    process_alive: bool
    answering: bool

    @property
    def running(self) -> bool:
        return self.process_alive and self.answering


def _state_file() -> Path:
    return state_dir() / "state.json"


def read_state() -> BrokerState | None:
    try:
        return BrokerState(**json.loads(_state_file().read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _is_our_broker(state: BrokerState) -> bool:
    """The pid still belongs to this state's broker (not to a process that reused the pid after a reboot)."""
    try:
        command_line = Path(f"/proc/{state.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return _alive(state.pid)  # no /proc here: trust the pid
    return "kafka.Kafka" in command_line and state.data_dir in command_line


def _alive(pid: int) -> bool:
    # Reap it first if it is our own exited child, or it would linger as a zombie and look alive.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    return pid_alive(pid)


def status() -> BrokerStatus:
    state = read_state()
    if state is None:
        return BrokerStatus(None, False, False)
    alive = _alive(state.pid) and _is_our_broker(state)
    return BrokerStatus(state, alive, alive and metadata_answers(state.bootstrap, timeout_s=3.0))


def start(*, port: int = 0) -> BrokerState:
    """Start the broker in the background unless one from this state dir already runs; return its state."""
    current = status()
    if current.running and current.state is not None:
        return current.state
    if current.state is not None and current.process_alive:
        raise BrokerError(f"a broker (pid {current.state.pid}) is running but not answering; "
                          "run 'streamguard kafka stop' first")
    data_dir = state_dir() / "data"
    broker = LocalBroker(data_dir=data_dir, port=port, detached=True)
    try:
        broker.start()
    except BaseException:  # Ctrl-C or a failed start: a detached JVM would otherwise outlive us, unrecorded
        broker.stop()
        raise
    state = BrokerState(broker.pid or 0, broker.bootstrap, str(data_dir), str(broker.log_path), time.time())
    _state_file().write_text(json.dumps(asdict(state), indent=2) + "\n")
    return state


def stop() -> BrokerState | None:
    """Stop the background broker (SIGTERM, then SIGKILL after 30 s); return the state it had, if any."""
    state = read_state()
    if state is None:
        return None
    if _alive(state.pid) and _is_our_broker(state):
        with contextlib.suppress(ProcessLookupError):
            os.kill(state.pid, signal.SIGTERM)
            deadline = time.monotonic() + _STOP_WAIT_S
            while _alive(state.pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if _alive(state.pid):
                os.kill(state.pid, signal.SIGKILL)
    _state_file().unlink(missing_ok=True)
    return state
