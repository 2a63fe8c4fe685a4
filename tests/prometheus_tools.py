"""Prometheus' own binaries for the tests that run them (``promtool``, ``prometheus``; Debian package ``prometheus``).

    promtool = require_tool("promtool")    # its path; skips locally, fails under CI=true, when it is missing
    dashboard_metric_names()               # every metric the Grafana dashboard queries, from its JSON

``make system-deps`` installs them; CI runs it before the tests, so a missing binary there is a broken set-up,
not a reason to skip. Shared by ``tests/`` and ``e2e/`` (``from tests.prometheus_tools import ...``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

MONITORING = Path(__file__).resolve().parent.parent / "monitoring"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "streamguard-batch.json"
PROMETHEUS_CONFIG = MONITORING / "prometheus.yml"
ALERTS = MONITORING / "alerts.yml"
ALERTS_TEST = MONITORING / "alerts.test.yml"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require_tool(name: str) -> str:
    """The path of ``name`` on the PATH; otherwise fail under CI and skip elsewhere, naming the fix."""
    path = shutil.which(name)
    if path is not None:
        return path
    message = f"{name} is not installed (Debian package prometheus): run `make system-deps`"
    if in_ci():
        pytest.fail(f"CI=true and {message}")
    pytest.skip(message)


def promtool(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``promtool args...``, output captured, bounded in time."""
    return subprocess.run([require_tool("promtool"), *args], input=stdin, capture_output=True, text=True,
                          timeout=120, check=False, cwd=cwd)


_PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
                 "unless", "offset", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (not functions, label names, keywords or numbers)."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # string literals
    bare = re.sub(r"\{[^}]*\}", "", bare)  # label matchers
    bare = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", bare)
    bare = re.sub(r"\[[^\]]*\]", "", bare)  # range selectors
    names = re.findall(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", bare)
    return {name for name in names if name.lower() not in _PROMQL_WORDS}


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def dashboard_metric_names() -> set[str]:
    """Every metric the Grafana dashboard queries."""
    return set().union(*(metric_names(expr) for expr in dashboard_exprs()))
