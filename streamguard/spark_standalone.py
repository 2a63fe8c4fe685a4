"""A real Spark standalone cluster on this machine: one master and N workers from the installed pyspark distribution.

As a context manager (the JVMs die with the Python process that started them, Linux ``PR_SET_PDEATHSIG``):

    >>> with SparkStandalone(workers=2) as cluster:
    ...     spark = spark_session(master=cluster.master_url, extra_conf={"spark.driver.host": "127.0.0.1",
    ...                                                                  "spark.driver.bindAddress": "127.0.0.1"})

In the background, for ``streamguard spark start|status|stop``: ``start_background()``, ``cluster_status()``,
``stop_background()``; state, logs and the workers' work dir live in ``<state dir>/spark/`` (state dir:
``$STREAMGUARD_STATE_DIR`` or ``./.streamguard``). Everything binds 127.0.0.1 on free ports. The cluster is ready when
the master's web UI JSON (``/json/``) says ALIVE and lists every worker ALIVE. A driver on another machine cannot
reach it; executors run Python with the driver's ``PYSPARK_PYTHON``.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Self

from streamguard._proc import die_with_parent, free_port, log_tail, process_running, stop_pids
from streamguard._proc import state_dir as _state_dir
from streamguard.errors import ClusterError, ConfigError, SetupError

DEFAULT_WORKERS = 1
DEFAULT_CORES = 1
DEFAULT_MEMORY = "2g"
DEFAULT_START_TIMEOUT_S = 180.0
_STOP_GRACE_S = 30.0
_MEMORY = re.compile(r"[1-9][0-9]*[mMgG]")
_MARKER = "-Dstreamguard.spark.dir="  # on every daemon's command line, so stop() only signals our own JVMs


def spark_home() -> Path:
    """The Spark distribution inside the installed pyspark package (it ships ``bin/spark-class`` and ``jars/``)."""
    spec = importlib.util.find_spec("pyspark")  # pyspark.__file__ without importing pyspark
    if spec is None or spec.origin is None:
        raise SetupError("pyspark is not installed in this Python environment")
    home = Path(spec.origin).parent
    if not (home / "bin" / "spark-class").is_file() or not (home / "jars").is_dir():
        raise SetupError(f"pyspark at {home} has no bin/spark-class or jars/; reinstall pyspark from PyPI")
    return home


def master_json(webui_url: str, timeout_s: float = 2.0) -> dict[str, Any] | None:
    """The master's status JSON (``workers``, ``activeapps``, ``status``, ...), or None when it does not answer."""
    try:
        with urllib.request.urlopen(f"{webui_url}/json/", timeout=timeout_s) as response:  # noqa: S310 - http URL
            return dict(json.load(response))
    except (OSError, ValueError):
        return None


def alive_workers(status: dict[str, Any]) -> int:
    """How many workers a master status JSON lists as ALIVE."""
    return sum(1 for worker in status.get("workers", []) if worker.get("state") == "ALIVE")


def _stop_pids(pids: list[int], grace_s: float = _STOP_GRACE_S) -> None:
    """SIGTERM every pid (workers stop their executors), SIGKILL what is left after ``grace_s``."""
    stop_pids(pids, grace_s)


