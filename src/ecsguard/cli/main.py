"""The `ecsguard` command: global flags, command groups, one-line errors instead of tracebacks."""

from __future__ import annotations

import sys

import click
from rich.text import Text

from ecsguard import __version__
from ecsguard.cli import audit, cost, demo, iam, inventory, logs, serve
from ecsguard.cli.common import stderr
from ecsguard.core.errors import UserError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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


cli.add_command(inventory.inventory)  # registration: one line per command group
cli.add_command(audit.audit)
cli.add_command(iam.iam)
cli.add_command(demo.demo)
cli.add_command(logs.logs)
cli.add_command(logs.ingest)
cli.add_command(serve.serve)
cli.add_command(cost.cost)


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
