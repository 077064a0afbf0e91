"""`ecsguard logs` and `ecsguard ingest`: put logs into the store, and ask questions of it."""

from __future__ import annotations

import sys

import click
import duckdb

from ecsguard.cli.common import print_json, stdout, table
from ecsguard.core.config import data_dir as resolve_data_dir
from ecsguard.core.errors import UserError

FORMATS = ["table", "json", "csv"]


@click.group()
def logs() -> None:
    """Search the log store: container logs, CloudTrail, ECS events, metrics.

    The store is compressed, Athena-compatible Parquet under DATA_DIR/store plus a write-ahead
    log of what has not been flushed yet; queries see both. Put data in with `ecsguard ingest`.

    \b
    Examples:
      ecsguard logs query --sql "SELECT service, count(*) FROM logs GROUP BY 1"
      ecsguard logs query --sql "SELECT event_name, identity_arn FROM cloudtrail LIMIT 20"
    """


@logs.command("query")
@click.option(
    "--sql", required=True, help="DuckDB SQL over the views logs, cloudtrail, events, metrics."
)
@click.option("--output", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option(
    "--data-dir", envvar="ECSGUARD_DATA", help="Data directory (default ./ecsguard-data)."
)
def query_command(sql: str, output: str, data_dir: str | None) -> None:
    """Run a DuckDB SQL query over the store (records not yet flushed included).

    Views: logs (time, cluster, service, task, container, level, message, fields JSON, ...),
    cloudtrail (time, event_source, event_name, identity_arn, source_ip, ...), events
    (time, source, detail_type, detail JSON, ...), metrics. Times are UTC.
    """
    from ecsguard.logs.pipeline import Pipeline

    pipeline = Pipeline(resolve_data_dir(data_dir))
    try:
        con = pipeline.connect()
        try:
            result = con.execute(sql)
        except duckdb.Error as err:
            first = str(err).splitlines()[0]
            raise UserError(
                f"query failed: {first}",
                "check the SQL; the views are logs, cloudtrail, events, metrics",
            ) from None
        columns = [d[0] for d in result.description or []]
        rows = result.fetchall()
    finally:
        pipeline.close()
    if output == "json":
        print_json([dict(zip(columns, row, strict=True)) for row in rows])
    elif output == "csv":
        import csv as csvlib

        writer = csvlib.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
    else:
        stdout.print(table(None, columns, rows))
        stdout.print(f"{len(rows)} rows", markup=False, highlight=False)


@click.command()
@click.argument("source", type=click.Path(allow_dash=True))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["lines", "firelens", "cloudwatch", "cloudtrail", "ecs-events"]),
    default="lines",
    show_default=True,
    help="What SOURCE holds: NDJSON or text lines, Fluent Bit http bodies (FireLens), "
    "CloudWatch Logs subscription payloads, CloudTrail log files, ECS events.",
)
@click.option(
    "--source-name",
    "source_name",
    default="ingest",
    show_default=True,
    help="The `source` column for plain lines.",
)
@click.option("--cluster", help="Cluster of plain lines.")
@click.option("--service", help="Service of plain lines.")
@click.option("--container", help="Container of plain lines.")
@click.option(
    "--data-dir", envvar="ECSGUARD_DATA", help="Data directory (default ./ecsguard-data)."
)
def ingest(
    source: str,
    fmt: str,
    source_name: str,
    cluster: str | None,
    service: str | None,
    container: str | None,
    data_dir: str | None,
) -> None:
    """Store the records of SOURCE (a file, a directory of CloudTrail files, or - for stdin).

    Records are appended to the write-ahead log (fsynced: nothing acknowledged is lost), then
    flushed to Parquet. A malformed JSON line is kept as a text record flagged unparsed and
    counted, never dropped.
    """
    from ecsguard.logs.ingest import ingest_source

    summary = ingest_source(
        source,
        fmt,
        resolve_data_dir(data_dir),
        meta={
            "source": source_name,
            "cluster": cluster,
            "service": service,
            "container": container,
        },
    )
    for problem in summary.problems[:20]:
        stdout.print(f"warning: {problem}", style="yellow", markup=False, highlight=False)
    stdout.print(
        f"stored {summary.records} records in {summary.table} from {source}"
        + (f" ({len(summary.problems)} problems)" if summary.problems else ""),
        markup=False,
        highlight=False,
    )


@logs.command("tail")
@click.option("--filter", "pattern", help="CloudWatch Logs filter pattern, e.g. 'ERROR -health'.")
@click.option("--cluster", help="Only records of this cluster.")
@click.option("--service", help="Only records of this service.")
@click.option(
    "--server",
    envvar="ECSGUARD_SERVER",
    default="http://127.0.0.1:8080",
    show_default=True,
    help="The `ecsguard serve` to follow (also $ECSGUARD_SERVER).",
)
@click.option("--token", envvar="ECSGUARD_TOKEN", help="The server's token ($ECSGUARD_TOKEN).")
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def tail_command(
    pattern: str | None,
    cluster: str | None,
    service: str | None,
    server: str,
    token: str | None,
    output: str,
) -> None:
    """Follow new log records as `ecsguard serve` receives them (Ctrl-C stops).

    Text output is `time service level message`; --output json prints one JSON object per
    record. A dropped connection is resumed where it stopped: no gap, no repeat.

    \b
    Examples:
      ecsguard logs tail --service api --filter ERROR
      ecsguard logs tail --filter '{ $.status >= 500 }' --output json | jq .message
    """
    import orjson

    from ecsguard.cli.common import stderr
    from ecsguard.logs.tail import follow, render_line

    wanted = {"filter": pattern, "cluster": cluster, "service": service}
    params = {name: value for name, value in wanted.items() if value}
    quiet_reconnect = False
    try:
        for event in follow(server, params=params, token=token):
            if event.kind == "message":
                quiet_reconnect = False
                if output == "json":
                    sys.stdout.write(orjson.dumps(event.data).decode() + "\n")
                    sys.stdout.flush()
                else:
                    stdout.print(render_line(event.data))
            elif event.kind == "missed":
                missed = event.data.get("missed")
                count = f"{missed} records" if missed else "records"
                stderr.print(f"warning: {count} missed: {event.data.get('reason')}", markup=False)
            elif event.kind == "reconnecting" and not quiet_reconnect:
                quiet_reconnect = True
                stderr.print(f"{event.data.get('reason')}; reconnecting to {server}", markup=False)
    except KeyboardInterrupt:
        return
