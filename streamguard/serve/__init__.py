"""The serving layer: an HTTP API (FastAPI) over the last published run, with Prometheus metrics.

    >>> from streamguard.serve import create_app, serve
    >>> app = create_app(Path("out/demo"))      # for tests and embedding
    >>> serve(Path("out/demo"), "127.0.0.1", 8081)   # what 'streamguard serve' runs

Modules: ``data`` (snapshots of a run and their reloading), ``models`` (request/response models, derived from
the report models), ``metrics`` (Prometheus), ``app`` (routes and the uvicorn entry point), ``process`` (the
server as a child process, for end-to-end tests and benchmarks). The assistant (``streamguard.assistant``)
reads this package's models, and ``app`` mounts the assistant, so names here are imported on first use to keep
``import streamguard.serve.models`` free of that cycle.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streamguard.serve.app import create_app, serve
    from streamguard.serve.data import DataStore, NoData, Snapshot, load_snapshot
    from streamguard.serve.defaults import DEFAULT_HOST, DEFAULT_PORT, METRICS_PATH
    from streamguard.serve.process import ApiServer

__all__ = [
    "DEFAULT_HOST", "DEFAULT_PORT", "METRICS_PATH", "ApiServer", "DataStore", "NoData", "Snapshot",
    "create_app", "load_snapshot", "serve",
]
_HOMES = {
    "DEFAULT_HOST": "defaults", "DEFAULT_PORT": "defaults", "METRICS_PATH": "defaults",
    "create_app": "app", "serve": "app",
    "DataStore": "data", "NoData": "data", "Snapshot": "data", "load_snapshot": "data",
    "ApiServer": "process",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'streamguard.serve' has no attribute {name!r}")
    return getattr(import_module(f"streamguard.serve.{_HOMES[name]}"), name)
