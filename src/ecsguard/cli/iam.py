"""`ecsguard iam`: identity and access commands."""

from __future__ import annotations

import click

from ecsguard.aws.collect import auditor_policy
from ecsguard.cli.common import print_json


@click.group()
def iam() -> None:
    """IAM governance: ecsguard's own policy (more commands arrive with the IAM analysis)."""


@iam.command("auditor-policy")
def auditor_policy_command() -> None:
    """Print the read-only IAM policy ecsguard needs.

    Derived from the actions each collector declares (a collector cannot call an undeclared
    action), so it is exactly what `ecsguard inventory` uses. Attach it to the role or user that
    runs ecsguard; it grants no write and no secret values.
    """
    print_json(auditor_policy())
