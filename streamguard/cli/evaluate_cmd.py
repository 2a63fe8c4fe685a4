"""``streamguard evaluate``: a run's flags against the ground truth ``streamguard seed`` wrote."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table


@click.command()
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Output path of 'streamguard run' (the symlink to the run, or a run folder).")
@click.option("--truth", "truth_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Ground truth of the seeded topic ($STREAMGUARD_STATE_DIR/truth/<topic>.json, state dir "
                   "./.streamguard by default).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def evaluate(data_dir: Path, truth_file: Path, as_json: bool) -> None:
    """Precision, recall, F1, PR-AUC, recall per injected behaviour, false positives and misses of a run."""
    from streamguard.detect.evaluate import evaluate_run  # noqa: PLC0415
    from streamguard.synth.truth import load_truth  # noqa: PLC0415

    result = evaluate_run(data_dir, load_truth(truth_file))
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    console = Console()

    def fmt(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    console.print(f"run {result.run_id}: {result.flagged} of {result.users:,} users flagged; "
                  f"{result.true_positives} of {result.positives} injected anomalous users found"
                  + (f" ({len(result.absent)} more have no event in the slice)" if result.absent else ""))
    console.print(f"precision {fmt(result.precision)}  recall {fmt(result.recall)}  F1 {fmt(result.f1)}  "
                  f"PR-AUC {fmt(result.pr_auc)}")
    if result.spread_anomalies:
        console.print("the topic spreads its anomalous events over all users: no user is anomalous, so every "
                      "flag is a false positive")
    if result.recall_by_behaviour:
        table = Table("behaviour", "recall", title="Recall per injected behaviour")
        for name, value in result.recall_by_behaviour.items():
            table.add_row(name, fmt(value))
        console.print(table)
    if result.quiet_users:
        console.print(f"quiet users (safer than everyone): {result.quiet_users}, flagged: "
                      f"{len(result.quiet_flagged)}" + (f" ({', '.join(result.quiet_flagged)})"
                                                        if result.quiet_flagged else ""))
    for title, rows in (("False positives", [(f.user, f.anomaly_score, "quiet" if f.quiet else "")
                                             for f in result.false_positives]),
                        ("Missed", [(m.user, m.anomaly_score, m.behaviour) for m in result.missed])):
        if rows:
            table = Table("user", "score", "note", title=title)
            for user, score, note in rows:
                table.add_row(user, f"{score:.4f}", note)
            console.print(table)


def register(cli: click.Group) -> None:
    cli.add_command(evaluate)
