"""The whole job (plan, read, parse, features, detection, export) on 1,000 events, bounded against a full scan."""

from __future__ import annotations

import pytest

from bench.replay import CLOCK, replay

pytestmark = pytest.mark.benchmark(timer=CLOCK)


def test_pipeline(benchmark, pipeline_series, events, label):
    series = pipeline_series[f"pipeline/{label}/{events}"]
    info = series.extra_info()
    replay(benchmark, series.seconds, info, group=f"pipeline, topic of {events:,} events")
    assert set(info["events_read"]) == {series.case.max_events}
    expected_fetch = series.case.max_events if label == "bounded" else events
    assert set(info["records_scanned"]) == {expected_fetch}
