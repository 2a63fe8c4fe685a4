"""A quiet command line: by default each command leaves its summary and nothing of the JVMs' own output (log4j lines,
Spark's banner, Hadoop's NativeCodeLoader warning); ``-v`` shows that output."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from e2e.conftest import unique_topic

# Lines only a JVM writes: log4j's layout ("26/11/29 16:28:16 WARN Class: ..."), Spark's start-up banner, the JDK's.
JVM_LINE = re.compile(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d (TRACE|DEBUG|INFO|WARN|ERROR) |log4j|NativeCodeLoader|"
                      r"sc\.setLogLevel|Using incubator modules|:: loading settings ::|Ivy Default Cache")


def _streamguard(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "STREAMGUARD_STATE_DIR": str(cwd / "state")}
    return subprocess.run([sys.executable, "-m", "streamguard", *args], capture_output=True, text=True, timeout=600,
                          env=env, cwd=cwd, check=False)


@pytest.fixture(scope="module")
def seeded(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, subprocess.CompletedProcess[str]]:
    topic = unique_topic("quiet")
    done = _streamguard("seed", "-t", topic, "-n", "3000", "-b", bootstrap, cwd=tmp_path_factory.mktemp("seed"))
    return topic, done


def test_seed_prints_one_line(seeded):
    _, done = seeded
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode == 0, done.stderr
    assert len(lines) == 1 and lines[0].startswith("seeded 3,000 events"), lines


def _jvm_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if JVM_LINE.search(line)]


def test_a_spark_run_shows_no_jvm_output_by_default_and_shows_it_with_verbose(bootstrap, seeded, tmp_path):
    topic, _ = seeded
    args = ("run", "-t", topic, "-b", bootstrap, "--max-events", "1000", "--engine", "spark", "-o")
    quiet = _streamguard(*args, str(tmp_path / "quiet"), cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    assert _jvm_lines(quiet.stderr) == [], quiet.stderr[-3000:]
    assert "users anomalous" in quiet.stdout
    # Not lost: the JVM's output went to the Spark state dir's log.
    assert _jvm_lines((tmp_path / "state" / "spark" / "jvm.log").read_text())

    verbose = _streamguard("-v", *args, str(tmp_path / "verbose"), cwd=tmp_path)
    assert verbose.returncode == 0, verbose.stderr[-3000:]
    assert _jvm_lines(verbose.stderr), verbose.stderr[-3000:]
