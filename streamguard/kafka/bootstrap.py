"""The Kafka bootstrap address, resolved in one place for every command, the test broker and the bench.

    >>> resolve_bootstrap("10.0.0.5:9092")
    Bootstrap(address='10.0.0.5:9092', origin='flag --bootstrap')
    >>> find_bootstrap(env={}, running_broker=None) is None      # nothing given anywhere
    True

Precedence, highest first (``find_bootstrap``):

1. the ``--bootstrap``/``-b`` flag;
2. ``STREAMGUARD_KAFKA_BOOTSTRAP`` (an empty value counts as unset);
3. ``bootstrap:`` in the YAML config file (only ``streamguard run`` reads one);
4. the broker ``streamguard kafka start`` runs (its state file under ``$STREAMGUARD_STATE_DIR/kafka``).

``streamguard run`` and ``streamguard seed`` use all four. The broker providers (``broker_from_env``: tests, the
demo) and the bench use only an address given explicitly (``running_broker=None``): without one they start a broker
of their own rather than write into the one a user keeps running.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from streamguard.errors import ConfigError

ENV_BOOTSTRAP = "STREAMGUARD_KAFKA_BOOTSTRAP"
FLAG = "--bootstrap"
RUNNING_BROKER = "the broker 'streamguard kafka start' runs"


@dataclass(frozen=True, slots=True)
class Bootstrap:
    """A bootstrap address and where it came from (as error messages name it)."""

    address: str
    origin: str


def running_broker_address() -> str | None:
    """The bootstrap address in the state file of the broker ``streamguard kafka start`` runs, if any."""
    from streamguard.kafka import daemon  # noqa: PLC0415 - the daemon module imports the broker providers

    state = daemon.read_state()
    return state.bootstrap if state is not None else None


def find_bootstrap(
    flag: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    file_value: object = None,
    config_file: Path | None = None,
    running_broker: Callable[[], str | None] | None = running_broker_address,
) -> Bootstrap | None:
    """The bootstrap address by the precedence in this module's docstring, or None when none is given.

    ``file_value`` is the config file's ``bootstrap:`` value (None when absent); ``running_broker`` looks up the
    running local broker (None: do not use one). Raises ConfigError for a value that is not a non-empty text.
    """
    environment = os.environ if env is None else env
    candidates: list[tuple[object, str]] = [
        (flag, f"flag {FLAG}"),
        (environment.get(ENV_BOOTSTRAP) or None, f"environment {ENV_BOOTSTRAP}"),
        (file_value, f"config file {config_file}"),
    ]
    for value, origin in candidates:
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            shown = "an empty text" if isinstance(value, str) else repr(value)
            raise ConfigError(f"bootstrap from {origin}: must be host:port text, got {shown}")
        return Bootstrap(value.strip(), origin)
    found = running_broker() if running_broker is not None else None
    return Bootstrap(found, RUNNING_BROKER) if found else None


def resolve_bootstrap(
    flag: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    file_value: object = None,
    config_file: Path | None = None,
    running_broker: Callable[[], str | None] | None = running_broker_address,
) -> Bootstrap:
    """``find_bootstrap``, or ConfigError (exit 2) naming every way to give one."""
    found = find_bootstrap(flag, env=env, file_value=file_value, config_file=config_file,
                           running_broker=running_broker)
    if found is None:
        where = ", bootstrap: in the config file" if config_file is not None else ""
        broker = ", or run 'streamguard kafka start'" if running_broker is not None else ""
        raise ConfigError(f"no Kafka broker given: pass {FLAG}, set {ENV_BOOTSTRAP}{where}{broker}")
    return found
