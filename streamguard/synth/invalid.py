"""Malformed messages: which stream positions get one, of which kind, and what its bytes are.

With rate ``R``, position ``i`` (0-based, over the whole stream) is malformed when ``floor((i+1)·R) >
floor(i·R)``, so exactly ``floor(n·R)`` of ``n`` messages are, evenly spread and independent of chunking. The
``j``-th malformed message (``j = floor((i+1)·R) - 1``) has kind ``INVALID_KINDS[j % 6]``; kinds with two
variants alternate them on successive rounds (``j // 6`` even or odd):

=================  ===========================================================================================
``not_json``       a plain-text log line (starting with a letter)
``truncated_json`` the event's JSON cut in half
``missing_required`` the event without ``user``
``wrong_type``     ``timestamp`` as the string ``"abc"``, or ``threat_score`` as ``"high"``
``out_of_range``   ``threat_score`` 1.7, or ``event_type`` ``"unknown_type"``
``empty_value``    ``b""``
=================  ===========================================================================================

Usage::

    positions, ordinals = invalid_positions(start=0, count=1000, rate=0.06)
    value = malformed_value(ordinals[0], event_json)
"""

from __future__ import annotations

import json

import numpy as np

INVALID_KINDS: tuple[str, ...] = (
    "not_json", "truncated_json", "missing_required", "wrong_type", "out_of_range", "empty_value",
)


def invalid_positions(start: int, count: int, rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Malformed positions among ``count`` from ``start``: their offsets from ``start`` and ordinals ``j``.

    ``j`` numbers the malformed messages of the whole stream (its kind is ``invalid_kind(j)``).
    """
    if rate <= 0.0 or count == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    index = np.arange(start, start + count + 1, dtype=np.float64)
    marks = np.floor(index * rate).astype(np.int64)
    offsets = np.flatnonzero(marks[1:] > marks[:-1])
    return offsets, marks[offsets + 1] - 1


def invalid_kind(ordinal: int) -> str:
    return INVALID_KINDS[ordinal % len(INVALID_KINDS)]


def expected_invalid_counts(events: int, rate: float) -> dict[str, int]:
    """How many malformed messages of each kind a stream of ``events`` messages at ``rate`` holds."""
    total = int(np.floor(np.float64(events) * rate)) if rate > 0.0 else 0
    rounds, rest = divmod(total, len(INVALID_KINDS))
    return {kind: rounds + (k < rest) for k, kind in enumerate(INVALID_KINDS)}


def malformed_value(ordinal: int, event_json: str) -> bytes:
    """The bytes of the ``ordinal``-th malformed message, derived from the valid event it replaces."""
    kind = invalid_kind(ordinal)
    second_variant = (ordinal // len(INVALID_KINDS)) % 2 == 1
    if kind == "empty_value":
        return b""
    if kind == "truncated_json":
        return event_json[: len(event_json) // 2].encode()
    event = json.loads(event_json)
    if kind == "not_json":
        # Starts with a letter: a leading number would parse as a JSON scalar in lenient readers.
        return (
            f"WARN auth user={event['user']} src={event['source_ip']} status={event['status']} "
            f"ts={event['timestamp']} id={event['event_id']}"
        ).encode()
    if kind == "missing_required":
        del event["user"]
    elif kind == "wrong_type":
        if second_variant:
            event["threat_score"] = "high"
        else:
            event["timestamp"] = "abc"
    elif second_variant:
        event["event_type"] = "unknown_type"
    else:
        event["threat_score"] = 1.7
    return json.dumps(event, separators=(",", ":")).encode()
