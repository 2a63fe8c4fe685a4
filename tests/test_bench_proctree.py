"""bench/proctree.py, the wrapper the engine benchmark times ``streamguard run`` with: it waits for descendants that
outlive the command (as Spark's JVM outlives its Python driver), passes the exit status through, and sums the tree's
memory without counting a not yet exec'd fork twice."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import proctree

REPO = Path(__file__).resolve().parent.parent

# The command exits at once with status 3; its child, orphaned, lives on for 0.6 s holding ~200 MB.
ORPHAN = (
    "import subprocess, sys; "
    "subprocess.Popen([sys.executable, '-c', "
    "'import time; x = bytearray(200 * 2**20); time.sleep(0.6)']); "
    "sys.exit(3)"
)


def wrap(tmp_path: Path, *command: str) -> tuple[int, dict]:
    result = tmp_path / "tree.json"
    done = subprocess.run([sys.executable, "-m", "bench.proctree", "--result", str(result), "--interval", "0.05",
                           "--", *command], cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    return done.returncode, json.loads(result.read_text())


def test_waits_for_the_orphaned_descendant_and_passes_the_status_through(tmp_path):
    code, tree = wrap(tmp_path, sys.executable, "-c", ORPHAN)
    assert code == 3
    assert tree["returncode"] == 3
    assert tree["killed"] == []
    assert len(tree["processes"]) == 2
    main, orphan = tree["processes"]
    assert main["exit_seconds"] == tree["main_seconds"]
    assert orphan["exit_seconds"] == tree["seconds"] > tree["main_seconds"]
    assert orphan["maxrss_mb"] >= 200  # the kernel's own peak of the process reaped here
    assert tree["peak_tree_rss_mb"] >= 200
    assert tree["samples"] >= 2


def test_a_lingering_descendant_is_killed_and_reported(tmp_path):
    result = tmp_path / "tree.json"
    command = [sys.executable, "-c", "import subprocess; subprocess.Popen(['sleep', '30'])"]
    done = subprocess.run([sys.executable, "-m", "bench.proctree", "--result", str(result), "--linger", "0.5",
                           "--", *command], cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    tree = json.loads(result.read_text())
    assert done.returncode == proctree.EXIT_KILLED
    assert tree["returncode"] == 0
    assert len(tree["killed"]) == 1


def test_a_fork_that_has_not_exec_d_counts_once(monkeypatch):
    page = proctree._PAGE
    figures = {10: (900, 500, 10, 1, 0, 400, 0), 11: (900, 500, 10, 1, 0, 400, 0), 12: (300, 100, 5, 1, 0, 90, 0)}
    monkeypatch.setattr(proctree, "_statm", figures.get)
    # 11 is a vfork child of 10 (same figures); 12, also a child of 10, has exec'd something else.
    tree = {10: (1, "java"), 11: (10, "ResultQueryStag"), 12: (10, "python")}
    assert proctree.tree_rss(tree) == {"java": 500 * page, "python": 100 * page}


def test_no_command_is_a_usage_error(tmp_path):
    with pytest.raises(SystemExit):
        proctree.main(["--result", str(tmp_path / "x.json"), "--"])
