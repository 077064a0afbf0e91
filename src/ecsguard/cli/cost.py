"""`ecsguard cost`: a month of CloudWatch Logs beside a month of this pipeline on S3."""

from __future__ import annotations

import click

from ecsguard.cli.common import output_option, print_json, stdout, table


@click.command()
@click.option("--gb-per-day", type=float, required=True, help="Raw log volume per day, in GB.")
@click.option(
    "--retention-days", type=int, default=30, show_default=True, help="Days logs are kept."
)
@click.option(
    "--region",
    type=click.Choice(["us-east-1", "ap-northeast-1"]),
    default="ap-northeast-1",
    show_default=True,
    help="Region whose prices apply.",
)
@click.option(
    "--scanned-gb-per-day",
    type=float,
    help="Raw GB your queries scan per day (default: each day's logs scanned once).",
)
@output_option
def cost(
    gb_per_day: float,
    retention_days: int,
    region: str,
    scanned_gb_per_day: float | None,
    output: str,
) -> None:
    """Compare a month of CloudWatch Logs (ingestion, storage, Insights scans) with this
    pipeline storing compressed Parquet on S3 (storage, requests, Athena scans, compute).

    Prices come from a data file with their sources and the date they were checked; the
    compression ratio and per-core throughput are the ones bench/logs.py measured.

    \b
    Examples:
      ecsguard cost --gb-per-day 50 --retention-days 30 --region ap-northeast-1
      ecsguard cost --gb-per-day 1000 --retention-days 90 --region us-east-1 --output json
    """
    from ecsguard.logs.cost import estimate

    result = estimate(gb_per_day, retention_days, region, scanned_gb_per_day)
    if output == "json":
        print_json(result.as_dict())
        return
    rows = [
        (line.item, f"${line.cloudwatch:,.2f}", f"${line.ecsguard:,.2f}", line.basis)
        for line in result.lines
    ]
    rows.append(("total", f"${result.cloudwatch_total:,.2f}", f"${result.ecsguard_total:,.2f}", ""))
    title = f"A month at {gb_per_day:g} GB/day, {retention_days} days kept, {region} (USD)"
    stdout.print(table(title, ["", "CloudWatch Logs", "ecsguard on S3", "basis"], rows))
    if result.cloudwatch_total:
        share = result.ecsguard_total / result.cloudwatch_total
        stdout.print(
            f"ecsguard costs {share:.1%} of CloudWatch Logs for this volume "
            f"(prices checked {result.checked}).",
            markup=False,
            highlight=False,
        )
