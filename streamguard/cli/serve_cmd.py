"""``streamguard serve`` (the API over a run's output) and ``streamguard ask`` (the assistant, via it)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from streamguard.serve.defaults import DEFAULT_HOST, DEFAULT_PORT, TOKEN_ENV

DEFAULT_API = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"


@click.command()
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output path of 'streamguard run' (the symlink to the current run); may not exist yet.")
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=DEFAULT_PORT, show_default=True,
              help="TCP port to listen on.")
@click.option("--access-log", is_flag=True, help="Log every request.")
def serve(data_dir: Path, host: str, port: int, access_log: bool) -> None:
    """Serve the last published run over HTTP: report, anomalies, per-user features, /health and /metrics.

    With STREAMGUARD_API_TOKEN set, all routes but /health and /metrics need 'Authorization: Bearer <token>'.
    """
    from streamguard.serve.app import serve as run_server  # noqa: PLC0415

    run_server(data_dir, host, port, access_log=access_log)


@click.command()
@click.argument("question")
@click.option("--api", default=DEFAULT_API, show_default=True, envvar="STREAMGUARD_API_URL",
              help="Base URL of a running 'streamguard serve' [env STREAMGUARD_API_URL].")
@click.option("--user", "user_id", default=None, help="The user to answer about (else found in QUESTION).")
@click.option("--json", "as_json", is_flag=True, help="Print the structured answer as JSON.")
def ask(question: str, api: str, user_id: str | None, as_json: bool) -> None:
    """Ask QUESTION about one user's batch result, e.g. streamguard ask "Is user manager anomalous?".

    Facts come from the API (STREAMGUARD_API_TOKEN is sent when set). Answers are templates unless
    STREAMGUARD_LLM_BASE_URL and STREAMGUARD_LLM_MODEL name an OpenAI-compatible model to phrase them.
    """
    from streamguard.assistant import ApiSource, LlmConfig, answer_question  # noqa: PLC0415

    with ApiSource.connect(api, token=os.environ.get(TOKEN_ENV) or None) as source:
        answer = answer_question(question, source=source, user_id=user_id, llm=LlmConfig.from_env())
    click.echo(json.dumps(answer.model_dump(mode="json"), indent=2) if as_json else answer.answer)
    if answer.kind == "unknown_user":
        raise SystemExit(1)  # the answer is printed; scripts still learn the user is not in the data


def register(cli: click.Group) -> None:
    cli.add_command(serve)
    cli.add_command(ask)
