"""`ecsguard inventory`: collect the estate into a Snapshot; `inventory diff` shows drift."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ecsguard.aws import organization
from ecsguard.aws import snapshot as snapshots
from ecsguard.aws.collect import collect
from ecsguard.aws.diff import diff
from ecsguard.aws.organization import AccountResult, not_collected, require_collected
from ecsguard.aws.session import AwsOptions, AwsSession
from ecsguard.cli.common import (
    aws_options,
    data_dir_option,
    make_aws_options,
    org_options,
    output_option,
    print_json,
    stderr,
    stdout,
    table,
)
from ecsguard.core.config import data_dir
from ecsguard.core.errors import UserError


@click.group(invoke_without_command=True)
@aws_options
@click.option(
    "-o",
    "--out",
    "out",
    type=click.Path(allow_dash=True),
    help="Write the snapshot here (.json or .json.gz; `-` for stdout), or into this folder as "
    "ACCOUNT-TIME.json.gz when it is one or ends in /; with --org, the folder for every "
    "account's snapshot. Default: DATA_DIR/snapshots/ACCOUNT-TIME.json.gz.",
)
@data_dir_option
@output_option
@org_options("Collect")
@click.pass_context
def inventory(
    ctx: click.Context,
    profile: str | None,
    regions: tuple[str, ...],
    endpoint_url: str | None,
    role_arn: str | None,
    max_workers: int,
    out: str | None,
    data_dir: str | None,
    output: str,
    org: bool,
    role_name: str | None,
    external_id: str | None,
    max_concurrency: int,
) -> None:
    """Collect the account's ECS estate into a snapshot file.

    Reads ECS, IAM, CloudTrail, CloudWatch, CloudWatch Logs, EventBridge, ECR, the security groups
    and subnets services use, and Secrets Manager / SSM metadata (never values). APIs that refuse
    access are recorded as "not collected" and the run goes on. Checks and reports work offline
    on the saved snapshot. With --org, every ACTIVE account of the organization is collected
    through a role assumed in it; an account that cannot be reached is reported and the others
    go on (exit 0 while at least one account was collected).

    \b
    Examples:
      ecsguard inventory --region ap-northeast-1 -o prod.json.gz
      ecsguard inventory --profile audit --region all
      ecsguard inventory --org --role-name ecsguard-audit -o snapshots/
      ecsguard inventory diff yesterday.json.gz today.json.gz
    """
    if ctx.invoked_subcommand:
        return
    options = make_aws_options(profile, regions, endpoint_url, role_arn, max_workers)
    role = org_role(org, role_name, "inventory", "-o -" if out == "-" else None)
    if role:
        folder = Path(out) if out else None
        results, paths = collect_organization(
            options, role, external_id, max_concurrency, data_dir, folder
        )
        render_accounts(results, paths, output)
        require_collected(results)
        return
    snapshot = run_inventory(AwsSession(options), show_progress=output == "table")
    if out == "-":
        stdout.file.buffer.write(snapshots.dumps(snapshot) + b"\n")  # type: ignore[attr-defined]
        return
    if not out or out.endswith("/") or Path(out).is_dir():
        target = default_path(data_dir, snapshot, Path(out) if out else None)
    else:
        target = Path(out)
    path = snapshots.save(snapshot, target)
    verbose = ctx.find_root().obj.get("verbose", 0) if ctx.find_root().obj else 0
    render_summary(snapshot, path, output, verbose)


def run_inventory(session: AwsSession, show_progress: bool = True) -> snapshots.Snapshot:
    """Collect with a progress bar on stderr (hidden when stderr is not a terminal)."""
    regions = session.resolve_regions()  # fail on bad input before drawing anything
    session.identity()
    with Progress(
        TextColumn("collecting"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
        disable=not show_progress,
    ) as bar:
        task = bar.add_task("", total=None)

        def progress(label: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=label)

        return collect(session, regions, progress=progress)


def load_or_collect(
    snapshot_file: str | None, options: AwsOptions, data_dir: str | None
) -> snapshots.Snapshot:
    """The saved snapshot when one is named; else collect live and save it under DATA_DIR."""
    if snapshot_file:
        return snapshots.load(snapshot_file)
    snapshot = run_inventory(AwsSession(options))
    snapshots.save(snapshot, default_path(data_dir, snapshot))
    return snapshot


def default_path(
    explicit_dir: str | None, snapshot: snapshots.Snapshot, folder: Path | None = None
) -> Path:
    """FOLDER (default DATA_DIR/snapshots) / ACCOUNT-TIME.json.gz."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = folder or data_dir(explicit_dir) / "snapshots"
    return folder / f"{snapshot.account}-{stamp}.json.gz"


def org_role(org: bool, role_name: str | None, command: str, conflict: str | None) -> str | None:
    """The role to assume in each account when --org was asked for, else None; refuses
    --role-name without --org, --org without a role name, and `conflict` (a flag given that
    does not go with --org)."""
    if not (org or role_name):
        return None
    example = f"e.g. ecsguard {command} --org --role-name OrganizationAccountAccessRole"
    if not org:
        raise UserError(
            "--role-name goes with --org (the role assumed in every account)",
            f"{example}; for one account through a role, use --role-arn",
        )
    if not role_name:
        raise UserError("--org needs --role-name", example)
    if conflict:
        raise UserError(f"--org does not go with {conflict}", example)
    return role_name


