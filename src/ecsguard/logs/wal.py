"""Write-ahead log: the acknowledgement point of the log pipeline (DESIGN.md "Durability contract").

Layout: `<root>/<table>/<number>-<random>.wal`, each segment a sequence of frames

    magic b"EGW1" | u32 payload length | u32 CRC32(payload) | payload

where the payload is one Arrow IPC stream (schema + one record batch). Each frame carries its own
schema so any frame can be decoded alone and a torn tail loses nothing before it.

`append` returns only after its frame is fsynced. Concurrent appenders share fsyncs (group commit):
the first waiter becomes the leader, fsyncs everything written so far and wakes the others.

A writer holds an exclusive `flock` on the segment it appends to, so another process (or a flusher
in this one) can tell an active segment from a sealed one without any shared state; a SIGKILL
releases the lock and the segment becomes sealed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import struct
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa

# zlib's CRC-32, the same values, in a quarter of the time (PCLMUL): the checksum of every
# frame had cost 3% of the server's ingest with the C library's zlib
from zlib_ng.zlib_ng import crc32

from ecsguard.core.errors import UserError

MAGIC = b"EGW1"
_HEADER = struct.Struct("<4sII")
#: a sealed segment is flushed as a whole: its size bounds the flusher's memory, and a busy
#: table's segments seal when full, into Parquet files too big for compaction to rewrite
DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
_SUFFIX = ".wal"
_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


class WalFullError(UserError):
    """The disk holding the WAL is full: nothing was acknowledged, the sender should retry later."""

    #: seconds a receiver suggests in Retry-After
    retry_after = 5


def _full(exc: OSError, path: Path) -> WalFullError | OSError:
    if exc.errno in _FULL_ERRNOS:
        return WalFullError(
            f"write-ahead log {path} is full ({os.strerror(exc.errno or 0)})",
            "free space in the data directory; senders should retry later",
        )
    return exc


#: a frame as its header and its payload (frame_parts), which callers pass on as they are
FrameParts = tuple[bytes, pa.Buffer]


def frame_parts(batch: pa.RecordBatch) -> FrameParts:
    """A frame as its header and its payload, left where Arrow wrote it: copying a 2 MB payload
    into one bytes object took two thirds of the encoding time (fresh pages to fault in)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    payload = sink.getvalue()
    return _HEADER.pack(MAGIC, payload.size, crc32(payload)), payload


def encode_frame(batch: pa.RecordBatch) -> bytes:
    return b"".join(frame_parts(batch))  # one copy of the payload, not two


def decode_frames(data: bytes | pa.Buffer) -> tuple[list[pa.RecordBatch], int]:
    """The batches of every whole, valid frame from the start, and the byte length they span."""
    batches: list[pa.RecordBatch] = []
    view = memoryview(data)  # frames are read in place: slicing bytes would copy each one
    pos = 0
    while pos + _HEADER.size <= len(data):
        magic, length, crc = _HEADER.unpack_from(data, pos)
        start = pos + _HEADER.size
        # length 0 is never written: it is what a zero-filled block after a crash looks like
        if magic != MAGIC or length == 0 or start + length > len(data):
            break
        payload = view[start : start + length]
        if crc32(payload) != crc:
            break
        try:
            batch = pa.ipc.open_stream(pa.py_buffer(payload)).read_next_batch()
        except (pa.ArrowInvalid, StopIteration):
            break
        batches.append(batch)
        pos = start + length
    return batches, pos


class Segment(NamedTuple):
    """A segment's valid batches. `path.stem` is unique for ever (number and random suffix), so
    the Parquet files of a segment can carry its name: a re-flush after a crash replaces them,
    and a reader can tell which segments it already read from the WAL."""

    path: Path
    batches: list[pa.RecordBatch]


