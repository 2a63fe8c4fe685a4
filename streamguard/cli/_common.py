"""Options and look-ups shared by several commands."""

from __future__ import annotations

import os

import click

from streamguard.errors import BrokerUnreachable
from streamguard.kafka import daemon
from streamguard.kafka.broker import ENV_BOOTSTRAP

bootstrap_option = click.option(
    "--bootstrap", "-b", default=None, metavar="HOST:PORT",
    help=f"Kafka bootstrap servers [default: ${ENV_BOOTSTRAP}, else the broker 'streamguard kafka start' runs].",
)


def resolve_bootstrap(flag: str | None) -> str:
    """Flag > environment > the background local broker's state file."""
    if flag:
        return flag
    if os.environ.get(ENV_BOOTSTRAP):
        return os.environ[ENV_BOOTSTRAP]
    state = daemon.read_state()
    if state is not None:
        return state.bootstrap
    raise BrokerUnreachable(
        f"no Kafka broker given: pass --bootstrap, set {ENV_BOOTSTRAP}, or run 'streamguard kafka start'"
    )
