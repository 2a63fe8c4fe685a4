"""The Spark engine's sizing and its reading of a lost JVM (no JVM needed: the rules are plain functions)."""

from __future__ import annotations

import pytest
from py4j.protocol import Py4JError, Py4JNetworkError

from streamguard.engines.spark import RECORDS_PER_TASK, _jvm_gone, shuffle_partitions
from streamguard.spark import DEFAULT_SHUFFLE_PARTITIONS


@pytest.mark.parametrize(("records", "parallelism", "expected"), [
    (1_000, 2, DEFAULT_SHUFFLE_PARTITIONS),  # a laptop: the floor
    (100_000, 200, 200),  # a cluster of 200 cores: every core gets a share of the users
    (10 * RECORDS_PER_TASK, 2, 10),  # a large slice on few cores: tasks of RECORDS_PER_TASK records
    (1_000_000_000, 200, 4_000),  # 1B events on 200 cores: more tasks than cores, each of a bounded size
    (RECORDS_PER_TASK * 8 + 1, 1, 9),
])
def test_the_features_stage_gets_tasks_for_the_slice_and_the_cluster(records, parallelism, expected):
    assert shuffle_partitions(records, parallelism) == expected


@pytest.mark.parametrize(("error", "gone"), [
    (ConnectionRefusedError(111, "Connection refused"), True),
    (Py4JNetworkError("An error occurred while trying to connect to the Java server"), True),
    (Py4JError("An error occurred while calling o42.count. Answer from Java side is empty"), True),
    (Py4JError("An error occurred while calling o42.count. Trace: java.lang.IllegalArgumentException"), False),
    (ValueError("bad input"), False),
])
def test_a_lost_jvm_is_told_apart_from_a_failing_job(error, gone):
    assert _jvm_gone(error) is gone
