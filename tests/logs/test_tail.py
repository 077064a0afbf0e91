"""TailHub: sequence numbers, the bounded buffer, filters, resuming, and the thread handoff."""

from __future__ import annotations

import asyncio
import threading
import time

import pyarrow as pa
import pytest

from ecsguard.logs.query.filter_pattern import compile_pattern
from ecsguard.logs.schema import LOGS
from ecsguard.logs.tail import (
    Cursor,
    TailFilter,
    TailHub,
    clock_text,
    parse_sse,
    printable,
    render_line,
)


def batch(*messages: str, service: str = "api", fields: str | None = None) -> pa.RecordBatch:
    n = len(messages)
    columns = {f.name: pa.nulls(n, f.type) for f in LOGS}
    columns["time"] = pa.array([1_700_000_000_000_000] * n, LOGS.field("time").type)
    columns["cluster"] = pa.array(["prod"] * n, pa.string())
    columns["service"] = pa.array([service] * n, pa.string())
    columns["message"] = pa.array(list(messages), pa.string())
    columns["fields"] = pa.array([fields] * n, pa.string())
    return pa.RecordBatch.from_pydict(columns, schema=LOGS)


def messages(hub: TailHub, after: int = 0, where: TailFilter | None = None) -> list[str]:
    return [record["message"] for _, record in hub.read(after, where).records]


def test_records_are_numbered_across_batches() -> None:
    hub = TailHub()
    hub.publish("logs", batch("a", "b"))
    hub.publish("cloudtrail", batch("not a log"))  # only the logs table is tailed
    hub.publish("logs", batch("c"))
    read = hub.read(0)
    assert [(seq, r["message"]) for seq, r in read.records] == [(1, "a"), (2, "b"), (3, "c")]
    assert (read.after, read.missed, read.more, hub.last_seq) == (3, 0, False, 3)
    assert messages(hub, after=1) == ["b", "c"]
    assert messages(hub, after=3) == []
    assert read.records[0][1]["time"].year == 2023 and "ingest_time" not in read.records[0][1]


def test_buffer_keeps_the_newest_capacity_records_and_counts_the_missed() -> None:
    hub = TailHub(capacity=5)
    hub.publish("logs", batch("1", "2", "3"))
    hub.publish("logs", batch("4", "5", "6", "7"))
    assert hub.first_seq == 3
    read = hub.read(0)
    assert read.missed == 2 and [r["message"] for _, r in read.records] == ["3", "4", "5", "6", "7"]
    assert hub.read(2).missed == 0
    hub.publish("logs", batch(*"abcdefgh"))  # one batch larger than the buffer
    assert hub.first_seq == 11 and messages(hub, after=10) == list("defgh")


def test_read_is_bounded_and_continues() -> None:
    hub = TailHub()
    hub.publish("logs", batch(*"abcde"))
    first = hub.read(0, limit=2)
    assert [r["message"] for _, r in first.records] == ["a", "b"] and first.more
    second = hub.read(first.after, limit=10)
    assert [r["message"] for _, r in second.records] == ["c", "d", "e"] and not second.more


def test_filters_by_service_and_pattern() -> None:
    hub = TailHub()
    hub.publish("logs", batch("ERROR boom", "INFO fine", service="api"))
    hub.publish("logs", batch("ERROR elsewhere", service="worker"))
    hub.publish("logs", batch("done", service="api", fields='{"status": 503, "message": "done"}'))
    assert messages(hub, where=TailFilter(service="api")) == ["ERROR boom", "INFO fine", "done"]
    errors = TailFilter(pattern=compile_pattern("ERROR"))
    assert messages(hub, where=errors) == ["ERROR boom", "ERROR elsewhere"]
    both = TailFilter(cluster="prod", service="api", pattern=compile_pattern("ERROR"))
    assert messages(hub, where=both) == ["ERROR boom"]
    # a JSON pattern reads the record's JSON fields, where the status lives
    server_errors = TailFilter(pattern=compile_pattern("{ $.status >= 500 }"))
    assert messages(hub, where=server_errors) == ["done"]
    assert messages(hub, where=TailFilter(cluster="staging")) == []
    # a filtered read still advances past what it skipped
    assert hub.read(0, TailFilter(service="nobody")).after == 4


def test_resume_from_last_event_id() -> None:
    hub = TailHub()
    hub.publish("logs", batch("a", "b", "c"))
    assert hub.resume(None) == (Cursor(hub.run, 3), None)
    assert hub.resume(f"{hub.run}-1") == (Cursor(hub.run, 1), None)
    assert hub.resume(f"{hub.run}-99")[0] == Cursor(hub.run, 3)  # never beyond the newest
    restarted, note = hub.resume("0badc0de-7")
    assert restarted == Cursor(hub.run, 0) and note is not None and "restarted" in note
    garbage, note = hub.resume("<script>")
    assert garbage == Cursor(hub.run, 3) and note is not None and "cannot read" in note
    assert Cursor(hub.run, 2).text() == f"{hub.run}-2"


def test_publish_from_a_worker_thread_wakes_a_waiting_subscriber() -> None:
    hub = TailHub()

    async def scenario() -> tuple[bool, float, bool]:
        waiter = asyncio.create_task(hub.wait(0, timeout=5))
        await asyncio.sleep(0.01)
        started = time.monotonic()
        threading.Thread(target=hub.publish, args=("logs", batch("x"))).start()
        woke = await waiter
        elapsed = time.monotonic() - started
        idle = await hub.wait(1, timeout=0.01)  # nothing newer: times out
        return woke, elapsed, idle

    woke, elapsed, idle = asyncio.run(scenario())
    assert woke and elapsed < 1 and not idle


def test_close_ends_waiting() -> None:
    hub = TailHub()

    async def scenario() -> bool:
        waiter = asyncio.create_task(hub.wait(0, timeout=5))
        await asyncio.sleep(0.01)
        threading.Thread(target=hub.close).start()
        return await waiter

    assert asyncio.run(scenario()) and hub.closed


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        TailHub(capacity=0)


def test_parse_sse() -> None:
    lines = [
        ": a comment",
        "event: ready",
        "id: r-1",
        "data: {}",
        "",
        "data: one",
        "data:two",
        "",
        "id: r-2",
        "",  # no data: not an event
    ]
    assert list(parse_sse(lines)) == [("ready", "r-1", "{}"), ("message", None, "one\ntwo")]


def test_text_rendering_never_obeys_the_log_text() -> None:
    record = {
        "time": "2026-11-28T10:00:00.123456+00:00",
        "service": "[bold]api",
        "level": "ERROR",
        "message": "boom [red]x[/red] \x1b[2J\rgone\nat line 2",
    }
    text = render_line(record)
    assert text.plain == (
        "2026-11-28 10:00:00.123 [bold]api ERROR boom [red]x[/red] \\x1b[2J\\x0dgone\nat line 2"
    )
    assert printable("tab\there") == "tab\there"


@pytest.mark.parametrize(
    ("time", "shown"),
    [
        ("2026-11-28T10:00:00.123456+00:00", "2026-11-28 10:00:00.123"),
        ("2026-11-28T10:00:00+00:00", "2026-11-28 10:00:00.000"),  # a whole second
        ("2026-11-28T10:00:00.5Z", "2026-11-28 10:00:00.500"),
        ("2026-11-28 10:00:00", "2026-11-28 10:00:00.000"),
        ("yesterday", "yesterday"),
        (None, ""),
    ],
)
def test_times_are_shown_to_the_millisecond_whatever_their_spelling(
    time: str | None, shown: str
) -> None:
    assert clock_text(time) == shown
