"""`ecsguard ingest`: files or stdin through a receiver into the pipeline, then flushed.

A gzip file (a rotated `app.log.1.gz`, a CloudTrail `.json.gz`) is read through its gzip layers;
one that is not valid gzip is a problem, nothing of it is stored, and the other files are still
read. Line formats are read, parsed and stored CHUNK_BYTES at a time (`bodies`), so memory does not
grow with the input; documents, JSON arrays and joined stack traces are read whole.

Records go through the same door as the server's (`LogService.accept`): records whose ids were
stored recently (the WAL and the last 15 minutes of Parquet files) are skipped.

That covers a retry, not a file ingested again next week. So, as log shippers keep position
files, each file is remembered in `DATA_DIR/ingested-files.db` (SQLite) once its records are
durable: its size and SHA-256, per format and options. A later run skips a file that has not
changed, and reads a `lines` file that grew from its first line not read yet. A file that shrank,
or changed within the part read before, is read whole; so is every file with `from_start`.
A file is found by its path, else by its first line: a rotated `app.log.1` (even gzipped) is the
`app.log` stored before, and only what it gained since is read.
"""

from __future__ import annotations

import gzip
import sqlite3
import sys
import time
import zlib
from collections.abc import Collection, Generator, Iterable, Iterator
from dataclasses import dataclass, field, replace
from hashlib import sha256
from io import BufferedIOBase, BufferedReader
from pathlib import Path
from typing import Any, NamedTuple, cast

from ecsguard.core.errors import UserError
from ecsguard.core.files import is_gzip
from ecsguard.logs.receivers import RECEIVERS
from ecsguard.logs.records import Problem, ReceiverOptions
from ecsguard.logs.service import LogService
from ecsguard.logs.store import StoreLocation

LEDGER_FILE = "ingested-files.db"
#: formats whose files grow by lines appended at the end: a grown file is read from its new lines
APPENDED = frozenset({"lines"})
#: receivers that take gzip themselves (CloudWatch Logs records are gzip, concatenated by Firehose)
GZIP_AWARE = frozenset({"cloudwatch"})
#: formats with one record per line (FireLens `json_lines`): an input is read, parsed and stored a
#: body of about CHUNK_BYTES at a time, cut at line ends, so memory does not grow with it
LINE_FORMATS = frozenset({"lines", "firelens"})
CHUNK_BYTES = 16 * 1024 * 1024
#: how much of a file tells whether it can be cut (a JSON array, a gzip inside the gzip cannot)
FIRST_BYTES = 64 * 1024


@dataclass
class Summary:
    table: str | None = None  # the table the records went to; None when no file was read
    records: int = 0
    duplicates: int = 0  # records stored before (same ids), skipped
    unchanged: int = 0  # files stored by an earlier run and not changed since, skipped
    resumed: int = 0  # grown files read from where an earlier run stopped
    problems: list[Problem] = field(default_factory=list)


class Seen(NamedTuple):
    size: int
    digest: str  # SHA-256 of those `size` bytes
    path: str = ""  # where it was read


#: at most this much of a file's first line finds it again under another name (rotation)
HEAD_BYTES = 1024


def head_of(data: bytes) -> str:
    """SHA-256 of the first line (at most HEAD_BYTES): the same for the file after it grew."""
    end = data.find(b"\n", 0, HEAD_BYTES)
    return sha256(memoryview(data)[: HEAD_BYTES if end < 0 else end + 1]).hexdigest()


class Fingerprint(NamedTuple):
    size: int
    digest: str  # SHA-256 of the whole content
    head: str  # head_of the content
    #: per size asked for (a stored state's): the SHA-256 of that many first bytes, and where
    #: the line holding the byte at that offset begins
    prefixes: dict[int, tuple[str, int]]


