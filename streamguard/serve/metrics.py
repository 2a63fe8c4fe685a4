"""Prometheus metrics of one app, on the app's own ``CollectorRegistry`` (never the global one).

Names follow the Prometheus client conventions (``promtool check metrics`` passes): the ``streamguard_``
namespace, counters end in ``_total`` and nothing else does, units are in the name, and no label value is the
sum of the others (so ``sum()`` over any label is meaningful). The three exceptions are the names the product
specification fixes, which dashboards query as they are (:data:`SPEC_FIXED_NAMES`): they are gauges, two of
them ending in ``_total``, and carry no namespace.

Training-data metrics are read from the snapshot being served at scrape time, so they always describe the
loaded run; all but ``..._available`` and ``..._loads_total`` disappear while no run is loaded:

    streamguard_training_data_available                       1 when a run is loaded, else 0
    training_data_users_total                                 users in the run's training data (fixed name)
    training_data_anomalies_total                             of which flagged anomalous (fixed name)
    training_data_anomaly_rate                                anomalies / users (fixed name)
    streamguard_training_data_last_run_timestamp_seconds      the run's generated_at (unix seconds)
    streamguard_training_data_run_duration_seconds            the run's wall time, all stages
    streamguard_training_data_stage_duration_seconds{stage}   seconds per stage (plan, engine_init ... export)
    streamguard_training_data_records_read                     records that entered parsing
    streamguard_training_data_records_valid
    streamguard_training_data_records_quarantined                  records quarantined
    streamguard_training_data_loads_total{outcome=ok|error}   counter: runs loaded by this process

HTTP metrics are labelled by route template (``/api/training-data/anomalies/{user}``), never by raw path, and
by a method from :data:`HTTP_METHODS` (anything else is ``other``), so neither user names nor junk requests
become label values; requests no route matched share ``route="<unmatched>"``:

    streamguard_http_requests_total{method,route,status}
    streamguard_http_request_duration_seconds{method,route}   histogram

The assistant's counters (``streamguard_assistant_*_total``: answers by ``phrased_by``, model calls by
``outcome``, ``llm_fallbacks_total{reason}`` for model wordings not used, tokens, cost) and the process' own
(``streamguard_process_*``: memory, CPU, file descriptors) complete the set.
:class:`MetricsEndpoint` serves the registry with prometheus_client's ASGI app, which negotiates OpenMetrics
and gzip with the scraper.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, make_asgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.routing import Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from streamguard.serve.data import DataStore, Snapshot

NAMESPACE = "streamguard"
USERS = "training_data_users_total"
ANOMALIES = "training_data_anomalies_total"
ANOMALY_RATE = "training_data_anomaly_rate"
# The product specification fixes these names and dashboards expect them, so they keep the names they had
# before the namespace and the counter-suffix rule; promtool's complaint about the "_total" gauges is expected.
SPEC_FIXED_NAMES = (USERS, ANOMALIES, ANOMALY_RATE)
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"
UNMATCHED_ROUTE = "<unmatched>"
# The pipeline reports its wall time as a stage named "total"; it is exported as its own metric instead.
_RUN_TOTAL_STAGE = "total"
# Answers come from memory in well under a millisecond; loads and LLM calls take seconds.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _name(name: str) -> str:
    return f"{NAMESPACE}_{name}"


class TrainingDataCollector(Collector):
    """Exposes the snapshot a :class:`DataStore` holds; registered on the app's registry."""

    def __init__(self, store: DataStore) -> None:
        self._store = store

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        state = self._store.peek()
        yield GaugeMetricFamily(_name("training_data_available"), "1 when a run's training data is being served.",
                                value=int(isinstance(state, Snapshot)))
        loads = CounterMetricFamily(_name("training_data_loads"), "Runs this process loaded, by outcome.",
                                    labels=["outcome"])
        for outcome, count in self._store.loads.items():
            loads.add_metric([outcome], count)
        yield loads
        if not isinstance(state, Snapshot):
            return
        report, run = state.report, state.report.run
        seconds = run.stage_seconds.model_dump()
        run_seconds = seconds.pop(_RUN_TOTAL_STAGE)
        for name, documentation, value in (
            (USERS, "Users in the loaded run's training data.", report.total_users),
            (ANOMALIES, "Users the loaded run flagged.", report.anomalous_users),
            (ANOMALY_RATE, "Anomalous users divided by users, in the loaded run.", report.anomaly_rate),
            (_name("training_data_last_run_timestamp_seconds"), "The loaded run's generated_at, unix seconds.",
             state.generated_epoch),
            (_name("training_data_run_duration_seconds"), "Wall time of the loaded run, all stages.",
             run_seconds),
            (_name("training_data_records_read"), "Records the loaded run parsed.", run.records_read),
            (_name("training_data_records_valid"), "Valid events of the loaded run.", run.records_valid),
            (_name("training_data_records_quarantined"), "Records the loaded run quarantined.",
             run.records_quarantined),
        ):
            yield GaugeMetricFamily(name, documentation, value=value)
        stages = GaugeMetricFamily(_name("training_data_stage_duration_seconds"),
                                   "Seconds per pipeline stage of the loaded run (they add up to the run's "
                                   "duration but for bookkeeping between stages).", labels=["stage"])
        for stage, value in seconds.items():
            stages.add_metric([stage], value)
        yield stages


