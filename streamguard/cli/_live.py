"""The live status line long stages show on stderr: transient, so only the command's final line stays.

    >>> with status_line("starting the Kafka broker") as line:
    ...     line.update("starting the Kafka broker: waiting for metadata")

Rich draws it only on a terminal; piped, or with ``-q``, nothing is written.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from rich.console import Console


class StatusLine(Protocol):
    def update(self, status: str) -> None: ...


class _Silent:
    def update(self, status: str) -> None:
        pass


def enabled() -> bool:
    """Status lines show unless the CLI runs with ``-q`` (the root logger above WARNING)."""
    return logging.getLogger().isEnabledFor(logging.WARNING)


@contextmanager
def status_line(message: str) -> Iterator[StatusLine]:
    """A spinner with ``message`` on stderr for the duration of the block; ``update`` changes the message."""
    if not enabled():
        yield _Silent()
        return
    with Console(stderr=True).status(message) as status:
        yield status
