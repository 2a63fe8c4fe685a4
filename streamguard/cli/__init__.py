"""The ``streamguard`` command line. Each error is one line on stderr and a documented exit code
(see ``streamguard.errors``); Ctrl-C exits 130 and SIGTERM 143, each after stopping what the command started, removing
its unpublished output and printing one line."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from types import FrameType
from typing import NoReturn

import click
from rich.console import Console
from rich.logging import RichHandler

from streamguard.errors import StreamguardError

err_console = Console(stderr=True)
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM
_terminated = threading.Event()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """SIGTERM goes down Ctrl-C's path: whatever handles SIGINT right now handles it (PySpark's handler cancels the
    running jobs first; the parse pool holds it while its workers start), so every clean-up Ctrl-C runs runs too.

    A second SIGTERM while that clean-up runs is ignored rather than cutting it short (SIGKILL still ends it).
    """
    if _terminated.is_set():
        return
    _terminated.set()
    on_interrupt = signal.getsignal(signal.SIGINT)
    if callable(on_interrupt):
        on_interrupt(signal.SIGINT, frame)
    else:  # SIGINT ignored (a background job of a script) or default: SIGTERM must still stop the command
        raise KeyboardInterrupt


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="streamguard", prog_name="streamguard", message="%(prog)s %(version)s",
                      help="Print the version and exit.")
@click.option("-v", "--verbose", is_flag=True,
              help="Debug logging, and the JVMs' own output (Spark's log4j lines and banners) on the terminal.")
@click.option("-q", "--quiet", is_flag=True, help="Errors only: no warnings, no live status line.")
def cli(verbose: bool, quiet: bool) -> None:
    """StreamGuard batch layer: bounded Kafka reads, behavioural features, anomaly detection, serving.

    Each command shows a live status line on stderr while it works (on a terminal) and ends with one summary;
    -v adds the log and the JVMs' output.
    """
    level = logging.DEBUG if verbose else logging.ERROR if quiet else logging.WARNING
    handler = RichHandler(console=err_console, show_path=False, rich_tracebacks=False)
    if not verbose:
        handler.addFilter(_not_from_py4j)
    logging.basicConfig(level=level, format="%(message)s", datefmt="%H:%M:%S", handlers=[handler])
    for noisy in ("py4j", "httpx", "urllib3", "docker"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _not_from_py4j(record: logging.LogRecord) -> bool:
    """Drop Py4J's records: when Ctrl-C or SIGTERM interrupts a call into the JVM, Py4J logs tracebacks (on the root
    logger, so no logger level holds them back), and the CLI already says what happened in one line."""
    return f"{os.sep}py4j{os.sep}" not in record.pathname


def _register() -> None:
    from streamguard.cli import kafka_cmd, seed_cmd, spark_cmd  # noqa: PLC0415

    cli.add_command(kafka_cmd.kafka)
    cli.add_command(spark_cmd.spark)
    cli.add_command(seed_cmd.seed)
    cli.add_command(seed_cmd.truth)
    for optional in ("run_cmd", "serve_cmd", "report_cmd", "demo_cmd", "evaluate_cmd"):
        try:
            module = __import__(f"streamguard.cli.{optional}", fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != f"streamguard.cli.{optional}":
                raise
            continue
        module.register(cli)


def main(argv: list[str] | None = None) -> None:
    if threading.current_thread() is threading.main_thread():  # only the main thread may set a signal handler
        signal.signal(signal.SIGTERM, _on_sigterm)
    _register()
    try:
        cli.main(args=argv, prog_name="streamguard", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        _exit_interrupted()
    except StreamguardError as exc:
        if _terminated.is_set():  # e.g. a helper process the same SIGTERM reached failed first
            _exit_interrupted()
        err_console.print(f"[bold red]error:[/] {_one_line(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except Exception as exc:  # a bug or an untranslated third-party error: still one line, unless debugging
        if _terminated.is_set():
            _exit_interrupted()
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            raise
        err_console.print(f"[bold red]error:[/] unexpected {type(exc).__name__}: {_one_line(str(exc))} "
                          "(run with -v for the traceback)", highlight=False, soft_wrap=True)
        sys.exit(1)


def _exit_interrupted() -> NoReturn:
    """After Ctrl-C or SIGTERM (whatever failed on the way out: a SIGTERM sent to the whole process group also ends
    the helpers, whose failure may surface first), one line and 128 + the signal."""
    if _terminated.is_set():
        err_console.print("terminated (SIGTERM)", highlight=False)
        sys.exit(EXIT_TERMINATED)
    err_console.print("interrupted", highlight=False)
    sys.exit(EXIT_INTERRUPTED)


def _one_line(message: str) -> str:
    first, _, rest = message.partition("\n")
    return first if not rest else f"{first} (details in the log)"
