"""``streamguard spark start|status|stop``: a local Spark standalone cluster (master + workers) in the background."""

from __future__ import annotations

import sys
import time

import click

from streamguard import spark_standalone as cluster


@click.group()
def spark() -> None:
    """Run a local Spark standalone cluster from the installed pyspark; point `run --spark-master` at it."""


@spark.command()
@click.option("--workers", type=click.IntRange(min=1), default=cluster.DEFAULT_WORKERS, show_default=True,
              help="Worker processes to start beside the master.")
@click.option("--cores", type=click.IntRange(min=1), default=cluster.DEFAULT_CORES, show_default=True,
              help="Cores each worker offers.")
@click.option("--memory", default=cluster.DEFAULT_MEMORY, show_default=True,
              help="Memory each worker offers to executors, e.g. 512m or 4g.")
def start(workers: int, cores: int, memory: str) -> None:
    """Start the cluster (or find the running one) and print its master URL."""
    state = cluster.start_background(workers=workers, cores=cores, memory=memory)
    click.echo(state.master_url)


@spark.command()
def status() -> None:
    """Print the master URL of the running cluster; exit 1 when none runs."""
    current = cluster.cluster_status()
    state = current.state
    if state is None:
        click.echo("no Spark cluster runs (no state file)")
        sys.exit(1)
    if not current.running:
        click.echo(f"not running: {current.processes_alive} of {len(state.pids)} processes alive, "
                   f"{current.workers_alive} of {state.workers} workers ALIVE; logs in {state.base_dir}/logs")
        sys.exit(1)
    up = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(state.started_at))
    click.echo(f"{state.master_url} ({state.workers} workers, web UI {state.webui_url}, since {up})")


@spark.command()
def stop() -> None:
    """Stop the master and every worker (their executors with them)."""
    state = cluster.stop_background()
    click.echo("no Spark cluster was running" if state is None else f"stopped {state.master_url}")