class SparkStandalone:
    """A Spark standalone master and ``workers`` workers (``cores`` and ``memory`` each) as child JVMs.

    ``start()`` returns self once the master lists every worker ALIVE; ``stop()`` ends all of them. ``base_dir``
    holds ``logs/`` and the workers' ``work/`` (a temporary directory, removed on stop, when not given);
    ``detached=True`` lets the JVMs outlive this process (``start_background``).
    """

    def __init__(
        self, *, workers: int = DEFAULT_WORKERS, cores: int = DEFAULT_CORES, memory: str = DEFAULT_MEMORY,
        base_dir: Path | None = None, port: int = 0, webui_port: int = 0,
        start_timeout_s: float = DEFAULT_START_TIMEOUT_S, detached: bool = False,
    ) -> None:
        if workers < 1 or cores < 1:
            raise ConfigError(f"a cluster needs at least one worker and one core each (got {workers}, {cores})")
        if not _MEMORY.fullmatch(memory):
            raise ConfigError(f"worker memory must look like 512m or 2g, not {memory!r}")
        self.workers, self.cores, self.memory = workers, cores, memory
        self._owns_base_dir = base_dir is None
        self.base_dir = Path(base_dir or tempfile.mkdtemp(prefix="streamguard-spark-")).resolve()
        self._given_ports = (port, webui_port)
        self._pick_ports()
        self.work_dir = self.base_dir / "work"
        self.start_timeout_s = start_timeout_s
        self.detached = detached
        self.processes: list[subprocess.Popen[bytes]] = []
        self.start_seconds: float | None = None

    def _pick_ports(self) -> None:
        port, webui_port = self._given_ports
        self.port, self.webui_port = port or free_port(), webui_port or free_port()
        self.master_url = f"spark://127.0.0.1:{self.port}"
        self.webui_url = f"http://127.0.0.1:{self.webui_port}"

    @property
    def log_paths(self) -> list[Path]:
        """``logs/master.log``, then ``logs/worker-<n>.log`` for each worker."""
        logs = self.base_dir / "logs"
        return [logs / "master.log", *(logs / f"worker-{n}.log" for n in range(1, self.workers + 1))]

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def start(self) -> Self:
        """Start the master and the workers and wait until all are ALIVE.

        The master's ports are picked before its JVM binds them, so another socket can take one in between; when
        this class picked them, a master that dies while starting is tried once more on new ports.
        """
        try:
            return self._start()
        except MasterExited:
            if all(self._given_ports):
                raise
            self._pick_ports()
            return self._start()

    def _start(self) -> Self:
        started = time.monotonic()
        home = spark_home()
        script = home / "bin" / "spark-class"
        # A wheel unpacked without the exec bit still runs through bash; site-packages may be read-only: no chmod.
        launcher = [str(script)] if os.access(script, os.X_OK) else ["bash", str(script)]
        (self.base_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1",
            # No silent move to the next port: the master URL we print must be the one it binds.
            "SPARK_DAEMON_JAVA_OPTS": f'{os.environ.get("SPARK_DAEMON_JAVA_OPTS", "")} "{_MARKER}{self.base_dir}" '
                                      "-Dspark.port.maxRetries=0",
            # Its REST server wants the fixed port 6066, which a second cluster could not have.
            "SPARK_MASTER_OPTS": f'{os.environ.get("SPARK_MASTER_OPTS", "")} -Dspark.master.rest.enabled=false',
        }
        worker = ["org.apache.spark.deploy.worker.Worker", self.master_url, "--cores", str(self.cores),
                  "--memory", self.memory, "--work-dir", str(self.work_dir), "--host", "127.0.0.1"]
        commands = [["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(self.port),
                     "--webui-port", str(self.webui_port)]]
        # Workers bind whatever port the OS gives them (0): nothing needs to know it, and a port picked here and
        # handed over seconds later could be taken by then (a worker died on its web UI's port in CI, 2026-12-07).
        commands += [[*worker, "--port", "0", "--webui-port", "0"] for _ in range(self.workers)]
        if not self.detached:
            atexit.register(self.stop)
        for command, log_path in zip(commands, self.log_paths, strict=True):
            with open(log_path, "wb") as log_file:
                self.processes.append(subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                    [*launcher, *command], env=env, cwd=self.base_dir,
                    stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    start_new_session=self.detached, preexec_fn=None if self.detached else die_with_parent,
                ))
        self._wait_ready()
        self.start_seconds = time.monotonic() - started
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            for process, log_path in zip(self.processes, self.log_paths, strict=True):
                if process.poll() is not None:
                    tail = log_tail(log_path)
                    self.stop()
                    error = MasterExited if log_path.stem == "master" else ClusterError
                    raise error(f"a Spark {log_path.stem} JVM exited with code {process.returncode} while "
                                f"the cluster started; log {log_path}:\n{tail}")
            status = master_json(self.webui_url)
            if status is not None and status.get("status") == "ALIVE" and alive_workers(status) >= self.workers:
                return
            if time.monotonic() >= deadline:
                tails = "\n".join(f"--- {path}\n{log_tail(path, 8)}" for path in self.log_paths[:2])
                self.stop()
                raise ClusterError(
                    f"the Spark master at {self.webui_url} did not list {self.workers} ALIVE worker(s) within "
                    f"{self.start_timeout_s:.0f} s ({alive_workers(status or {})} alive; is Java 17 installed? "
                    f"is the machine short of memory?); last lines of the logs:\n{tails}"
                )
            time.sleep(0.5)

    def stop(self) -> None:
        """Stop workers and master (SIGTERM, SIGKILL after 30 s); idempotent."""
        atexit.unregister(self.stop)
        processes, self.processes = self.processes, []
        _stop_pids([process.pid for process in reversed(processes)])
        for process in processes:
            process.poll()
        if self._owns_base_dir and not self.detached:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class MasterExited(ClusterError):
    """The master's JVM ended while the cluster started (often: one of its ports was taken)."""


