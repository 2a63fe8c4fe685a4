"""The serving API: the last published run's report, anomalies and per-user features, over HTTP (FastAPI).

    >>> app = create_app(Path("out/demo"))          # from a shell: streamguard serve --data out/demo
    >>> TestClient(app).get("/api/training-data/anomalies", params={"limit": 5}).json()["items"]

Routes (OpenAPI at ``/openapi.json``, docs at ``/docs`` with local assets: see :mod:`streamguard.serve.docs`)::

    GET  /api/training-data/report            the anomaly report as the run wrote it   404 no report
    GET  /api/training-data/anomalies         anomalous users, most anomalous first    503 no data
    GET  /api/training-data/anomalies/{user}  one user's features, score and flag      404 unknown user, 503
    GET  /api/training-data/stats             totals of the run                        503
    GET  /api/training-data/features          feature definitions, population stats    503
    POST /api/assistant/query                 plain-language answer about one user     503
    GET  /health                              always 200; "status": "ok" | "degraded"
    GET  /metrics                             Prometheus text or OpenMetrics, gzip when asked
    GET  /, /users/{user}                     the web view, HTML (see :mod:`streamguard.web`)

Every GET route answers HEAD too. A request body over 64 KiB is refused with 413, and a 422 quotes at most a
short preview of what was sent (:mod:`streamguard.serve.limits`). A user id is any name the pipeline accepts,
percent-encoded whole in the path ("/" as ``%2F``; a name of dots as ``%2E``: see
:func:`~streamguard.serve.models.user_segment`).

The assistant route runs on the event loop and awaits the language model (when one is configured), so slow
model calls hold no worker thread and never delay the data routes; at most ``STREAMGUARD_LLM_MAX_CONCURRENT``
calls are in flight, and past that, on a timeout, or on a reply that is malformed or contradicts the facts,
the answer is the template one with ``llm_fallback`` naming the reason (:mod:`streamguard.assistant.llm`).

``/health`` answers 200 while the process runs (a liveness probe), and tells whether there is data to serve:
``status`` is ``"ok"`` with ``data_available: true`` when a run is loaded, else ``"degraded"`` with a
``reason``. Alert on ``data_available`` (or ``streamguard_training_data_available``), not on the status code.

With a token (``STREAMGUARD_API_TOKEN`` for :func:`serve`, ``token=`` for :func:`create_app`) every route
except ``/health``, ``/metrics`` and the static files of Swagger UI and of the web view requires
``Authorization: Bearer <token>`` and answers 401 otherwise; ``/docs``, ``/openapi.json`` and the web pages
included. Those stay open because probes and Prometheus scrape without credentials; none reveals a user name
(metrics are labelled by route template and carry only run totals). Every error body is
``{"error": code, "message": sentence}``.
"""

import logging
import os
import secrets
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any

import uvicorn
from fastapi import Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from streamguard.assistant.answer import AssistantAnswer, answer_question_async
from streamguard.assistant.llm import AssistantMetrics, LlmConfig, Phraser
from streamguard.report import AnomalyReport
from streamguard.serve.data import RELOAD_INTERVAL_S, DataStore, NoData, Snapshot, State
from streamguard.serve.defaults import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    DOCS_PATH,
    HEALTH_PATH,
    METRICS_PATH,
    OPENAPI_PATH,
    TOKEN_ENV,
)
from streamguard.serve.docs import ASSET_TYPES, ASSETS_PATH, docs_page, swagger_assets
from streamguard.serve.limits import MAX_BODY_BYTES, BodyLimitMiddleware, bounded_errors
from streamguard.serve.metrics import (
    HttpMetrics,
    HttpMetricsMiddleware,
    MetricsEndpoint,
    NamespacedCollector,
    TrainingDataCollector,
    register_process_metrics,
)
from streamguard.serve.models import (
    USER_MAX_LENGTH,
    USER_PATTERN,
    USER_RULE,
    AnomalyPage,
    AssistantQuery,
    ErrorBody,
    FeaturesResponse,
    Health,
    Stats,
    UserRow,
)
from streamguard.web.routes import add_web_routes

log = logging.getLogger(__name__)

DEFAULT_LIMIT, MAX_LIMIT = 50, 1000

UserName = Annotated[str, PathParam(min_length=1, max_length=USER_MAX_LENGTH, pattern=USER_PATTERN,
                                    description=USER_RULE)]
_ERROR_CODES = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed", 413: "request_too_large",
                503: "no_training_data"}


def _error(status: int, error: str, message: str, headers: dict[str, str] | None = None) -> HTTPException:
    return HTTPException(status, detail={"error": error, "message": message}, headers=headers)


def _responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody} for status in statuses}


