"""``streamguard seed`` and ``streamguard truth``: synthetic security events into a topic, and their ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import click

from streamguard.cli._common import bootstrap_option, summary_printed_here


@click.command()
@click.option("--topic", "-t", required=True, help="Topic to produce to (created when missing).")
@click.option("--events", "-n", type=click.IntRange(min=1), default=100_000, show_default=True,
              help="Messages to produce (malformed ones included).")
@click.option("--partitions", "-p", type=click.IntRange(min=1), default=4, show_default=True,
              help="Partitions of the topic when it is created (an existing topic keeps its own).")
@click.option("--seed", type=int, default=42, show_default=True, help="Random seed; same seed, same events.")
@click.option("--users", type=click.IntRange(min=2), default=50, show_default=True,
              help="Distinct users the events belong to.")
@click.option("--anomalous-users", type=click.IntRange(min=0), default=5, show_default=True,
              help="Users given an injected anomalous behaviour (listed by 'streamguard truth').")
@click.option("--days", type=click.IntRange(min=1), default=7, show_default=True,
              help="Days of event time the events span.")
@click.option("--invalid-rate", type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True,
              help="Share of malformed messages mixed in.")
@click.option("--key", type=click.Choice(["user", "event_id"]), default="user", show_default=True,
              help="Message key, which decides the partition: the user (a user's events stay in order) or the "
                   "event id (spread evenly).")
@click.option("--truth", "truth_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Ground-truth file [default: $STREAMGUARD_STATE_DIR/truth/<topic>.json, state dir ./.streamguard].")
@bootstrap_option
def seed(topic: str, events: int, partitions: int, seed: int, users: int, anomalous_users: int, days: int,
         invalid_rate: float, key: str, truth_path: Path | None, bootstrap: str | None) -> None:
    """Produce N deterministic security events (with injected anomalous users) to a topic."""
    from streamguard.cli._live import enabled as status_shown  # noqa: PLC0415
    from streamguard.kafka.bootstrap import resolve_bootstrap  # noqa: PLC0415
    from streamguard.synth.seed import seed_topic  # noqa: PLC0415

    address = resolve_bootstrap(bootstrap).address  # before any work: a missing address is a config error
    with summary_printed_here("streamguard.synth.seed"):
        result = seed_topic(
            address, topic, events=events, partitions=partitions, seed=seed, users=users,
            anomalous_users=anomalous_users, days=days, invalid_rate=invalid_rate, key=key, truth_path=truth_path,
            progress=status_shown(),
        )
    click.echo(f"seeded {result.events:,} events ({result.invalid:,} malformed) to {topic} in "
               f"{result.seconds:.1f} s ({result.events_per_s:,.0f} events/s); ground truth: {result.truth_path}")


@click.command()
@click.option("--topic", "-t", default=None, help="Topic whose ground truth to print.")
@click.option("--file", "truth_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A ground-truth file to print instead of the topic's default one.")
def truth(topic: str | None, truth_file: Path | None) -> None:
    """Print the ground truth (injected anomalous users and behaviours) of a seeded topic."""
    from streamguard.synth.seed import default_truth_path  # noqa: PLC0415

    if truth_file is None:
        if topic is None:
            raise click.UsageError("give --topic or --file")
        truth_file = default_truth_path(topic)
    if not truth_file.exists():
        raise click.FileError(str(truth_file), hint="no ground truth; was the topic seeded with this "
                                                    "STREAMGUARD_STATE_DIR (or from this folder)?")
    click.echo(json.dumps(json.loads(truth_file.read_text()), indent=2))
