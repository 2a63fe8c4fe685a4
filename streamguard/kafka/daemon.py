"""The local broker as a background service for ``streamguard kafka start|status|stop``.

State lives in ``<state dir>/kafka/state.json`` (state dir: ``$STREAMGUARD_STATE_DIR`` or ``./.streamguard``), the
data directory beside it, so topics survive a stop and a later start.

``start(sasl_users={"alice": "secret"})`` starts it with a SASL/PLAIN listener (``LocalBroker``); the state then
records the security protocol, the mechanism and the user names, never a password. The broker's own account, which
``status()`` logs in with, is kept in ``broker-account.json`` beside the state, readable by this user only, and
removed on ``stop()``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from streamguard._proc import pid_alive
from streamguard._proc import state_dir as _state_dir
from streamguard.errors import BrokerError
from streamguard.kafka.broker import metadata_answers
from streamguard.kafka.local_broker import SASL_MECHANISM, LocalBroker
from streamguard.kafka.properties import KafkaProperties

_STOP_WAIT_S = 30.0


def state_dir() -> Path:
    return _state_dir("kafka")


@dataclass(frozen=True, slots=True)
class BrokerState:
    pid: int
    bootstrap: str
    data_dir: str
    log_path: str
    started_at: float
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_users: tuple[str, ...] = ()

    def client_properties(self, user: str, password: str) -> KafkaProperties:
        """Properties for a client logging in as ``user`` (none for a PLAINTEXT broker)."""
        if self.security_protocol == "PLAINTEXT":
            return KafkaProperties()
        return KafkaProperties({"security.protocol": self.security_protocol,
                                "sasl.mechanism": self.sasl_mechanism or SASL_MECHANISM,
                                "sasl.username": user, "sasl.password": password})


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


def _account_file() -> Path:
    return state_dir() / "broker-account.json"


def read_state() -> BrokerState | None:
    try:
        fields = json.loads(_state_file().read_text())
        fields["sasl_users"] = tuple(fields.get("sasl_users", ()))
        return BrokerState(**fields)
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def _broker_account(state: BrokerState) -> KafkaProperties:
    """The properties the broker's own account logs in with (none for a PLAINTEXT broker)."""
    if state.security_protocol == "PLAINTEXT":
        return KafkaProperties()
    try:
        account = json.loads(_account_file().read_text())
        return state.client_properties(account["user"], account["password"])
    except (OSError, ValueError, KeyError, TypeError):
        return KafkaProperties()


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
    answering = alive and metadata_answers(state.bootstrap, timeout_s=3.0, properties=_broker_account(state))
    return BrokerStatus(state, alive, answering)


def start(*, port: int = 0, sasl_users: Mapping[str, str] | None = None) -> BrokerState:
    """Start the broker in the background unless one from this state dir already runs; return its state.

    ``sasl_users`` (user -> password) gives it a SASL/PLAIN listener; a running broker is returned only when its
    security matches what is asked."""
    users = dict(sasl_users or {})
    current = status()
    if current.running and current.state is not None:
        if tuple(sorted(users)) != tuple(sorted(current.state.sasl_users)):
            raise BrokerError(
                f"a broker (pid {current.state.pid}) already runs with "
                + (f"SASL users {', '.join(current.state.sasl_users)}" if current.state.sasl_users
                   else "no SASL listener")
                + "; run 'streamguard kafka stop' first"
            )
        return current.state
    if current.state is not None and current.process_alive:
        raise BrokerError(f"a broker (pid {current.state.pid}) is running but not answering; "
                          "run 'streamguard kafka stop' first")
    data_dir = state_dir() / "data"
    broker = LocalBroker(data_dir=data_dir, port=port, detached=True, sasl_users=users)
    try:
        broker.start()
    except BaseException:  # Ctrl-C or a failed start: a detached JVM would otherwise outlive us, unrecorded
        broker.stop()
        raise
    state = BrokerState(broker.pid or 0, broker.bootstrap, str(data_dir), str(broker.log_path), time.time(),
                        security_protocol=broker.security_protocol,
                        sasl_mechanism=SASL_MECHANISM if users else None, sasl_users=tuple(sorted(users)))
    if users:
        account = broker.client_properties()
        _account_file().touch(mode=0o600)
        _account_file().chmod(0o600)
        _account_file().write_text(json.dumps({"user": account["sasl.username"],
                                               "password": account["sasl.password"]}) + "\n")
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
    _account_file().unlink(missing_ok=True)
    return state
