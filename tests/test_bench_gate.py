"""The benchmark gate judged on golden files (fixtures/bench/): pass, below the floor, a drop beyond the allowed
percentage, a measurement that read the wrong number of events, and malformed baselines; and its second check, the
embedded engine against Spark cold (a real gate run, one below the 4× floor, one whose reports name the wrong
engine)."""

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
from bench.gate_engines import ENGINE_ABSOLUTE_FLOOR

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


# The engine check: embedded against Spark, cold whole processes, 1,000 events (fixtures/bench/*engines*).


def engines_data(name: str = "measurement-engines-pass.json") -> dict:
    return json.loads((GOLDEN / name).read_text())


@pytest.fixture
def engines_baseline() -> Baseline:
    return Baseline.load(GOLDEN / "baseline-engines.json")


def test_golden_engine_baseline(engines_baseline):
    engines = engines_baseline.engines
    assert engines is not None
    assert engines.floor == ENGINE_ABSOLUTE_FLOOR == 4.0
    assert (engines.scenario.max_events, engines.scenario.rounds, engines.scenario.warmup_rounds) == (1_000, 3, 1)


def test_engines_pass_on_a_real_gate_run(engines_baseline):
    data = engines_data()
    gate = Gate(engines_baseline, GateMeasurement.from_dict(data))
    result = gate.engines.compute()
    spark, embedded = data["engines"]["spark"]["seconds"], data["engines"]["embedded"]["seconds"]
    ratios = sorted(s / e for s, e in zip(spark, embedded, strict=True))
    assert result.speedup == pytest.approx(ratios[1], abs=1e-3)  # the median of three paired rounds
    assert result.speedup > 4
    assert gate.failures() == []
    assert gate.fails() is None


def test_engines_below_the_floor_fail_alone(engines_baseline):
    gate = Gate(engines_baseline, measurement("measurement-engines-below-floor.json"))
    assert gate.read_fails() is None
    assert gate.engines.compute().speedup < 4
    [message] = gate.failures()
    assert message.startswith("engines: embedded/Spark ")
    assert "at 1,000 events is below the floor of 4×" in message


def test_a_report_naming_the_wrong_engine_is_invalid(engines_baseline):
    gate = Gate(engines_baseline, measurement("measurement-engines-wrong-engine.json"))
    assert gate.engines.compute().speedup > 4
    message = gate.fails()
    assert message is not None
    assert message.startswith("invalid measurement: the spark side's reports name the engines")


def test_an_engine_run_that_read_another_count_is_invalid(engines_baseline):
    data = engines_data()
    data["engines"]["embedded"]["events_read"][2] = 999
    message = Gate(engines_baseline, GateMeasurement.from_dict(data)).fails()
    assert message is not None
    assert "the embedded side read" in message and "not exactly 1,000 each round" in message


def test_a_missing_or_different_engine_measurement_is_invalid(engines_baseline):
    data = engines_data()
    data["engines"]["scenario"]["rounds"] = 5
    message = Gate(engines_baseline, GateMeasurement.from_dict(data)).fails()
    assert message is not None and "engine scenario" in message
    data["engines"] = None
    message = Gate(engines_baseline, GateMeasurement.from_dict(data)).fails()
    assert message == "invalid measurement: the baseline asks for the engine check and the measurement has none"


def test_both_checks_failing_report_both(engines_baseline):
    data = engines_data("measurement-engines-below-floor.json")
    data["bounded"]["seconds"] = data["full_scan"]["seconds"]
    gate = Gate(engines_baseline, GateMeasurement.from_dict(data))
    assert len(gate.failures()) == 2
    assert gate.fails() == "; ".join(gate.failures())


def test_a_baseline_without_engines_judges_the_read_stage_alone():
    data = json.loads((GOLDEN / "baseline-engines.json").read_text())
    del data["engines"]
    gate = Gate(Baseline.from_dict(data), measurement("measurement-engines-below-floor.json"))
    assert gate.engines is None
    assert gate.fails() is None


def test_an_engine_floor_below_four_is_refused():
    with pytest.raises(BaselineError, match="engines floor 3× is below 4×"):
        Baseline.load(GOLDEN / "baseline-malformed-engine-floor.json")


def test_the_committed_baseline_has_the_engine_check():
    committed = Baseline.load(BASELINE_FILE)
    assert committed.engines is not None
    assert committed.engines.floor >= ENGINE_ABSOLUTE_FLOOR
    assert committed.engines.scenario.max_events == 1_000


def test_a_measurement_round_trips_through_its_json(engines_baseline):
    parsed = measurement("measurement-engines-pass.json")
    assert GateMeasurement.from_dict(json.loads(json.dumps(parsed.to_dict()))) == parsed


@pytest.mark.parametrize(
    ("name", "code", "verdicts"),
    [
        ("measurement-engines-pass.json", EXIT_PASS, ["PASS  speedup", "PASS  engine speedup"]),
        ("measurement-engines-below-floor.json", EXIT_FAIL, ["PASS  speedup", "FAIL  engines: embedded/Spark"]),
        ("measurement-engines-wrong-engine.json", EXIT_FAIL, ["PASS  speedup", "FAIL  invalid measurement: the spark"]),
    ],
)
def test_command_line_prints_both_checks(name, code, verdicts, capsys):
    assert main(["--baseline", str(GOLDEN / "baseline-engines.json"), "--measurement", str(GOLDEN / name)]) == code
    printed = capsys.readouterr().out
    for verdict in verdicts:
        assert verdict in printed
    if code == EXIT_PASS:
        assert "engines, cold whole process: 1,000 events of a topic of 2,000,000" in printed
