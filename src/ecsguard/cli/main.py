"""The `ecsguard` command: global flags, command groups, one-line errors instead of tracebacks."""

from __future__ import annotations

import importlib
import sys

import click
from rich.text import Text

from ecsguard import __version__
from ecsguard.cli.common import stderr
from ecsguard.core.errors import UserError

#: registration: one line per command, imported only when used (so `ecsguard logs tail` starts
#: without loading boto3 and the AWS collectors)
COMMANDS = {
    "inventory": "ecsguard.cli.inventory:inventory",
    "audit": "ecsguard.cli.audit:audit",
    "iam": "ecsguard.cli.iam:iam",
    "demo": "ecsguard.cli.demo:demo",
    "logs": "ecsguard.cli.logs:logs",
    "ingest": "ecsguard.cli.logs:ingest",
    "serve": "ecsguard.cli.serve:serve",
    "cost": "ecsguard.cli.cost:cost",
    "events": "ecsguard.cli.events:events",
    "alarms": "ecsguard.cli.alarms:alarms",
    "rules": "ecsguard.cli.rules:rules",
    "notify": "ecsguard.cli.notify:notify",
    "agent": "ecsguard.cli.agent:agent",
    "metrics": "ecsguard.cli.metrics:metrics",
    "health": "ecsguard.cli.health:health",
    "users": "ecsguard.cli.users:users",
    "athena": "ecsguard.cli.athena:athena",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return super().get_command(ctx, name)
        module, attribute = COMMANDS[name].split(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="ecsguard")
@click.option("-v", "--verbose", count=True, help="More detail (API call counts with -v).")
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """ecsguard: the customer's side of the AWS shared responsibility model for Amazon ECS.

    Security posture, IAM, logging and monitoring for an account's ECS estate, with evidence.
    Every command that talks to AWS takes the AWS CLI's --profile, --region and --endpoint-url
    (or AWS_ENDPOINT_URL) and needs only read-only rights (`ecsguard iam auditor-policy`).

    Start with `ecsguard demo --once` to see it work on an emulated account.
    """
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose


def main() -> None:
    try:
        code = cli.main(prog_name="ecsguard", standalone_mode=False)
    except UserError as err:
        # Problem texts carry user input and AWS strings: never interpret them as markup.
        stderr.print(Text.assemble(("ecsguard: error: ", "bold red"), err.problem))
        if err.hint:
            stderr.print(Text(f"  {err.hint}"))
        sys.exit(err.exit_code)
    except click.exceptions.Abort:
        stderr.print("aborted")
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
