"""The quality benchmark's threshold-free figures: the best operating point and the injected-event counts."""

from __future__ import annotations

import numpy as np

from bench.quality import best_operating_point, injected_events
from streamguard.synth.truth import AnomalousUser, GroundTruth


def test_best_operating_point_takes_the_highest_recall_at_the_precision():
    score = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    positive = np.array([True, True, False, True, False, True])
    # Top 2: P 1.0 R 0.5; top 4: P 0.75; top 6: P 0.67 -> with 0.8 the cut is after 2, with 0.75 after 4.
    assert best_operating_point(score, positive, 0.8).tolist() == [True, True, False, False, False, False]
    assert best_operating_point(score, positive, 0.75).tolist() == [True, True, True, True, False, False]


def test_best_operating_point_flags_ties_together_and_nothing_when_out_of_reach():
    score = np.array([0.9, 0.9, 0.1])
    assert best_operating_point(score, np.array([True, False, False]), 0.5).tolist() == [True, True, False]
    assert not best_operating_point(score, np.array([True, False, False]), 0.8).any()
    assert not best_operating_point(score, np.zeros(3, dtype=bool), 0.8).any()


def test_injected_events_counts_users_by_their_anomalous_events():
    anomalies = tuple(AnomalousUser(user=f"u{n}", behaviour="ip_hopping", events=10, anomalous_events=n)
                      for n in (0, 1, 1, 2, 3, 40))
    truth = GroundTruth(seed=1, events=100, users=10, anomalous_users=6, days=7, invalid_rate=0.0, key="user",
                        start_ms=0, end_ms=1, valid_events=100, invalid_events=0, anomalies=anomalies,
                        invalid_counts={}, variant_counts={})
    assert injected_events(truth) == {"0": 1, "1": 2, "2": 1, "3+": 2}


def test_the_chart_draws_the_quality_runs(tmp_path):
    from bench.chart import load_quality, render

    records = load_quality()
    assert records and all(r["format"] == 1 for r in records)
    path = render([], tmp_path / "chart.png", quality=records)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_quality_line_keeps_to_the_default_seed():
    from bench.chart import QUALITY_SLICE, _quality_points

    def run(seed: int | None, recall: float) -> dict:
        row = {"population": "u10k", "slice": QUALITY_SLICE, "topic_events": QUALITY_SLICE, "rule": "now",
               "recall": recall}
        return {"recorded_at": "2026-12-07T09:00:00+00:00", "results": [row if seed is None else {**row, "seed": seed}]}

    # Records before --seed had none (they used 42); a run with another seed checks luck and is not a point.
    xs, ys = _quality_points([run(None, 0.65), run(42, 0.91), run(7, 0.5)], "u10k", QUALITY_SLICE, "now", "recall")
    assert ys == [0.65, 0.91] and len(xs) == 2


def test_each_seed_has_its_own_topic():
    from bench.quality import POPULATIONS, SEED, TOPIC_REVISION

    u10k = next(p for p in POPULATIONS if p.name == "u10k")
    assert u10k.topic(100_000) == u10k.topic(100_000, SEED) == f"quality-u10k-100000-s{SEED}-{TOPIC_REVISION}"
    assert u10k.topic(100_000, 7) == f"quality-u10k-100000-s7-{TOPIC_REVISION}"


def test_the_goal_is_checked_on_whole_topics_of_the_goal_slice():
    from bench.quality import GOAL_SLICE, goals

    def row(topic_events: int, recall: float, quiet_flagged: int = 0) -> dict:
        return {"rule": "now", "population": "u10k", "slice": GOAL_SLICE, "topic_events": topic_events,
                "spread": False, "recall": recall, "precision": 0.97, "quiet_flagged": quiet_flagged}

    assert goals([row(GOAL_SLICE, 0.91)]) == []
    assert len(goals([row(GOAL_SLICE, 0.67)])) == 1
    # The first tenth of a 1M-event topic: reported, not checked; a flagged quiet user is a miss anywhere.
    assert goals([row(10 * GOAL_SLICE, 0.67)]) == []
    assert len(goals([row(10 * GOAL_SLICE, 0.95, quiet_flagged=1)])) == 1
