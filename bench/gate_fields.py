"""What the gate's two checks share to read their JSON inputs (``bench/baseline.json``, a saved measurement).

    >>> number({"floor": 10}, "floor", "baseline")          # 10.0, or BaselineError naming the file and key
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


class BaselineError(ValueError):
    """The baseline (or a saved measurement) does not have the documented shape."""


def number(data: Mapping[str, Any], key: str, where: str) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BaselineError(f"{where}: {key!r} must be a number, not {value!r}")
    return float(value)


def count(data: Mapping[str, Any], key: str, where: str, minimum: int) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise BaselineError(f"{where}: {key!r} must be an integer >= {minimum}, not {value!r}")
    return value
