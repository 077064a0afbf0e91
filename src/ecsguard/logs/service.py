"""The running pipeline behind `ecsguard serve`: one object every network receiver hands batches to.

`accept` is the acknowledgement point: when it returns, the rows are fsynced in the WAL and have
been published to the listeners (the live-tail hub, later the detection engine). A background
thread flushes WAL segments to Parquet, compacts small files and applies retention. A segment
is flushed when it is full or `flush_seconds` old: a busy table's files come out big enough that
compaction never rewrites them (see docs/decisions.md, "Flush when full").

Client retries (an acknowledgement lost to a timeout or a crash) resend records with the same ids
(receivers derive ids from content); a bounded set of recently stored ids drops them, so a retry
never shows a record twice. A copy that arrives while the first is still being stored waits for
it. The set is seeded on start from the WAL and the newest Parquet files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from ecsguard.logs.pipeline import Pipeline, conform
from ecsguard.logs.records import Parsed
from ecsguard.logs.schema import ID_COLUMN, TABLES
from ecsguard.logs.store import StoreLocation
from ecsguard.logs.wal import FrameParts

log = logging.getLogger(__name__)

Listener = Callable[[str, pa.RecordBatch], None]

#: how many recent ids per table are remembered for retry de-duplication
DEFAULT_DEDUP_IDS = 2_000_000
#: a WAL segment is flushed to Parquet once it is this old, if it has not filled up before
DEFAULT_FLUSH_SECONDS = 60.0
#: how often the flusher looks for segments that filled up
FULL_SEGMENT_POLL_SECONDS = 1.0
#: Parquet files younger than this seed the id set on start (a client retries within minutes)
DEDUP_SEED_SECONDS = 900


@dataclass
class Stats:
    """Counters since start, for the console and `GET /api/stats`."""

    started: float = field(default_factory=time.time)
    records: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    bytes_received: int = 0
    duplicates: int = 0
    problems: dict[str, int] = field(default_factory=dict)
    #: ingest requests (and forward messages) refused, by HTTP status ("401", "413", "503")
    refused: dict[str, int] = field(default_factory=dict)
    flushed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    flush_errors: int = 0

    def refuse(self, status: int) -> None:
        """Count a refused request or forward message by the HTTP status that says why (the
        forward protocol has none: a wrong shared key counts as 401, a full disk as 503)."""
        self.refused[str(status)] = self.refused.get(str(status), 0) + 1


class _RecentIds:
    """A bounded set of ids, oldest forgotten first, a batch at a time. It keeps each id's
    64-bit hash, not the text: a third of the memory, and a false "seen" needs a hash collision
    among the ids held (odds below one in a million million). Every operation is a set operation
    over a whole batch: no Python loop per id. The order of forgetting is kept as one packed
    array per batch (8 bytes a hash), not as sets: 2 M ids take about 150 MB, not 250."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._hashes: set[int] = set()
        self._batches: deque[array[int]] = deque()  # each hash in exactly one, oldest first
        self._size = 0

    def seen(self, hashes: list[int]) -> list[bool] | None:
        """Per hash whether it is held; None when none is (the usual answer, found in C)."""
        held = self._hashes
        if held.isdisjoint(hashes):
            return None
        return [h in held for h in hashes]

    def add_all(self, hashes: Iterable[int]) -> None:
        new = set(hashes)
        new -= self._hashes
        if not new:
            return
        self._hashes |= new
        self._batches.append(array("q", new))
        self._size += len(new)
        while self._size > self.capacity and len(self._batches) > 1:
            old = self._batches.popleft()
            self._hashes.difference_update(old)
            self._size -= len(old)


