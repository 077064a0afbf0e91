"""`ecsguard metrics`: poll CloudWatch into the metrics table, and read series back from it."""

from __future__ import annotations

from pathlib import Path

import click
from rich.text import Text

from ecsguard.cli.common import (
    aws_options,
    data_dir_option,
    make_aws_options,
    make_store_location,
    print_json,
    stderr,
    stdout,
    store_option,
    store_options,
    table,
)
from ecsguard.core.config import data_dir as resolve_data_dir
from ecsguard.core.errors import UserError
from ecsguard.logs.query.timerange import parse_duration, resolve

#: periods CloudWatch accepts for standard-resolution metrics below a minute, then minutes
_SHORT_PERIODS = (1, 5, 10, 30)


@click.group()
def metrics() -> None:
    """Metrics of the ECS services: CloudWatch polled into the metrics table, read as series.

    `poll` fetches AWS/ECS, Container Insights and load balancer target group metrics of every
    service in a snapshot with GetMetricData (500 series a call), incrementally; `query` reads
    one metric per period from the store (the `metrics` view of `ecsguard logs query --sql`).

    \b
    Examples:
      ecsguard metrics poll --snapshot prod.json.gz --since 3h
      ecsguard metrics query --namespace AWS/ECS --name CPUUtilization \\
          --dimension ServiceName=api --stat p95 --period 1h --since 1d
    """


@metrics.command("poll")
@click.option(
    "--snapshot",
    "snapshot_file",
    type=click.Path(dir_okay=False),
    help="Services from this snapshot; default: collect the estate live (and save it).",
)
@click.option(
    "--since",
    default="3h",
    show_default=True,
    help="How far back the first poll of a series reaches; later polls continue where the "
    "last one ended.",
)
@click.option(
    "--period",
    type=int,
    default=60,
    show_default=True,
    help="Seconds per datapoint: 1, 5, 10, 30 or a multiple of 60.",
)
@aws_options
@data_dir_option
@store_option
@click.option(
    "--output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="A summary for people (table) or programs (json).",
)
def poll_command(
    snapshot_file: str | None,
    since: str,
    period: int,
    profile: str | None,
    regions: tuple[str, ...],
    endpoint_url: str | None,
    role_arn: str | None,
    max_workers: int,
    data_dir: str | None,
    store: str | None,
    output: str,
) -> None:
    """Fetch the services' CloudWatch metrics into the metrics table.

    Per service AWS/ECS CPUUtilization and MemoryUtilization and Container Insights CpuUtilized,
    MemoryUtilized, Running/Desired/PendingTaskCount; per target group of a service
    HealthyHostCount, UnHealthyHostCount, HTTPCode_Target_5XX_Count and TargetResponseTime.
    Run it from cron or a loop: each poll starts one period before the last one ended (late
    datapoints) and never stores a datapoint twice. Refused or throttled calls are reported and
    retried by the next poll; the rest is stored. Needs cloudwatch:GetMetricData and
    elasticloadbalancing:DescribeTargetGroups.

    \b
    Examples:
      ecsguard metrics poll --snapshot prod.json.gz --region ap-northeast-1
      ecsguard metrics poll --since 1d --period 300 --output json
    """
    from ecsguard.aws.session import AwsSession
    from ecsguard.cli.inventory import load_or_collect
    from ecsguard.monitor.cloudwatch import CloudWatchPoller

    if period not in _SHORT_PERIODS and (period < 60 or period % 60):
        raise UserError(
            f"--period {period} is not a CloudWatch period", "use 1, 5, 10, 30 or a multiple of 60"
        )
    lookback = parse_duration(since)
    options = make_aws_options(profile, regions, endpoint_url, role_arn, max_workers)
    snapshot = load_or_collect(snapshot_file, options, data_dir)
    region = next((r for r in regions if r != "all"), None)
    poller = CloudWatchPoller(
        AwsSession(options),
        resolve_data_dir(data_dir),
        period=period,
        since=lookback,
        store=make_store_location(store, endpoint_url, profile, region),
    )
    result = poller.poll(snapshot, regions=[r for r in regions if r != "all"])
    if output == "json":
        print_json(result.as_dict())
    else:
        stdout.print(
            f"{result.queries} queries in {result.calls} GetMetricData calls: "
            f"{result.datapoints} datapoints, {result.stored} new stored",
            markup=False,
            highlight=False,
        )
    for problem in result.problems:
        stderr.print(Text(problem, style="yellow"))


@metrics.command("query")
@click.option("--namespace", required=True, help="Such as AWS/ECS or ECS/ContainerInsights.")
@click.option("--name", required=True, help="The metric name, such as CPUUtilization.")
@click.option(
    "--dimension",
    "dimension_pairs",
    multiple=True,
    help="NAME=VALUE; repeat for several. Series matching all of them, each kept apart.",
)
@click.option(
    "--stat",
    type=click.Choice(["avg", "min", "max", "sum", "count", "p50", "p90", "p95", "p99"]),
    default="avg",
    show_default=True,
    help="The statistic of each period.",
)
@click.option("--period", default="5m", show_default=True, help="Period: 1m, 5m, 1h, 1d ...")
@click.option("--since", help="Window ending now: 15m, 1h, 1d, 1w (default 1d).")
@click.option("--start", help="Window start: ISO 8601 (UTC by default) or epoch seconds.")
@click.option("--end", help="Window end (exclusive); default now.")
@click.option("--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@data_dir_option
@store_options
def query_command(
    namespace: str,
    name: str,
    dimension_pairs: tuple[str, ...],
    stat: str,
    period: str,
    since: str | None,
    start: str | None,
    end: str | None,
    output: str,
    data_dir: str | None,
    store: str | None,
    profile: str | None,
    region: str | None,
    endpoint_url: str | None,
) -> None:
    """Print one metric's STAT per PERIOD from the metrics table, one series per dimension set.

    \b
    Examples:
      ecsguard metrics query --namespace AWS/ECS --name CPUUtilization --since 3h
      ecsguard metrics query --namespace AWS/ApplicationELB --name HTTPCode_Target_5XX_Count \\
          --stat sum --period 1m --since 1h --output json
    """
    from ecsguard.logs.pipeline import Pipeline
    from ecsguard.monitor.series import parse_dimensions, series

    dimensions = parse_dimensions(dimension_pairs)
    seconds = parse_duration(period).total_seconds()
    if seconds < 1 or seconds != int(seconds):
        raise UserError(f"--period {period} is not a whole number of seconds", "such as 5m or 1h")
    window = resolve(since or (None if start or end else "1d"), start, end)
    directory = Path(resolve_data_dir(data_dir))
    location = make_store_location(store, endpoint_url, profile, region)
    pipeline = Pipeline(directory, store=location)
    try:
        points = series(
            pipeline.connect(),
            namespace=namespace,
            name=name,
            dimensions=dimensions,
            stat=stat,
            period_seconds=int(seconds),
            window=window,
        )
    finally:
        pipeline.close()
    if output == "json":
        print_json([p.as_dict() for p in points])
        return
    if not points:
        stdout.print(f"no datapoints of {namespace} {name} in the window", markup=False)
        return
    rows = [
        (p.time.strftime("%Y-%m-%d %H:%M:%S"), p.dimensions, f"{p.value:g}", p.samples)
        for p in points
    ]
    stdout.print(
        table(f"{namespace} {name} ({stat})", ["time", "dimensions", stat, "samples"], rows)
    )