def _write_all(fd: int, *parts: bytes | pa.Buffer) -> None:
    for part in parts:
        view = memoryview(part)
        while view:
            written = os.write(fd, view)
            view = view[written:]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class _Active:
    """One table's open segment and its group-commit state; guarded by `cond`."""

    cond: threading.Condition
    fd: int | None = None
    path: Path | None = None
    size: int = 0
    written: int = 0  # sequence number of the last frame written
    synced: int = 0  # frames up to this number are durable
    failed_upto: int = 0  # frames up to this number failed to become durable
    failure: OSError | None = None
    syncing: bool = False
    poisoned: bool = False  # a write or fsync failed: never append to this segment again
    next_number: int = 0  # segment numbers only grow within a process
    opened: float = 0.0  # time.monotonic() when the open segment was created


class Wal:
    """Append-only, fsynced, per-table log of Arrow record batches."""

    def __init__(self, root: Path, segment_bytes: int = DEFAULT_SEGMENT_BYTES) -> None:
        self.root = Path(root)
        self.segment_bytes = segment_bytes
        self.appends = 0
        self.fsyncs = 0
        self.torn = 0  # torn tails truncated by replay
        self._lock = threading.Lock()
        self._active: dict[str, _Active] = {}

    # -- writing ---------------------------------------------------------------------------------

    def append(self, table: str, batch: pa.RecordBatch) -> FrameParts:
        """Write `batch` to `table`'s log; return once it is durable, with the frame written (its
        header and payload, as frame_parts gives them). Raises WalFullError."""
        header, payload = frame_parts(batch)  # outside the lock: serialization is the CPU part
        size = len(header) + payload.size
        st = self._state(table)
        with st.cond:
            if (
                st.fd is None
                or st.poisoned
                or (st.size > 0 and st.size + size > self.segment_bytes)
            ):
                self._roll(table, st, reopen=True)
            assert st.fd is not None and st.path is not None
            offset = st.size
            try:
                _write_all(st.fd, header, payload)
            except OSError as exc:
                # take back the partial frame so later frames never follow garbage
                try:
                    os.ftruncate(st.fd, offset)
                except OSError:
                    st.poisoned = True
                raise _full(exc, st.path) from exc
            st.size += size
            st.written += 1
            seq = st.written
            self.appends += 1
            self._wait_durable(st, seq)
        return header, payload

    def _wait_durable(self, st: _Active, seq: int) -> None:
        """Group commit; called with `st.cond` held."""
        while True:
            if st.synced >= seq:
                return
            if st.failed_upto >= seq:
                assert st.failure is not None and st.path is not None
                raise _full(st.failure, st.path) from st.failure
            if st.syncing:
                st.cond.wait()
                continue
            st.syncing = True
            target, fd = st.written, st.fd
            assert fd is not None
            error: OSError | None = None
            st.cond.release()
            try:
                os.fsync(fd)
            except OSError as exc:
                error = exc
            finally:
                st.cond.acquire()
            st.syncing = False
            self.fsyncs += 1
            if error is None:
                st.synced = max(st.synced, target)
            else:
                self._fail(st, error)
            st.cond.notify_all()

    @staticmethod
    def _fail(st: _Active, error: OSError) -> None:
        # after a failed fsync the page cache may have dropped pages anywhere in the segment:
        # every frame not yet durable fails, and the segment takes no more frames
        st.failed_upto = st.written
        st.failure = error
        st.poisoned = True

    def _state(self, table: str) -> _Active:
        with self._lock:
            if table not in self._active:
                self._active[table] = _Active(cond=threading.Condition())
            return self._active[table]

    def _roll(self, table: str, st: _Active, *, reopen: bool) -> None:
        """Seal the open segment (fsync, unlock, close); open a new one if `reopen`."""
        while st.syncing:
            st.cond.wait()
        if st.fd is not None:
            try:
                os.fsync(st.fd)
                self.fsyncs += 1
                st.synced = st.written
            except OSError as exc:
                self._fail(st, exc)
            os.close(st.fd)  # closing releases the flock: the segment is sealed
            st.fd, st.path, st.size, st.poisoned = None, None, 0, False
            st.cond.notify_all()
        if reopen:
            st.fd, st.path = self._create_segment(table, st)

    def _create_segment(self, table: str, st: _Active) -> tuple[int, Path]:
        directory = self.root / table
        # created under a private name and locked before it is linked in place, so no flusher
        # ever sees it unlocked
        tmp = directory / f".{uuid.uuid4().hex}.tmp"
        fd = -1
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            numbers = [n for n, _ in self._segments(table)]
            number = max([st.next_number - 1, *numbers]) + 1
            # the random part keeps names unique for ever, across processes and restarts
            path = directory / f"{number:012d}-{uuid.uuid4().hex[:12]}{_SUFFIX}"
            os.link(tmp, path)
            os.unlink(tmp)
            _fsync_dir(directory)
        except OSError as exc:
            if fd >= 0:
                os.close(fd)
            tmp.unlink(missing_ok=True)
            raise _full(exc, directory) from exc
        st.next_number = number + 1
        st.opened = time.monotonic()
        return fd, path

    def rotate(self, table: str, older_than: float | None = None) -> None:
        """Seal `table`'s open segment so a flush can take it; with `older_than`, only if it was
        opened at least that many seconds ago."""
        st = self._state(table)
        with st.cond:
            if older_than is None or time.monotonic() - st.opened >= older_than:
                self._roll(table, st, reopen=False)

    def close(self) -> None:
        with self._lock:
            tables = list(self._active)
        for table in tables:
            self.rotate(table)

    # -- reading ---------------------------------------------------------------------------------

    def _segments(self, table: str) -> list[tuple[int, Path]]:
        directory = self.root / table
        if not directory.is_dir():
            return []
        found = []
        for path in directory.iterdir():
            number = path.stem.split("-", 1)[0]
            if path.suffix == _SUFFIX and number.isdigit():
                found.append((int(number), path))
        return sorted(found)

    def segments(self, table: str) -> list[Path]:
        """Every segment of `table`, oldest first, sealed or active."""
        return [path for _, path in self._segments(table)]

    @contextlib.contextmanager
    def claim(self, segment: Path) -> Iterator[Segment | None]:
        """Lock a sealed segment and give its contents (torn tail repaired); None if it is active
        (or claimed by another flusher) or gone. Delete it with `delete` inside the block."""
        try:
            fd = os.open(segment, os.O_RDWR)
        except FileNotFoundError:
            yield None
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield None
                return
            yield self._read(segment, fd, repair=True)
        finally:
            os.close(fd)

    def _read(self, path: Path, fd: int, *, repair: bool) -> Segment:
        size = os.fstat(fd).st_size
        data: bytes | pa.Buffer
        if repair and size:
            # mapped, not read: tens of MB read into fresh memory cost a page fault and a zeroed
            # page every 4 KB, each flush; the batches are views of the page cache. Only under
            # our lock: a writer taking back a partial frame truncates its segment, and touching
            # a mapped page past the end of a file is a SIGBUS. Arrow maps it through a
            # descriptor of its own: Python's mmap dups `fd`, and the dup would keep our flock
            # for as long as a query holds the batches, so no flusher could claim the segment
            data = pa.memory_map(str(path)).read_buffer(size)
        else:
            data = os.pread(fd, size, 0)
        batches, valid = decode_frames(data)
        if repair and valid < len(data):
            # a crash left a partial or corrupt frame: it was never acknowledged
            os.ftruncate(fd, valid)
            os.fsync(fd)
            self.torn += 1
        return Segment(path, batches)

    def replay(self, table: str) -> Iterator[tuple[Path, pa.RecordBatch]]:
        """Every valid batch of `table`, oldest first (see `read_segments`)."""
        for segment in self.read_segments(table):
            for batch in segment.batches:
                yield segment.path, batch

    def read_segments(self, table: str) -> Iterator[Segment]:
        """Every segment of `table`, oldest first. Sealed segments have a torn tail truncated
        (counted in `torn`); active ones are read up to their last whole frame. Never raises for
        damage."""
        for path in self.segments(table):
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:  # flushed meanwhile
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    repair = True
                except BlockingIOError:
                    repair = False
                segment = self._read(path, fd, repair=repair)
            finally:
                os.close(fd)
            yield segment

    @staticmethod
    def delete(segment: Path) -> None:
        segment.unlink(missing_ok=True)
