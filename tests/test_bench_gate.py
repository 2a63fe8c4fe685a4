"""The benchmark gate judged on golden files (fixtures/bench/): pass, below the floor, a drop beyond the allowed
percentage, a measurement that read the wrong number of events, and malformed baselines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.gate import (
    ABSOLUTE_FLOOR,
    BASELINE_FILE,
    EXIT_BAD_INPUT,
    EXIT_FAIL,
    EXIT_PASS,
    Baseline,
    BaselineError,
    Gate,
    GateMeasurement,
    main,
)

GOLDEN = Path(__file__).resolve().parent.parent / "fixtures" / "bench"


def measurement(name: str) -> GateMeasurement:
    return GateMeasurement.from_dict(json.loads((GOLDEN / name).read_text()), name)


@pytest.fixture
def baseline() -> Baseline:
    return Baseline.load(GOLDEN / "baseline.json")


def test_golden_baseline_threshold_is_the_higher_of_floor_and_allowed_drop(baseline):
    assert baseline.floor == 10.0
    assert baseline.threshold == pytest.approx(12.0)  # 20x less 40 % beats the 10x floor


def test_pass(baseline):
    gate = Gate(baseline, measurement("measurement-pass.json"))
    result = gate.compute()
    # Real gate run: per-round ratios 15.76, 18.24, 17.01, 21.93, 15.56 -> median 17.01.
    assert result.speedup == pytest.approx(17.0, abs=0.05)
    assert result.round_ratios == (15.76, 18.24, 17.01, 21.93, 15.56)
    assert result.bounded["median"] == pytest.approx(0.4609)
    assert result.full_scan["median"] == pytest.approx(7.2923)
    assert result.drop_pct == pytest.approx(15.0, abs=0.1)
    assert gate.fails() is None


def test_below_floor_when_the_bounded_side_scans(baseline):
    gate = Gate(baseline, measurement("measurement-below-floor.json"))
    assert gate.measurement.forced_strategy == "full-scan"
    assert gate.compute().speedup < 2
    message = gate.fails()
    assert message is not None
    assert "below the floor of 10×" in message


def test_drop_beyond_the_allowed_percentage_fails_above_the_floor(baseline):
    gate = Gate(baseline, measurement("measurement-drop.json"))
    result = gate.compute()
    assert result.floor < result.speedup < result.threshold
    assert result.drop_pct == pytest.approx(45.0)
    message = gate.fails()
    assert message is not None
    assert "dropped 45% below the baseline 20×" in message
    assert "at most 40% allowed" in message


def test_a_wrong_event_count_fails_whatever_the_speed(baseline):
    gate = Gate(baseline, measurement("measurement-wrong-count.json"))
    assert gate.compute().speedup > baseline.threshold
    message = gate.fails()
    assert message is not None
    assert message.startswith("invalid measurement: the bounded side read")


def test_a_partial_full_scan_fails(baseline):
    data = json.loads((GOLDEN / "measurement-pass.json").read_text())
    data["full_scan"]["records_scanned"][1] = 999_000
    message = Gate(baseline, GateMeasurement.from_dict(data)).fails()
    assert message is not None
    assert "not the whole topic" in message


def test_a_measurement_of_another_scenario_is_refused(baseline):
    data = json.loads((GOLDEN / "measurement-pass.json").read_text())
    data["scenario"]["events"] = 2_000_000
    message = Gate(baseline, GateMeasurement.from_dict(data)).fails()
    assert message is not None
    assert "is not the baseline's" in message


@pytest.mark.parametrize(
    ("name", "complaint"),
    [
        ("baseline-malformed-syntax.json", "not JSON"),
        ("baseline-malformed-floor.json", f"below {ABSOLUTE_FLOOR:g}×"),
        ("baseline-malformed-missing.json", "'baseline_speedup' must be a number"),
        ("baseline-malformed-drop.json", "max_drop_pct must lie strictly between 0 and 100"),
        ("baseline-malformed-scenario.json", "'max_events' must be an integer"),
    ],
)
def test_malformed_baselines_are_refused(name, complaint):
    with pytest.raises(BaselineError, match=complaint.replace("(", r"\(")):
        Baseline.load(GOLDEN / name)


def test_the_committed_baseline_is_valid_and_never_below_ten():
    committed = Baseline.load(BASELINE_FILE)
    assert committed.floor >= 10
    assert committed.threshold >= committed.floor
    assert committed.scenario.max_events == 1_000


@pytest.mark.parametrize(
    ("name", "code", "verdict"),
    [
        ("measurement-pass.json", EXIT_PASS, "PASS  speedup 17.0× ≥ 12.0×"),
        ("measurement-below-floor.json", EXIT_FAIL, "FAIL  speedup"),
        ("measurement-drop.json", EXIT_FAIL, "FAIL  speedup 11.0× dropped 45%"),
        ("measurement-wrong-count.json", EXIT_FAIL, "FAIL  invalid measurement"),
    ],
)
def test_command_line_prints_figures_and_verdict(name, code, verdict, capsys):
    assert main(["--baseline", str(GOLDEN / "baseline.json"), "--measurement", str(GOLDEN / name)]) == code
    printed = capsys.readouterr().out
    assert verdict in printed
    if code == EXIT_PASS:
        assert "speedup 17.0× (median of paired rounds)" in printed
        assert "1,000,000 records fetched per round" in printed


def test_command_line_rejects_a_malformed_baseline(capsys):
    assert main(["--baseline", str(GOLDEN / "baseline-malformed-floor.json"),
                 "--measurement", str(GOLDEN / "measurement-pass.json")]) == EXIT_BAD_INPUT
    assert "error:" in capsys.readouterr().err
