"""Every command is documented: in the README and with a --help that explains it."""

from __future__ import annotations

from pathlib import Path

import click

from ecsguard.cli.main import cli

README = (Path(__file__).parents[2] / "README.md").read_text()


def commands(group: click.Group, prefix: str = "ecsguard") -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        path = f"{prefix} {name}"
        found.append((path, command))
        if isinstance(command, click.Group):
            found.extend(commands(command, path))
    return found


def test_every_command_is_in_the_readme() -> None:
    missing = [path for path, _ in commands(cli) if path not in README]
    assert missing == [], "document these commands in README.md"


def test_every_command_has_help_text() -> None:
    for path, command in commands(cli):
        assert command.help and len(command.help.strip()) > 30, f"{path} needs a --help text"
