"""The read stage (the pipeline's ``kafka_read``), 1,000 events bounded against a full scan, per topic size."""

from __future__ import annotations

import pytest

from bench.replay import CLOCK, replay

pytestmark = pytest.mark.benchmark(timer=CLOCK)


def test_read(benchmark, read_series, events, label):
    series = read_series[f"read/{label}/{events}"]
    info = series.extra_info()
    replay(benchmark, series.seconds, info, group=f"read stage, topic of {events:,} events")
    assert set(info["events_read"]) == {series.case.max_events}
    expected_fetch = series.case.max_events if label == "bounded" else events
    assert set(info["records_scanned"]) == {expected_fetch}
