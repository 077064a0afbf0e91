"""`ecsguard ingest`: files or stdin through a receiver into the pipeline, then flushed.

A gzip file (a rotated `app.log.1.gz`, a CloudTrail `.json.gz`) is read through its gzip layers;
one that is not valid gzip is a problem, and the other files are still read.

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
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from hashlib import sha256
from pathlib import Path
from typing import Any, NamedTuple

from ecsguard.core.errors import UserError
from ecsguard.logs.receivers import RECEIVERS
from ecsguard.logs.records import Problem, ReceiverOptions
from ecsguard.logs.service import LogService
from ecsguard.logs.store import StoreLocation

LEDGER_FILE = "ingested-files.db"
#: formats whose files grow by lines appended at the end: a grown file is read from its new lines
APPENDED = frozenset({"lines"})
#: receivers that take gzip themselves (CloudWatch Logs records are gzip, concatenated by Firehose)
GZIP_AWARE = frozenset({"cloudwatch"})
#: formats with one record per line (FireLens `json_lines`): a big input is parsed and stored a
#: body of about CHUNK_BYTES at a time, cut at line ends, so memory does not grow with the file
LINE_FORMATS = frozenset({"lines", "firelens"})
CHUNK_BYTES = 16 * 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"


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

    def add(self, path: str, context: str, data: bytes, digest: str, records: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?)",
            (path, context, len(data), digest, head_of(data), records, time.time()),
        )
        self._db.commit()

    def close(self) -> None:
        self._db.close()


def unread_from(seen: Seen | None, data: bytes, appended: bool) -> int | None:
    """Where to start reading `data`, a file stored before as `seen`: None when it has not
    changed, the start of the first line not read yet when it grew by `appended` lines (a last
    line that had no newline then is read again, whole), else 0."""
    if seen is None or len(data) < seen.size:
        return 0
    if sha256(memoryview(data)[: seen.size]).hexdigest() != seen.digest:
        return 0
    if len(data) == seen.size:
        return None
    return data.rfind(b"\n", 0, seen.size) + 1 if appended else 0


def _unread(candidates: list[Seen], data: bytes, digest: str, appended: bool) -> int | None:
    """`unread_from` against the files stored before: None when one had this very content, the
    start of the first new line when `appended` and one is where `data` began, else 0."""
    if any(seen.size == len(data) and seen.digest == digest for seen in candidates):
        return None
    for seen in candidates if appended else ():
        start = unread_from(seen, data, appended) if seen.size < len(data) else 0
        if start:
            return start
    return 0


def ungzip(data: bytes, keep_last: bool = False) -> bytes:
    """`data` with its gzip layers undone (a multi-member stream comes out concatenated);
    ValueError for data that is not valid gzip. `keep_last`: leave the innermost layer, for a
    receiver that undoes it itself and reads concatenated documents only from inside it
    (cloudwatch)."""
    while data[:2] == _GZIP_MAGIC:
        try:
            inner = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"invalid gzip: {exc}") from None
        if keep_last and inner[:2] != _GZIP_MAGIC:
            return data
        data = inner
    return data


def bodies(data: bytes, size: int) -> Iterator[tuple[int, bytes]]:
    """(offset, body) of `data` cut at line ends into bodies of about `size` bytes."""
    start = 0
    while start < len(data):
        end = data.find(b"\n", start + size - 1)
        end = len(data) if end < 0 else end + 1
        yield start, data[start:end]
        start = end


def _inputs(source: str) -> Iterator[tuple[str, Path | None]]:
    """(name, path) of each input, None for stdin; files are read one at a time (`_read`)."""
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


def _read(path: Path | None) -> bytes:
    if path is None:
        return sys.stdin.buffer.read()
    try:
        return path.read_bytes()
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror}", "check the path") from None


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
    receiver = RECEIVERS.get(name)
    summary = Summary()
    service = LogService(data_dir, store=store)
    ledger = Ledger(data_dir / LEDGER_FILE)
    try:
        for input_name, path in _inputs(source):
            options = ReceiverOptions(input_name=input_name, **{k: v for k, v in meta.items() if v})
            data = _read(path)
            try:
                data = ungzip(data, keep_last=name in GZIP_AWARE)
            except ValueError as err:  # one damaged file is reported; the others are read
                summary.problems.append(Problem("invalid_gzip", input_name, str(err)))
                continue
            # options that change the records make another ingest of the same file
            context = f"{name}:{options.id_context(name)}"
            where = None if path is None else str(path.resolve())
            start = 0
            digest = "" if where is None else sha256(data).hexdigest()  # stdin: no ledger row
            if where is not None and not from_start:
                known = ledger.known(where, head_of(data), context)
                unread = _unread(known, data, digest, name in APPENDED)
                if unread is None:
                    summary.unchanged += 1
                    if not any(seen.path == where for seen in known):  # renamed: note the name
                        ledger.add(where, context, data, digest, 0)
                    continue
                start = unread
                if start:
                    summary.resumed += 1
            body = data[start:] if start else data
            # stack traces may run across a cut, and a JSON array cannot be cut: those go whole
            whole = (
                name not in LINE_FORMATS
                or options.joins_lines
                or body.lstrip()[:1] == b"["
                or len(body) <= CHUNK_BYTES
            )
            stored = 0
            for offset, part in [(0, body)] if whole else bodies(body, CHUNK_BYTES):
                named = (
                    options
                    if whole
                    else replace(options, input_name=f"{input_name} from byte {start + offset}")
                )
                parsed = receiver(part, named)
                summary.table = parsed.table
                summary.problems.extend(parsed.problems)
                stored += service.accept(parsed, len(part))  # durable from here on
                summary.duplicates += parsed.batch.num_rows
            summary.duplicates -= stored
            summary.records += stored
            if where is not None:
                ledger.add(where, context, data, digest, stored)
        service.pipeline.flush()  # a failure is reported; the WAL keeps the rows for later
    finally:
        ledger.close()
        service.pipeline.close()
    return summary
