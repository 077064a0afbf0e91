"""`ecsguard audit`: run the posture checks on a live account or a saved snapshot."""

from __future__ import annotations

import sys
from collections import Counter

import click

from ecsguard.cli.common import (
    aws_options,
    make_aws_options,
    org_options,
    print_json,
    stderr,
    stdout,
    table,
    write_output,
)
from ecsguard.cli.inventory import collect_organization, load_or_collect, org_role
from ecsguard.core.models import Finding, Pillar, Severity, Status
from ecsguard.posture import engine
from ecsguard.posture.audit import audit as run_audit
from ecsguard.posture.baseline import load_baseline
from ecsguard.posture.catalogue import markdown
from ecsguard.posture.mutelist import load_mutelist
from ecsguard.posture.organization import AccountSummary, audit_organization
from ecsguard.report.base import fail_counts, render

FORMATS = ["table", "json", "csv", "ocsf", "sarif", "html"]
SEVERITIES = [s.value for s in Severity]


def _ids(values: tuple[str, ...]) -> list[str]:
    """Accept both `--checks a,b` and `--checks a --checks b`."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


@click.group(invoke_without_command=True)
@aws_options
@click.option(
    "--snapshot",
    "snapshot_file",
    type=click.Path(dir_okay=False),
    help="Audit this saved snapshot instead of calling AWS.",
)
@click.option("--output", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Write the report here instead of stdout.",
)
@click.option(
    "--lang",
    type=click.Choice(["en", "ja"]),
    default="en",
    show_default=True,
    help="Report language.",
)
@click.option(
    "--fail-on",
    type=click.Choice(SEVERITIES),
    help="Exit 1 when a FAIL (not muted) of this severity or higher is found.",
)
@click.option("--checks", multiple=True, help="Only these check ids (comma-separated or repeated).")
@click.option("--exclude-checks", multiple=True, help="Skip these check ids.")
@click.option(
    "--severity", type=click.Choice(SEVERITIES), help="Only checks of this severity or higher."
)
@click.option(
    "--mutelist",
    type=click.Path(dir_okay=False),
    help="YAML of accepted risks (check, resource glob, tags, reason, expires).",
)
@click.option(
    "--baseline",
    type=click.Path(dir_okay=False),
    help="An earlier `--output json` report: mark findings new, unchanged, resolved.",
)
@click.option("--data-dir", envvar="ECSGUARD_DATA", help="Where live audits save the snapshot.")
@org_options("Audit")
@click.pass_context
def audit(
    ctx: click.Context,
    profile: str | None,
    regions: tuple[str, ...],
    endpoint_url: str | None,
    role_arn: str | None,
    max_workers: int,
    snapshot_file: str | None,
    output: str,
    out: str | None,
    lang: str,
    fail_on: str | None,
    checks: tuple[str, ...],
    exclude_checks: tuple[str, ...],
    severity: str | None,
    mutelist: str | None,
    baseline: str | None,
    data_dir: str | None,
    org: bool,
    role_name: str | None,
    external_id: str | None,
    max_concurrency: int,
) -> None:
    """Check the ECS estate against best practice; findings carry evidence and remediation.

    Covers the customer's side of the shared responsibility model in four pillars: security
    (ECS, ECR, network), IAM, logging and monitoring, with FSBP and CIS control ids. Checks never
    call AWS: a live audit collects a snapshot first (saved under DATA_DIR/snapshots). With
    --org, every account of the organization is collected through a role and audited, in one
    combined report.

    \b
    Examples:
      ecsguard audit --region ap-northeast-1 --fail-on high
      ecsguard audit --snapshot prod.json.gz --output html -o report.html --lang ja
      ecsguard audit --snapshot prod.json.gz --output json -o today.json --baseline last.json
      ecsguard audit --org --role-name ecsguard-audit --output csv -o org.csv
      ecsguard audit checks
    """
    if ctx.invoked_subcommand:
        return
    selected = engine.select(
        _ids(checks), _ids(exclude_checks), Severity(severity) if severity else None
    )
    mutes = load_mutelist(mutelist) if mutelist else None
    previous = load_baseline(baseline) if baseline else None
    for entry in mutes.expired() if mutes else []:
        stderr.print(
            f"warning: mutelist entry for {entry.check} expired on {entry.expires} "
            "and no longer mutes",
            style="yellow",
            markup=False,
            highlight=False,
        )
    options = make_aws_options(profile, regions, endpoint_url, role_arn, max_workers)
    role = org_role(org, role_name, "audit", "--snapshot" if snapshot_file else None)
    if role:  # every account collected (each snapshot saved), audited, combined
        results, _ = collect_organization(options, role, external_id, max_concurrency, data_dir)
        report, accounts = audit_organization(results, selected, mutes, lang, previous)
    else:
        snap = load_or_collect(snapshot_file, options, data_dir)
        report = run_audit(snap, selected, mutes, lang, previous)
        accounts = []
    findings, marks, resolved = report.findings, report.baseline, report.resolved
    to_file = write_output(render(report, output), out)
    if to_file or output != "table":  # the table writer prints its own summary
        print_summary(findings, marks, resolved, to_stderr=not to_file)
    if accounts:
        print_accounts(accounts, to_stderr=not to_file and output != "table")
    if fail_on and failing_at(findings, Severity(fail_on)):
        raise click.exceptions.Exit(1)


def print_accounts(accounts: list[AccountSummary], to_stderr: bool) -> None:
    console = stderr if to_stderr else stdout
    rows = [
        (
            a.account,
            a.name,
            "collected" if a.collected else f"not collected: {a.reason}",
            a.resources if a.collected else "",
            *(a.failed.get(s) or "" for s in SEVERITIES),
        )
        for a in accounts
    ]
    console.print(
        table(
            "Accounts (failed checks by severity)",
            ["account", "name", "status", "resources", *SEVERITIES],
            rows,
        )
    )


def failing_at(findings: list[Finding], threshold: Severity) -> list[Finding]:
    return [f for f in findings if f.status == Status.FAIL and f.severity.rank <= threshold.rank]


def print_summary(
    findings: list[Finding],
    marks: dict[tuple[str, str], str],
    resolved: list[Finding],
    to_stderr: bool,
) -> None:
    console = stderr if to_stderr else stdout
    failed = fail_counts(findings)
    statuses = Counter(f.status for f in findings)
    rows = [[p.value, *(failed[(p, s)] or "" for s in Severity)] for p in Pillar]
    console.print(table("Failed checks by pillar and severity", ["pillar", *SEVERITIES], rows))
    line = ", ".join(f"{statuses[s]} {s.value}" for s in Status if statuses[s])
    if marks:
        new = sum(1 for mark in marks.values() if mark == "new")
        line += f"; {new} new, {len(marks) - new} unchanged, {len(resolved)} resolved"
    console.print(line, markup=False, highlight=False)


@audit.command("checks")
@click.option(
    "--output", type=click.Choice(["table", "json", "markdown"]), default="table", show_default=True
)
@click.option("--lang", type=click.Choice(["en", "ja"]), default="en", show_default=True)
def list_checks(output: str, lang: str) -> None:
    """List the check catalogue: id, severity, pillar, controls, title."""
    metas = [c.meta for c in engine.select()]
    if output == "json":
        print_json([m.model_dump(mode="json") for m in metas])
        return
    if output == "markdown":
        sys.stdout.write(markdown(lang))
        return
    rows = [
        (m.id, m.severity.value, m.pillar.value, " ".join(m.controls), m.title.get(lang))
        for m in metas
    ]
    stdout.print(
        table(f"{len(metas)} checks", ["id", "severity", "pillar", "controls", "title"], rows)
    )
