"""bench/scale_model.py: the points and topics the scale benchmark measures, the log-log slope it states, the split of
the memory timeline by stage, and the history record's shape. No timing here: these are the figures' arithmetic."""

from __future__ import annotations

import json

import pytest

from bench import scale, scale_model
from bench.scale_model import (
    AXES,
    CENTRE,
    STAGES,
    Point,
    TopicSpec,
    axis_points,
    check_record,
    growth_word,
    loglog_slope,
    point_figures,
    points,
    slopes,
    stage_peaks,
    stage_windows,
    topic_for,
)


def test_each_axis_varies_one_coordinate_around_the_centre():
    for axis, values in AXES.items():
        found = axis_points(axis, values)
        assert [p.value(axis) for p in found] == list(values)
        others = {a for a in AXES if a != axis}
        assert all(p.value(a) == CENTRE.value(a) for p in found for a in others)


def test_the_centre_is_measured_once_and_the_cheapest_point_first():
    found = points(AXES)
    assert len(found) == len(set(found)) == 3 + 4 + 3 - 2  # the centre lies on all three axes
    assert found.count(CENTRE) == 1
    assert found[0] == Point(4, 1_000, 50)
    assert found[-1] == Point(4, 10_000_000, 50)


def test_slice_points_share_the_largest_topic_and_other_points_read_a_topic_of_their_slice():
    assert topic_for(Point(4, 1_000, 50), AXES) == TopicSpec(10_000_000, 4, 50)
    assert topic_for(CENTRE, AXES) == TopicSpec(10_000_000, 4, 50)
    assert topic_for(Point(1_000, 100_000, 50), AXES) == TopicSpec(100_000, 1_000, 50)
    assert topic_for(Point(4, 100_000, 10_000), AXES) == TopicSpec(100_000, 4, 10_000)
    assert topic_for(CENTRE, {"partitions": (4, 64)}) == TopicSpec(100_000, 4, 50)
    assert TopicSpec(100_000, 64, 50).name == "scale-100000e-64p-50u-s42"


@pytest.mark.parametrize(("ys", "expected"), [
    ([0.01, 1.0, 10.0], 1.0),        # linear
    ([2.0, 2.0, 2.0], 0.0),          # flat
    ([0.01, 100.0, 10_000.0], 2.0),  # quadratic
    ([5.0, 0.05, 0.005], -1.0),
])
def test_loglog_slope_of_exact_power_laws(ys, expected):
    assert loglog_slope([1_000, 100_000, 1_000_000], ys) == expected


def test_loglog_slope_fits_noisy_points_by_least_squares():
    # y = x^0.5 with the last point 2x high: the fit moves, less than the slope of the last two points (0.65)
    slope = loglog_slope([1, 100, 10_000], [1.0, 10.0, 200.0])
    assert slope is not None and 0.5 < slope < 0.65


def test_loglog_slope_needs_two_distinct_x_and_floors_zero_seconds():
    assert loglog_slope([100], [1.0]) is None
    assert loglog_slope([100, 100], [1.0, 2.0]) is None
    assert loglog_slope([10, 1_000], [0.0, 0.0]) == 0.0  # too short to time at both ends: flat, not an error
    assert loglog_slope([10, 1_000], [0.0, 0.1]) == 1.0


def test_growth_words():
    assert [growth_word(s) for s in (None, 0.05, 0.5, 0.98, 1.6)] == [
        "not measured", "flat", "sublinear", "linear", "superlinear"]


def test_stage_peaks_take_the_highest_sample_inside_each_stage():
    windows = stage_windows([("plan", 10.2, 0.2), ("kafka_read", 12.0, 1.5), ("parse", 12.03, 0.03)])
    assert windows["kafka_read"] == pytest.approx((10.5, 12.0))
    timeline = [(10.0, 100.0), (10.1, 120.0), (10.6, 400.0), (11.5, 900.0), (11.9, 700.0), (12.1, 650.0)]
    peaks = stage_peaks(timeline, windows)
    assert peaks["plan"] == 120.0
    assert peaks["kafka_read"] == 900.0
    assert peaks["parse"] == 650.0  # shorter than the sampling interval: the sample nearest its end
    assert stage_peaks([], windows) == {}


def _sample(seconds: float, rss: float, load: float = 1.0) -> dict:
    return {"seconds": seconds + 1.0, "events_read": 1_000, "records_scanned": 1_000, "users_found": 50,
            "stage_seconds": {name: seconds for name in STAGES}, "peak_tree_rss_mb": rss,
            "stage_rss_mb": {name: rss for name in STAGES[:-1]}, "load_avg": [[load, load, load], [load] * 3]}


def test_point_figures_are_medians_over_rounds():
    figures = point_figures([_sample(1.0, 100.0), _sample(3.0, 300.0), _sample(2.0, 900.0)])
    assert figures["rounds"] == 3
    assert figures["stage_seconds"]["kafka_read"] == 2.0
    assert figures["peak_tree_rss_mb"] == 300.0
    assert figures["wall_seconds"] == 3.0


