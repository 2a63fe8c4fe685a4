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
