"""Bounds on what a client can make the API hold or send back: request body size and echoed input.

    app.add_middleware(BodyLimitMiddleware, max_bytes=MAX_BODY_BYTES)   # 413 beyond 64 KiB
    errors = bounded_errors(exc.errors())                               # 422 bodies that stay small

The body limit counts the bytes as the app reads them, so it holds for a declared ``Content-Length`` and for a
chunked body alike, and it is raised as an ``HTTPException(413)`` from inside the route: the app's error
handler words it, and the request is counted under its route template. A route that never reads its body is
not affected. Validation errors quote at most :data:`MAX_ECHO_CHARS` characters of any input and list at most
:data:`MAX_ERRORS` problems, so a 422 stays small whatever was sent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from fastapi import HTTPException
from fastapi.encoders import jsonable_encoder
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 64 * 1024
MAX_ECHO_CHARS = 120
MAX_LOC_CHARS = 64
MAX_ERRORS = 10


def too_large(max_bytes: int) -> HTTPException:
    # FastAPI's own HTTPException: its body parser re-raises that one and turns anything else into a 400.
    return HTTPException(413, detail={"error": "request_too_large",
                                      "message": f"the request body exceeds {max_bytes:,} bytes"})


class BodyLimitMiddleware:
    """Pure ASGI middleware: the request body the app reads may hold at most ``max_bytes`` bytes."""

    def __init__(self, app: ASGIApp, *, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            if declared is not None and declared > self.max_bytes:
                raise too_large(self.max_bytes)  # refuse before reading a byte of it
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise too_large(self.max_bytes)
            return message

        await self.app(scope, limited_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def bounded(value: Any, limit: int = MAX_ECHO_CHARS) -> Any:
    """``value`` made JSON-ready, or, when its JSON is longer than ``limit``, a string preview of it."""
    encoded = jsonable_encoder(value)
    text = encoded if isinstance(encoded, str) else json.dumps(encoded, ensure_ascii=False)
    if len(text) <= limit:
        return encoded
    return f"{text[:limit]}… ({len(text):,} characters, truncated)"


def bounded_loc(loc: Sequence[Any]) -> list[Any]:
    """An error location whose parts (field names, possibly client-chosen) are cut to a readable length."""
    return [part if isinstance(part, int) else bounded(str(part), MAX_LOC_CHARS) for part in loc]


def bounded_errors(errors: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The first :data:`MAX_ERRORS` validation errors with bounded ``input``, ``loc`` and ``ctx``, and how many
    were left out."""
    kept = []
    for error in errors[:MAX_ERRORS]:
        item = {key: value for key, value in error.items() if key not in ("input", "loc", "ctx")}
        item["loc"] = bounded_loc(error.get("loc", ()))
        if "input" in error:
            item["input"] = bounded(error["input"])
        if "ctx" in error:
            item["ctx"] = {key: bounded(value) for key, value in error["ctx"].items()}
        kept.append(jsonable_encoder(item))
    return kept, max(0, len(errors) - MAX_ERRORS)
