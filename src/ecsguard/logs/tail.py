"""Live tail: the last N accepted log records, numbered, for subscribers that follow new ones.

`TailHub.publish` is a LogService listener: it runs on the receiving (worker) thread right after a
batch is durable, so it only appends the Arrow batch with its first sequence number and wakes the
waiting subscribers. Rows become dicts only when a subscriber reads them (`read`), after the cheap
columnar cluster/service filter.

Subscribers live on an asyncio event loop (`await hub.wait(after, timeout)`); wake-ups cross the
thread boundary with `loop.call_soon_threadsafe`, one call per loop per published batch.

A cursor is `(run, seq)`: `run` is random per hub (per server process), so a client reconnecting
after a server restart is told it may have missed records instead of silently skipping the new
run's first sequence numbers. `Cursor.text()` is what the SSE `id:` field carries.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    from ecsguard.logs.query.filter_pattern import FilterPattern

DEFAULT_CAPACITY = 100_000
#: columns a subscriber gets for each record (ingest_time and task_definition add little)
RECORD_COLUMNS = (
    "time",
    "account",
    "region",
    "cluster",
    "service",
    "task",
    "container",
    "stream",
    "level",
    "message",
    "fields",
    "source",
    "id",
)


@dataclass(frozen=True)
class TailFilter:
    """Which records a subscriber wants: exact cluster / service, and a filter pattern (terms
    match `message`; a JSON pattern matches the record's JSON `fields`, as `logs filter` does)."""

    cluster: str | None = None
    service: str | None = None
    pattern: FilterPattern | None = None

    def mask(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The rows of `batch` that pass, decided per column for the whole batch."""
        for column, value in (("cluster", self.cluster), ("service", self.service)):
            if value is not None and batch.num_rows:
                keep = pc.fill_null(pc.equal(batch.column(column), pa.scalar(value)), False)
                batch = batch.filter(keep)
        if self.pattern is not None and batch.num_rows:
            text = batch.column("message")
            if self.pattern.kind == "json":
                text = pc.coalesce(batch.column("fields"), text)
            batch = batch.filter(self.pattern.mask(text))
        return batch


@dataclass(frozen=True)
class Cursor:
    run: str
    seq: int  # the last sequence number the subscriber has seen

    def text(self) -> str:
        return f"{self.run}-{self.seq}"


@dataclass
class TailRead:
    """One `read`: matching records as (seq, record), where to continue, and what was lost."""

    records: list[tuple[int, dict[str, Any]]]
    after: int  # the last sequence number scanned (matching or not)
    missed: int  # records that left the buffer before the subscriber read them
    more: bool  # the scan stopped at its limit: read again without waiting


class TailHub:
    """A bounded, sequence-numbered buffer of recent `logs` batches with async waiting."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.run = secrets.token_hex(4)
        self._lock = threading.Lock()
        self._batches: deque[tuple[int, pa.RecordBatch]] = deque()  # (first seq, batch)
        self._rows = 0  # rows held in _batches
        self._next = 1  # sequence number of the next published row
        self._waiters: dict[asyncio.AbstractEventLoop, set[asyncio.Future[None]]] = {}
        self.closed = False
        self.subscribers = 0

    # -- publishing (any thread) -----------------------------------------------------------------

    def publish(self, table: str, batch: pa.RecordBatch) -> None:
        """LogService listener: keep `logs` batches (the oldest past capacity go), wake waiters."""
        if table != "logs" or batch.num_rows == 0:
            return
        with self._lock:
            self._batches.append((self._next, batch))
            self._next += batch.num_rows
            self._rows += batch.num_rows
            self._evict()
            waiters, self._waiters = self._waiters, {}
        self._wake(waiters)

    def _evict(self) -> None:
        while self._rows > self.capacity:
            first, oldest = self._batches[0]
            excess = self._rows - self.capacity
            if excess >= oldest.num_rows:
                self._batches.popleft()
                self._rows -= oldest.num_rows
            else:  # keep exactly `capacity` rows: drop the head of the oldest batch
                self._batches[0] = (first + excess, oldest.slice(excess))
                self._rows -= excess

    @staticmethod
    def _wake(waiters: dict[asyncio.AbstractEventLoop, set[asyncio.Future[None]]]) -> None:
        for loop, futures in waiters.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: its subscribers are gone
                loop.call_soon_threadsafe(_resolve_all, futures)

    def close(self) -> None:
        """End every subscription (server shutdown): waiters wake and see `closed`."""
        with self._lock:
            self.closed = True
            waiters, self._waiters = self._waiters, {}
        self._wake(waiters)

    # -- subscribing (event loop) ----------------------------------------------------------------

    @property
    def last_seq(self) -> int:
        return self._next - 1

    @property
    def first_seq(self) -> int:
        """The oldest sequence number still buffered (last_seq + 1 when empty)."""
        with self._lock:
            return self._batches[0][0] if self._batches else self._next

    def now(self) -> Cursor:
        """A cursor at the newest record: a new subscriber sees what arrives from now on."""
        return Cursor(self.run, self.last_seq)

    def resume(self, last_event_id: str | None) -> tuple[Cursor, str | None]:
        """The cursor a reconnecting client continues from, and a note when it cannot continue
        exactly (an id of an earlier server run, or one that cannot be read)."""
        if not last_event_id:
            return self.now(), None
        run, _, seq_text = last_event_id.strip().rpartition("-")
        if not seq_text.isdigit() or not run:
            return self.now(), f"cannot read Last-Event-ID {last_event_id[:40]!r}; tailing from now"
        if run != self.run:
            # every record of this run is new to the client; what arrived while the server was
            # down and never got acknowledged was resent by its senders and is in this run
            return Cursor(self.run, 0), "the server restarted; records from before are in the store"
        return Cursor(self.run, min(int(seq_text), self.last_seq)), None

    async def wait(self, after: int, timeout: float) -> bool:
        """Wait until a record after `after` exists or the hub closes; False on timeout."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._next - 1 > after or self.closed:
                return True
            future: asyncio.Future[None] = loop.create_future()
            self._waiters.setdefault(loop, set()).add(future)
        try:
            await asyncio.wait_for(future, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            with self._lock:
                pending = self._waiters.get(loop)
                if pending is not None:
                    pending.discard(future)

    def read(self, after: int, where: TailFilter | None = None, limit: int = 1000) -> TailRead:
        """Records with sequence numbers above `after` that pass `where`, scanning at most
        `limit` rows (so one busy subscriber never holds the event loop for long)."""
        with self._lock:
            batches = list(self._batches)
            last = self._next - 1
        missed = 0
        if batches and after < batches[0][0] - 1:
            missed = batches[0][0] - 1 - after
            after = batches[0][0] - 1
        records: list[tuple[int, dict[str, Any]]] = []
        scanned = 0
        for first, batch in batches:
            end = first + batch.num_rows  # one past this batch's last seq
            if end - 1 <= after:
                continue
            start = max(after + 1 - first, 0)
            take = min(batch.num_rows - start, limit - scanned)
            part = batch.slice(start, take).select(RECORD_COLUMNS)
            seqs = pa.array(range(first + start, first + start + take), pa.int64())
            part = pa.RecordBatch.from_arrays(
                [*part.columns, seqs], names=[*RECORD_COLUMNS, "_seq"]
            )
            if where is not None:
                part = where.mask(part)
            for row in part.to_pylist():
                records.append((row.pop("_seq"), row))
            scanned += take
            after = first + start + take - 1
            if scanned >= limit:
                break
        return TailRead(records, after, missed, more=after < last)


def _resolve_all(futures: set[asyncio.Future[None]]) -> None:
    for future in futures:
        if not future.done():
            future.set_result(None)


# -- the client side: `ecsguard logs tail` ---------------------------------------------------------


@dataclass(frozen=True)
class TailEvent:
    """One server-sent event: `message` (a record), `ready`, `missed`, `keepalive`; and
    `reconnecting`, made up by the client when the connection dropped."""

    kind: str
    data: dict[str, Any]


def parse_sse(lines: Iterable[str]) -> Iterator[tuple[str, str | None, str]]:
    """(event type, id or None, data) for each event of a text/event-stream."""
    kind: str = "message"
    event_id: str | None = None
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield kind, event_id, "\n".join(data)
            kind, event_id, data = "message", None, []
            continue
        if line.startswith(":"):
            continue  # a comment
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            kind = value
        elif name == "id":
            event_id = value


def follow(
    server: str,
    *,
    params: dict[str, str],
    token: str | None = None,
    give_up_seconds: float = 60.0,
    read_timeout: float = 60.0,
) -> Iterator[TailEvent]:
    """The events of `GET {server}/api/tail`, reconnecting with Last-Event-ID when the
    connection drops, so nothing is skipped or repeated. Raises UserError when the server cannot
    be reached at first, refuses the request, or stays away for `give_up_seconds`."""
    import httpx

    from ecsguard.core.errors import UserError, server_refused

    url = server.rstrip("/") + "/api/tail"
    unreachable = UserError(
        f"cannot reach the ecsguard server at {server}",
        "start it with `ecsguard serve`, or point --server / $ECSGUARD_SERVER at it",
    )
    headers = {"Accept": "text/event-stream"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    last_id: str | None = None
    down_since: float | None = None
    delay = 0.2
    timeout = httpx.Timeout(10.0, read=read_timeout)
    with httpx.Client(timeout=timeout) as client:
        while True:
            reason = "the server closed the stream"
            try:
                request_headers = {**headers, **({"Last-Event-ID": last_id} if last_id else {})}
                with client.stream("GET", url, params=params, headers=request_headers) as reply:
                    if reply.status_code != 200:
                        reply.read()
                        raise server_refused(reply, server, "the tail")
                    down_since, delay = None, 0.2
                    for kind, event_id, data in parse_sse(reply.iter_lines()):
                        if event_id is not None:
                            last_id = event_id
                        try:
                            value = orjson.loads(data)
                        except orjson.JSONDecodeError:
                            value = {"data": data}
                        yield TailEvent(kind, value if isinstance(value, dict) else {"data": value})
            except httpx.TransportError as exc:
                if last_id is None and down_since is None:
                    raise unreachable from None
                reason = f"connection lost ({type(exc).__name__})"
            now = time.monotonic()
            down_since = down_since if down_since is not None else now
            if now - down_since > give_up_seconds:
                raise unreachable
            yield TailEvent("reconnecting", {"reason": reason})
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_LEVEL_STYLES = {"FATAL": "bold red", "ERROR": "red", "WARN": "yellow", "DEBUG": "dim"}


def printable(text: str) -> str:
    """Log text with terminal control characters (escape sequences, \\r) shown, not obeyed;
    newlines and tabs stay."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


_TIME = re.compile(r"(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:\.(\d{1,3}))?")


def clock_text(value: object) -> str:
    """`2026-11-28 10:00:00.120` from a record's time as JSON carries it: JSON writers leave out
    a zero fraction (`...T10:00:00+00:00`), so the text is parsed, not cut at fixed places."""
    found = _TIME.match(str(value or ""))
    if found is None:
        return str(value or "")
    day, clock, millis = found.groups()
    return f"{day} {clock}.{(millis or '').ljust(3, '0')}"


def render_line(record: dict[str, Any]) -> Any:
    """`time service level message` as rich Text: log text is data, never markup."""
    from rich.text import Text

    when = clock_text(record.get("time"))
    who = str(record.get("service") or record.get("container") or record.get("cluster") or "-")
    level = str(record.get("level") or "-")
    return Text.assemble(
        (when, "dim"),
        " ",
        (printable(who), "cyan"),
        " ",
        (printable(level), _LEVEL_STYLES.get(level, "")),
        " ",
        printable(str(record.get("message") or "")),
    )
