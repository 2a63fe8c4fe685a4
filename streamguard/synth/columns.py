"""One chunk of events as numpy columns, before rendering to JSON.

Categorical columns hold indices into streamguard.synth.catalog tuples (or the plan's tables); ``-1`` means
null where a field is nullable. Every details column is drawn for every event and read only for events of its
type, which keeps the draws vectorized and the RNG stream independent of the type mix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

UNIQUE_IP = -1
"""``source_ip`` for an address derived from the event's position in the stream (so used exactly once)."""

NO_VARIANT, FLAT_LOCATION, REPEATED_KEY = 0, 1, 2
"""Wire variants: canonical, top-level ``location`` instead of ``metadata.geo_location``, a repeated key."""


def categorical(rng: np.random.Generator, mix: tuple[float, ...], size: int) -> np.ndarray:
    """``size`` indices drawn with probabilities proportional to ``mix``."""
    cdf = np.cumsum(mix)
    return np.minimum(np.searchsorted(cdf / cdf[-1], rng.random(size), side="right"), len(mix) - 1)


@dataclass(slots=True)
class EventColumns:
    """Columns of one chunk, all of the chunk's length."""

    index: np.ndarray        # global position in the stream
    timestamp: np.ndarray    # ms since epoch, non-decreasing
    source: np.ndarray       # 0 for normal activity, k for the k-th anomalous user's anomalous activity
    user: np.ndarray
    variant: np.ndarray
    event_type: np.ndarray
    status: np.ndarray
    score_milli: np.ndarray  # threat score in thousandths
    source_ip: np.ndarray    # index into the plan's IP table, or UNIQUE_IP
    destination_ip: np.ndarray
    city: np.ndarray
    has_session: np.ndarray
    auth_type: np.ndarray
    failure_reason: np.ndarray
    attempts: np.ndarray
    protocol: np.ndarray
    source_port: np.ndarray
    destination_port: np.ndarray
    bytes_sent: np.ndarray
    bytes_received: np.ndarray
    duration_ms: np.ndarray
    file_path: np.ndarray
    file_operation: np.ndarray
    file_size: np.ndarray
    process: np.ndarray
    privileges: np.ndarray
    signed: np.ndarray
    query_name: np.ndarray
    query_type: np.ndarray
    response_code: np.ndarray
