"""What a figure was measured on: the machine and the versions of everything in the measured path.

    >>> machine_info()["cpu_count"], versions()["spark"]
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def machine_info() -> dict[str, object]:
    """CPU count and model, memory (GiB), OS and the load average when called (the machine may be shared)."""
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {"cpu_count": os.cpu_count(), "cpu_model": _cpu_model(), "memory_gb": _memory_gb(),
            "platform": platform.platform(terse=True), "load_avg": load}


def _jar_version(jars: list[Path], prefix: str) -> str | None:
    pattern = re.compile(rf"^{re.escape(prefix)}-(\d[\w.\-]*)\.jar$")
    return next((m.group(1) for jar in jars if (m := pattern.match(jar.name))), None)


def commit_info() -> dict[str, object]:
    """The checkout measured, as pytest-benchmark's ``commit_info`` has it: ``id``, ``branch``, ``dirty`` (tracked
    files changed; the working tree may be shared, so dirty does not say the change touched the measured code)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=_REPO, capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"id": git("rev-parse", "HEAD"), "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
            "dirty": bool(status) if status is not None else None}


def versions(*, broker: str = "local") -> dict[str, str | None]:
    """Python, Spark, the Kafka clients on both paths (confluent-kafka/librdkafka for planning, seeding and the
    embedded engine's reads, the JVM kafka-clients inside Spark's Kafka source), the embedded engine's DuckDB,
    pyarrow and scikit-learn, and the local broker's Kafka version."""
    import confluent_kafka  # noqa: PLC0415
    import duckdb  # noqa: PLC0415
    import pyarrow  # noqa: PLC0415
    import pyspark  # noqa: PLC0415
    import sklearn  # noqa: PLC0415

    from streamguard.jars import resolve_jars  # noqa: PLC0415

    spark_jars = resolve_jars("spark")
    broker_version = _jar_version(resolve_jars("broker"), "kafka_2.13") if broker == "local" else None
    return {
        "python": platform.python_version(),
        "pyspark": pyspark.__version__,
        "spark_sql_kafka": _jar_version(spark_jars, "spark-sql-kafka-0-10_2.13"),
        "kafka_clients_jvm": _jar_version(spark_jars, "kafka-clients"),
        "confluent_kafka": confluent_kafka.__version__,
        "librdkafka": confluent_kafka.libversion()[0],
        "duckdb": duckdb.__version__,
        "pyarrow": pyarrow.__version__,
        "scikit_learn": sklearn.__version__,
        "kafka_broker": broker_version if broker == "local" else "external",
    }
