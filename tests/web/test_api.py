"""Query, stats and live tail over HTTP against a real server."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pyarrow as pa
import pytest
from tests.web.conftest import TOKEN, Running

from ecsguard.core.errors import UserError
from ecsguard.logs.pipeline import conform
from ecsguard.logs.receivers import RECEIVERS
from ecsguard.logs.records import ReceiverOptions
from ecsguard.logs.tail import TailEvent, TailFilter, TailHub, follow, parse_sse
from ecsguard.web.api import History, tail_events


def post_lines(srv: Running, service: str, *lines: str) -> None:
    body = "".join(f"{line}\n" for line in lines).encode()
    reply = srv.client.post("/ingest/lines", params={"service": service}, content=body)
    assert reply.status_code == 200 and reply.json()["stored"] == len(lines), reply.text


def records(events: Iterator[tuple[str, str | None, str]], count: int) -> list[tuple[str, str]]:
    """(id, message) of the next `count` record events."""
    out = []
    for kind, event_id, data in events:
        if kind == "message":
            assert event_id is not None
            out.append((event_id, httpx.Response(200, content=data).json()["message"]))
            if len(out) == count:
                return out
    raise AssertionError("the stream ended early")


# -- query ---------------------------------------------------------------------------------------


def test_sql_query_get_and_post(srv: Running) -> None:
    post_lines(srv, "query-svc", "first", "second")
    sql = "SELECT message FROM logs WHERE service = 'query-svc' ORDER BY message"
    got = srv.client.get("/api/query", params={"sql": sql}).json()
    assert got == {"columns": ["message"], "rows": [["first"], ["second"]], "truncated": False}
    posted = srv.client.post("/api/query", json={"sql": sql, "limit": 1}).json()
    assert posted["rows"] == [["first"]] and posted["truncated"] is True


def test_insights_query(srv: Running) -> None:
    post_lines(srv, "insights-svc", "ERROR one", "ERROR two", "INFO three")
    query = "filter service = 'insights-svc' and level = 'ERROR' | stats count(*) as errors"
    reply = srv.client.post("/api/query", json={"query": query, "since": "1h"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["columns"] == ["errors"] and reply.json()["rows"] == [[2]]


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"sql": "SELEC 1"}, "syntax error"),
        ({"sql": "SELECT nope FROM logs"}, "nope"),
        ({"query": "fields @message | frobnicate"}, "frobnicate"),
        ({"sql": "COPY logs TO 'out.csv'"}, "only SELECT"),
        ({"sql": "SELECT 1; SELECT 2"}, "exactly one statement"),
        ({"sql": "SELECT * FROM read_csv('/etc/passwd')"}, "disabled"),
        ({"sql": "SELECT 1", "query": "fields @message"}, "either sql"),
        ({}, "either sql"),
        ({"sql": "SELECT 1", "since": "1h"}, "since/start/end apply to Insights"),
        ({"query": "fields @message", "since": "yesterday"}, "duration"),
        ({"sql": "SELECT 1", "limit": "0"}, "limit"),
    ],
)
def test_bad_queries_get_400_with_the_message(
    srv: Running, params: dict[str, str], needle: str
) -> None:
    reply = srv.client.get("/api/query", params=params)
    assert reply.status_code == 400
    assert needle in reply.json()["error"], reply.json()


def test_post_body_must_be_a_json_object(srv: Running) -> None:
    reply = srv.client.post("/api/query", content=b"[1]")
    assert reply.status_code == 400 and "JSON object" in reply.json()["error"]


def test_stats(srv: Running) -> None:
    post_lines(srv, "stats-svc", "counted")
    stats = srv.client.get("/api/stats").json()
    assert stats["records"]["logs"] >= 1 and stats["wal"]["fsyncs"] >= 1
    assert stats["tail"]["last_seq"] == stats["records"]["logs"]


# -- tail ----------------------------------------------------------------------------------------


def test_a_posted_line_reaches_a_subscriber_and_filters_apply(srv: Running) -> None:
    params = {"service": "tail-svc", "filter": "ERROR"}
    with srv.client.stream("GET", "/api/tail", params=params) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = parse_sse(stream.iter_lines())
        kind, ready_id, _ = next(events)
        assert kind == "ready" and ready_id is not None
        post_lines(srv, "other-svc", "ERROR not mine")
        post_lines(srv, "tail-svc", "INFO quiet", "ERROR [red]loud[/red]")
        ((event_id, message),) = records(events, 1)
        assert message == "ERROR [red]loud[/red]"
        assert int(event_id.rpartition("-")[2]) > int(ready_id.rpartition("-")[2])


def test_reconnect_with_last_event_id_has_no_gap_and_no_repeat(srv: Running) -> None:
    params = {"service": "resume-svc"}
    with srv.client.stream("GET", "/api/tail", params=params) as stream:
        events = parse_sse(stream.iter_lines())
        assert next(events)[0] == "ready"
        post_lines(srv, "resume-svc", "r1", "r2", "r3")
        ((last_id, first),) = records(events, 1)
        assert first == "r1"
    post_lines(srv, "resume-svc", "r4", "r5")  # while disconnected
    headers = {"Last-Event-ID": last_id}
    with srv.client.stream("GET", "/api/tail", params=params, headers=headers) as stream:
        events = parse_sse(stream.iter_lines())
        assert next(events)[0] == "ready"
        assert [m for _, m in records(events, 4)] == ["r2", "r3", "r4", "r5"]


def test_bad_filter_pattern_is_400(srv: Running) -> None:
    reply = srv.client.get("/api/tail", params={"filter": '{ $.a = "x" '})
    assert reply.status_code == 400 and "position" in reply.json()["error"]


def test_follow_resumes_after_a_dropped_connection(srv: Running) -> None:
    """The client's read timeout drops idle connections: every drop is a real reconnect with
    Last-Event-ID, and the records posted meanwhile all arrive once, in order."""
    got: list[TailEvent] = []
    done = threading.Event()

    def consume() -> None:
        stream = follow(srv.url, params={"service": "follow-svc"}, token=TOKEN, read_timeout=1.0)
        for event in stream:
            got.append(event)
            if sum(e.kind == "message" for e in got) == 6:
                done.set()
                return

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()

    def wait_for(kind: str, count: int) -> None:
        deadline = time.monotonic() + 10
        while sum(e.kind == kind for e in got) < count:
            assert time.monotonic() < deadline, f"no {kind} event #{count}: {got}"
            threading.Event().wait(0.01)

    for number, batch in enumerate((("f1", "f2"), ("f3",), ("f4", "f5", "f6"))):
        # The first batch goes to a live stream; each later one is posted while the client is
        # disconnected (it saw the drop and waits before reconnecting), so resuming must fetch it.
        wait_for("ready", 1) if number == 0 else wait_for("reconnecting", number)
        post_lines(srv, "follow-svc", *batch)
    assert done.wait(10)
    assert [e.data["message"] for e in got if e.kind == "message"] == [f"f{i}" for i in range(1, 7)]
    assert sum(e.kind == "reconnecting" for e in got) >= 2


def test_follow_errors() -> None:
    with pytest.raises(
        UserError, match=r"cannot reach the ecsguard server at http://127\.0\.0\.1:9"
    ):
        next(follow("http://127.0.0.1:9", params={}))


def test_follow_refused_token(srv: Running) -> None:
    with pytest.raises(UserError, match="refused the token"):
        next(follow(srv.url, params={}, token="wrong"))
    with pytest.raises(UserError, match="position"):
        next(follow(srv.url, params={"filter": "{ $.a = "}, token=TOKEN))


def test_shutdown_ends_open_tails_and_flushes(
    serve: Callable[..., AbstractContextManager[Running]],
) -> None:
    server = serve()
    srv = server.__enter__()
    post_lines(srv, "shutdown-svc", "acknowledged")
    with (
        httpx.Client(base_url=srv.url, timeout=10) as client,
        client.stream("GET", "/api/tail") as stream,
    ):
        events = parse_sse(stream.iter_lines())
        assert next(events)[0] == "ready"
        started = time.monotonic()
        server.__exit__(None, None, None)  # uvicorn would otherwise wait for the stream
        assert list(events) == [] and time.monotonic() - started < 5
    assert srv.service.pipeline.wal.segments("logs") == []
    assert srv.service.stats.flushed["logs"] == 1


# -- tail with history (`since`) -------------------------------------------------------------------


def timed_lines(*messages: str) -> list[str]:
    """Lines stamped a minute apart, the last a minute ago, so their order is their times'."""
    now, count = datetime.now(UTC), len(messages)
    return [
        f"{now - timedelta(minutes=count - i):%Y-%m-%dT%H:%M:%S}Z {message}"
        for i, message in enumerate(messages)
    ]


