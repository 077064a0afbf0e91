"""`ecsguard iam`: who may do what, by effective permissions; least-privilege policies."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import TYPE_CHECKING

import click

from ecsguard.aws.collect import auditor_policy
from ecsguard.cli.common import aws_options, make_aws_options, print_json, write_output
from ecsguard.core.errors import UserError

if TYPE_CHECKING:
    from ecsguard.aws.session import AwsOptions
    from ecsguard.aws.snapshot import Snapshot


@click.group()
def iam() -> None:
    """IAM governance for the ECS estate: tiers, escalation paths, stray identities, policies.

    \b
    Examples:
      ecsguard iam report --snapshot snap.json.gz
      ecsguard iam who-can iam:PassRole --snapshot snap.json.gz
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


@iam.command("report")
@aws_options
@click.option(
    "--snapshot",
    "snapshot_file",
    type=click.Path(dir_okay=False),
    help="Analyse this saved snapshot instead of calling AWS.",
)
@click.option(
    "--authorization-details",
    type=click.Path(dir_okay=False),
    help="Analyse the output of `aws iam get-account-authorization-details` alone.",
)
@click.option(
    "--cloudtrail",
    type=click.Path(exists=True),
    help="CloudTrail log files: evidence of long-lived keys used from containers.",
)
@click.option(
    "--output",
    type=click.Choice(["table", "json", "csv", "dot", "html"]),
    default="table",
    show_default=True,
)
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Write the report here instead of stdout.",
)
@click.option("--lang", type=click.Choice(["en", "ja"]), default="en", show_default=True)
@click.option("--data-dir", envvar="ECSGUARD_DATA", help="Where live runs save the snapshot.")
def report_command(
    profile: str | None,
    regions: tuple[str, ...],
    endpoint_url: str | None,
    role_arn: str | None,
    max_workers: int,
    snapshot_file: str | None,
    authorization_details: str | None,
    cloudtrail: str | None,
    output: str,
    out: str | None,
    lang: str,
    data_dir: str | None,
) -> None:
    """Every principal with its tier, escalation paths, stray reasons and where it is used.

    Tiers come from effective permissions, not names: iam-admin, service-admin, service-user
    (deployer, operator, ci, workload), unrelated, over-privileged. The headline says how many
    principals are admin-equivalent and how many of those sit outside the IAM-administrator
    tier. `--output dot` draws the service-to-identity map for Graphviz; `--output html` writes
    the audit report with its IAM section.
    """
    options = make_aws_options(profile, regions, endpoint_url, role_arn, max_workers)
    snap = _iam_snapshot(options, snapshot_file, authorization_details, data_dir)
    from ecsguard.iam import render
    from ecsguard.iam.account import analyze_account
    from ecsguard.iam.suggest import read_cloudtrail

    records = list(read_cloudtrail(cloudtrail)) if cloudtrail else None
    analysis = analyze_account(snap, cloudtrail=records)
    if output == "dot":
        data = render.dot(snap).encode()
    elif output == "html":
        from ecsguard.posture.audit import audit
        from ecsguard.posture.engine import select
        from ecsguard.report.base import render as render_report

        iam_checks = [c for c in select() if c.meta.pillar == "iam"]
        report = audit(snap, iam_checks, lang=lang)
        section = render.html_section(analysis, snap, snapshot_file or "")
        data = render_report(replace(report, iam=section), "html")
    else:
        data = {
            "table": lambda: render.table(analysis, lang),
            "json": lambda: render.json(analysis),
            "csv": lambda: render.csv(analysis),
        }[output]()
    write_output(data, out)


@iam.command("who-can")
@click.argument("action")
@click.argument("resource", default="*")
@click.option(
    "--snapshot",
    "snapshot_file",
    type=click.Path(dir_okay=False),
    required=True,
    help="The snapshot to answer from (`ecsguard inventory -o FILE`).",
)
def who_can_command(action: str, resource: str, snapshot_file: str) -> None:
    """Which principals can do ACTION on RESOURCE (default any), directly or in one hop.

    One hop: through a role they can assume, or pass to ECS (or another compute service) and run
    code under. Each answer names the deciding path.

    \b
    Example:
      ecsguard iam who-can iam:CreateUser --snapshot snap.json.gz
      ecsguard iam who-can ecs:UpdateService \\
        arn:aws:ecs:ap-northeast-1:123456789012:service/prod/api --snapshot snap.json.gz
    """
    from ecsguard.aws import snapshot as snapshots
    from ecsguard.iam import actions
    from ecsguard.iam.escalation import who_can

    if ":" not in action or not actions.expand(action):
        raise UserError(
            f"unknown IAM action {action!r}", "write it as service:Action, e.g. ecs:UpdateService"
        )
    print_json(who_can(action, resource, snapshots.load(snapshot_file)))


def _iam_snapshot(
    options: AwsOptions,
    snapshot_file: str | None,
    authorization_details: str | None,
    data_dir: str | None,
) -> Snapshot:
    if snapshot_file and authorization_details:
        raise UserError(
            "--snapshot and --authorization-details exclude each other", "give one source"
        )
    if authorization_details:
        from ecsguard.iam.account import snapshot_from_authorization_details

        return snapshot_from_authorization_details(authorization_details)
    from ecsguard.cli.inventory import load_or_collect

    return load_or_collect(snapshot_file, options, data_dir)
