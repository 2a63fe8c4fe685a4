"""``streamguard kafka start|status|stop``: the local broker as a background service."""

from __future__ import annotations

import sys

import click

from streamguard.kafka import daemon


@click.group()
def kafka() -> None:
    """Run a local Apache Kafka broker (KRaft, one node) in the background."""


@kafka.command()
@click.option("--port", type=int, default=0, show_default="a free port", help="Broker port on 127.0.0.1.")
def start(port: int) -> None:
    """Start the broker (or find the running one) and print its bootstrap address."""
    state = daemon.start(port=port)
    click.echo(state.bootstrap)


@kafka.command()
def status() -> None:
    """Say whether the background broker runs and answers; exit 1 when it does not."""
    current = daemon.status()
    if current.state is None:
        click.echo("stopped (no state file)")
        sys.exit(1)
    word = "running" if current.running else "not answering" if current.process_alive else "dead"
    click.echo(f"{word}: {current.state.bootstrap} pid {current.state.pid} log {current.state.log_path}")
    if not current.running:
        sys.exit(1)


@kafka.command()
def stop() -> None:
    """Stop the background broker; its data stays for the next start."""
    state = daemon.stop()
    click.echo("no broker was running" if state is None else f"stopped broker pid {state.pid}")
