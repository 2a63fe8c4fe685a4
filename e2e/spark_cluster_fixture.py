"""Session-scoped local Spark standalone clusters for end-to-end tests; each yields the master URL.

    from e2e.spark_cluster_fixture import spark_cluster        # 1 worker
    from e2e.spark_cluster_fixture import spark_cluster_2w     # 2 workers

    def test_on_a_cluster(spark_cluster):
        ...  # e.g. `streamguard run --spark-master <spark_cluster>` in a subprocess

One Python process holds one SparkContext and ``getOrCreate`` hands back the running one (the ``spark`` fixture's
``local[2]`` session when it ran first), so drive the cluster from a subprocess, or use ``CLUSTER_DRIVER_CONF`` on a
fresh session. Every worker offers 1 core and 2g; executors run Python with the driver's ``PYSPARK_PYTHON``, and
output must go to a path all processes share (any local path does here). The JVMs stop at the end of the session,
and die with the test process if it is killed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from streamguard.spark_standalone import SparkStandalone

# The driver must bind where the executors can dial it back; the cluster only listens on 127.0.0.1.
CLUSTER_DRIVER_CONF = {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1",
                       "spark.executor.memory": "1g"}


@pytest.fixture(scope="session")
def spark_cluster() -> Iterator[str]:
    """The master URL (``spark://127.0.0.1:<port>``) of a 1-worker cluster shared by the test session."""
    with SparkStandalone(workers=1) as cluster:
        yield cluster.master_url


@pytest.fixture(scope="session")
def spark_cluster_2w() -> Iterator[str]:
    """The master URL of a 2-worker cluster shared by the test session."""
    with SparkStandalone(workers=2) as cluster:
        yield cluster.master_url