class NamespacedCollector(Collector):
    """Re-exports another registry's metrics under ``<namespace>_`` (names already in it are left alone).

    The assistant registers its counters without a namespace; the app hands it a private registry and
    publishes that through this collector: ``registry.register(NamespacedCollector(private))``.
    """

    def __init__(self, source: CollectorRegistry, namespace: str = NAMESPACE) -> None:
        self._source = source
        self._prefix = f"{namespace}_"

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        for family in self._source.collect():
            if family.name.startswith(self._prefix):
                yield family
                continue
            renamed = Metric(self._prefix + family.name, family.documentation, family.type, family.unit)
            renamed.samples = [sample._replace(name=self._prefix + sample.name) for sample in family.samples]
            yield renamed


class HttpMetrics:
    """The request counter and latency histogram, registered once per app on its registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter("http_requests", "HTTP requests answered.", ["method", "route", "status"],
                                namespace=NAMESPACE, registry=registry)
        self.duration = Histogram("http_request_duration_seconds", "Time to answer an HTTP request.",
                                  ["method", "route"], namespace=NAMESPACE, buckets=_LATENCY_BUCKETS,
                                  registry=registry)


def register_process_metrics(registry: CollectorRegistry) -> None:
    """``streamguard_process_*``: the server's resident memory, CPU seconds, open file descriptors."""
    ProcessCollector(namespace=NAMESPACE, registry=registry)


def method_label(method: str) -> str:
    """The request method as a label value: one of :data:`HTTP_METHODS`, else ``"other"``."""
    return method if method in HTTP_METHODS else OTHER_METHOD


class HttpMetricsMiddleware:
    """Pure ASGI middleware recording every HTTP request in :class:`HttpMetrics`, by route template.

    Added with ``app.add_middleware(HttpMetricsMiddleware, metrics=HttpMetrics(registry), router=app.router)``.
    """

    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics, router: Router) -> None:
        self.app = app
        self.metrics = metrics
        self.router = router

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
            template = self._template(scope)
            method = method_label(scope.get("method", ""))
            self.metrics.requests.labels(method=method, route=template, status=str(status)).inc()
            self.metrics.duration.labels(method=method, route=template).observe(time.perf_counter() - began)

    def _template(self, scope: Scope) -> str:
        # FastAPI stores the matched API route in the scope; its path is the template, not the raw path.
        # Other routes (/metrics, an ASGI app) are not always stored, so those are matched here again.
        # path_format is the template without convertors ({user}, not {user:path}), as OpenAPI shows it.
        route = scope.get("route")
        if route is None:
            route = next((r for r in self.router.routes if r.matches(scope)[0] is not Match.NONE), None)
        if route is None:
            return UNMATCHED_ROUTE
        return str(getattr(route, "path_format", None) or getattr(route, "path", None) or UNMATCHED_ROUTE)


class MetricsEndpoint:
    """The ``/metrics`` ASGI endpoint: prometheus_client's ``make_asgi_app`` over ``registry``.

    ``before_scrape`` runs first (the app lets its data store pick up a newly published run there). An
    instance, not a function, so that Starlette's ``Route`` treats it as an ASGI app::

        app.router.add_route("/metrics", MetricsEndpoint(registry, refresh), methods=["GET", "HEAD"])
    """

    def __init__(self, registry: CollectorRegistry, before_scrape: Callable[[], Awaitable[object]]) -> None:
        self._serve = make_asgi_app(registry)
        self._before_scrape = before_scrape

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._before_scrape()
        await self._serve(scope, receive, send)