def state_dir() -> Path:
    """``$STREAMGUARD_STATE_DIR/spark`` (default ``./.streamguard/spark``), absolute."""
    return _state_dir("spark")


@dataclass(frozen=True, slots=True)
class ClusterState:
    master_url: str
    webui_url: str
    pids: list[int]  # master first
    workers: int
    base_dir: str
    log_paths: list[str]
    started_at: float


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    state: ClusterState | None
    processes_alive: int
    workers_alive: int

    @property
    def running(self) -> bool:
        return (self.state is not None and self.processes_alive == len(self.state.pids)
                and self.workers_alive >= self.state.workers)


def read_state() -> ClusterState | None:
    try:
        return ClusterState(**json.loads((state_dir() / "state.json").read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _our_pids(state: ClusterState) -> list[int]:
    """The recorded pids that still run this state dir's Spark daemons (a reused pid runs something else)."""
    ours = []
    for pid in (p for p in state.pids if process_running(p)):
        with contextlib.suppress(OSError):
            command_line = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if "org.apache.spark.deploy." in command_line and f"{_MARKER}{state.base_dir} " in command_line:
                ours.append(pid)
    return ours


def cluster_status() -> ClusterStatus:
    """What the state file says and whether its master and workers still run and answer."""
    state = read_state()
    if state is None:
        return ClusterStatus(None, 0, 0)
    alive = _our_pids(state)
    status = master_json(state.webui_url) if state.pids[0] in alive else None
    return ClusterStatus(state, len(alive), alive_workers(status) if status and status.get("status") == "ALIVE" else 0)


def start_background(
    *, workers: int = DEFAULT_WORKERS, cores: int = DEFAULT_CORES, memory: str = DEFAULT_MEMORY
) -> ClusterState:
    """Start a detached cluster unless this state dir's one already runs; return its state."""
    current = cluster_status()
    if current.running and current.state is not None:
        return current.state
    if current.processes_alive:
        raise ClusterError("a Spark cluster from this state dir is partly running; run 'streamguard spark stop' first")
    cluster = SparkStandalone(workers=workers, cores=cores, memory=memory, base_dir=state_dir(), detached=True)
    try:
        cluster.start()
    except BaseException:  # Ctrl-C or a failed start: detached JVMs would otherwise outlive us, unrecorded
        cluster.stop()
        raise
    state = ClusterState(cluster.master_url, cluster.webui_url, cluster.pids, workers, str(cluster.base_dir),
                         [str(path) for path in cluster.log_paths], time.time())
    (state_dir() / "state.json").write_text(json.dumps(asdict(state), indent=2) + "\n")
    return state


def stop_background() -> ClusterState | None:
    """Stop the background cluster's master and workers; return the state it had, or None when there was none."""
    state = read_state()
    if state is None:
        return None
    _stop_pids(list(reversed(_our_pids(state))))
    (state_dir() / "state.json").unlink(missing_ok=True)
    return state
