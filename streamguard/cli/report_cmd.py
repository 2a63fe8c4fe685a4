"""``streamguard report``: a published run's results, as the summary ``run`` prints or as one HTML file."""

from __future__ import annotations

import os
from pathlib import Path

import click

from streamguard.errors import OutputError


@click.command()
@click.argument("run_dir", metavar="DIR", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the web view of the run to this file: self-contained (inline CSS and charts, no "
                   "external reference), to open from disk or attach.")
@click.option("--top", type=click.IntRange(1, 1000), default=100, show_default=True,
              help="Anomalous users the HTML file lists, each with a section of its features.")
def report(run_dir: Path, html_file: Path | None, top: int) -> None:
    """Show the run in DIR: a run folder, or the output link 'streamguard run' keeps (e.g. out/latest).

    Prints the summary table 'run' ends with; with --html, writes the web view 'streamguard serve' shows at /
    as one file instead.
    """
    from streamguard.serve.data import load_snapshot  # noqa: PLC0415

    snapshot = load_snapshot(Path(os.path.realpath(run_dir)))
    if html_file is None:
        from streamguard.cli.run_cmd import print_summary  # noqa: PLC0415

        print_summary(snapshot.report, run_dir)
        return
    from streamguard.web.render import standalone_html  # noqa: PLC0415

    html = standalone_html(snapshot, limit=top)
    _write(html_file, html)
    listed = min(top, snapshot.report.anomalous_users)
    click.echo(f"wrote {html_file} ({len(html.encode()) / 1024:,.0f} KiB): run {snapshot.run_id}, "
               f"{snapshot.report.anomalous_users:,} of {snapshot.report.total_users:,} users anomalous, "
               f"{listed:,} listed")


def _write(path: Path, text: str) -> None:
    """Write beside the target and rename, so a reader never sees half a file."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc


def register(cli: click.Group) -> None:
    cli.add_command(report)