def until_history(events: Iterator[tuple[str, str | None, str]]) -> tuple[list[str], Any]:
    """The messages of the history records (which carry no event id) and the `history` event."""
    shown = []
    for kind, event_id, data in events:
        value = orjson.loads(data)
        if kind == "history":
            return shown, value
        assert kind == "message" and event_id is None, (kind, event_id)
        shown.append(value["message"])
    raise AssertionError("the stream ended before its history event")


def test_since_shows_stored_records_first_then_new_ones(srv: Running) -> None:
    lines = timed_lines("h1", "h2")
    post_lines(srv, "since-svc", *lines)
    post_lines(srv, "other-svc", *timed_lines("not mine"))
    params = {"service": "since-svc", "since": "10m"}
    with srv.client.stream("GET", "/api/tail", params=params) as stream:
        events = parse_sse(stream.iter_lines())
        assert next(events)[0] == "ready"
        shown, summary = until_history(events)
        assert shown == lines and summary == {"records": 2, "limited": False}
        post_lines(srv, "since-svc", "live one")
        assert [message for _, message in records(events, 1)] == ["live one"]


def test_since_keeps_the_newest_records_within_the_limit(srv: Running) -> None:
    lines = timed_lines("l1", "l2", "l3")
    post_lines(srv, "limit-svc", *lines)
    params = {"service": "limit-svc", "since": "1h", "limit": "2", "filter": "l"}
    with srv.client.stream("GET", "/api/tail", params=params) as stream:
        events = parse_sse(stream.iter_lines())
        assert next(events)[0] == "ready"
        assert until_history(events) == (lines[1:], {"records": 2, "limited": True})


