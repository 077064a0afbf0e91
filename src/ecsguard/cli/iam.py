"""`ecsguard iam`: who may do what, by effective permissions; least-privilege policies."""

from __future__ import annotations

import sys

import click

from ecsguard.aws.collect import auditor_policy
from ecsguard.cli.common import print_json
from ecsguard.core.errors import UserError


@click.group()
def iam() -> None:
    """IAM governance for the ECS estate: tiers, escalation paths, stray identities, policies.

    \b
    Examples:
      ecsguard iam template --tier ci --cluster prod --service api --snapshot snap.json.gz
      ecsguard iam suggest ci-deployer --cloudtrail ./AWSLogs --snapshot snap.json.gz
      ecsguard iam analyze-policy policy.json
      ecsguard iam auditor-policy
    """


@iam.command("auditor-policy")
def auditor_policy_command() -> None:
    """Print the read-only IAM policy ecsguard needs.

    Derived from the actions each collector declares (a collector cannot call an undeclared
    action), so it is exactly what `ecsguard inventory` uses. Attach it to the role or user that
    runs ecsguard; it grants no write and no secret values.
    """
    print_json(auditor_policy())


@iam.command("template")
@click.option(
    "--tier",
    required=True,
    type=click.Choice(["deployer", "ci", "operator", "workload", "service-admin", "iam-admin"]),
    help="Who the policy is for (workload: the task execution role).",
)
@click.option("--cluster", "clusters", multiple=True, help="Cluster name (repeatable).")
@click.option("--service", "services", multiple=True, help="Service name (repeatable).")
@click.option(
    "--snapshot",
    type=click.Path(dir_okay=False),
    help="Read roles, repositories, log groups and secrets from the services.",
)
@click.option("--account", help="Account id (default: the snapshot's).")
@click.option("--region", default=None, help="Region for ARNs (default: the service's, or *).")
@click.option("--role", "roles", multiple=True, help="Role ARN the tier may pass (repeatable).")
@click.option("--repository", "repositories", multiple=True, help="ECR repository name.")
@click.option("--log-group", "log_groups", multiple=True, help="CloudWatch Logs group name.")
@click.option("--trust", is_flag=True, help="Print the task role trust policy instead.")
def template_command(
    tier: str,
    clusters: tuple[str, ...],
    services: tuple[str, ...],
    snapshot: str | None,
    account: str | None,
    region: str | None,
    roles: tuple[str, ...],
    repositories: tuple[str, ...],
    log_groups: tuple[str, ...],
    trust: bool,
) -> None:
    """Print a least-privilege policy for a tier, scoped to clusters and services.

    PassRole is limited to the service's roles and to ECS tasks (iam:PassedToService);
    no `Resource: "*"` where the action supports resource-level permissions. With --snapshot
    the roles, repositories, log groups and secrets are read from the services' task
    definitions.
    """
    from ecsguard.aws import snapshot as snapshots
    from ecsguard.iam.templates import Scope, scope_from_snapshot, template, trust_policy_for_tasks

    if snapshot:
        scope = scope_from_snapshot(
            snapshots.load(snapshot), list(clusters), list(services), region
        )
    elif account:
        scope = Scope(
            account=account, region=region or "*", clusters=list(clusters), services=list(services)
        )
    else:
        raise UserError("no account for the ARNs", "give --snapshot FILE or --account ID")
    scope.roles = sorted({*scope.roles, *roles})
    scope.repositories = sorted({*scope.repositories, *repositories})
    scope.log_groups = sorted({*scope.log_groups, *log_groups})
    print_json(trust_policy_for_tasks(scope) if trust else template(tier, scope))


@iam.command("suggest")
@click.argument("principal")
@click.option(
    "--cloudtrail",
    required=True,
    type=click.Path(exists=True),
    help="CloudTrail log files: a file or a directory tree (.json, .json.gz).",
)
@click.option(
    "--snapshot",
    type=click.Path(dir_okay=False),
    help="Compare with what the principal is granted (lists granted but unused).",
)
def suggest_command(principal: str, cloudtrail: str, snapshot: str | None) -> None:
    """Build a policy from the actions PRINCIPAL (ARN, or a name with --snapshot) really used.

    Only successful calls count. Actions whose records name no resource get "*" and are listed
    as `unresolved` for a person to narrow. With --snapshot, `granted_unused` lists what its
    policies allow and it never used: the candidates to remove.
    """
    from ecsguard.aws import snapshot as snapshots
    from ecsguard.iam.evaluate import expand_allowed
    from ecsguard.iam.principals import principals
    from ecsguard.iam.suggest import read_cloudtrail, suggest

    arn, granted = principal, []
    if snapshot:
        snap = snapshots.load(snapshot)
        match = [p for p in principals(snap.iam) if principal in (p.arn, p.name)]
        if not match:
            raise UserError(
                f"no principal {principal!r} in {snapshot}",
                "give a user or role name or ARN from the snapshot",
            )
        arn = match[0].arn
        allowed = expand_allowed(match[0].statements, match[0].boundary, now=snap.collected_at)
        granted = [action for action, access in allowed.items() if not access.conditional]
    elif not principal.startswith("arn:"):
        raise UserError(f"{principal!r} is not an ARN", "give its ARN, or --snapshot FILE")
    print_json(suggest(arn, read_cloudtrail(cloudtrail), granted))


@iam.command("analyze-policy")
@click.argument("files", nargs=-1, required=True)
def analyze_policy_command(files: tuple[str, ...]) -> None:
    """Analyse IAM policies without an account: risks, access levels, lint.

    FILE is a policy document, an AWS managed-policy record, or the output of
    `aws iam get-account-authorization-details` (every policy in it); `-` reads stdin.
    Prints one JSON object per policy: admin_equivalent, risks (privilege_escalation,
    resource_exposure, credentials_exposure, data_exfiltration, service_wildcard,
    infrastructure_modification), access_levels per service, and lint problems.
    """
    from ecsguard.iam.analyze import analyze_files

    stdin_text = sys.stdin.read() if "-" in files else None
    print_json(analyze_files(list(files), stdin_text))
