"""``streamguard run``: the batch job on a bounded slice of a topic."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from streamguard.cli._common import bootstrap_option
from streamguard.report import AnomalyReport


@click.command()
@click.option("--topic", "-t", default=None, help="Topic to read [env STREAMGUARD_TOPIC].")
@bootstrap_option
@click.option("--start", default=None,
              help="earliest | latest | resume (where the last run published at --output ended) | offsets JSON | "
                   "timestamp (ms or ISO-8601).")
@click.option("--max-events", type=int, default=None, help="Read exactly min(N, available).")
@click.option("--last", type=int, default=None,
              help="Read the N most recent records (exactly min(N, available)), instead of --max-events.")
@click.option("--end", default=None, help="Exclusive end timestamp (ms or ISO-8601).")
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None, help="Output path [out/latest].")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="YAML file of settings (flags and environment override it).")
@click.option("--read-strategy", type=click.Choice(["bounded", "full-scan"]), default=None,
              help="bounded: plan exact offset ranges [default]; full-scan: read to the latest offsets, keep N.")
@click.option("--algorithm", type=click.Choice(["isolation_forest", "kmeans"]), default=None,
              help="The model on the risky deviations [isolation_forest].")
@click.option("--contamination", type=float, default=None,
              help="Flag this share of the fit sample instead of the outliers (e.g. 0.05).")
@click.option("--model", "model", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Score with this saved model instead of fitting one (no refit).")
@click.option("--save-model", "save_model", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Save the model fitted in this run (skops file) for --model in later runs.")
@click.option("--commit-group", "commit_group", default=None, metavar="GROUP",
              help="After publishing, commit the run's end offsets to this Kafka consumer group (shows the lag).")
@click.option("--kafka-property", "kafka_properties", multiple=True, metavar="KEY=VALUE",
              help="A Kafka client property (repeatable), e.g. security.protocol=SASL_SSL; secrets are never logged "
                   "[env STREAMGUARD_KAFKA_PROPERTIES, config section kafka:].")
@click.option("--isolation-level", type=click.Choice(["read_committed", "read_uncommitted"]), default=None,
              help="Which records of transactional producers to read [read_committed].")
@click.option("--top-n", type=int, default=None, help="Users listed in the report's top anomalies [10].")
@click.option("--n-estimators", type=int, default=None, help="Trees of the Isolation Forest [200].")
@click.option("--random-state", type=int, default=None, help="Seed of the model fit, 0 .. 2^32-1 [42].")
@click.option("--outlier-mads", type=float, default=None,
              help="Without --contamination: flag scores this many robust standard deviations above the median "
                   "[4.5].")
@click.option("--engine", type=click.Choice(["auto", "embedded", "spark"]), default=None,
              help="Where the stages run [env STREAMGUARD_ENGINE; auto: spark when --spark-master names a cluster, "
                   "else embedded].")
@click.option("--spark-master", default=None,
              help="Spark master URL for --engine spark [local[*]]; spark://host:port selects Spark under auto.")
def run(topic: str | None, bootstrap: str | None, start: str | None, max_events: int | None, last: int | None,
        end: str | None, output: Path | None, config_file: Path | None, read_strategy: str | None,
        algorithm: str | None, contamination: float | None, model: Path | None, save_model: Path | None,
        commit_group: str | None, kafka_properties: tuple[str, ...], isolation_level: str | None,
        top_n: int | None, n_estimators: int | None, random_state: int | None, outlier_mads: float | None,
        engine: str | None, spark_master: str | None) -> None:
    """Read a bounded slice of a topic, build features, flag anomalous users, export training data.

    Settings come from flags > environment (STREAMGUARD_<SETTING>) > the --config file > defaults, all checked
    before Kafka is contacted.
    """
    from streamguard.cli._live import enabled as status_shown  # noqa: PLC0415
    from streamguard.config import load_run_config  # noqa: PLC0415
    from streamguard.pipeline import run_pipeline  # noqa: PLC0415

    flags = {"topic": topic, "bootstrap": bootstrap, "start": start, "max_events": max_events, "last": last,
             "end": end, "kafka_properties": list(kafka_properties),
             "output": output, "read_strategy": read_strategy, "algorithm": algorithm,
             "contamination": contamination, "model": model, "save_model": save_model,
             "commit_group": commit_group, "isolation_level": isolation_level, "top_n": top_n,
             "n_estimators": n_estimators, "random_state": random_state, "outlier_mads": outlier_mads,
             "engine": engine, "spark_master": spark_master}
    config = load_run_config(flags=flags, config_file=config_file)
    result = run_pipeline(config, progress=status_shown())
    print_summary(result.report, result.output)


def print_summary(report: AnomalyReport, output: Path, console: Console | None = None) -> None:
    """Top anomalies, counts and seconds per stage, as the demo and ``run`` print them."""
    console = console or Console()
    run = report.run
    console.print(f"[bold]{report.anomalous_users}[/] of {report.total_users} users anomalous "
                  f"({report.anomaly_rate:.1%}) from {run.records_read:,} records of {run.topic!r} "
                  f"({run.records_valid:,} valid, {run.records_quarantined:,} quarantined; {run.read_strategy} read, "
                  f"{run.records_scanned:,} fetched from Kafka; {run.engine} engine)")
    detector = run.detector
    rule = f", {detector.threshold_rule} rule" if detector.threshold_rule else ""
    table = Table("user", "score", "flagged", "events", "avg threat", "unique IPs", "failed auth",
                  title=f"Top anomalies by score (flagged above {detector.threshold:.4f}{rule})")
    for entry in report.top_anomalies:
        flagged = "?" if entry.is_anomaly is None else "yes" if entry.is_anomaly else "no"
        table.add_row(entry.user, f"{entry.anomaly_score:.4f}", flagged,
                      f"{entry.total_events:,}", f"{entry.avg_threat_score:.3f}", str(entry.unique_ips),
                      f"{entry.failed_auth_rate:.1%}")
    console.print(table)
    model = detector.model
    if model is not None:  # reports of earlier versions record no model
        console.print(f"model: {model.source} ({model.rows_fitted:,} users, fitted {model.fitted_at}"
                      + (f", {model.path} sha256 {model.sha256[:12]}" if model.sha256 else "") + ")")
    if run.next_offsets is not None:
        console.print(("resumed from run " + run.resumed_from + "; " if run.resumed_from else "")
                      + "next --start resume: " + ", ".join(f"p{p}@{o}" for p, o in run.next_offsets.items()))
    stages = run.stage_seconds.model_dump()
    console.print("seconds per stage: " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()))
    console.print(f"output: {output}/ (training_data/, quarantine/, anomaly_report.json)")


def register(cli: click.Group) -> None:
    cli.add_command(run)
