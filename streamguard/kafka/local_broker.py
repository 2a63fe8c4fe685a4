"""A real Apache Kafka 4.x broker (KRaft, one combined broker+controller node) run as a child JVM.

The jars come from Maven Central through ``streamguard.jars`` (``broker.pom.xml``). The broker binds 127.0.0.1 on
free ports, formats its own data directory, advertises exactly the address clients dial, and is ready when it
answers a metadata request.

    >>> with LocalBroker() as broker:
    ...     print(broker.bootstrap)          # 127.0.0.1:<port>

With ``sasl_users`` the client listener is SASL_PLAINTEXT with the PLAIN mechanism and those users (the controller
listener stays PLAINTEXT); clients then need the credentials:

    >>> with LocalBroker(sasl_users={"alice": "secret"}) as broker:
    ...     plan_read(broker.bootstrap, "events", properties=broker.client_properties("alice"))

A child started in-process is tied to its parent (Linux ``PR_SET_PDEATHSIG``), so a killed test run leaves no JVM
behind; ``detached=True`` is for ``streamguard kafka start``, where the broker outlives the command.
"""

from __future__ import annotations

import atexit
import base64
import logging
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Self

from streamguard._proc import die_with_parent, free_port, log_tail
from streamguard.errors import BrokerError, BrokerStartTimeout, SetupError
from streamguard.jars import resolve_jars
from streamguard.kafka.broker import BrokerProvider, metadata_answers
from streamguard.kafka.properties import KafkaProperties

log = logging.getLogger(__name__)

DEFAULT_START_TIMEOUT_S = 90.0
DEFAULT_HEAP = "1g"
_STOP_GRACE_S = 30.0

_SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners={protocol}://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners={protocol}://127.0.0.1:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map={protocol}:{protocol},CONTROLLER:PLAINTEXT
inter.broker.listener.name={protocol}
log.dirs={log_dirs}
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true
log.retention.hours=-1
log.segment.bytes=268435456
# The log cleaner looks for compactable logs every second (Kafka's default: 15 s), so a compacted topic with a
# short segment.ms is compacted within seconds: tests of compacted topics need that, nothing else notices.
log.cleaner.backoff.ms=1000
"""

# SASL/PLAIN on the client listener (the broker's own connections to itself use it too, with an account of its
# own); the controller listener stays PLAINTEXT on loopback. The JAAS config names every user and password.
_SASL_PROPERTIES = """\
sasl.enabled.mechanisms=PLAIN
sasl.mechanism.inter.broker.protocol=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config={jaas}
"""
SASL_MECHANISM = "PLAIN"
_BROKER_ACCOUNT = "streamguard-broker"
_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")

_LOG4J2_PROPERTIES = """\
rootLogger.level=INFO
rootLogger.appenderRef.out.ref=OUT
appender.out.type=Console
appender.out.name=OUT
appender.out.layout.type=PatternLayout
appender.out.layout.pattern=[%d] %p %m (%c)%n
logger.kafka.name=kafka
logger.kafka.level=INFO
logger.state.name=state.change.logger
logger.state.level=WARN
"""


def java_executable() -> str:
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    if candidate is not None and candidate.exists():
        return str(candidate)
    found = shutil.which("java")
    if found is None:
        raise SetupError("java is not on PATH (Java 17 or newer is needed for the Kafka broker and Spark)")
    return found


def _jaas_quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _new_cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


class LocalBroker(BrokerProvider):
    """An Apache Kafka broker in a child JVM. See the module docstring."""

    name = "local"

    def __init__(
        self,
        *,
        data_dir: Path | None = None,
        port: int = 0,
        controller_port: int = 0,
        start_timeout_s: float = DEFAULT_START_TIMEOUT_S,
        heap: str = DEFAULT_HEAP,
        detached: bool = False,
        sasl_users: Mapping[str, str] | None = None,
        broker_password: str | None = None,
    ) -> None:
        for user in sasl_users or {}:
            if not _USER_NAME.fullmatch(user) or user == _BROKER_ACCOUNT:
                raise BrokerError(f"{user!r} cannot be a SASL user name (letters, digits, '.', '_', '-')")
        if any(not password or "\n" in password or "\r" in password for password in (sasl_users or {}).values()):
            raise BrokerError("a SASL password must be non-empty and on one line")
        self._owns_data_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="streamguard-kafka-"))
        self.port = port or free_port()
        self.controller_port = controller_port or free_port()
        self.start_timeout_s = start_timeout_s
        self.heap = heap
        self.detached = detached
        self.log_path = self.data_dir / "broker.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.start_seconds: float | None = None
        self.sasl_users = dict(sasl_users or {})
        # The broker's own account (its connections to itself, readiness checks); kept across restarts by the daemon.
        self.broker_password = broker_password or (secrets.token_urlsafe(24) if self.sasl_users else None)

    @property
    def security_protocol(self) -> str:
        return "SASL_PLAINTEXT" if self.sasl_users else "PLAINTEXT"

    def client_properties(self, user: str | None = None) -> KafkaProperties:
        """Client properties to reach this broker: none without SASL; else ``user``'s credentials (default: the
        broker's own account)."""
        if not self.sasl_users:
            return KafkaProperties()
        if user is not None and user not in self.sasl_users:
            raise BrokerError(f"no SASL user {user!r} on this broker")
        name, password = (user, self.sasl_users[user]) if user else (_BROKER_ACCOUNT, self.broker_password)
        return KafkaProperties({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": SASL_MECHANISM,
                                "sasl.username": name, "sasl.password": password or ""})

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> Self:
        started = time.monotonic()
        classpath = os.pathsep.join(str(jar) for jar in resolve_jars("broker"))
        config = self._write_config()
        java = java_executable()
        base = [java, f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}", "-cp", classpath]
        if not (self.data_dir / "kraft" / "meta.properties").exists():
            formatted = subprocess.run(
                [*base, "kafka.tools.StorageTool", "format", f"--cluster-id={_new_cluster_id()}", "-c", str(config)],
                capture_output=True, text=True, timeout=120, check=False,
            )
            if formatted.returncode != 0:
                raise BrokerError(f"formatting the Kafka data directory failed: {formatted.stderr.strip()[-400:]}")
        jvm = [java, f"-Xmx{self.heap}", "-Xms256m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
               f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}", "-cp", classpath]
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                [*jvm, "kafka.Kafka", str(config)],
                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=self.detached,
                preexec_fn=None if self.detached else die_with_parent,
            )
        if not self.detached:
            atexit.register(self.stop)
        self._wait_ready()
        self.start_seconds = time.monotonic() - started
        log.info("local Kafka broker ready at %s in %.1f s (pid %d, data %s)",
                 self.bootstrap, self.start_seconds, self.process.pid, self.data_dir)
        return self

    def _write_config(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "log4j2.properties").write_text(_LOG4J2_PROPERTIES)
        config = self.data_dir / "server.properties"
        text = _SERVER_PROPERTIES.format(
            port=self.port, controller_port=self.controller_port, log_dirs=self.data_dir / "kraft",
            protocol=self.security_protocol,
        )
        if self.sasl_users:
            # java.util.Properties reads a backslash as an escape: the JAAS text's own escapes are doubled.
            text += _SASL_PROPERTIES.format(jaas=self._jaas().replace("\\", "\\\\"))
        # It holds the SASL passwords: readable by this user only, from the moment it exists.
        config.touch(mode=0o600)
        config.chmod(0o600)
        config.write_text(text)
        return config

    def _jaas(self) -> str:
        accounts = {_BROKER_ACCOUNT: self.broker_password or "", **self.sasl_users}
        users = " ".join(f'user_{name}="{_jaas_quote(password)}"' for name, password in accounts.items())
        return ("org.apache.kafka.common.security.plain.PlainLoginModule required "
                f'username="{_BROKER_ACCOUNT}" password="{_jaas_quote(self.broker_password or "")}" {users};')

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise BrokerError(
                    f"the Kafka broker exited with code {self.process.returncode} while starting; "
                    f"log {self.log_path}:\n{log_tail(self.log_path)}"
                )
            if metadata_answers(self.bootstrap, timeout_s=1.0, properties=self.client_properties()):
                return
            if time.monotonic() >= deadline:
                tail = log_tail(self.log_path)  # before stop(), which may delete a temporary data directory
                self.stop()
                raise BrokerStartTimeout(
                    f"the Kafka broker did not answer metadata at {self.bootstrap} within "
                    f"{self.start_timeout_s:.0f} s (is the port taken? is Java 17 installed?); "
                    f"last lines of its log:\n{tail}"
                )
            time.sleep(0.25)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=_STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                log.warning("the Kafka broker (pid %d) ignored SIGTERM for %.0f s; killing it",
                            process.pid, _STOP_GRACE_S)
                process.kill()
                process.wait(timeout=10)
        if self._owns_data_dir and not self.detached:
            shutil.rmtree(self.data_dir, ignore_errors=True)
