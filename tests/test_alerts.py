"""The alert rules (monitoring/alerts.yml) pass promtool's checks and their unit tests (alerts.test.yml)."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from prometheus_tools import ALERTS, ALERTS_TEST, MONITORING, PROMETHEUS_CONFIG, promtool

EXPECTED_ALERTS = {"StreamguardTrainingDataStale", "StreamguardTrainingDataUnavailable", "StreamguardAnomalyRateJump",
                   "StreamguardApiErrorRate"}


def alert_names(path: Path) -> set[str]:
    rules = yaml.safe_load(path.read_text())
    return {rule["alert"] for group in rules["groups"] for rule in group["rules"]}


def test_the_rules_are_valid():
    result = promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(EXPECTED_ALERTS)} rules found" in result.stdout


def test_the_prometheus_config_loads_the_rules():
    result = promtool("check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout


def test_the_rule_unit_tests_pass_and_cover_every_alert():
    assert alert_names(ALERTS) == EXPECTED_ALERTS
    tests = yaml.safe_load(ALERTS_TEST.read_text())
    tested = {case["alertname"] for test in tests["tests"] for case in test["alert_rule_test"]
              if case.get("exp_alerts")}
    assert tested == EXPECTED_ALERTS
    result = promtool("test", "rules", ALERTS_TEST.name, cwd=MONITORING)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_rule_unit_tests_can_fail(tmp_path: Path):
    # The same tests against rules whose staleness limit moved from 6 h to 7 h: the firing case must fail.
    shutil.copy(ALERTS_TEST, tmp_path / ALERTS_TEST.name)
    text = ALERTS.read_text()
    assert text.count("> 6 * 3600") == 1
    (tmp_path / ALERTS.name).write_text(text.replace("> 6 * 3600", "> 7 * 3600"))
    result = promtool("test", "rules", ALERTS_TEST.name, cwd=tmp_path)
    assert result.returncode != 0
    assert "StreamguardTrainingDataStale" in result.stdout + result.stderr
