"""The web view's routes, mounted on the API app by :func:`streamguard.serve.app.create_app`.

    add_web_routes(app, state=state, protected=protected)

``state`` is the app's async dependency giving the current snapshot (or why there is none), ``protected`` the
token dependencies the API routes carry. Pages are rendered in the thread pool (the first page of a new run
reads its score column), answer 503 with an HTML page when no run is loaded and 404 for an unknown user, and are
sent with a Content-Security-Policy that allows the page's own stylesheet and icon and nothing else.
"""

# No `from __future__ import annotations`: FastAPI reads the route annotations, `Current` is local to a function.
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, Response

from streamguard.serve.data import NoData, State
from streamguard.web.render import (
    ASSET_TYPES,
    ASSETS_PATH,
    SERVED_CSP,
    USERS_PATH,
    Links,
    asset_bytes,
    index_html,
    lookup_html,
    no_data_html,
    unknown_user_html,
    user_html,
)
from streamguard.web.view import DEFAULT_ANOMALIES_SHOWN, index_view, run_view, user_view

MAX_ANOMALIES_SHOWN = 1000
_PAGE_HEADERS = {"Content-Security-Policy": SERVED_CSP, "X-Content-Type-Options": "nosniff",
                 "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}


def add_web_routes(app: FastAPI, *, state: Callable[[], Awaitable[State]], protected: Sequence[Any]) -> None:
    """Add ``/``, ``/users/{user}``, ``/users?name=`` and the static files to ``app``."""
    Current = Annotated[State, Depends(state)]
    guarded = list(protected)

    @app.get("/", include_in_schema=False, dependencies=guarded)
    def web_index(request: Request, current: Current,
                  limit: Annotated[int, Query(ge=1, le=MAX_ANOMALIES_SHOWN)] = DEFAULT_ANOMALIES_SHOWN) -> Response:
        links = _links(request)
        if isinstance(current, NoData):
            return _page(no_data_html(current.reason, links), 503)
        return _page(index_html(index_view(current, limit=limit), links))

    def user_page(request: Request, current: State, user: str) -> Response:
        links = _links(request)
        if isinstance(current, NoData):
            return _page(no_data_html(current.reason, links), 503)
        view = user_view(current, user)
        if view is None:
            return _page(unknown_user_html(user, run_view(current.report), links), 404)
        return _page(user_html(view, links))

    @app.get(USERS_PATH + "/{user}", include_in_schema=False, dependencies=guarded)
    def web_user(request: Request, current: Current, user: str) -> Response:
        return user_page(request, current, user)

    # The same page for ids a path segment cannot carry ('/' arrives decoded; '.' and '..' are normalised away
    # by browsers): Links.user() points there for those. Without a name, the look-up form.
    @app.get(USERS_PATH, include_in_schema=False, dependencies=guarded)
    def web_user_by_name(request: Request, current: Current,
                         name: Annotated[str | None, Query(max_length=1024)] = None) -> Response:
        if not name:
            run = None if isinstance(current, NoData) else run_view(current.report)
            return _page(lookup_html(run, _links(request)))
        return user_page(request, current, name)

    # One route per file: a fixed list, so a name never reaches the file system.
    for asset, media_type in ASSET_TYPES.items():
        app.add_api_route(f"{ASSETS_PATH}/{asset}", _asset_endpoint(asset, media_type), methods=["GET"],
                          include_in_schema=False, name=f"web_asset_{asset.replace('.', '_')}")


def _asset_endpoint(name: str, media_type: str) -> Callable[[], Response]:
    def web_asset() -> Response:
        return Response(asset_bytes(name), media_type=media_type,
                        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"})

    return web_asset


def _links(request: Request) -> Links:
    return Links.served(root_path=request.scope.get("root_path", ""))


def _page(html: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(html, status_code=status, headers=_PAGE_HEADERS)