class Fingerprinter:
    """A Fingerprint of content fed a chunk at a time, hashed as it goes."""

    def __init__(self, sizes: Collection[int] = ()) -> None:
        self._whole, self._size, self._line_start, self._first = sha256(), 0, 0, b""
        self._wanted = sorted(set(sizes))
        self._prefixes: dict[int, tuple[str, int]] = {}

    def feed(self, chunk: bytes) -> None:
        size, end = self._size, self._size + len(chunk)
        while self._wanted and self._wanted[0] <= end:
            at = self._wanted.pop(0) - size
            part = self._whole.copy()
            part.update(memoryview(chunk)[:at])
            newline = chunk.rfind(b"\n", 0, at)
            line = size + newline + 1 if newline >= 0 else self._line_start
            self._prefixes[size + at] = (part.hexdigest(), line)
        self._whole.update(chunk)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            self._line_start = size + newline + 1
        if len(self._first) < HEAD_BYTES:
            self._first += chunk[:HEAD_BYTES]
        self._size = end

    def result(self) -> Fingerprint:
        digest = self._whole.hexdigest()
        if self._size == 0 and self._wanted[:1] == [0]:  # no chunk came to reach size 0
            self._prefixes[0] = (digest, 0)
        return Fingerprint(self._size, digest, head_of(self._first), self._prefixes)


def fingerprint(chunks: Iterable[bytes], sizes: Collection[int] = ()) -> Fingerprint:
    """The Fingerprint of the content `chunks` hold in order."""
    printer = Fingerprinter(sizes)
    for chunk in chunks:
        printer.feed(chunk)
    return printer.result()


