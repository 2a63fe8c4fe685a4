"""A broker started by a Python process dies with it: after Ctrl-C and after the process is killed outright."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

STARTER = (
    "import time\n"
    "from streamguard.kafka.local_broker import LocalBroker\n"
    "broker = LocalBroker().start()\n"
    "print(broker.pid, flush=True)\n"
    "time.sleep(600)\n"
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.2)
    return not _alive(pid)


@pytest.mark.parametrize("signal_to_parent", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_broker_jvm_does_not_outlive_its_parent(signal_to_parent):
    parent = subprocess.Popen([sys.executable, "-c", STARTER], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True)
    jvm_pid = None
    try:
        line = parent.stdout.readline() if parent.stdout else ""
        assert line.strip().isdigit(), "the broker did not start"
        jvm_pid = int(line)
        assert _alive(jvm_pid)
        parent.send_signal(signal_to_parent)
        parent.wait(timeout=60)
        # A bounded wait for the JVM's own shutdown, not a timing assert: the point is that it ends at all.
        assert _gone_within(jvm_pid, 60), f"broker JVM {jvm_pid} outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()
        if jvm_pid is not None and _alive(jvm_pid):
            os.kill(jvm_pid, signal.SIGKILL)
