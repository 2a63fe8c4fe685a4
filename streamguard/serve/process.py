"""The API server as a child process (``python -m streamguard serve``), for end-to-end tests and benchmarks.

    >>> with ApiServer(Path("out/demo")).start() as server:
    ...     httpx.get(f"{server.url}/health").json()["status"]

:meth:`ApiServer.start` returns once ``/health`` answers, fails fast if the process exits first, and on
timeout raises with the process status and the tail of its log. Leaving the ``with`` block (or :meth:`stop`)
terminates it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from streamguard._proc import free_port, log_tail
from streamguard.errors import StreamguardError
from streamguard.serve.defaults import DEFAULT_HOST, HEALTH_PATH

DEFAULT_STARTUP_TIMEOUT_S = 30.0
_LOG_TAIL_LINES = 20


class ApiServer:
    """``streamguard serve`` on ``host:port`` (default: a free port) over ``data_dir``; log: ``log_path``."""

    def __init__(self, data_dir: Path, *, host: str = DEFAULT_HOST, port: int | None = None,
                 env: dict[str, str] | None = None, startup_timeout: float = DEFAULT_STARTUP_TIMEOUT_S,
                 log_path: Path | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port or free_port(host)
        self.env = {**os.environ, **(env or {})}
        self.startup_timeout = startup_timeout
        self.log_path = log_path or Path(tempfile.mkstemp(prefix="streamguard-serve-", suffix=".log")[1])
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        command = [sys.executable, "-m", "streamguard", "serve", "--data", str(self.data_dir),
                   "--host", self.host, "--port", str(self.port)]
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                             stdin=subprocess.DEVNULL)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the process (SIGTERM, then SIGKILL after ``timeout`` seconds)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        return log_tail(self.log_path, lines)

    def __enter__(self) -> Self:
        if self._process is None:
            self.start()
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                code = None if self._process is None else self._process.returncode
                raise StreamguardError(f"the API server exited with code {code} before answering "
                                       f"{HEALTH_PATH}; log {self.log_path}:\n{self.log_tail()}")
            try:
                if httpx.get(self.url + HEALTH_PATH, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise StreamguardError(
            f"the API server on {self.url} did not answer {HEALTH_PATH} within {self.startup_timeout:.0f} s "
            f"(process still running); log {self.log_path}:\n{self.log_tail()}\n"
            "hint: is the port taken, or is the data directory on a slow disk?"
        )