class Ledger:
    """The files already ingested into a data directory, in SQLite (WAL mode)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # another `ecsguard ingest` into the same directory may be writing: wait for it
        self._db = sqlite3.connect(path, timeout=60)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            # no fsync per file: a ledger row lost to a crash only reads that file again, and
            # the door's ids catch what was stored recently
            self._db.execute("PRAGMA synchronous=NORMAL")
            # a row per state of a file stored: a rotated file is found by its old content
            # even after a new file took its name
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS files (path TEXT, context TEXT, size INTEGER,"
                " sha256 TEXT, head TEXT, records INTEGER, done_at REAL,"
                " PRIMARY KEY (path, context, sha256))"
            )
            self._db.execute("CREATE INDEX IF NOT EXISTS by_head ON files (head, context)")
            self._db.commit()
        except sqlite3.DatabaseError as err:
            self._db.close()
            raise UserError(
                f"cannot read {path}: {err}",
                "move it away: the next run reads every file whole (records stored in the last"
                " 15 minutes are still recognised)",
            ) from None

    def known(self, path: str, head: str, context: str) -> list[Seen]:
        """What was stored under `path`, then under other paths from files that began alike."""
        rows = self._db.execute(
            "SELECT size, sha256, path FROM files WHERE context = ? AND (path = ? OR head = ?)"
            " ORDER BY path = ? DESC, done_at DESC LIMIT 20",
            (context, path, head, path),
        )
        return [Seen(*row) for row in rows]

    def add(self, path: str, context: str, content: Fingerprint, records: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?)",
            (path, context, content.size, content.digest, content.head, records, time.time()),
        )
        self._db.commit()

    def close(self) -> None:
        self._db.close()


def unread_from(seen: Seen | None, content: Fingerprint, appended: bool) -> int | None:
    """Where to start reading a content stored before as `seen` (its fingerprint holds the
    prefix of `seen.size`): None when it has not changed, the start of the first line not read
    yet when it grew by `appended` lines (a last line that had no newline then is read again,
    whole), else 0."""
    if seen is None or content.size < seen.size:
        return 0
    digest, line_start = content.prefixes.get(seen.size, ("", 0))
    if digest != seen.digest:
        return 0
    if content.size == seen.size:
        return None
    return line_start if appended else 0


def _unread(candidates: list[Seen], content: Fingerprint, appended: bool) -> int | None:
    """`unread_from` against the files stored before: None when one had this very content, the
    start of the first new line when `appended` and one is where the content began, else 0."""
    if any(s.size == content.size and s.digest == content.digest for s in candidates):
        return None
    for seen in candidates if appended else ():
        start = unread_from(seen, content, appended) if seen.size < content.size else 0
        if start:
            return start
    return 0


def ungzip(data: bytes, keep_last: bool = False) -> bytes:
    """`data` with its gzip layers undone (a multi-member stream comes out concatenated);
    ValueError for data that is not valid gzip. `keep_last`: leave the innermost layer, for a
    receiver that undoes it itself and reads concatenated documents only from inside it
    (cloudwatch)."""
    while is_gzip(data):
        try:
            inner = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"invalid gzip: {exc}") from None
        if keep_last and not is_gzip(inner):
            return data
        data = inner
    return data


def bodies(chunks: Iterable[bytes]) -> Iterator[tuple[int, bytes, bool]]:
    """(offset, body, last) of the content `chunks` hold, cut at line ends: a body per chunk,
    its unfinished last line carried into the next."""
    offset, pending, ahead = 0, b"", None
    for chunk in chunks:
        data = pending + chunk if pending else chunk
        cut = data.rfind(b"\n") + 1
        pending = data[cut:]
        if cut:
            if ahead is not None:
                yield ahead[0], ahead[1], False
            ahead = (offset, data[:cut])
            offset += cut
    if pending:
        if ahead is not None:
            yield ahead[0], ahead[1], False
        ahead = (offset, pending)
    if ahead is not None:
        yield ahead[0], ahead[1], True


class _Input:
    """A file, through its gzip layer when `gunzip`, or stdin: read CHUNK_BYTES at a time, the
    file as often as asked. `first` is how it begins: stdin's first chunk, kept for the reading;
    a file's first FIRST_BYTES, enough for its layout and first line without reading (or
    inflating) a whole chunk that `chunks` reads again."""

    def __init__(self, path: Path | None, gunzip: bool) -> None:
        self.path = path
        self.gzipped = False
        if path is None:
            self._stdin = self._read_raw(cast(BufferedIOBase, sys.stdin.buffer))
            self.first = next(self._stdin, b"")
            return
        with self._open_raw() as raw:
            self.gzipped = gunzip and is_gzip(raw.peek(2))
            source: BufferedIOBase = gzip.GzipFile(fileobj=raw) if self.gzipped else raw
            reading = self._read_raw(source, FIRST_BYTES)
            self.first = next(reading, b"")
            reading.close()

    def chunks(self, start: int = 0, limit: int | None = None) -> Generator[bytes, None, None]:
        """The content from byte `start` up to byte `limit`; ValueError for a gzip file that
        is damaged, UserError for one that cannot be read."""
        if self.path is None:  # stdin is read once: its first chunk was kept for the reading
            yield self.first
            yield from self._stdin
            return
        read = 0
        with self._open_raw() as raw:
            source: BufferedIOBase = raw
            if self.gzipped:
                source = gzip.GzipFile(fileobj=raw)
            elif start:
                raw.seek(start)
                read = start
            for chunk in self._read_raw(source):
                end = read + len(chunk)
                if end > start:
                    left = max(0, start - read)
                    stop = len(chunk) if limit is None else max(0, min(len(chunk), limit - read))
                    if stop > left:
                        yield chunk[left:stop] if left or stop < len(chunk) else chunk
                read = end
                if limit is not None and read >= limit:
                    return

    def _open_raw(self) -> BufferedReader:
        assert self.path is not None
        try:
            return self.path.open("rb")
        except OSError as err:
            raise UserError(f"cannot read {self.path}: {err.strerror}", "check the path") from None

    def _read_raw(
        self, source: BufferedIOBase, size: int | None = None
    ) -> Generator[bytes, None, None]:
        try:
            while chunk := source.read(size or CHUNK_BYTES):
                yield chunk
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise ValueError(f"invalid gzip: {exc}") from None
        except OSError as err:
            raise UserError(
                f"cannot read {self.path or 'stdin'}: {err}", "check the path"
            ) from None


class _Whole:
    """An input read whole: a document, or lines joined into records."""

    gzipped = False

    def __init__(self, data: bytes, path: Path | None) -> None:
        self.data, self.path, self.first = data, path, data[:HEAD_BYTES]

    def chunks(self, start: int = 0, limit: int | None = None) -> Iterator[bytes]:
        part = self.data[start:limit] if start or limit is not None else self.data
        if part:
            yield part


def _inputs(source: str) -> Iterator[tuple[str, Path | None]]:
    """(name, path) of each input, None for stdin; files are read one at a time."""
    if source == "-":
        yield "stdin", None
        return
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        if not files:
            raise UserError(f"{path} holds no files", "give a file, a directory of files, or -")
        for file in files:
            yield str(file), file
    else:
        yield str(path), path


def ingest_source(
    source: str,
    fmt: str,
    data_dir: Path,
    meta: dict[str, Any],
    store: StoreLocation | None = None,
    from_start: bool = False,
) -> Summary:
    """Parse SOURCE with the receiver named `fmt` and store every record not stored by an
    earlier run (see the module docstring; `from_start`: read every file whole); returns counts
    and the problems (unparsed lines kept as text, dropped control messages, bad files)."""
    name = fmt.replace("-", "_")
    summary = Summary()
    service = LogService(data_dir, store=store)
    ledger = Ledger(data_dir / LEDGER_FILE)
    try:
        for input_name, path in _inputs(source):
            options = ReceiverOptions(input_name=input_name, **{k: v for k, v in meta.items() if v})
            try:
                source_ = _Input(path, gunzip=name not in GZIP_AWARE)
                _ingest_input(source_, name, options, ledger, service, summary, from_start)
            except ValueError as err:  # one damaged file is reported; the others are read
                summary.problems.append(Problem("invalid_gzip", input_name, str(err)))
        service.pipeline.flush()  # a failure is reported; the WAL keeps the rows for later
    finally:
        ledger.close()
        service.pipeline.close()
    return summary


def _ingest_input(
    source: _Input | _Whole,
    name: str,
    options: ReceiverOptions,
    ledger: Ledger,
    service: LogService,
    summary: Summary,
    from_start: bool,
) -> None:
    """Store what `source` holds that an earlier run did not; ValueError for bad gzip, found
    before anything of the input is stored."""
    first = source.first
    # line formats are read a body at a time, so memory does not grow with the input; stack
    # traces may run across a cut, and a JSON array or a gzip inside the gzip cannot be cut
    streamed = (
        name in LINE_FORMATS
        and not options.joins_lines
        and first.lstrip()[:1] != b"["
        and not is_gzip(first)
    )
    if not streamed:
        data = ungzip(b"".join(source.chunks()), keep_last=name in GZIP_AWARE)
        source = _Whole(data, source.path)
    # options that change the records make another ingest of the same file
    context = f"{name}:{options.id_context(name)}"
    where = None if source.path is None else str(source.path.resolve())
    start, limit, content = 0, None, None
    known = (
        [] if where is None or from_start else ledger.known(where, head_of(source.first), context)
    )
    if known or source.gzipped:
        # read through first: a damaged gzip stores nothing, and what changed since an
        # earlier run is known before anything is stored
        content = fingerprint(source.chunks(), [seen.size for seen in known])
        unread = _unread(known, content, name in APPENDED)
        if unread is None:
            summary.unchanged += 1
            if where is not None and not any(seen.path == where for seen in known):
                ledger.add(where, context, content, 0)  # renamed: note the new name
            return
        start, limit = unread, content.size  # what grows meanwhile waits for the next run
        summary.resumed += start > 0
    reading = source.chunks(start, limit)
    printer = Fingerprinter() if content is None and where is not None else None
    if printer is not None:  # hashed as it is read, for the ledger
        reading = _fed(reading, printer)
    parts = bodies(reading) if streamed else [(0, b"".join(reading), True)]
    receiver = RECEIVERS.get(name)
    rows = stored = 0
    for offset, part, last in parts:
        named = (
            options
            if offset == 0 and last
            else replace(options, input_name=f"{options.input_name} from byte {start + offset}")
        )
        parsed = receiver(part, named)
        summary.table = parsed.table
        summary.problems.extend(parsed.problems)
        stored += service.accept(parsed, len(part))  # durable from here on
        rows += parsed.batch.num_rows
    summary.records += stored
    summary.duplicates += rows - stored
    if where is not None:
        ledger.add(where, context, content or cast(Fingerprinter, printer).result(), stored)


def _fed(chunks: Iterable[bytes], printer: Fingerprinter) -> Iterator[bytes]:
    for chunk in chunks:
        printer.feed(chunk)
        yield chunk
