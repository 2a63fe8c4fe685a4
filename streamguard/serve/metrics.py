"""Prometheus metrics of one app, on the app's own ``CollectorRegistry`` (never the global one).

Training-data metrics are gauges read from the snapshot being served at scrape time, so they always describe
the loaded run; the ``*_total`` ones among them (users, anomalies, events) are that run's totals, not counters
that grow across runs, and disappear while no data is available (``training_data_available`` is then 0):

    training_data_available                          1 when a run is loaded, else 0
    training_data_users_total                        users in the run's training data
    training_data_anomalies_total                    of which flagged anomalous
    training_data_anomaly_rate                       anomalies / users
    training_data_last_run_timestamp_seconds         the run's generated_at (unix seconds)
    training_data_stage_seconds{stage}               seconds per pipeline stage of that run
    training_data_events_read_total                  records that entered parsing
    training_data_events_valid_total
    training_data_events_invalid_total               records quarantined
    training_data_loads_total{outcome=ok|error}      counter: runs loaded by this process

HTTP metrics are labelled by route template (``/api/training-data/anomalies/{user}``), never by raw path, so
user names do not become label values; requests no route matched share ``route="<unmatched>"``:

    http_requests_total{method,route,status}
    http_request_duration_seconds{method,route}      histogram
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from streamguard.report import STAGES
from streamguard.serve.data import DataStore, Snapshot

UNMATCHED_ROUTE = "<unmatched>"
# Answers come from memory in well under a millisecond; loads and LLM calls take seconds.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class TrainingDataCollector(Collector):
    """Exposes the snapshot a :class:`DataStore` holds; registered on the app's registry."""

    def __init__(self, store: DataStore) -> None:
        self._store = store

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        state = self._store.peek()
        available = isinstance(state, Snapshot)
        yield GaugeMetricFamily("training_data_available", "1 when a run's training data is being served.",
                                value=int(available))
        loads = CounterMetricFamily("training_data_loads", "Runs this process loaded, by outcome.",
                                    labels=["outcome"])
        for outcome, count in self._store.loads.items():
            loads.add_metric([outcome], count)
        yield loads
        if not isinstance(state, Snapshot):
            return
        report, run = state.report, state.report.run
        for name, documentation, value in (
            ("training_data_users_total", "Users in the loaded run's training data.", report.total_users),
            ("training_data_anomalies_total", "Users the loaded run flagged.", report.anomalous_users),
            ("training_data_anomaly_rate", "Anomalous users divided by users.", report.anomaly_rate),
            ("training_data_last_run_timestamp_seconds", "The loaded run's generated_at, unix seconds.",
             state.generated_epoch),
            ("training_data_events_read_total", "Records the loaded run parsed.", run.events_read),
            ("training_data_events_valid_total", "Valid events of the loaded run.", run.events_valid),
            ("training_data_events_invalid_total", "Records the loaded run quarantined.", run.events_invalid),
        ):
            yield GaugeMetricFamily(name, documentation, value=value)
        stages = GaugeMetricFamily("training_data_stage_seconds",
                                   "Seconds per pipeline stage of the loaded run.", labels=["stage"])
        seconds = run.stage_seconds.model_dump()
        for stage in STAGES:
            stages.add_metric([stage], seconds[stage])
        yield stages


class HttpMetrics:
    """The request counter and latency histogram, registered once per app on its registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter("http_requests", "HTTP requests answered.", ["method", "route", "status"],
                                registry=registry)
        self.duration = Histogram("http_request_duration_seconds", "Time to answer an HTTP request.",
                                  ["method", "route"], buckets=_LATENCY_BUCKETS, registry=registry)


class HttpMetricsMiddleware:
    """Pure ASGI middleware recording every HTTP request in :class:`HttpMetrics`, by route template.

    Added with ``app.add_middleware(HttpMetricsMiddleware, metrics=HttpMetrics(registry))``.
    """

    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        began = time.perf_counter()

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            # The router stores the matched route in the scope; its path is the template, not the raw path.
            template = getattr(scope.get("route"), "path", None) or UNMATCHED_ROUTE
            method = scope.get("method", "")
            self.metrics.requests.labels(method=method, route=template, status=str(status)).inc()
            self.metrics.duration.labels(method=method, route=template).observe(time.perf_counter() - began)