def collect_organization(
    options: AwsOptions,
    role_name: str,
    external_id: str | None,
    max_concurrency: int,
    data_dir: str | None,
    folder: Path | None = None,
) -> tuple[list[AccountResult], dict[str, Path]]:
    """Every ACTIVE account's snapshot, each saved (in `folder`, else DATA_DIR/snapshots) as it
    arrives, with a line on stderr per account; the results and the snapshots' paths by account."""
    paths: dict[str, Path] = {}

    def done(result: AccountResult) -> None:
        account = result.account
        if result.snapshot is None:
            stderr.print(
                not_collected(result),
                style="yellow",
                markup=False,
                highlight=False,
            )
            return
        path = snapshots.save(result.snapshot, default_path(data_dir, result.snapshot, folder))
        paths[account.id] = path
        stderr.print(
            f"account {account.id} ({account.name}): snapshot {path}",
            markup=False,
            highlight=False,
        )

    results = organization.collect_organization(
        options,
        role_name,
        external_id=external_id,
        max_concurrency=max_concurrency,
        done=done,
    )
    return results, paths


def _account_json(result: AccountResult, path: Path | None) -> dict[str, Any]:
    head = {"account": result.account.id, "name": result.account.name}
    if result.snapshot is None:
        return {**head, "collected": False, "reason": result.error}
    return {**head, "collected": True, **summary(result.snapshot, path)}


def render_accounts(results: list[AccountResult], paths: dict[str, Path], output: str) -> None:
    """One line per account of an --org collection."""
    if output == "json":
        print_json([_account_json(r, paths.get(r.account.id)) for r in results])
        return
    rows = [
        (
            r.account.id,
            r.account.name,
            f"not collected: {r.error}" if r.snapshot is None else "collected",
            "" if r.snapshot is None else r.snapshot.resource_total(),
            "" if r.snapshot is None else len(r.snapshot.gaps),
            paths.get(r.account.id, ""),
        )
        for r in results
    ]
    columns = ["account", "name", "status", "resources", "APIs not collected", "snapshot"]
    stdout.print(table("Accounts", columns, rows))


def summary(snapshot: snapshots.Snapshot, path: Path | None) -> dict[str, Any]:
    return {
        "account": snapshot.account,
        "regions": sorted(snapshot.regions),
        "snapshot": str(path) if path else None,
        "resources": snapshot.counts(),
        "not_collected": [str(gap) for gap in snapshot.gaps],
        "api_calls": snapshot.api.total_calls,
        "http_requests": snapshot.api.http_requests,
        "retries": snapshot.api.retries,
        "seconds": snapshot.duration_seconds,
    }


def render_summary(
    snapshot: snapshots.Snapshot, path: Path | None, output: str, verbose: int
) -> None:
    if output == "json":
        data = summary(snapshot, path)
        if verbose:
            data["api_calls_by_operation"] = snapshot.api.calls
        print_json(data)
        return
    rows = []
    for region, name, section in snapshot.sections():
        for field in type(section).keys:
            count = len(getattr(section, field))
            if count:
                rows.append((region, f"{name}.{field}", count))
    stdout.print(table(f"Account {snapshot.account}", ["region", "resources", "count"], rows))
    for gap in snapshot.gaps:
        stdout.print(str(gap), style="yellow", markup=False, highlight=False)
    stdout.print(
        f"{snapshot.api.total_calls} API calls ({snapshot.api.retries} retries) in "
        f"{snapshot.duration_seconds:.1f} s; snapshot written to {path}",
        markup=False,
        highlight=False,
    )
    if verbose:
        stdout.print(
            table(
                "API calls by operation",
                ["operation", "calls"],
                sorted(snapshot.api.calls.items()),
            )
        )


@inventory.command("diff")
@click.argument("old", type=click.Path(dir_okay=False))
@click.argument("new", type=click.Path(dir_okay=False))
@click.option(
    "--include-tasks", is_flag=True, help="Also list tasks that started or stopped (state, noisy)."
)
@output_option
def diff_command(old: str, new: str, include_tasks: bool, output: str) -> None:
    """List resources added, removed and changed between two snapshots.

    Exit status is 0 when nothing changed and 1 when something did, like diff(1).
    """
    changes = diff(snapshots.load(old), snapshots.load(new), include_ephemeral=include_tasks)
    if output == "json":
        print_json([c.as_dict() for c in changes])
    elif not changes:
        stdout.print("no changes", markup=False)
    else:
        rows = [(c.change, c.kind, c.region, c.key, "\n".join(c.fields[:20])) for c in changes]
        stdout.print(table(None, ["change", "kind", "region", "resource", "fields"], rows))
    if changes:
        raise click.exceptions.Exit(1)