def create_app(data_dir: Path, *, token: str | None = None, reload_interval: float = RELOAD_INTERVAL_S,
               llm: LlmConfig | None = None, max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """The API over the output path ``data_dir`` (the symlink ``streamguard run --output`` maintains).

    Loads the current run now and reloads it when a new one is published (checked at most every
    ``reload_interval`` seconds, on request). ``token``: require this bearer token; ``llm``: let a model word
    assistant answers; ``max_body_bytes``: the largest request body accepted. Metrics go to the app's own
    registry, ``app.state.registry``.
    """
    store = DataStore(data_dir, reload_interval=reload_interval)
    registry = CollectorRegistry()
    registry.register(TrainingDataCollector(store))
    register_process_metrics(registry)
    # The assistant names its counters without our namespace; they reach /metrics through the collector.
    assistant_registry = CollectorRegistry()
    assistant_metrics = AssistantMetrics(assistant_registry)
    registry.register(NamespacedCollector(assistant_registry))
    phraser = None if llm is None else Phraser(llm, assistant_metrics)

    app = FastAPI(title="StreamGuard training data API", version=_package_version(),
                  summary="Anomalous users, their features and the batch run's report.",
                  docs_url=None, redoc_url=None, openapi_url=None)  # served below: local assets, token
    app.state.store = store
    app.state.registry = registry
    # The last added is the outermost: metrics see every answer, the 413s included.
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(HttpMetricsMiddleware, metrics=HttpMetrics(registry), router=app.router)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    protected = [Depends(_require_token(token))] if token else []

    async def state() -> State:
        # Off the event loop only when a disk check is due: loading a run takes a while, answering does not.
        return await run_in_threadpool(store.current) if store.due() else store.peek()

    async def snapshot() -> Snapshot:
        current = await state()
        if isinstance(current, NoData):
            raise _error(503, "no_training_data", f"no training data is loaded: {current.reason}")
        return current

    Loaded = Annotated[Snapshot, Depends(snapshot)]

    @app.get("/api/training-data/report", response_model=AnomalyReport, tags=["training data"],
             dependencies=protected, responses=_responses(401, 404))
    async def report() -> Response:
        """The run's ``anomaly_report.json``, byte for byte."""
        current = await state()
        if isinstance(current, NoData):
            raise _error(404, "no_report", f"no anomaly report to serve: {current.reason}")
        return Response(current.report_bytes, media_type="application/json")

    @app.get("/api/training-data/anomalies", response_model=AnomalyPage, tags=["training data"],
             dependencies=protected, responses=_responses(401, 503))
    async def anomalies(loaded: Loaded, limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
                        offset: Annotated[int, Query(ge=0)] = 0,
                        min_score: Annotated[float, Query(ge=0, le=1)] = 0.0) -> AnomalyPage:
        """Anomalous users sorted by ``anomaly_score`` (highest first), with the total over all pages."""
        return loaded.anomaly_page(limit=limit, offset=offset, min_score=min_score)

    # ":path": a user id may hold "/", which arrives decoded; the OpenAPI document and the metrics still say {user}
    @app.get("/api/training-data/anomalies/{user:path}", response_model=UserRow, tags=["training data"],
             dependencies=protected, responses=_responses(401, 404, 503))
    async def user_row(loaded: Loaded, user: UserName) -> BaseModel:
        """Any user's full feature row, ``anomaly_score`` and ``is_anomaly`` (0 for a normal user)."""
        row = loaded.row(user)
        if row is None:
            raise _error(404, "unknown_user", f"unknown user {user!r}: not in the training data of run "
                                              f"{loaded.run_id} ({loaded.users:,} users)")
        return row

    @app.get("/api/training-data/stats", response_model=Stats, tags=["training data"], dependencies=protected,
             responses=_responses(401, 503))
    async def stats(loaded: Loaded) -> BaseModel:
        """Users, anomalies, anomaly rate and event counts of the run."""
        return loaded.stats()

    @app.get("/api/training-data/features", response_model=FeaturesResponse, tags=["training data"],
             dependencies=protected, responses=_responses(401, 503))
    async def features(loaded: Loaded) -> FeaturesResponse:
        """Each feature's definition and unit, and its mean, population std, min and max over all users."""
        return loaded.population

    @app.post("/api/assistant/query", response_model=AssistantAnswer, tags=["assistant"],
              dependencies=protected, responses=_responses(401, 503))
    async def assistant_query(query: AssistantQuery, loaded: Loaded) -> AssistantAnswer:
        """Answer a question about one user (named in the question or as ``user_id``) from the loaded run.

        With a language model configured it words the answer; ``phrased_by`` says whether it did, and
        ``llm_fallback`` why not (the template answer is given then, never an error)."""
        # On the event loop, not in the thread pool: the template is computed from memory, and the model call
        # is awaited, so no number of slow model calls can hold threads the data routes need.
        return await answer_question_async(query.question, source=SnapshotSource(loaded), user_id=query.user_id,
                                           phraser=phraser, metrics=assistant_metrics)

    @app.get(HEALTH_PATH, response_model=Health, tags=["operations"])
    async def health() -> Health:
        """Liveness and data availability; see the module docs for how to monitor it."""
        current = await state()
        if isinstance(current, NoData):
            return Health(status="degraded", data_available=False, reason=current.reason)
        run = current.report.run
        return Health(status="ok", data_available=True, data_age_seconds=round(current.age_seconds(), 3),
                      run_id=run.run_id, topic=run.topic, records_read=run.records_read,
                      generated_at=run.generated_at)

    app.add_route(METRICS_PATH, MetricsEndpoint(registry, before_scrape=state), methods=["GET"],
                  include_in_schema=False)
    add_web_routes(app, state=state, protected=protected)  # /, /users/{user}: the web view (streamguard.web)
    _add_docs(app, protected)
    _add_head_routes(app)
    return app


def _add_docs(app: FastAPI, protected: list[Any]) -> None:
    """``/openapi.json`` and ``/docs`` (behind the token when there is one) and Swagger UI's files."""
    assets = swagger_assets()

    @app.get(OPENAPI_PATH, include_in_schema=False, dependencies=protected)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get(DOCS_PATH, include_in_schema=False, dependencies=protected)
    async def docs(request: Request) -> HTMLResponse:
        return HTMLResponse(docs_page(app.openapi(), assets is not None,
                                      root_path=request.scope.get("root_path", "")))

    if assets is None:
        return

    @app.get(ASSETS_PATH + "/{name}", include_in_schema=False)
    async def docs_asset(name: str) -> FileResponse:
        # A fixed list: the name never reaches the file system unchecked.
        if name not in ASSET_TYPES:
            raise _error(404, "not_found", f"no documentation asset {name[:64]!r}")
        return FileResponse(assets / name, media_type=ASSET_TYPES[name],
                            headers={"Cache-Control": "public, max-age=86400"})


def _add_head_routes(app: FastAPI) -> None:
    """Answer HEAD wherever GET is answered: the same route (so the same status, headers and metrics label),
    without the body, which uvicorn leaves out. Separate routes, kept out of the OpenAPI document."""
    for route in list(app.router.routes):
        if isinstance(route, APIRoute) and "GET" in route.methods and "HEAD" not in route.methods:
            app.router.add_api_route(route.path, route.endpoint, methods=["HEAD"], name=f"{route.name}_head",
                                     response_model=route.response_model, status_code=route.status_code,
                                     response_class=route.response_class, dependencies=route.dependencies,
                                     include_in_schema=False)


class SnapshotSource:
    """The assistant's facts read from one snapshot, in the API's response models."""

    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot

    def user(self, name: str) -> BaseModel | None:
        return self._snapshot.row(name)

    def stats(self) -> BaseModel:
        return self._snapshot.stats()

    def population(self) -> FeaturesResponse:
        return self._snapshot.population

    def anomalies(self, limit: int) -> AnomalyPage:
        """The ``limit`` most anomalous users, as the anomalies route pages them (list questions need it)."""
        return self._snapshot.anomaly_page(limit=limit)


def _require_token(token: str) -> Any:
    bearer = HTTPBearer(auto_error=False, description=f"The server's {TOKEN_ENV}.")
    expected = token.encode()

    async def check(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        if credentials is None or not secrets.compare_digest(credentials.credentials.encode(), expected):
            raise _error(401, "unauthorized",
                         "missing or wrong bearer token: send 'Authorization: Bearer <token>' with the "
                         f"server's {TOKEN_ENV}", headers={"WWW-Authenticate": "Bearer"})

    return check


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, HTTPException):
        raise exc
    if isinstance(exc.detail, dict) and {"error", "message"} <= exc.detail.keys():
        body = ErrorBody(**exc.detail)
    else:
        body = ErrorBody(error=_ERROR_CODES.get(exc.status_code, "http_error"), message=str(exc.detail))
    return JSONResponse(body.model_dump(exclude_none=True), status_code=exc.status_code, headers=exc.headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):
        raise exc
    # Bounded: a 422 must not echo a large input back (nor one message per key of a huge object).
    errors, left_out = bounded_errors(exc.errors())
    problems = []
    for error in errors:
        where = ".".join(str(part) for part in error["loc"][1:]) or str(error["loc"][0])
        is_user = where in ("user", "user_id") and error["type"].startswith("string_")
        problems.append(f"{where}: {USER_RULE}" if is_user else f"{where}: {error['msg']}")
    if left_out:
        problems.append(f"and {left_out:,} more problem(s)")
    body = ErrorBody(error="invalid_request", message="; ".join(problems), errors=errors)
    return JSONResponse(body.model_dump(), status_code=422)


def _package_version() -> str:
    try:
        return version("streamguard")
    except PackageNotFoundError:
        return "0+unknown"


def serve(data_dir: Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *,
          access_log: bool = False) -> None:
    """Run the API with uvicorn until interrupted; token and LLM settings come from the environment."""
    token = os.environ.get(TOKEN_ENV) or None
    app = create_app(data_dir, token=token, llm=LlmConfig.from_env())
    log.info("serving %s on http://%s:%d (bearer token %s)", data_dir, host, port,
             "required" if token else "not required")
    uvicorn.run(app, host=host, port=port, access_log=access_log, lifespan="off", ws="none", log_level="info")
