"""The Spark session StreamGuard runs on: any master, Spark's Kafka source on the classpath as local jars.

    >>> spark = spark_session(master="local[*]")

The connector jars are resolved from Maven Central once (``streamguard.jars``) and handed to Spark as local paths in
``spark.jars``; Spark's own ``spark.jars.packages`` download is not used, since it may not reach a registry.

The JVM's own output (log4j lines, Ivy, ``WARN NativeCodeLoader``, stack traces it prints) goes to ``jvm.log`` in the
Spark state dir (``.streamguard/spark/``), not to the terminal, unless this module's logger is at DEBUG (the CLI's
``-v``): the CLI prints one line per error, and Spark's errors reach Python as exceptions anyway.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from pyspark import SparkConf, SparkContext
from pyspark.java_gateway import launch_gateway
from pyspark.sql import SparkSession

from streamguard._proc import state_dir
from streamguard.engines import DEFAULT_SPARK_MASTER
from streamguard.errors import SetupError
from streamguard.jars import resolve_jars

log = logging.getLogger(__name__)

DEFAULT_MASTER = DEFAULT_SPARK_MASTER
DEFAULT_SHUFFLE_PARTITIONS = 8
# Spark's 1g default runs out of heap caching a full scan of about 2M events; only applies when this process
# starts the JVM (local masters, client mode).
DEFAULT_DRIVER_MEMORY = "4g"
ENV_DRIVER_MEMORY = "STREAMGUARD_SPARK_DRIVER_MEMORY"
APP_NAME = "streamguard-batch"


def spark_session(
    *,
    master: str = DEFAULT_MASTER,
    app_name: str = APP_NAME,
    with_kafka: bool = True,
    shuffle_partitions: int = DEFAULT_SHUFFLE_PARTITIONS,
    extra_conf: Mapping[str, str] | None = None,
) -> SparkSession:
    """Build (or return the running) Spark session, with Spark's Kafka source when ``with_kafka``."""
    os.environ.setdefault("PYSPARK_PYTHON", _python())
    conf = {
        "spark.master": master,
        "spark.app.name": app_name,
        "spark.driver.memory": driver_memory(),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # Timestamps as the embedded engine writes them (INT64 micros, UTC), not Spark's legacy INT96.
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
    }
    if master.startswith("local") or _on_loopback(master):
        # A cluster on this machine's loopback can only dial the driver back on loopback too.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        conf.update({"spark.driver.bindAddress": "127.0.0.1", "spark.driver.host": "127.0.0.1"})
    if with_kafka:
        conf["spark.jars"] = ",".join(str(jar) for jar in resolve_jars("spark"))
    conf.update(extra_conf or {})
    verbose = log.isEnabledFor(logging.DEBUG)
    if not verbose:
        _launch_jvm_logging_to_file(SparkConf().setAll(conf.items()))
    session = SparkSession.builder.config(map=conf).getOrCreate()
    session.sparkContext.setLogLevel("INFO" if verbose else "WARN")
    log.info("spark %s session on %s", session.version, master)
    return session


def driver_memory() -> str:
    """The driver heap a Spark JVM this process starts gets (``STREAMGUARD_SPARK_DRIVER_MEMORY``, default 4g)."""
    return os.environ.get(ENV_DRIVER_MEMORY) or DEFAULT_DRIVER_MEMORY


def jvm_log_path() -> Path:
    """Where the JVMs this process starts write their output (appended to, one header line per start)."""
    return state_dir("spark") / "jvm.log"


def _launch_jvm_logging_to_file(conf: SparkConf) -> None:
    """Start Spark's JVM (as ``getOrCreate`` would) with its stdout and stderr in ``jvm_log_path()``.

    Does nothing when this process has a JVM already: ``getOrCreate`` reuses it.
    """
    if SparkContext._gateway is not None:  # noqa: SLF001 - PySpark keeps its one JVM gateway here
        return
    path = jvm_log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sink = path.open("ab")
    except OSError as exc:
        log.warning("cannot write the JVM log %s (%s); the JVM's output is discarded", path, exc.strerror or exc)
        sink = open(os.devnull, "wb")  # noqa: SIM115 - closed below, the child holds its own descriptor
    with sink:
        sink.write(f"--- Spark JVM for pid {os.getpid()} at {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n".encode())
        sink.flush()
        try:
            gateway = launch_gateway(conf, popen_kwargs={"stdout": sink, "stderr": subprocess.STDOUT})
        except Exception as exc:
            raise SetupError(f"Spark's JVM did not start: {exc} (its output is in {path})") from exc
    # The same hand-over SparkContext makes with a gateway it launched itself.
    SparkContext._ensure_initialized(gateway=gateway, conf=conf)  # noqa: SLF001


def _on_loopback(master: str) -> bool:
    """Whether a ``spark://host:port`` master URL names this machine's loopback interface."""
    host = master.removeprefix("spark://").split(",")[0].rsplit(":", 1)[0]
    return host in ("127.0.0.1", "localhost", "[::1]")


def _python() -> str:
    import sys  # noqa: PLC0415

    return sys.executable
