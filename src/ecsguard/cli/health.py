"""`ecsguard health`: each ECS service's state and its latest incidents."""

from __future__ import annotations

import click

from ecsguard.cli.common import (
    make_store_location,
    print_json,
    stderr,
    stdout,
    store_options,
    table,
)
from ecsguard.core.config import data_dir as resolve_data_dir


@click.command()
@click.option("--cluster", help="Only services of this cluster (its name).")
@click.option("--service", help="Only this service (its name).")
@click.option("--since", help="Window ending now: 30m, 24h, 7d (default 24h).")
@click.option("--start", help="Window start: ISO 8601 (UTC by default) or epoch seconds.")
@click.option("--end", help="Window end (exclusive); default now.")
@click.option(
    "--incidents",
    type=click.IntRange(0, 100),
    default=5,
    show_default=True,
    help="Latest incidents shown per service.",
)
@click.option("--timeline", is_flag=True, help="Print every entry of the window, oldest first.")
@click.option("--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option(
    "--data-dir", envvar="ECSGUARD_DATA", help="Data directory (default ./ecsguard-data)."
)
@store_options
def health(
    cluster: str | None,
    service: str | None,
    since: str | None,
    start: str | None,
    end: str | None,
    incidents: int,
    timeline: bool,
    output: str,
    data_dir: str | None,
    store: str | None,
    profile: str | None,
    region: str | None,
    endpoint_url: str | None,
) -> None:
    """Each service's desired/running/pending tasks, latest deployment and latest incidents.

    Built from the ECS events in the store (send EventBridge's aws.ecs events to
    `ecsguard serve` or `ecsguard ingest --format ecs-events`) and the inventory snapshots in
    DATA_DIR/snapshots. Counts come from the latest snapshot (the newest one older than the
    window counts as its start). Incidents are
    stopped tasks (classified: oom, essential_exit, elb_health_check, container_health_check,
    spot_interruption, user_stop, ...), placement failures, impaired task starts and failed
    deployments.

    \b
    Examples:
      ecsguard health
      ecsguard health --cluster prod --service api --since 7d
      ecsguard health --service api --timeline --output json
    """
    from ecsguard.logs.query.timerange import resolve
    from ecsguard.monitor.health import collect, summarize

    window = resolve(since or (None if start or end else "24h"), start, end)
    location = make_store_location(store, endpoint_url, profile, region)
    entries, problems = collect(resolve_data_dir(data_dir), window, cluster, service, location)
    for problem in problems:
        stderr.print(f"skipped a snapshot: {problem}", markup=False, highlight=False)
    services = summarize(entries, incidents)
    if output == "json":
        doc: dict[str, object] = {
            "start": window.start.isoformat(),
            "end": window.end.isoformat(),
            "services": [s.to_dict() for s in services],
        }
        if timeline:
            doc["timeline"] = [e.to_dict() for e in entries]
        print_json(doc)
        return
    if not services:
        stdout.print("no ECS events or snapshots in this window", markup=False)
        return
    stdout.print(
        table(
            "Services",
            ["cluster", "service", "desired", "running", "pending", "deployment", "stopped"],
            [
                (
                    s.cluster,
                    s.service,
                    _count(s.desired),
                    _count(s.running),
                    _count(s.pending),
                    _deployment(s),
                    ", ".join(f"{k} {v}" for k, v in sorted(s.stopped.items())) or "-",
                )
                for s in services
            ],
        )
    )
    rows = [
        (e.time.strftime("%Y-%m-%d %H:%M:%S"), e.cluster, e.service, e.kind, e.summary)
        for s in services
        for e in s.incidents
    ]
    if rows:
        stdout.print(
            table("Latest incidents", ["time", "cluster", "service", "kind", "what"], rows)
        )
    if timeline:
        stdout.print(
            table(
                "Timeline",
                ["time", "cluster", "service", "kind", "what"],
                [
                    (e.time.strftime("%Y-%m-%d %H:%M:%S"), e.cluster, e.service, e.kind, e.summary)
                    for e in entries
                ],
            )
        )


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def _deployment(health: object) -> str:
    deployment = getattr(health, "deployment", None)
    if deployment is None:
        return "-"
    rollback = " (rollback)" if deployment.data.get("rollback") else ""
    return f"{deployment.data.get('status')}{rollback} {deployment.time:%Y-%m-%d %H:%M}"
