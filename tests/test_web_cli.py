"""The command line as a new user meets it: ``--version``, help on every option, one summary line per command."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib.metadata import version

import click
import pytest
from click.testing import CliRunner

from streamguard.cli import _register, cli, main

# Options of files this suite's author does not own, still without help: remove an entry when its help lands.


def _commands() -> list[tuple[str, click.Command]]:
    _register()
    found: list[tuple[str, click.Command]] = []

    def walk(command: click.Command, path: str) -> None:
        found.append((path, command))
        if isinstance(command, click.Group):
            for name, sub in sorted(command.commands.items()):
                walk(sub, f"{path} {name}".strip())

    walk(cli, "")
    return found


def _options() -> list[object]:
    params = []
    for path, command in _commands():
        for option in command.params:
            if isinstance(option, click.Option) and not option.hidden:
                name = max(option.opts, key=len)
                params.append(pytest.param(command, option, id=f"{path or 'streamguard'} {name}"))
    return params


def test_the_tree_holds_every_command():
    paths = {path for path, _ in _commands()}
    assert {"kafka start", "kafka status", "kafka stop", "spark start", "seed", "truth", "run", "serve", "ask",
            "report", "demo"} <= paths


@pytest.mark.parametrize(("command", "option"), _options())
def test_every_option_has_help(command, option):
    assert option.help and len(option.help) > 10, f"{option.opts} of {command.name} has no help"


def _arguments() -> list[object]:
    return [pytest.param(command, argument, id=f"{path} {argument.name}")
            for path, command in _commands() for argument in command.params if isinstance(argument, click.Argument)]


@pytest.mark.parametrize(("command", "argument"), _arguments())
def test_every_argument_is_explained_in_its_commands_help(command, argument):
    # click arguments take no help text; the command's description names each one by its metavar instead.
    name = argument.make_metavar(click.Context(command)).rstrip(".").strip("[]")
    assert name in (command.help or ""), f"{command.name}'s description does not explain {name}"


@pytest.mark.parametrize(("path", "command"), [pytest.param(p, c, id=p or "streamguard") for p, c in _commands()])
def test_every_command_has_a_description_and_help_that_prints(path, command):
    assert (command.help or "").strip(), f"'{path}' has no description"
    result = CliRunner().invoke(cli, [*path.split(), "--help"], prog_name="streamguard")
    assert result.exit_code == 0, result.output
    assert "Usage: streamguard" in result.output


def test_version_prints_the_installed_version(capsys):
    main(["--version"])
    assert capsys.readouterr().out == f"streamguard {version('streamguard')}\n"


def _seed_output(*flags: str) -> list[str]:
    """The lines 'streamguard seed' prints (stdout and stderr) with a stand-in seeder that logs as the real one."""
    script = textwrap.dedent(f"""
        import logging, pathlib, types
        import streamguard.synth.seed as seeding

        def fake_seed_topic(bootstrap, topic, **kwargs):
            seeding.log.info("seeded %s: %d events in %.2f s (%.0f events/s); truth in %s", topic, kwargs["events"],
                             0.5, 2000.0, "truth.json")
            return types.SimpleNamespace(events=kwargs["events"], invalid=0, seconds=0.5, events_per_s=2000.0,
                                         truth_path=pathlib.Path("truth.json"))

        seeding.seed_topic = fake_seed_topic
        from streamguard.cli import main
        main([*{list(flags)!r}, "seed", "-t", "topic-a", "-n", "1000", "-b", "127.0.0.1:1"])
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          check=False, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]


def test_seed_prints_its_summary_once():
    lines = _seed_output()
    assert lines == ["seeded 1,000 events (0 malformed) to topic-a in 0.5 s (2,000 events/s); "
                     "ground truth: truth.json"]


def test_seed_with_verbose_keeps_the_log_line():
    lines = _seed_output("-v")
    assert sum("seeded" in line for line in lines) == 2