def test_a_reconnect_with_since_shows_no_history_again(srv: Running) -> None:
    old = timed_lines("old")
    post_lines(srv, "again-svc", *old)
    params = {"service": "again-svc", "since": "10m"}
    with srv.client.stream("GET", "/api/tail", params=params) as stream:
        events = parse_sse(stream.iter_lines())
        _, ready_id, _ = next(events)
        assert until_history(events)[0] == old
    post_lines(srv, "again-svc", "while away")
    headers = {"Last-Event-ID": str(ready_id)}
    with srv.client.stream("GET", "/api/tail", params=params, headers=headers) as stream:
        events = parse_sse(stream.iter_lines())
        assert next(events)[0] == "ready"
        kind, _, data = next(events)  # straight to the live records: no history
        assert kind == "message" and orjson.loads(data)["message"] == "while away"


def test_bad_since_or_limit_is_400(srv: Running) -> None:
    reply = srv.client.get("/api/tail", params={"since": "banana"})
    assert reply.status_code == 400 and "duration 'banana'" in reply.json()["error"]
    reply = srv.client.get("/api/tail", params={"since": "1h", "limit": "0"})
    assert reply.status_code == 400 and "limit must be between 1 and" in reply.json()["error"]


def test_a_record_stored_while_the_history_is_read_shows_once() -> None:
    """The cursor is taken before the history is read: a record stored in between is in both,
    and the live part skips it by its id."""
    hub = TailHub()
    options = ReceiverOptions(service="race-svc", ingest_time_us=1_700_000_000_000_000)

    def stored(text: str) -> pa.RecordBatch:
        return conform("logs", RECEIVERS.get("lines")(text.encode() + b"\n", options).batch)

    async def stream() -> list[str]:
        cursor = hub.now()
        hub.publish("logs", stored("in between"))  # after the cursor, before the history read
        read = hub.read(cursor.seq)
        history = History([record for _, record in read.records], limit=10)
        events = tail_events(hub, cursor, None, TailFilter(), history)
        out = [await anext(events) for _ in range(3)]  # ready, the history record, history
        hub.publish("logs", stored("afterwards"))
        out.append(await anext(events))
        await events.aclose()
        return [event.decode() for event in out]

    ready, earlier, summary, live = asyncio.run(stream())
    assert ready.startswith("event: ready") and "in between" in earlier
    assert summary.startswith("event: history") and '"records":1' in summary
    assert "afterwards" in live and "in between" not in live


def test_the_cli_prints_the_history_then_follows(srv: Running) -> None:
    lines = timed_lines("c1", "c2", "c3")
    post_lines(srv, "cli-since-svc", *lines)
    command = [sys.executable, "-m", "ecsguard", "logs", "tail", "--server", srv.url]
    command += ["--since", "10m", "--limit", "2", "--service", "cli-since-svc", "--output", "json"]
    env = {**os.environ, "ECSGUARD_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"}
    tail = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        assert tail.stdout is not None and tail.stderr is not None
        shown = [orjson.loads(tail.stdout.readline())["message"] for _ in range(2)]
        assert shown == lines[1:]
        assert b"the newest 2 stored records since 10m" in tail.stderr.readline()
    finally:
        tail.send_signal(signal.SIGINT)
        assert tail.wait(10) == 0


def test_the_cli_names_a_bad_since_before_connecting() -> None:
    command = [sys.executable, "-m", "ecsguard", "logs", "tail", "--since", "soon"]
    command += ["--server", "http://127.0.0.1:9"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert "cannot read the duration 'soon'" in run.stderr


def test_since_over_a_damaged_store_is_a_clear_400(
    serve: Callable[..., AbstractContextManager[Running]],
) -> None:
    with serve() as server:
        post_lines(server, "damaged-svc", "flushed soon")
        deadline = time.monotonic() + 15
        while not (files := server.service.pipeline.store.live_files("logs")):
            assert time.monotonic() < deadline, "never flushed"
            time.sleep(0.1)
        (server.service.data_dir / "store" / files[0]).write_bytes(b"not parquet at all")
        reply = server.client.get("/api/tail", params={"since": "1h"})
        assert reply.status_code == 400, reply.text
        assert "store" in reply.json()["error"] and "Traceback" not in reply.text
