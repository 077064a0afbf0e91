"""`ecsguard athena`: query the S3 store with Amazon Athena."""

from __future__ import annotations

import click

from ecsguard.cli.common import stdout, store_option
from ecsguard.core.errors import UserError


@click.group()
def athena() -> None:
    """Query the S3 store (`--store s3://...`) with Amazon Athena.

    `ddl` prints the tables' CREATE statements; run them once in Athena, then
    `ecsguard logs query --engine athena` runs Insights or SQL queries there.
    """


@athena.command("ddl")
@store_option
@click.option(
    "--database", default="ecsguard", show_default=True, help="Glue database of the tables."
)
@click.option(
    "--first-day",
    default="2020-01-01",
    show_default=True,
    help="First day of the partition projection (YYYY-MM-DD); older data is not seen.",
)
def ddl_command(store: str | None, database: str, first_day: str) -> None:
    """Print the Glue / Athena DDL of every table of the store, with partition projection.

    One CREATE DATABASE and one CREATE EXTERNAL TABLE per table (logs, cloudtrail, events,
    metrics), each ending with `;`: Athena runs one statement at a time. Partitions are
    projected from their names (dt=YYYY-MM-DD, and hour=HH for logs), so new hours are visible
    at once, without a crawler or MSCK REPAIR TABLE.

    \b
    Examples:
      ecsguard athena ddl --store s3://my-logs/ecsguard
      ecsguard athena ddl --store s3://my-logs/ecsguard --database ecs_logs > tables.sql
    """
    from ecsguard.logs.athena_ddl import statements

    if not store:
        raise UserError(
            "Athena needs the store on S3", "pass --store s3://bucket/prefix or set ECSGUARD_STORE"
        )
    for statement in statements(store, database, first_day):
        stdout.print(statement + ";\n", markup=False, highlight=False, soft_wrap=True)
