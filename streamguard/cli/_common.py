"""Options and look-ups shared by several commands."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import click

from streamguard.kafka.bootstrap import ENV_BOOTSTRAP

bootstrap_option = click.option(
    "--bootstrap", "-b", default=None, metavar="HOST:PORT",
    help=f"Kafka bootstrap servers [default: ${ENV_BOOTSTRAP}, else the broker 'streamguard kafka start' runs].",
)


@contextmanager
def summary_printed_here(*loggers: str) -> Iterator[None]:
    """Silence the INFO lines of ``loggers`` for a command that prints its own final summary line.

    A library logs its result at INFO for other callers; the command's one line says the same thing, so the log
    record would print it twice. Warnings still show, and so does everything with ``-v``.
    """
    quieted = [logging.getLogger(name) for name in loggers]
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        yield
        return
    levels = [logger.level for logger in quieted]
    for logger in quieted:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(quieted, levels, strict=True):
            logger.setLevel(level)
