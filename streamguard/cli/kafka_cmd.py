"""``streamguard kafka start|status|stop``: the local broker as a background service."""

from __future__ import annotations

import sys

import click
from rich.console import Console

from streamguard.cli._live import status_line
from streamguard.errors import ConfigError
from streamguard.kafka import daemon
from streamguard.kafka.properties import KafkaProperties

ENV_SASL_PASSWORD = "STREAMGUARD_KAFKA_SASL_PASSWORD"


@click.group()
def kafka() -> None:
    """Run a local Apache Kafka broker (KRaft, one node) in the background."""


@kafka.command()
@click.option("--port", type=int, default=0, show_default="a free port", help="Broker port on 127.0.0.1.")
@click.option("--sasl-user", "sasl_users", multiple=True, metavar="USER",
              help="Give the broker a SASL/PLAIN listener (SASL_PLAINTEXT) with this user; repeatable, each with "
                   "its own --sasl-password, in the same order.")
@click.option("--sasl-password", "sasl_passwords", multiple=True, metavar="PASSWORD", envvar=ENV_SASL_PASSWORD,
              help=f"The password of the --sasl-user at the same position [env {ENV_SASL_PASSWORD}, for one user; "
                   "keeps it out of the process list].")
def start(port: int, sasl_users: tuple[str, ...], sasl_passwords: tuple[str, ...]) -> None:
    """Start the broker (or find the running one) and print its bootstrap address.

    With --sasl-user, clients must log in: the properties to pass are printed on stderr (password masked).
    """
    if len(sasl_users) != len(sasl_passwords):
        raise ConfigError(f"give one --sasl-password per --sasl-user ({len(sasl_users)} user(s), "
                          f"{len(sasl_passwords)} password(s))")
    users = dict(zip(sasl_users, sasl_passwords, strict=True))
    with status_line("starting the Kafka broker (a JVM; about 10-20 s)"):
        state = daemon.start(port=port, sasl_users=users)
    for user in state.sasl_users:
        _print_how_to_connect(state.client_properties(user, users.get(user, "")))
    click.echo(state.bootstrap)


def _print_how_to_connect(properties: KafkaProperties) -> None:
    """The client properties for one SASL user, as flags and as the environment variable, password masked."""
    masked = properties.masked()
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    console.print(f"SASL/PLAIN listener; as {masked['sasl.username']} pass:")
    console.print("  " + " ".join(f"--kafka-property {key}={value}" for key, value in masked.items()), markup=False)
    console.print("  or STREAMGUARD_KAFKA_PROPERTIES='" + ",".join(f"{k}={v}" for k, v in masked.items()) + "'",
                  markup=False)


@kafka.command()
def status() -> None:
    """Say whether the background broker runs and answers; exit 1 when it does not."""
    current = daemon.status()
    if current.state is None:
        click.echo("stopped (no state file)")
        sys.exit(1)
    word = "running" if current.running else "not answering" if current.process_alive else "dead"
    sasl = f" SASL/PLAIN users {','.join(current.state.sasl_users)}" if current.state.sasl_users else ""
    click.echo(f"{word}: {current.state.bootstrap}{sasl} pid {current.state.pid} log {current.state.log_path}")
    if not current.running:
        sys.exit(1)


@kafka.command()
def stop() -> None:
    """Stop the background broker; its data stays for the next start."""
    state = daemon.stop()
    click.echo("no broker was running" if state is None else f"stopped broker pid {state.pid}")
