"""``streamguard demo``: the whole product on one machine, started and stopped by the command."""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.console import Console
from rich.panel import Panel

DEMO_TOPIC = "security-events"
DEMO_OUTPUT = Path("out/demo")


@click.command()
@click.option("--topic", default=DEMO_TOPIC, show_default=True,
              help="Topic to seed and read; seeded only when it holds fewer than --events.")
@click.option("--events", type=click.IntRange(min=1000), default=100_000, show_default=True,
              help="Events to seed (with 5 injected anomalous users).")
@click.option("--max-events", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="The bounded read: events the pipeline reads.")
@click.option("--partitions", type=click.IntRange(min=1), default=4, show_default=True,
              help="Partitions of the topic when the demo creates it.")
@click.option("--output", type=click.Path(path_type=Path), default=DEMO_OUTPUT, show_default=True,
              help="Output path of the run (a symlink to the run folder), served afterwards.")
def demo(topic: str, events: int, max_events: int, partitions: int, output: Path) -> None:
    """Start Kafka, seed events, run the bounded pipeline, serve the result and ask the assistant."""
    import httpx  # noqa: PLC0415

    from streamguard.cli._common import summary_printed_here  # noqa: PLC0415
    from streamguard.cli.run_cmd import print_summary  # noqa: PLC0415
    from streamguard.config import RunConfig  # noqa: PLC0415
    from streamguard.kafka.admin import partition_count, topic_exists, watermarks  # noqa: PLC0415
    from streamguard.kafka.broker import broker_from_env  # noqa: PLC0415
    from streamguard.pipeline import run_pipeline  # noqa: PLC0415
    from streamguard.serve.process import ApiServer  # noqa: PLC0415
    from streamguard.synth.seed import seed_topic  # noqa: PLC0415

    began = time.monotonic()
    console = Console()
    with broker_from_env() as broker:
        console.rule(f"Kafka: {broker.name} broker at {broker.bootstrap}")
        held = 0
        if topic_exists(broker.bootstrap, topic):
            held = sum(w.size for w in watermarks(broker.bootstrap, topic, partition_count(broker.bootstrap, topic)))
        if held >= events:
            console.print(f"topic {topic!r} already holds {held:,} events; not seeding again")
        else:
            with summary_printed_here("streamguard.synth.seed"):
                seeded = seed_topic(broker.bootstrap, topic, events=events, partitions=partitions)
            console.print(f"seeded {seeded.events:,} events in {seeded.seconds:.1f} s "
                          f"({seeded.events_per_s:,.0f}/s); ground truth in {seeded.truth_path}")
        console.rule(f"Pipeline: bounded read of {max_events:,} events")
        result = run_pipeline(RunConfig(topic=topic, bootstrap=broker.bootstrap, max_events=max_events,
                                        output=output))
        print_summary(result.report, result.output, console)
    console.rule("API and assistant")
    top = result.report.top_anomalies[0].user if result.report.top_anomalies else "manager"
    with ApiServer(output).start() as server:
        for question in (f"Is user {top} anomalous?", "Is user manager anomalous?"):
            reply = httpx.post(f"{server.url}/api/assistant/query", json={"question": question}, timeout=30)
            reply.raise_for_status()
            console.print(Panel(reply.json()["answer"], title=f"POST {server.url}/api/assistant/query: {question}"))
    console.print("Dashboards: monitoring/prometheus.yml scrapes /metrics; Grafana provisioning and the "
                  "dashboard are in monitoring/grafana/ (see monitoring/README.md)")
    report = result.report
    console.print(f"demo done in {time.monotonic() - began:.0f} s: {report.anomalous_users} of "
                  f"{report.total_users} users anomalous in {output}; keep it served with [bold]make serve[/] "
                  f"(web view http://127.0.0.1:8081/, OpenAPI at /docs), then e.g. "
                  f"streamguard ask \"Is user {top} anomalous?\"", soft_wrap=True)


def register(cli: click.Group) -> None:
    cli.add_command(demo)
