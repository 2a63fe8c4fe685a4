"""The Spark session StreamGuard runs on: any master, Spark's Kafka source on the classpath as local jars.

    >>> spark = spark_session(master="local[*]")

The connector jars are resolved from Maven Central once (``streamguard.jars``) and handed to Spark as local paths in
``spark.jars``; Spark's own ``spark.jars.packages`` download is not used, since it may not reach a registry.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from pyspark.sql import SparkSession

from streamguard.engines import DEFAULT_SPARK_MASTER
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
    builder = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.driver.memory", os.environ.get(ENV_DRIVER_MEMORY, DEFAULT_DRIVER_MEMORY))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        # Timestamps as the embedded engine writes them (INT64 micros, UTC), not Spark's legacy INT96.
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
        .config("spark.executor.extraJavaOptions", "-Duser.timezone=UTC")
    )
    if master.startswith("local") or _on_loopback(master):
        # A cluster on this machine's loopback can only dial the driver back on loopback too.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = builder.config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
    if with_kafka:
        builder = builder.config("spark.jars", ",".join(str(jar) for jar in resolve_jars("spark")))
    for key, value in (extra_conf or {}).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    log.info("spark %s session on %s", session.version, master)
    return session


def _on_loopback(master: str) -> bool:
    """Whether a ``spark://host:port`` master URL names this machine's loopback interface."""
    host = master.removeprefix("spark://").split(",")[0].rsplit(":", 1)[0]
    return host in ("127.0.0.1", "localhost", "[::1]")


def _python() -> str:
    import sys  # noqa: PLC0415

    return sys.executable
