"""The command line against a real broker: one-line errors with documented exit codes, and the broker service."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from e2e.conftest import unique_topic
from streamguard.errors import (
    BrokerUnreachable,
    InvalidOffsetSpec,
    NothingToRead,
    OutputError,
    TopicNotFound,
)
from streamguard.kafka.local_broker import free_port

HANG_GUARD_S = 120  # not a timing assert: a command that hangs must not hang the suite


def streamguard(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streamguard", *args], capture_output=True, text=True,
                          timeout=HANG_GUARD_S, env={**os.environ, **(env or {})}, cwd=cwd, check=False)


@pytest.fixture(scope="module")
def small_topic(bootstrap: str, produce) -> str:
    topic = unique_topic("cli")
    produce(topic, [(0, b'{"not": "an event"}', None) for _ in range(5)], partitions=1)
    return topic


def _assert_one_line_error(result: subprocess.CompletedProcess, code: int, words: str) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == code, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert words in lines[0]


def test_unreachable_broker_fails_fast_with_its_code(tmp_path):
    result = streamguard("run", "--topic", "t", "--bootstrap", f"127.0.0.1:{free_port()}", "-o", str(tmp_path / "o"))
    _assert_one_line_error(result, BrokerUnreachable.exit_code, "no Kafka broker answered")


def test_missing_topic(bootstrap, tmp_path):
    result = streamguard("run", "--topic", unique_topic("absent"), "-b", bootstrap, "-o", str(tmp_path / "o"))
    _assert_one_line_error(result, TopicNotFound.exit_code, "does not exist")


def test_nothing_to_read(bootstrap, small_topic, tmp_path):
    result = streamguard("run", "--topic", small_topic, "-b", bootstrap, "--start", "latest", "-o",
                         str(tmp_path / "o"))
    _assert_one_line_error(result, NothingToRead.exit_code, "nothing to read")


def test_invalid_start_spec(bootstrap, small_topic, tmp_path):
    result = streamguard("run", "--topic", small_topic, "-b", bootstrap, "--start", "{\"0\": 99}", "-o",
                         str(tmp_path / "o"))
    _assert_one_line_error(result, InvalidOffsetSpec.exit_code, "outside")


def test_output_not_writable(bootstrap, small_topic, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = streamguard("run", "--topic", small_topic, "-b", bootstrap, "-o", str(blocker / "out"))
    _assert_one_line_error(result, OutputError.exit_code, "not writable")


def test_kafka_start_status_stop_leave_nothing_running(tmp_path):
    env = {"STREAMGUARD_STATE_DIR": str(tmp_path / "state"), "STREAMGUARD_KAFKA_BOOTSTRAP": ""}
    started = streamguard("kafka", "start", env=env)
    pid = None
    try:
        assert started.returncode == 0, started.stderr
        bootstrap = started.stdout.strip().splitlines()[-1]
        assert bootstrap.startswith("127.0.0.1:")
        status = streamguard("kafka", "status", env=env)
        assert status.returncode == 0 and status.stdout.startswith("running"), status.stdout
        pid = int(status.stdout.split(" pid ")[1].split()[0])
        again = streamguard("kafka", "start", env=env)
        assert again.stdout.strip().splitlines()[-1] == bootstrap  # idempotent: the same broker
        produced = streamguard("seed", "--topic", "cli-seed", "--events", "2000", "--partitions", "2", env=env,
                               cwd=tmp_path)
        assert produced.returncode == 0, produced.stderr
        assert "seeded 2,000 events" in produced.stdout
    finally:
        stopped = streamguard("kafka", "stop", env=env)
    assert stopped.returncode == 0 and "stopped broker" in stopped.stdout
    assert streamguard("kafka", "status", env=env).returncode == 1
    if pid is not None:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
