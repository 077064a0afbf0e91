"""`ecsguard logs` and `ecsguard ingest`: put logs into the store, and ask questions of it."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

import click
import duckdb

from ecsguard.cli.common import (
    data_dir_option,
    make_store_location,
    print_json,
    server_options,
    stdout,
    store_options,
    table,
    time_window_options,
)
from ecsguard.core.config import data_dir as resolve_data_dir
from ecsguard.core.errors import UserError

if TYPE_CHECKING:
    from ecsguard.logs.store import StoreLocation

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
@click.argument("query", required=False)
@click.option("--sql", help="DuckDB SQL over the views logs, cloudtrail, events, metrics.")
@time_window_options
@click.option("--show-sql", is_flag=True, help="Print the SQL an Insights query compiles to.")
@click.option("--output", type=click.Choice(FORMATS), default="table", show_default=True)
@data_dir_option
@store_options
@click.option(
    "--engine",
    type=click.Choice(["duckdb", "athena"]),
    default="duckdb",
    show_default=True,
    help="Where the query runs: DuckDB here (store and WAL), or Athena over the S3 store "
    "(flushed records only; tables from `ecsguard athena ddl`).",
)
@click.option("--athena-workgroup", help="Athena workgroup (default: the account's primary).")
@click.option(
    "--athena-output", help="s3://bucket/prefix/ for Athena's results (if the workgroup has none)."
)
@click.option(
    "--athena-database",
    default="ecsguard",
    show_default=True,
    help="Glue database of the tables.",
)
def query_command(
    query: str | None,
    sql: str | None,
    since: str | None,
    start: str | None,
    end: str | None,
    show_sql: bool,
    output: str,
    data_dir: str | None,
    store: str | None,
    profile: str | None,
    region: str | None,
    endpoint_url: str | None,
    engine: str,
    athena_workgroup: str | None,
    athena_output: str | None,
    athena_database: str,
) -> None:
    """Ask the store a CloudWatch Logs Insights QUERY, or DuckDB SQL with --sql.

    QUERY is the Insights language over container logs: fields, filter, stats (count, sum,
    avg, min, max, pct, stddev, count_distinct, earliest, latest) by fields and bin(),
    sort, limit, parse, display, dedup; @timestamp, @message, @logStream, @log, the ECS
    columns (cluster, service, task, container, level, source) and any key of a JSON log
    line. Records not yet flushed are included. Times are UTC.

    \b
    Examples:
      ecsguard logs query 'filter level = "ERROR" | stats count(*) by service, bin(5m)' --since 3h
      ecsguard logs query 'fields @timestamp, @message | filter @message like /req-42/'
      ecsguard logs query 'filter status >= 500 | stats pct(latency_ms, 95) by path' \\
          --start 2026-11-28T09:00Z --end 2026-11-28T10:00Z --output json
      ecsguard logs query --sql "SELECT event_name, count(*) FROM cloudtrail GROUP BY 1"

    \b
    Views for --sql: logs (time, cluster, service, task, container, level, message,
    fields JSON, ...), cloudtrail (time, event_source, event_name, identity_arn, source_ip,
    ...), events (time, source, detail_type, detail JSON, ...), metrics.
    """
    from ecsguard.cli.common import stderr
    from ecsguard.logs.query.insights import compile_query
    from ecsguard.logs.query.timerange import resolve

    if (query is None) == (sql is None):
        raise UserError(
            "give an Insights QUERY or --sql SQL" + (", not both" if query else ""),
            "e.g. ecsguard logs query 'stats count(*) by service' --since 1h",
        )
    if sql is not None:
        if since or start or end:
            raise UserError(
                "--since, --start and --end apply to Insights queries, not to --sql",
                "put the window in the SQL: WHERE time >= now() - INTERVAL 1 HOUR",
            )
    else:
        assert query is not None
        sql = compile_query(query, resolve(since, start, end)).sql
    if engine == "athena":
        columns, rows = _athena_query(
            sql,
            show_sql,
            database=athena_database,
            workgroup=athena_workgroup,
            output=athena_output,
            profile=profile,
            region=region,
            endpoint_url=endpoint_url,
        )
        _print_rows(columns, rows, output)
        return
    if show_sql:
        stderr.print(sql, markup=False, highlight=False)
    from ecsguard.logs.pipeline import Pipeline

    location = make_store_location(store, endpoint_url, profile, region)
    pipeline = Pipeline(resolve_data_dir(data_dir), store=location)
    try:
        con = pipeline.connect()
        try:
            result = con.execute(sql)
        except duckdb.Error as err:
            first = str(err).splitlines()[0]
            raise UserError(
                f"query failed: {first}",
                "check the SQL; the views are logs, cloudtrail, events, metrics"
                if query is None
                else "check the query's regular expressions (RE2 syntax) and values",
            ) from None
        columns = [d[0] for d in result.description or []]
        rows = result.fetchall()
    finally:
        pipeline.close()
    _print_rows(columns, rows, output)


def _athena_query(
    sql: str,
    show_sql: bool,
    *,
    database: str,
    workgroup: str | None,
    output: str | None,
    profile: str | None,
    region: str | None,
    endpoint_url: str | None,
) -> tuple[list[str], list[tuple[object, ...]]]:
    """Run DuckDB `sql` through Athena, translated to its dialect."""
    from ecsguard.aws.athena import run_query
    from ecsguard.aws.session import AwsOptions, AwsSession
    from ecsguard.cli.common import stderr
    from ecsguard.logs.athena_ddl import check_database
    from ecsguard.logs.query.trino import to_athena

    if output and not output.startswith("s3://"):
        raise UserError(f"--athena-output {output} is not an S3 URL", "write s3://bucket/prefix/")
    translated = to_athena(sql)
    if show_sql:
        stderr.print(translated, markup=False, highlight=False)
    session = AwsSession(
        AwsOptions(profile=profile, regions=(region,) if region else (), endpoint_url=endpoint_url)
    )
    result = run_query(
        session,
        translated,
        database=check_database(database),
        workgroup=workgroup,
        output=output,
    )
    stderr.print(
        f"athena: query {result.query_id}, {result.scanned_bytes:,} bytes scanned",
        markup=False,
        highlight=False,
    )
    return result.columns, result.rows


def _print_rows(columns: list[str], rows: list[tuple[object, ...]], output: str) -> None:
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


@logs.command("filter")
@click.argument("pattern")
@time_window_options
@click.option("--cluster", help="Only records of this cluster.")
@click.option("--service", help="Only records of this service.")
@click.option(
    "--limit",
    type=click.IntRange(0),
    default=100,
    show_default=True,
    help="At most this many records, oldest first (0: no limit).",
)
@click.option("--output", type=click.Choice(FORMATS), default="table", show_default=True)
@data_dir_option
@store_options
def filter_command(
    pattern: str,
    since: str | None,
    start: str | None,
    end: str | None,
    cluster: str | None,
    service: str | None,
    limit: int,
    output: str,
    data_dir: str | None,
    store: str | None,
    profile: str | None,
    region: str | None,
    endpoint_url: str | None,
) -> None:
    """Search the logs with a CloudWatch Logs filter pattern (unflushed records included).

    PATTERN is CloudWatch's syntax: terms (all must occur, case-sensitive), "exact phrase",
    -excluded, ?either ?or, %regex%, JSON patterns { $.status >= 500 && $.path = "/api*" }
    (matched against a JSON line's fields) and space-delimited [ip, user, ..., status = 5*, bytes].

    \b
    Examples:
      ecsguard logs filter 'ERROR -healthcheck' --since 3h --service api
      ecsguard logs filter '"request-id 7f3a"' --start 2026-11-28T09:00Z --end 2026-11-28T10:00Z
      ecsguard logs filter '{ $.level = "error" || $.latency_ms > 2000 }' --output json
      ecsguard logs filter '[ip, id, user, time, request, status = 5*, bytes]' --limit 0
    """
    from ecsguard.logs.pipeline import Pipeline
    from ecsguard.logs.query.filter_pattern import compile_pattern
    from ecsguard.logs.query.filter_pattern.search import search_logs
    from ecsguard.logs.query.timerange import resolve

    compiled = compile_pattern(pattern)
    window = resolve(since, start, end)
    location = make_store_location(store, endpoint_url, profile, region)
    pipeline = Pipeline(resolve_data_dir(data_dir), store=location)
    try:
        try:
            con = pipeline.connect()
        except duckdb.Error as err:  # e.g. a damaged Parquet file in the store
            first = str(err).splitlines()[0]
            raise UserError(f"cannot open the store: {first}", "check the data directory") from None
        columns, rows = search_logs(
            con, compiled, window, cluster=cluster, service=service, limit=limit
        )
    finally:
        pipeline.close()
    _print_rows(columns, rows, output)


@logs.command("patterns")
@time_window_options
@click.option("--cluster", help="Only records of this cluster.")
@click.option("--service", help="Only records of this service.")
@click.option(
    "--limit",
    type=click.IntRange(0),
    default=50,
    show_default=True,
    help="At most this many patterns, the most frequent first (0: all).",
)
@click.option("--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@data_dir_option
@store_options
def patterns_command(
    since: str | None,
    start: str | None,
    end: str | None,
    cluster: str | None,
    service: str | None,
    limit: int,
    output: str,
    data_dir: str | None,
    store: str | None,
    profile: str | None,
    region: str | None,
    endpoint_url: str | None,
) -> None:
    """List the kinds of log lines in a window, with counts (like Insights' `pattern`).

    Lines of each service are grouped into templates (drain3's Drain, after masking ids,
    numbers, IPs, hex, times and ARNs as <NAME>; <*> marks other words that vary), the most
    frequent first, with each template's share of its service's lines and a sample line.
    Records not yet flushed are included; the lines stream through, so a long window needs
    no more memory than a short one.

    \b
    Examples:
      ecsguard logs patterns --since 1h
      ecsguard logs patterns --service api --since 1d --limit 20
      ecsguard logs patterns --start 2026-11-28T09:00Z --end 2026-11-28T10:00Z --output json
    """
    from ecsguard.detect.templates import store_patterns
    from ecsguard.logs.pipeline import Pipeline
    from ecsguard.logs.query.timerange import resolve

    window = resolve(since, start, end)
    location = make_store_location(store, endpoint_url, profile, region)
    pipeline = Pipeline(resolve_data_dir(data_dir), store=location)
    try:
        try:
            con = pipeline.connect()
            found = store_patterns(con, window, cluster=cluster, service=service)
        except duckdb.Error as err:  # e.g. a damaged Parquet file in the store
            first = str(err).splitlines()[0]
            raise UserError(f"cannot read the store: {first}", "check the data directory") from None
    finally:
        pipeline.close()
    shown = found[:limit] if limit else found
    if output == "json":
        print_json(
            [
                {
                    "cluster": p.cluster,
                    "service": p.service,
                    "pattern": p.pattern,
                    "count": p.count,
                    "ratio": round(p.ratio, 6),
                    "sample": p.sample,
                    "first_seen": p.first_seen.isoformat(),
                    "last_seen": p.last_seen.isoformat(),
                }
                for p in shown
            ]
        )
        return
    rows = [(p.service, p.count, f"{p.ratio:.1%}", p.pattern) for p in shown]
    stdout.print(table(None, ["service", "count", "ratio", "pattern"], rows))
    more = f" (of {len(found)})" if len(shown) < len(found) else ""
    lines = sum(p.count for p in found)
    stdout.print(f"{len(shown)} patterns{more} in {lines} lines", markup=False, highlight=False)


@logs.command("test-metric-filter")
@click.option("--filter-pattern", required=True, help="The CloudWatch Logs filter pattern.")
@click.option(
    "--log-event-messages",
    "messages_follow",
    is_flag=True,
    help="The messages follow (as in the AWS CLI): each argument is one message, or "
    "file://PATH for one message per line. Put -- before a message that starts with -.",
)
@click.argument("messages", nargs=-1)
def test_metric_filter_command(
    filter_pattern: str, messages_follow: bool, messages: tuple[str, ...]
) -> None:
    """Test a filter pattern on sample messages, like the AWS TestMetricFilter API.

    Prints the API's JSON: {"matches": [{"eventNumber", "eventMessage", "extractedValues"}]},
    eventNumber counting the messages from 1; extractedValues holds the fields of a
    space-delimited pattern ($name, or $N by position). A bad pattern is an error (exit 2).

    \b
    Examples:
      ecsguard logs test-metric-filter --filter-pattern '[ip, user, ..., status = 4*, bytes]' \\
          --log-event-messages '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /" 404 12'
      ecsguard logs test-metric-filter --filter-pattern '{ $.latency > 500 }' \\
          --log-event-messages file://samples.ndjson
    """
    from pathlib import Path

    from ecsguard.logs.query.filter_pattern import compile_pattern

    compiled = compile_pattern(filter_pattern)
    events: list[str] = []
    for message in messages:
        if not message.startswith("file://"):
            events.append(message)
            continue
        path = Path(message.removeprefix("file://"))
        try:
            events.extend(path.read_text(encoding="utf-8").splitlines())
        except (OSError, UnicodeDecodeError) as err:
            reason = err.strerror if isinstance(err, OSError) else "not UTF-8 text"
            raise UserError(
                f"cannot read {path}: {reason}", "give file://PATH of a text file"
            ) from None
    if not events:
        raise UserError(
            "no log event messages to test",
            "add --log-event-messages 'a message' ... or file://PATH",
        )
    matches = []
    for number, event in enumerate(events, start=1):
        found = compiled.match(event)
        if found is not None:
            matches.append(
                {
                    "eventNumber": number,
                    "eventMessage": event,
                    "extractedValues": found.extracted_values,
                }
            )
    print_json({"matches": matches})


@click.command()
@click.argument("source", type=click.Path(allow_dash=True), required=False)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["lines", "firelens", "cloudwatch", "cloudtrail", "ecs-events", "emf"]),
    default="lines",
    show_default=True,
    help="What SOURCE holds: NDJSON or text lines, Fluent Bit http bodies (FireLens), "
    "CloudWatch Logs subscription payloads, CloudTrail log files, ECS events, CloudWatch "
    "embedded metric format documents (into the metrics table).",
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
    "--multiline",
    is_flag=True,
    help="--format lines: join stack traces (Java and Python) into one record each.",
)
@click.option(
    "--multiline-start",
    "multiline_start",
    metavar="REGEX",
    help="--format lines: a line matching this (RE2, from its start) begins a record; the "
    "other lines continue it. Implies --multiline.",
)
@click.option(
    "--from-s3",
    "from_s3",
    metavar="s3://BUCKET/PREFIX",
    help="Instead of SOURCE, every object under this prefix (Firehose deliveries), each once: "
    "done keys are kept in DATA_DIR/s3-pickup.db; gzip is undone.",
)
@click.option(
    "--from-start",
    "from_start",
    is_flag=True,
    help="Read every file whole, even one this data directory has stored before unchanged "
    "(records with ids still remembered are skipped even so).",
)
@click.option("--follow", is_flag=True, help="With --from-s3: keep listing for new objects.")
@click.option(
    "--interval",
    type=click.FloatRange(1, 3600),
    default=60.0,
    show_default=True,
    help="With --follow: seconds between listings.",
)
@data_dir_option
@store_options
def ingest(
    source: str | None,
    fmt: str,
    source_name: str,
    cluster: str | None,
    service: str | None,
    container: str | None,
    multiline: bool,
    multiline_start: str | None,
    from_s3: str | None,
    from_start: bool,
    follow: bool,
    interval: float,
    data_dir: str | None,
    store: str | None,
    profile: str | None,
    region: str | None,
    endpoint_url: str | None,
) -> None:
    """Store the records of SOURCE (a file, a directory of files, or - for stdin), or of the
    S3 objects under --from-s3. Gzip files are read through their compression. Lines and
    FireLens bodies are read 16 MiB at a time, so an input of any size takes bounded memory; a
    damaged gzip file stores nothing of itself.

    Records are appended to the write-ahead log (fsynced: nothing acknowledged is lost), then
    flushed to Parquet. A malformed JSON line is kept as a text record flagged unparsed and
    counted, never dropped.

    Running the command again stores each record once: the files stored are remembered in
    DATA_DIR/ingested-files.db (per format and options), so a file not changed since is skipped
    and a --format lines file that grew is read from its first new line; a rotated file (app.log.1,
    gzipped or not) is known by its first line. A file changed in the part read before is read
    whole. Records with the same ids as recent ones (still in the WAL,
    or in the last 15 minutes of files) are skipped as well.
    """
    from ecsguard.logs.ingest import ingest_source

    meta: dict[str, Any] = {
        "source": source_name,
        "cluster": cluster,
        "service": service,
        "container": container,
        "multiline": multiline,
        "multiline_start": multiline_start,
    }
    if (multiline or multiline_start) and fmt != "lines":
        raise UserError(
            "--multiline joins the lines of --format lines",
            "FireLens records: join them in Fluent Bit (multiline.parser java,python) or send "
            "them over `forward` to `ecsguard serve --multiline`",
        )
    location = make_store_location(store, endpoint_url, profile, region)
    if from_s3:
        if source:
            raise UserError("give SOURCE or --from-s3, not both", "drop one of them")
        if from_start:
            raise UserError(
                "--from-start is for SOURCE files", "--from-s3 reads each object once by its key"
            )
        _ingest_s3(
            from_s3, fmt, follow, interval, data_dir, meta, location, profile, region, endpoint_url
        )
        return
    if follow:
        raise UserError("--follow needs --from-s3", "e.g. --from-s3 s3://bucket/firehose/ --follow")
    if not source:
        raise UserError("nothing to ingest", "give a file, a directory, - for stdin, or --from-s3")
    summary = ingest_source(
        source, fmt, resolve_data_dir(data_dir), meta, store=location, from_start=from_start
    )
    for problem in summary.problems[:20]:
        stdout.print(f"warning: {problem}", style="yellow", markup=False, highlight=False)
    stdout.print(
        f"stored {summary.records} records"
        + (f" in {summary.table}" if summary.table else "")
        + f" from {source}"
        + (f" ({len(summary.problems)} problems)" if summary.problems else "")
        + (
            f"; {summary.duplicates} already stored (same ids), skipped"
            if summary.duplicates
            else ""
        )
        + (f"; {_files(summary.resumed)} read from the first new line" if summary.resumed else "")
        + (
            f"; {_files(summary.unchanged)} unchanged since stored, skipped (--from-start reads"
            f" {'it' if summary.unchanged == 1 else 'them'} again)"
            if summary.unchanged
            else ""
        ),
        markup=False,
        highlight=False,
    )


def _files(count: int) -> str:
    return f"{count} file" if count == 1 else f"{count} files"


def _ingest_s3(
    uri: str,
    fmt: str,
    follow: bool,
    interval: float,
    data_dir: str | None,
    meta: dict[str, Any],
    location: StoreLocation | None,
    profile: str | None,
    region: str | None,
    endpoint_url: str | None,
) -> None:
    """The objects under `uri` through a LogService (its id de-duplication covers an object
    read again after a crash); with `follow`, until SIGTERM or Ctrl-C."""
    import threading

    from ecsguard.aws.session import AwsOptions, AwsSession
    from ecsguard.logs.s3pickup import PickupSummary, S3Pickup
    from ecsguard.logs.service import LogService

    session = AwsSession(
        AwsOptions(profile=profile, regions=(region,) if region else (), endpoint_url=endpoint_url)
    )
    service = LogService(resolve_data_dir(data_dir), store=location)
    service.start()
    pickup = S3Pickup(session, uri, fmt, service, meta)
    shown = 0

    def report(summary: PickupSummary) -> None:
        nonlocal shown
        for problem in summary.problems[shown : shown + 20]:
            stdout.print(f"warning: {problem}", style="yellow", markup=False, highlight=False)
        shown = len(summary.problems)
        stdout.print(
            f"stored {summary.records} records in {summary.table} from {summary.objects} "
            f"objects under {uri} ({summary.skipped} done before"
            + (f", {len(summary.problems)} problems)" if summary.problems else ")"),
            markup=False,
            highlight=False,
        )

    try:
        if follow:
            stop = threading.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: stop.set())
            pickup.follow(interval, stop, report)
        else:
            report(pickup.run_once())
    finally:
        pickup.close()
        service.stop()


def _leave_at_once(*_: object) -> None:
    """Ctrl-C in `logs tail`: exit 0 now, with what was printed flushed. Raised as a
    KeyboardInterrupt, it could land inside the HTTP client while it held a lock of its
    connection pool; closing the stream then waited for that lock for ever (a tail that never
    ended, now and then, on a loaded machine). Nothing else is left to do: the server sees the
    connection close."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a flush already under way: what it had is out
            stream.flush()
    os._exit(0)


@logs.command("tail")
@click.option("--filter", "pattern", help="CloudWatch Logs filter pattern, e.g. 'ERROR -health'.")
@click.option("--cluster", help="Only records of this cluster.")
@click.option("--service", help="Only records of this service.")
@click.option(
    "--since",
    metavar="DURATION",
    help="First show the stored records of this last stretch (10m, 2h), then follow.",
)
@click.option(
    "--limit",
    type=click.IntRange(1, 100_000),
    default=1_000,
    show_default=True,
    help="With --since, at most this many stored records (the newest).",
)
@server_options
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def tail_command(
    pattern: str | None,
    cluster: str | None,
    service: str | None,
    since: str | None,
    limit: int,
    server: str,
    token: str | None,
    output: str,
) -> None:
    """Follow new log records as `ecsguard serve` receives them (Ctrl-C stops).

    Text output is `time service level message`; --output json prints one JSON object per
    record. With --since, the newest stored records of that stretch come first (oldest first),
    then the live ones, none twice. A dropped connection is resumed where it stopped: no gap,
    no repeat.

    \b
    Examples:
      ecsguard logs tail --service api --filter ERROR
      ecsguard logs tail --since 15m --service api --filter ERROR
      ecsguard logs tail --filter '{ $.status >= 500 }' --output json | jq .message
    """
    import orjson

    from ecsguard.cli.common import stderr
    from ecsguard.logs.query.timerange import parse_duration
    from ecsguard.logs.tail import follow, render_line

    if since:
        parse_duration(since)  # a bad duration is named here, before any connection
    wanted = {"filter": pattern, "cluster": cluster, "service": service, "since": since}
    params = {name: value for name, value in wanted.items() if value}
    if since:
        params["limit"] = str(limit)
    signal.signal(signal.SIGINT, _leave_at_once)
    quiet_reconnect = False
    for event in follow(server, params=params, token=token):
        if event.kind == "message":
            quiet_reconnect = False
            if output == "json":
                sys.stdout.write(orjson.dumps(event.data).decode() + "\n")
                sys.stdout.flush()
            else:
                stdout.print(render_line(event.data))
        elif event.kind == "history" and event.data.get("limited"):
            stderr.print(
                f"the newest {event.data.get('records')} stored records since {since} are "
                "above (--limit); `ecsguard logs filter` shows them all",
                markup=False,
            )
        elif event.kind == "missed":
            missed = event.data.get("missed")
            count = f"{missed} records" if missed else "records"
            stderr.print(f"warning: {count} missed: {event.data.get('reason')}", markup=False)
        elif event.kind == "reconnecting" and not quiet_reconnect:
            quiet_reconnect = True
            stderr.print(f"{event.data.get('reason')}; reconnecting to {server}", markup=False)
