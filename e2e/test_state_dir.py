"""``streamguard seed`` writes its ground truth into ``STREAMGUARD_STATE_DIR`` and ``streamguard truth`` finds it
there from any folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from e2e.conftest import unique_topic

HANG_GUARD_S = 120  # not a timing assert: a command that hangs must not hang the suite


def _streamguard(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streamguard", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **env}, timeout=HANG_GUARD_S, check=False)


def test_seed_writes_its_ground_truth_into_the_state_dir(bootstrap: str, tmp_path: Path) -> None:
    state, work, elsewhere = tmp_path / "state", tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    topic = unique_topic("state-dir")
    env = {"STREAMGUARD_STATE_DIR": str(state)}
    seeded = _streamguard("seed", "--topic", topic, "--events", "500", "--partitions", "1", "--anomalous-users",
                          "2", "-b", bootstrap, env=env, cwd=work)
    assert seeded.returncode == 0, seeded.stderr
    truth = state / "truth" / f"{topic}.json"
    assert truth.is_file() and str(truth) in seeded.stdout
    assert not (work / ".streamguard").exists()
    shown = _streamguard("truth", "--topic", topic, env=env, cwd=elsewhere)
    assert shown.returncode == 0, shown.stderr
    recorded = json.loads(truth.read_text())
    assert json.loads(shown.stdout) == recorded and len(recorded["anomalies"]) == 2