class LogService:
    """Pipeline + listeners + retry de-duplication + background flusher for one data directory."""

    def __init__(
        self,
        data_dir: Path,
        *,
        flush_seconds: float = DEFAULT_FLUSH_SECONDS,
        compact_seconds: float = 300.0,
        retention_days: dict[str, int] | None = None,
        dedup_ids: int = DEFAULT_DEDUP_IDS,
        store: StoreLocation | None = None,
    ) -> None:
        self.pipeline = Pipeline(data_dir, store=store)
        self.flush_seconds = flush_seconds
        self.compact_seconds = compact_seconds
        self.retention_days = retention_days or {}
        self.stats = Stats()
        self._listeners: list[Listener] = []
        self._publishing = threading.local()  # (batch, WAL frame) being published, per thread
        self._recent = {t: _RecentIds(dedup_ids) for t, c in ID_COLUMN.items() if c is not None}
        self._dedup_lock = threading.Lock()
        # the id hashes each request is storing right now, and its event set when it is done
        self._inflight: list[tuple[set[int], threading.Event]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seed_recent_ids()

    @property
    def data_dir(self) -> Path:
        return self.pipeline.data_dir

    @property
    def location(self) -> StoreLocation | None:
        """Where the Parquet store is (None: under the data directory)."""
        return self.pipeline.location

    def add_listener(self, listener: Listener) -> None:
        """`listener(table, batch)` is called with every accepted batch, after it is durable.
        It must be quick and must not raise (it runs on the receiving thread)."""
        self._listeners.append(listener)

    # -- receiving -------------------------------------------------------------------------------

    def accept(self, parsed: Parsed, size: int = 0) -> int:
        """Store a receiver's result durably and publish it; the number of new rows stored.
        Raises WalFullError (nothing stored: answer 503 and let the sender retry)."""
        self.stats.bytes_received += size
        for problem in parsed.problems:
            self.stats.problems[problem.kind] = self.stats.problems.get(problem.kind, 0) + 1
        return self.store(parsed.table, parsed.batch, whole=parsed.whole)

    def store(self, table: str, batch: pa.RecordBatch, *, whole: bool = False) -> int:
        """`whole`: as Parsed.whole says. Such a batch is checked and remembered by its first
        id alone (hashing and remembering every id cost 0.8 µs a row, 6% of ingest)."""
        if batch.num_rows == 0:
            return 0
        batch = conform(table, batch)
        column = ID_COLUMN[table]
        if column is None or table not in self._recent:
            return self._stored(table, batch, self.pipeline.ingest(table, batch))  # durable
        ids = batch.column(column)
        hashes = list(map(hash, (ids.slice(0, 1) if whole else ids).to_pylist()))
        keep, claim = self._claim(table, hashes)
        try:
            if keep is not None:
                keep = keep * batch.num_rows if whole else keep
                self.stats.duplicates += keep.count(False)
                batch = batch.filter(pa.array(keep, pa.bool_()))
            written = self.pipeline.ingest(table, batch) if batch.num_rows else None  # durable
            with self._dedup_lock:
                self._recent[table].add_all(claim[0])
        finally:
            with self._dedup_lock:
                self._inflight.remove(claim)
            claim[1].set()
        return self._stored(table, batch, written) if written is not None else 0

    def _claim(
        self, table: str, hashes: list[int]
    ) -> tuple[list[bool] | None, tuple[set[int], threading.Event]]:
        """Which rows are new (None: all of them), with those marked in flight. A row whose id
        another request is storing right now (a client that gave up and resent) waits for that
        request, then is dropped if it succeeded or stored here if it failed."""
        recent = self._recent[table]
        while True:
            with self._dedup_lock:
                busy = [done for held, done in self._inflight if not held.isdisjoint(hashes)]
                if not busy:
                    keep = recent.seen(hashes)
                    if keep is None:
                        claimed = set(hashes)
                    else:
                        keep = [not held for held in keep]
                        claimed = {h for h, new in zip(hashes, keep, strict=True) if new}
                    claim = (claimed, threading.Event())
                    self._inflight.append(claim)
                    return keep, claim
            for event in busy:
                event.wait()

    def _stored(self, table: str, batch: pa.RecordBatch, frame: FrameParts) -> int:
        self.stats.records[table] += batch.num_rows
        self._publishing.current = (batch, frame)
        try:
            for listener in self._listeners:
                try:
                    listener(table, batch)
                except Exception:  # a listener's bug must not turn a stored batch into an error
                    log.exception("listener failed on a %s batch", table)
        finally:
            self._publishing.current = None
        return batch.num_rows

    def frame_of(self, batch: pa.RecordBatch) -> FrameParts | None:
        """The WAL frame of `batch`, as its header and payload (wal.frame_parts), while it is
        being published to the listeners on this thread, else None: a listener that sends
        batches to another process (detection) need not encode each again, a twentieth of the
        server's work."""
        current = getattr(self._publishing, "current", None)
        if current is None or current[0] is not batch:
            return None
        return current[1]

    def _seed_recent_ids(self) -> None:
        cutoff = time.time() - DEDUP_SEED_SECONDS
        for table, recent in self._recent.items():
            column = ID_COLUMN[table]
            assert column is not None
            store = self.pipeline.store
            for path in store.recent_files(table, cutoff):
                try:
                    ids = store.read(path, [column]).column(0)
                except (pa.ArrowInvalid, KeyError):  # a file from before the table had ids
                    continue
                recent.add_all(list(map(hash, ids.to_pylist())))
            for _, batch in self.pipeline.wal.replay(table):
                ids = conform(table, batch, written=True).column(column)
                recent.add_all(list(map(hash, pc.drop_null(ids).to_pylist())))

    def wal_backlog(self) -> dict[str, tuple[int, int]]:
        """Per table, the WAL segments not yet flushed to Parquet and their bytes: it grows only
        while flushing fails or falls behind."""
        backlog = {}
        for table in TABLES:
            paths = self.pipeline.wal.segments(table)
            size = 0
            for path in paths:
                # a segment flushed and deleted since it was listed counts no more
                with contextlib.suppress(FileNotFoundError):
                    size += os.stat(path).st_size
            backlog[table] = (len(paths), size)
        return backlog

    # -- querying --------------------------------------------------------------------------------

    def connect(self) -> duckdb.DuckDBPyConnection:
        """DuckDB views over Parquet and the WAL: fresh to the last acknowledged record."""
        return self.pipeline.connect()

    # -- background work -------------------------------------------------------------------------

    def start(self) -> None:
        """Finish an interrupted compaction, flush what a previous process left, then flush and
        compact in the background."""
        self.pipeline.store.recover()
        self.flush_once()
        self._thread = threading.Thread(target=self._run, name="ecsguard-flusher", daemon=True)
        self._thread.start()

    def flush_once(self, max_age: float | None = None) -> None:
        """Flush sealed WAL segments; open ones too (all of them, or those `max_age` old)."""
        try:
            for table, rows in self.pipeline.flush(max_age).items():
                self.stats.flushed[table] += rows
        except OSError as exc:  # a full disk, S3 refusing: the WAL keeps the rows, retried next
            self.stats.flush_errors += 1
            log.warning("flush failed, will retry: %s", exc)

    def maintain(self, now: datetime | None = None) -> None:
        """Compact partitions with several files and delete partitions past retention."""
        now = now or datetime.now(UTC)
        store = self.pipeline.store
        try:
            for table in TABLES:
                for partition in store.partitions(table):
                    store.compact(table, partition)
                days = self.retention_days.get(table)
                if days:
                    store.retention(table, days, now)
        except OSError as exc:
            self.stats.flush_errors += 1
            log.warning("compaction failed, will retry: %s", exc)

    def _run(self) -> None:
        last_maintenance = time.monotonic()
        while not self._stop.wait(min(self.flush_seconds, FULL_SEGMENT_POLL_SECONDS)):
            self.flush_once(max_age=self.flush_seconds)
            if time.monotonic() - last_maintenance >= self.compact_seconds:
                self.maintain()
                last_maintenance = time.monotonic()

    def stop(self) -> None:
        """Stop the flusher, flush everything acknowledged and close the WAL."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush_once()
        self.pipeline.close()
