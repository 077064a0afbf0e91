"""Query, live tail and stats: `/api/query`, `/api/tail` (server-sent events), `/api/stats`;
`POST /api/rules/reload` reads detection's rule files again (token, or a console admin).

Queries run in the threadpool on a fresh DuckDB connection over Parquet and the WAL, sandboxed:
one read statement (SELECT / EXPLAIN), no file access outside the data directory, settings
locked. The tail is an SSE stream whose `id:` is the TailHub cursor, so a client reconnecting
with `Last-Event-ID` continues with no gap and no repeat; with `since` it first sends the stored
records of that stretch (`stored_history`), none of them again among the live ones.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import duckdb
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from ecsguard.core.errors import UserError
from ecsguard.logs.query.timerange import resolve
from ecsguard.logs.service import LogService
from ecsguard.logs.tail import RECORD_COLUMNS, Cursor, TailFilter, TailHub
from ecsguard.web.auth import ApiError, check_admin, check_token

if TYPE_CHECKING:
    from ecsguard.detect.reloader import RuleReloader  # loads every rule type

router = APIRouter()

DEFAULT_ROWS = 10_000
MAX_ROWS = 1_000_000
#: stored records a tail started with `since` shows first, by default and at most
DEFAULT_HISTORY = 1_000
MAX_HISTORY = 100_000
#: seconds between keepalive events on an idle tail (proxies cut silent connections)
KEEPALIVE_SECONDS = 15.0
_READ_STATEMENTS = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


def json_response(body: Any, status: int = 200) -> Response:
    # orjson renders datetimes; str() covers Decimal, UUID, bytes and the like from DuckDB
    return Response(
        orjson.dumps(body, default=str, option=orjson.OPT_NON_STR_KEYS),
        status_code=status,
        media_type="application/json",
    )


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/api/stats")
async def stats(request: Request) -> Response:
    check_token(request, request.app.state.settings.token)
    service: LogService = request.app.state.service
    hub: TailHub = request.app.state.hub
    wal = service.pipeline.wal
    body = dataclasses.asdict(service.stats)
    body["wal"] = {"appends": wal.appends, "fsyncs": wal.fsyncs, "torn": wal.torn}
    body["tail"] = {
        "subscribers": hub.subscribers,
        "first_seq": hub.first_seq,
        "last_seq": hub.last_seq,
    }
    detection = request.app.state.detection
    if detection is not None:
        body["detection"] = {
            "rules": len(detection.rules),
            "batches": detection.processed,
            "queued": detection.queued,
            "restarts": detection.restarts,
            "last_batch_seconds": detection.lag_seconds,
            "rule_errors": detection.errors,
        }
    return json_response(body)


@router.post("/api/rules/reload")
async def reload_rules(request: Request) -> Response:
    """Read detection's rule files again (as SIGHUP does): 200 with the rules now enabled; 422
    with every problem (file:line) when a file is invalid, and the running rules stay."""
    check_admin(request, request.app.state.settings.token)
    reloader: RuleReloader | None = request.app.state.reloader
    if reloader is None:
        raise ApiError(409, "this server runs no detection: start it with `serve --rules PATH`")
    done = await run_in_threadpool(reloader.reload)
    if not done.ok:
        return json_response(
            {
                "error": f"{len(done.problems)} problem(s) in the rules; the running rules stay",
                "problems": done.problems,
                "enabled": done.enabled,
            },
            status=422,
        )
    return json_response({"reloaded": True, "enabled": done.enabled})


@router.get("/api/alerts")
async def alerts(
    request: Request, since: str = "1d", rule: str | None = None, limit: int = 200
) -> Response:
    """Stored alerts, newest first (JSON twin of the console's alert list)."""
    check_token(request, request.app.state.settings.token)
    from datetime import UTC, datetime

    from ecsguard.detect.engine import stored_alerts
    from ecsguard.logs.query.timerange import parse_duration

    try:
        start = datetime.now(UTC) - parse_duration(since)
    except UserError as err:
        raise ApiError(400, str(err)) from None
    detection = request.app.state.detection
    service: LogService = request.app.state.service

    def read() -> list[Any]:
        running = detection.store if detection is not None else None
        found = stored_alerts(service.data_dir, running, since=start, rule=rule, limit=limit)
        return [a.model_dump(mode="json") for a in found]

    return json_response({"alerts": await run_in_threadpool(read)})


# -- query ---------------------------------------------------------------------------------------


async def _query_params(request: Request) -> dict[str, str]:
    params = {k: v for k, v in request.query_params.items() if v != ""}
    if request.method == "POST":
        try:
            body = orjson.loads(await request.body() or b"{}")
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, f"the request body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ApiError(400, 'the request body must be a JSON object such as {"sql": "..."}')
        params.update({k: str(v) for k, v in body.items() if v is not None and v != ""})
    return params


def check_read_only(sql: str) -> None:
    """One SELECT or EXPLAIN statement: the query API never writes."""
    statements = duckdb.extract_statements(sql)
    if len(statements) != 1:
        raise ApiError(400, f"send exactly one statement (got {len(statements)})")
    if statements[0].type not in _READ_STATEMENTS:
        raise ApiError(400, f"only SELECT queries are allowed, not {statements[0].type.name}")


def sandbox(con: duckdb.DuckDBPyConnection, service: LogService) -> None:
    """No file access outside the data directory, no extensions, settings locked."""
    root = str(service.data_dir.resolve()).replace("'", "''")
    con.execute(f"SET allowed_directories = ['{root}/']")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def run_query(service: LogService, sql: str, limit: int) -> dict[str, Any]:
    """Execute (blocking): {columns, rows, truncated}."""
    con = service.connect()
    try:
        sandbox(con, service)
        check_read_only(sql)
        result = con.execute(sql)
        columns = [d[0] for d in result.description or []]
        rows = result.fetchmany(limit + 1)
    finally:
        con.close()
    return {"columns": columns, "rows": rows[:limit], "truncated": len(rows) > limit}


@router.api_route("/api/query", methods=["GET", "POST"])
async def query(request: Request) -> Response:
    """`sql` (DuckDB) or `query` (Logs Insights, with since / start / end); `limit` rows."""
    check_token(request, request.app.state.settings.token)
    params = await _query_params(request)
    sql, insights = params.get("sql"), params.get("query")
    if bool(sql) == bool(insights):
        raise ApiError(400, "send either sql (DuckDB SQL) or query (Logs Insights), not both")
    limit_text = params.get("limit", str(DEFAULT_ROWS))
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_ROWS:
        raise ApiError(400, f"limit must be a number from 1 to {MAX_ROWS}")
    since, start, end = params.get("since"), params.get("start"), params.get("end")
    service: LogService = request.app.state.service

    def work() -> dict[str, Any]:
        if insights:
            from ecsguard.logs.query.insights import compile_query

            text = compile_query(insights, resolve(since, start, end)).sql
        else:
            if since or start or end:
                raise ApiError(400, "since/start/end apply to Insights queries; filter time in SQL")
            text = sql or ""
        return run_query(service, text, int(limit_text))

    try:
        return json_response(await run_in_threadpool(work))
    except UserError as err:
        raise ApiError(400, str(err)) from None
    except duckdb.Error as err:
        raise ApiError(400, f"query failed: {err}") from None


# -- tail ----------------------------------------------------------------------------------------


def _event(data: Any, *, event: str | None = None, cursor: Cursor | None = None) -> bytes:
    head = b""
    if event is not None:
        head += b"event: " + event.encode() + b"\n"
    if cursor is not None:
        head += b"id: " + cursor.text().encode() + b"\n"
    # orjson escapes newlines inside strings, so the data is a single line
    return head + b"data: " + orjson.dumps(data, default=str) + b"\n\n"


@dataclasses.dataclass(frozen=True)
class History:
    """Stored records a tail shows before the live ones (`since`), oldest first."""

    records: list[dict[str, Any]]
    limit: int  # the most asked for: as many records means older ones were left out


def stored_history(service: LogService, where: TailFilter, since: str, limit: int) -> History:
    """The newest `limit` stored records of the last `since` that pass `where` (blocking)."""
    from ecsguard.logs.query.filter_pattern import compile_pattern
    from ecsguard.logs.query.filter_pattern.search import search_logs

    window = resolve(since, None, None)
    try:
        con = service.connect()
    except duckdb.Error as err:  # a damaged Parquet file in the store
        raise UserError(f"cannot open the store: {str(err).splitlines()[0]}") from None
    try:
        columns, rows = search_logs(
            con,
            where.pattern or compile_pattern(""),
            window,
            cluster=where.cluster,
            service=where.service,
            limit=limit,
            columns=RECORD_COLUMNS,
            newest_first=True,
        )
    finally:
        con.close()
    return History([dict(zip(columns, row, strict=True)) for row in reversed(rows)], limit)


async def tail_events(
    hub: TailHub,
    cursor: Cursor,
    note: str | None,
    where: TailFilter,
    history: History | None = None,
) -> AsyncIterator[bytes]:
    """The SSE stream: `ready`, then `history`'s records and a `history` event saying how many,
    then one event per new record; `missed` when the buffer overran.

    The cursor was taken before `history` was read, so a record stored in between is both in
    the history and after the cursor: its id, seen in the history, keeps it from showing twice.
    History records carry no event id: a reconnect continues the live records."""
    hub.subscribers += 1
    try:
        yield _event({"seq": cursor.seq, "run": hub.run}, event="ready", cursor=cursor)
        if note is not None:
            yield _event({"missed": None, "reason": note}, event="missed")
        shown: set[str] = set()
        if history is not None:
            for record in history.records:
                shown.add(record["id"])
                yield _event(record)
            count = len(history.records)
            yield _event({"records": count, "limited": count >= history.limit}, event="history")
        after = cursor.seq
        while not hub.closed:
            read = hub.read(after, where)
            if read.missed:
                reason = "the server's tail buffer overran; query the store for them"
                yield _event({"missed": read.missed, "reason": reason}, event="missed")
            for seq, record in read.records:
                if shown and record["id"] in shown:
                    continue
                yield _event(record, cursor=Cursor(hub.run, seq))
            after = read.after
            if read.more:
                await asyncio.sleep(0)  # let other requests run between big reads
                continue
            if not await hub.wait(after, KEEPALIVE_SECONDS):
                # carries the cursor, so a filtered-out stretch is not rescanned after a reconnect
                yield _event({}, event="keepalive", cursor=Cursor(hub.run, after))
    finally:
        hub.subscribers -= 1


@router.get("/api/tail")
async def tail(
    request: Request,
    filter: str | None = None,  # the public parameter name
    cluster: str | None = None,
    service: str | None = None,
    since: str | None = None,
    limit: int = DEFAULT_HISTORY,
) -> StreamingResponse:
    """Server-sent events of new log records, filtered by cluster, service and filter pattern;
    with `since` (a duration), the newest `limit` stored records of that stretch first."""
    check_token(request, request.app.state.settings.token)
    hub: TailHub = request.app.state.hub
    from ecsguard.logs.query.filter_pattern import compile_pattern

    try:
        pattern = compile_pattern(filter) if filter else None
    except UserError as err:
        raise ApiError(400, str(err)) from None
    if not 1 <= limit <= MAX_HISTORY:
        raise ApiError(400, f"limit must be between 1 and {MAX_HISTORY}")
    where = TailFilter(cluster or None, service or None, pattern)
    last_event_id = request.headers.get("last-event-id")
    cursor, note = hub.resume(last_event_id)  # before the history is read: see tail_events
    history = None
    if since and not last_event_id:  # a reconnect has shown its history already
        try:
            history = await run_in_threadpool(
                stored_history, request.app.state.service, where, since, limit
            )
        except UserError as err:
            raise ApiError(400, str(err)) from None
    return StreamingResponse(
        tail_events(hub, cursor, note, where, history),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
