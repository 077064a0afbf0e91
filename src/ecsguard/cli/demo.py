"""`ecsguard demo`: the main job on an emulated account (a moto server on 127.0.0.1)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import click

from ecsguard.aws import snapshot as snapshots
from ecsguard.aws.session import AwsOptions, AwsSession
from ecsguard.cli.audit import print_summary
from ecsguard.cli.common import data_dir_option, sparkline, stderr, stdout, table
from ecsguard.cli.inventory import render_summary, run_inventory
from ecsguard.core.config import data_dir as resolve_data_dir
from ecsguard.posture.audit import audit
from ecsguard.report.base import render

DEMO_REGION = "ap-northeast-1"


@click.command()
@click.option("--once", is_flag=True, help="Do the work, then stop the emulator and exit.")
@click.option(
    "--estate",
    type=click.Path(exists=True, dir_okay=False),
    help="Seed from this estate YAML instead of the built-in one.",
)
@data_dir_option
@click.pass_context
def demo(ctx: click.Context, once: bool, estate: str | None, data_dir: str | None) -> None:
    """Run ecsguard on an emulated AWS account, no AWS account needed.

    Starts a moto server on 127.0.0.1 (a free port), seeds it with a small company's ECS estate in
    ap-northeast-1 (three clusters, a dozen services, with planted mistakes documented in the
    estate file), prints how to point any AWS tool at it, then collects the inventory.
    Without --once the emulator stays up until Ctrl-C, so you can run ecsguard or the AWS CLI
    against it.
    """
    from ecsguard.demo.emulator import MotoServer
    from ecsguard.demo.seed import load_estate, seed

    verbose = ctx.find_root().obj.get("verbose", 0) if ctx.find_root().obj else 0
    target_dir = resolve_data_dir(data_dir)
    with MotoServer() as server:
        os.environ.update(server.env())
        stderr.print(f"emulated AWS account on {server.endpoint}", markup=False)
        started = time.monotonic()
        counts = seed(
            AwsSession(AwsOptions(regions=(DEMO_REGION,), endpoint_url=server.endpoint)),
            load_estate(Path(estate) if estate else None),
        )
        stderr.print(
            f"seeded {sum(counts.values())} resources in {time.monotonic() - started:.1f} s",
            markup=False,
        )
        stdout.print("# point any AWS tool at the emulated account:", markup=False)
        for line in server.env_lines():
            stdout.print(line, markup=False, highlight=False)
        session = AwsSession(AwsOptions(regions=(DEMO_REGION,), endpoint_url=server.endpoint))
        snapshot = run_inventory(session)
        path = snapshots.save(snapshot, target_dir / "snapshots" / "demo.json.gz")
        render_summary(snapshot, path, "table", verbose)
        write_audit_reports(snapshot, target_dir / "reports", path)

        def stay_up() -> None:
            stdout.print(
                f"emulator running on {server.endpoint}; try `ecsguard inventory --endpoint-url "
                f"{server.endpoint} --region {DEMO_REGION}`. Ctrl-C stops it.",
                markup=False,
                highlight=False,
            )
            # SIGTERM too ends the wait normally, so the server and the emulator are stopped
            # rather than orphaned
            signal.signal(signal.SIGTERM, signal.default_int_handler)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                stderr.print("stopping the emulator and the log server", markup=False)

        show_logs(snapshot, target_dir, then=None if once else stay_up)


def write_audit_reports(snapshot: snapshots.Snapshot, folder: Path, snapshot_file: Path) -> None:
    """The audit and IAM steps of the demo: summaries on screen, reports on disk."""
    from ecsguard.iam import render as iam_render
    from ecsguard.iam.account import analyze_account

    report = audit(snapshot)
    print_summary(report.findings, {}, [], to_stderr=False)
    analysis = analyze_account(snapshot)
    stdout.print(iam_render.headline(analysis), markup=False, highlight=False)
    tiers = ", ".join(f"{n} {tier}" for tier, n in iam_render.by_tier(analysis).items() if n)
    stdout.print(f"IAM tiers: {tiers}", markup=False, highlight=False)
    section = iam_render.html_section(analysis, snapshot, str(snapshot_file))
    folder.mkdir(parents=True, exist_ok=True)
    for lang in ("en", "ja"):
        localized = report if lang == "en" else audit(snapshot, lang=lang)
        path = folder / f"audit-{lang}.html"
        path.write_bytes(render(replace(localized, iam=section), "html"))
        stdout.print(f"audit and IAM report ({lang}): {path}", markup=False, highlight=False)
    (folder / "audit.json").write_bytes(render(report, "json"))
    (folder / "iam.json").write_bytes(iam_render.json(analysis))


def show_health(folder: Path) -> None:
    """The services with incidents in the last two hours, as `ecsguard health` shows them."""
    from ecsguard.logs.query.timerange import resolve
    from ecsguard.monitor.health import collect, summarize

    entries, _ = collect(folder, resolve("2h", None, None))
    rows = [
        (e.time.strftime("%H:%M"), f"{e.cluster}/{e.service}", e.kind, e.summary[:70])
        for service in summarize(entries)
        for e in service.incidents
    ]
    title = "Service health: latest incidents (ecsguard health)"
    stdout.print(table(title, ["time", "service", "kind", "what"], rows))


def show_logs(
    snapshot: snapshots.Snapshot, folder: Path, then: Callable[[], None] | None = None
) -> None:
    """The log step of the demo: `ecsguard serve` receives synthetic FireLens traffic over HTTP,
    a live tail watches it arrive, and Logs Insights queries answer the first questions; then the
    web console of that server. `then` runs while the server is still up (the demo without
    --once waits there for Ctrl-C, so the console stays open)."""
    from ecsguard.demo import logs as log_demo
    from ecsguard.demo.logserver import ServeProcess
    from ecsguard.detect.eventpattern.prefilter import reader_note
    from ecsguard.logs.receivers.firelens import parser_note as firelens_parser_note
    from ecsguard.logs.tail import render_line

    services = [
        (
            s["clusterArn"].rsplit("/", 1)[-1],
            s["serviceName"],
            s["taskDefinition"].rsplit("/", 1)[-1],
        )
        for region in snapshot.regions.values()
        for s in region.ecs.services
    ]
    config, inbox = log_demo.notify_config(folder)
    rules = ["--rules", "builtin:ecs-operations", "--notify", str(config)]
    with ServeProcess(folder, args=rules) as server:
        stdout.print(
            f"log server: ecsguard serve on {server.url} (FireLens posts to /ingest/firelens; "
            f"rules: builtin:ecs-operations; {firelens_parser_note()}; {reader_note()})",
            markup=False,
            highlight=False,
        )
        result = log_demo.run(server.url, services, inbox)
        stdout.print(
            f"logs: {result.stored} FireLens records received over HTTP, stored as Parquet under "
            f"{folder / 'store'}",
            markup=False,
            highlight=False,
        )
        stdout.print(f"live tail (ecsguard logs tail --server {server.url}):", markup=False)
        for record in result.tailed[:9]:
            stdout.print(render_line(record))
        for answer in result.answers:
            stdout.print(
                table(f'ecsguard logs query "{answer.query}"', answer.columns, answer.rows)
            )
        alert_rows = [
            (a["severity"], a["rule_id"], a["count"], a["summary"][:110]) for a in result.alerts
        ]
        stdout.print(
            table(
                "Alerts (ecsguard rules alerts)",
                ["severity", "rule", "count", "summary"],
                alert_rows,
            )
        )
        stdout.print(
            f"{result.notified} notification(s) delivered to the local channel: {inbox}",
            markup=False,
            highlight=False,
        )
        health = result.health
        stdout.print(
            f"server health (GET {server.url}/metrics, for Prometheus): "
            f"{health.get('ecsguard_records_stored_total', 0):.0f} records stored with "
            f"{health.get('ecsguard_wal_fsyncs_total', 0):.0f} fsyncs, "
            f"{health.get('ecsguard_ingest_refused_total', 0):.0f} requests refused, "
            f"{health.get('ecsguard_alerts_total', 0):.0f} alerts raised, "
            f"{health.get('ecsguard_notify_channel_failures', 0):.0f} channel failures",
            markup=False,
            highlight=False,
        )
        stdout.print(
            table(
                "CPU and memory, last hour in 5-minute steps (EMF posted to /ingest/metrics)",
                ["cluster", "service", "CPU %", "memory %", "peak memory"],
                [
                    (c, s, sparkline(cpu), sparkline(memory), f"{max(memory):.0f}%")
                    for (c, s), (cpu, memory) in sorted(result.usage.items())
                ],
            )
        )
        show_health(folder)
        if result.request_id:
            stdout.print(
                f"one request end to end: ecsguard logs query --data-dir {folder} --since 2h "
                f'\'filter request_id = "{result.request_id}" '
                "| fields @timestamp, service, @message'",
                markup=False,
                highlight=False,
            )
        show_console(server.url, folder, keep_open=then is not None)
        if then is not None:
            then()


def show_console(url: str, folder: Path, keep_open: bool) -> None:
    """Log in to the server's web console with a one-time link, as a person would, and show the
    overview's figures; print a fresh link for the person when the console stays open."""
    from ecsguard.demo.console import login_link, overview

    figures = overview(login_link(folder, url))
    posture, iam = figures.get("posture") or {}, figures.get("iam") or {}
    stdout.print(
        f"web console {url}/ (as user demo): {posture.get('open_findings', 0)} open findings, "
        f"{iam.get('admin_equivalent', 0)} admin-equivalent principals, "
        f"{figures['alerts']['last_day']} alerts in 24 h, "
        f"{figures['logs']['per_second']} records/s",
        markup=False,
        highlight=False,
    )
    if keep_open:
        stdout.print(
            f"open the console: {login_link(folder, url)}  (one-time login, 15 minutes)",
            markup=False,
            highlight=False,
        )
    else:
        stdout.print(
            "the console closes with --once; `ecsguard demo` keeps it open and prints a "
            "one-time login link",
            markup=False,
            highlight=False,
        )
