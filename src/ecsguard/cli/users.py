"""`ecsguard users`: the web console's users (console.db in the data directory)."""

from __future__ import annotations

import sys

import click

from ecsguard.cli.common import data_dir_option, output_option, print_json, stdout, table
from ecsguard.core.config import data_dir as resolve_data_dir
from ecsguard.core.errors import UserError
from ecsguard.web.users import MIN_PASSWORD, ONE_TIME_SECONDS, ROLES, UserStore

ROLE_HELP = (
    "viewer: sees every page; operator: also mutes findings and silences alarms; "
    "admin: also manages rules, channels and users."
)


def _store(data_dir: str | None) -> UserStore:
    return UserStore(resolve_data_dir(data_dir))


def _password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt(
            f"password (at least {MIN_PASSWORD} characters)",
            hide_input=True,
            confirmation_prompt=True,
        )
    if not password:
        raise UserError("no password given", "type one, or pipe it with --password-stdin")
    return password


@click.group()
def users() -> None:
    """Web console users: who may log in to `ecsguard serve`, and with which role.

    \b
    Roles: viewer (sees every page), operator (also mutes findings and silences alarms),
    admin (also manages rules, channels and users). Passwords are stored as argon2id hashes
    in console.db in the data directory.

    \b
    Examples:
      ecsguard users add alice --role admin            # asks for the password twice
      printf '%s\\n' "$PASSWORD" | ecsguard users add ci-viewer --role viewer --password-stdin
      ecsguard users login-link alice                  # a one-time login for a first visit
    """


@users.command("add")
@click.argument("name")
@click.option(
    "--role", type=click.Choice(ROLES), default="viewer", show_default=True, help=ROLE_HELP
)
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@data_dir_option
def add(name: str, role: str, password_stdin: bool, data_dir: str | None) -> None:
    """Add a user NAME with a password."""
    store = _store(data_dir)
    user = store.add(name, _password(password_stdin), role)
    stdout.print(f"added {user.name} ({user.role})", markup=False, highlight=False)


@users.command("list")
@output_option
@data_dir_option
def list_users(output: str, data_dir: str | None) -> None:
    """List the users and their roles."""
    found = _store(data_dir).users()
    if output == "json":
        print_json([{"name": u.name, "role": u.role} for u in found])
    else:
        stdout.print(table(None, ["user", "role"], [(u.name, u.role) for u in found]))


@users.command("remove")
@click.argument("name")
@data_dir_option
def remove(name: str, data_dir: str | None) -> None:
    """Remove user NAME; their sessions end at once."""
    _store(data_dir).remove(name)
    stdout.print(f"removed {name}", markup=False, highlight=False)


@users.command("set-role")
@click.argument("name")
@click.argument("role", type=click.Choice(ROLES))
@data_dir_option
def set_role(name: str, role: str, data_dir: str | None) -> None:
    """Give user NAME another ROLE (viewer, operator or admin); it applies at once."""
    _store(data_dir).set_role(name, role)
    stdout.print(f"{name} is now {role}", markup=False, highlight=False)


@users.command("passwd")
@click.argument("name")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@data_dir_option
def passwd(name: str, password_stdin: bool, data_dir: str | None) -> None:
    """Set a new password for NAME; their open sessions end."""
    _store(data_dir).set_password(name, _password(password_stdin))
    stdout.print(f"password of {name} changed", markup=False, highlight=False)


@users.command("login-link")
@click.argument("name")
@click.option(
    "--server",
    default="http://127.0.0.1:8080",
    show_default=True,
    envvar="ECSGUARD_SERVER",
    help="The console's address, to print a whole link.",
)
@click.option(
    "--minutes",
    type=click.IntRange(1, 24 * 60),
    default=ONE_TIME_SECONDS // 60,
    show_default=True,
    help="How long the link stays valid.",
)
@data_dir_option
def login_link(name: str, server: str, minutes: int, data_dir: str | None) -> None:
    """Print a one-time login link for NAME (works once, then expires).

    For a first visit without a password, or to hand a session to someone at the machine.
    The link is a secret: it logs in as NAME until used.
    """
    token = _store(data_dir).one_time_login(name, minutes * 60)
    click.echo(f"{server.rstrip('/')}/login/once?token={token}")