def _raw(samples: list[dict]) -> dict:
    machine = {"cpu_count": 2, "cpu_model": "x", "memory_gb": 24.0, "platform": "Linux", "load_avg": [5.0, 4.0, 3.0]}
    return {"date": "2026-11-29T16:30:00+00:00", "commit": {"id": "abc", "branch": "scale", "dirty": False},
            "machine_start": machine, "machine_end": machine, "broker": "local", "versions": {"python": "3.11"},
            "settings": {"axes": {"events": [1_000, 100_000, 1_000_000]}, "centre": {"partitions": 4,
                         "events": 100_000, "users": 50}},
            "topics": {}, "samples": samples, "failures": [], "missing": []}


def test_record_from_raw_fits_each_engine_and_axis_and_lists_what_was_not_measured():
    samples = []
    for events, seconds, rss in ((1_000, 0.01, 100.0), (100_000, 1.0, 100.0), (1_000_000, 10.0, 1_000.0)):
        for engine in ("embedded", "spark"):
            sample = _sample(seconds if engine == "embedded" else 5.0, rss)
            samples.append({**sample, "engine": engine, "point": Point(4, events, 50).key})
    raw = _raw(samples)
    raw["failures"] = [{"engine": "spark", "point": "p4-e10000000-u50", "error": "OutOfMemoryError"}]
    record = scale.record_from_raw(raw)
    assert record["format"] == scale_model.FORMAT
    assert record["slopes"]["embedded"]["events"]["seconds"]["kafka_read"] == 1.0
    assert record["slopes"]["spark"]["events"]["seconds"]["kafka_read"] == 0.0
    assert record["slopes"]["embedded"]["events"]["rss"]["peak"] == 0.29  # by hand: 1.333 / 4.667 in log10 units
    assert record["missing"] == [{"engine": "spark", "point": "p4-e10000000-u50", "error": "OutOfMemoryError"}]
    assert record["machine"]["load_avg_start"] == [5.0, 4.0, 3.0]
    json.dumps(record)  # one JSON line


def test_check_record_refuses_other_formats_and_missing_stages():
    record = scale.record_from_raw(_raw([{**_sample(1.0, 100.0), "engine": "embedded", "point": CENTRE.key}]))
    check_record(record)
    with pytest.raises(ValueError, match="format"):
        check_record({**record, "format": 99})
    broken = json.loads(json.dumps(record))
    del broken["results"]["embedded"][CENTRE.key]["stage_seconds"]["parse"]
    with pytest.raises(ValueError, match="parse"):
        check_record(broken)


def test_slopes_use_only_the_points_measured():
    results = {"embedded": {Point(4, 1_000, 50).key: point_figures([_sample(0.1, 10.0)])}}
    fitted = slopes(results, {"events": (1_000, 100_000)})
    assert fitted["embedded"]["events"]["seconds"]["total"] is None


def test_plan_jitter_finds_the_longest_silence_in_librdkafka_s_debug_log():
    from bench.plan_jitter import longest_gap

    log = "\n".join([
        "%7|100.010|SEND|rdkafka#producer-1| [thrd:b/1]: b/1: Sent MetadataRequest (v13)",
        "%7|100.020|RECV|rdkafka#producer-1| [thrd:b/1]: b/1: Received MetadataResponse (v13)",
        "%7|100.030|SEND|rdkafka#producer-1| [thrd:b/1]: b/1: Sent ListOffsetsRequest (v7)",
        "not a debug line",
        "%7|100.530|RECV|rdkafka#producer-1| [thrd:b/1]: b/1: Received ListOffsetsResponse (v7)",
        "%7|101.900|DESTROY|rdkafka#producer-1| [thrd:app]: after the plan: ignored",
    ])
    gap, around = longest_gap(log, began=100.0, ended=100.6)
    assert gap == pytest.approx(0.5)
    assert around[0].startswith("SEND: ") and "ListOffsetsRequest" in around[0]
    assert around[1].startswith("RECV: ") and "ListOffsetsResponse" in around[1]
    assert longest_gap("", began=5.0, ended=5.25) == (0.25, ["plan starts", "plan ends"])


def test_the_top_slope_sees_linear_growth_that_a_fixed_cost_hides_at_small_points():
    # seconds = 2 + 1e-5 per record: flat at 1k, linear by 10M
    results = {"embedded": {Point(4, n, 50).key: point_figures([_sample(2.0 + 1e-5 * n, 100.0)])
                            for n in (1_000, 100_000, 1_000_000, 10_000_000)}}
    fitted = slopes(results, {"events": (1_000, 100_000, 1_000_000, 10_000_000)})["embedded"]["events"]
    assert fitted["seconds_top"]["kafka_read"] == 0.93  # log10(102 / 12)
    assert fitted["seconds"]["kafka_read"] < fitted["seconds_top"]["kafka_read"]


def test_the_chart_draws_the_recorded_history(tmp_path):
    from bench.chart import render_scale

    records = scale.load_history()
    assert records, "bench/history/scale.jsonl holds the first record"
    path = render_scale(records, tmp_path / "scale.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
