"""The Parquet store: Hive-partitioned, zstd, sorted, atomically written files (DESIGN.md "Tables").

Layout: `<data_dir>/store/<table>/dt=YYYY-MM-DD[/hour=HH]/<name>.parquet`. Partition values come
from the `time` column in UTC and live only in the path (the Hive convention), so Athena, Trino,
Spark and DuckDB read the same tree. All file access goes through `FileSystem`: `LocalFS` here,
or `ecsguard.aws.s3store.S3FS` for `--store s3://bucket/prefix` (the same tree under the prefix;
a whole-object PUT is atomic). `open_fs` picks one from a `StoreLocation`.

No record is ever in two live files, so queries need no de-duplication:
- a WAL segment is written as `w-<digest of its bytes>.parquet`: flushing it again after a crash
  overwrites the same files instead of adding copies;
- a compaction first writes an intent (`<new>.compacting`, listing the files it replaces), then the
  merged file, then deletes the old files and the intent. `live_files` hides the old files while an
  intent whose merged file exists is present, and `recover` finishes what a crash interrupted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ecsguard.core.errors import UserError
from ecsguard.logs.records import with_request_ids
from ecsguard.logs.schema import ID_COLUMN, SORT_KEYS, TABLES, table_schema, upgrade

if TYPE_CHECKING:
    import duckdb

#: tables partitioned by hour as well as by day
HOURLY = frozenset({"logs"})
COMPRESSION = "zstd"
_INTENT = ".compacting"
#: an unfinished compaction this old crashed (a round reads at most MAX_COMPACTION_MEMORY)
STALE_INTENT_SECONDS = 3600.0
#: columns whose values are (nearly) unique per row
UNIQUE_COLUMNS = frozenset(
    {
        "id",
        "event_id",
        "message",
        "fields",
        "detail",
        "request_parameters",
        "response_elements",
        "additional_event_data",
        "user_identity",
        "error_message",
        "request_id",
    }
)
#: rows per row group: the unit a query skips by statistics or Bloom filter
ROW_GROUP_ROWS = 131_072
#: columns looked up by exact value (a needle): a Bloom filter per row group lets DuckDB skip
#: every row group that cannot hold the value; 1% false positives cost about 1.2 bytes per row
BLOOM_COLUMNS = {"logs": ("request_id",)}
BLOOM_FPP = 0.01
#: compaction merges files smaller than this (on disk; a file holds about ten times as much); a
#: full WAL segment's file (about 8 MiB of FireLens logs) is left as it is...
SMALL_FILE_BYTES = 4 * 1024 * 1024
#: ...reading them until their rows take this much memory, whatever the files' compression; the
#: sorted copy is made and written a row group at a time (a compaction's peak: about 2.5x this)
MAX_COMPACTION_MEMORY = 96 * 1024 * 1024


class FileSystem(Protocol):
    """Paths are '/'-separated and relative to the filesystem's root."""

    def write_atomic(self, path: str, data: bytes | memoryview) -> None: ...
    def list(self, prefix: str) -> list[str]: ...
    def read(self, path: str) -> bytes: ...
    def delete(self, path: str) -> None: ...
    def modified(self, path: str) -> float:
        """Epoch seconds of the last write."""
        ...

    def size(self, path: str) -> int: ...

    def uri(self, path: str) -> str:
        """Where a query engine (DuckDB, Spark) finds `path`."""
        ...

    def attach(self, con: duckdb.DuckDBPyConnection) -> None:
        """Let `con` read the URIs `uri` gives (a no-op for local paths)."""
        ...


class StoreError(UserError, OSError):
    """The store's backend failed (a refused, missing or throttled bucket). An OSError too, so
    a flush that meets it keeps the WAL segment and retries, as after a full disk."""


@dataclass(frozen=True)
class StoreLocation:
    """Where the Parquet store lives: `url` None is `<data_dir>/store`, else `s3://bucket/prefix`,
    reached with the AWS CLI's connection settings (None: the boto3 chain and AWS_ENDPOINT_URL)."""

    url: str | None = None
    endpoint_url: str | None = None
    profile: str | None = None
    region: str | None = None
    max_attempts: int = 10

    @property
    def is_s3(self) -> bool:
        return bool(self.url) and str(self.url).startswith("s3://")


def open_fs(data_dir: Path, location: StoreLocation | None = None) -> FileSystem:
    """The filesystem of a data directory's store."""
    if location is None or not location.url:
        return LocalFS(Path(data_dir) / "store")
    if location.is_s3:
        from ecsguard.aws.s3store import S3FS  # boto3 is imported only for an S3 store

        return S3FS.from_location(location)
    raise UserError(
        f"unknown store {location.url!r}",
        "give s3://bucket/prefix, or omit --store for the local store under --data-dir",
    )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalFS:
    """A local directory. `write_atomic` is durable when it returns: temp file, fsync, rename,
    fsync of the directory (and of any directory it had to create)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, path: str) -> Path:
        return self.root / PurePosixPath(path)

    def _makedirs(self, directory: Path) -> None:
        missing = []
        while not directory.exists():
            missing.append(directory)
            directory = directory.parent
        for new in reversed(missing):
            with contextlib.suppress(FileExistsError):
                new.mkdir()
            _fsync_dir(new.parent)  # the new entry must survive a crash too

    def write_atomic(self, path: str, data: bytes | memoryview) -> None:
        target = self._path(path)
        self._makedirs(target.parent)
        # the temp name does not end in .parquet, so readers' globs never match it
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        os.replace(tmp, target)
        _fsync_dir(target.parent)

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix)
        if not base.is_dir():
            return []
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )

    def read(self, path: str) -> bytes:
        return self._path(path).read_bytes()

    def delete(self, path: str) -> None:
        target = self._path(path)
        target.unlink(missing_ok=True)
        # drop partition directories left empty, up to the root
        parent = target.parent
        while parent != self.root and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent

    def modified(self, path: str) -> float:
        return self._path(path).stat().st_mtime

    def size(self, path: str) -> int:
        return self._path(path).stat().st_size

    def uri(self, path: str) -> str:
        return str(self._path(path))

    def attach(self, con: duckdb.DuckDBPyConnection) -> None:
        pass


def _utc_naive(times: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    # the stored values are UTC instants: dropping the zone keeps them and formats them as UTC
    return times.cast(pa.timestamp("us"))


_US_PER = {True: 3_600_000_000, False: 86_400_000_000}  # an hour, a day


def partition_index(table: str, data: pa.Table) -> pa.ChunkedArray | pa.Array:
    """Every row's partition as a number (hours or days since the epoch): integer arithmetic,
    no per-row text. A row without a time goes to 1970-01-01 rather than being dropped."""
    micros = pc.cast(_utc_naive(data.column("time")), pa.int64())
    micros = pc.fill_null(micros, 0)
    # integer division (times are never before the epoch, see records.parse_time)
    return pc.divide(micros, pa.scalar(_US_PER[table in HOURLY], pa.int64()))


def partition_name(table: str, index: int) -> str:
    """The Hive path of a partition number (`dt=…/hour=…` for logs, `dt=…` otherwise)."""
    start = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=index * _US_PER[table in HOURLY])
    return start.strftime("dt=%Y-%m-%d/hour=%H" if table in HOURLY else "dt=%Y-%m-%d")


def read_parquet(fs: FileSystem, path: str, columns: list[str] | None = None) -> pa.Table:
    """A Parquet file of `fs`, decoded on this thread. Arrow's pool threads could release the
    Python bytes it is read from after the call returned, and a pool thread doing so while the
    interpreter exits cannot take the GIL: the process aborted ("terminate called without an
    active exception", now and then, after an `ingest` that stored nothing). The files read
    whole are small ones (compaction, rollups) or one column of each (start-up). A column the
    file lacks is ArrowInvalid, as read_table says (ParquetFile alone would leave it out)."""
    parquet = pq.ParquetFile(pa.BufferReader(fs.read(path)))
    missing = set(columns or ()) - set(parquet.schema_arrow.names)
    if missing:
        raise pa.ArrowInvalid(f"{path} has no column {', '.join(sorted(missing))}")
    return parquet.read(columns=columns, use_threads=False)


def partition_date(partition: str) -> dt.date:
    """The day of a partition path such as `dt=2024-05-01/hour=07`."""
    first = partition.split("/", 1)[0]
    return dt.date.fromisoformat(first.removeprefix("dt="))


class Store:
    """Writes, lists, compacts and expires the Parquet files of the four tables."""

    def __init__(
        self,
        data_dir: Path,
        fs: FileSystem | None = None,
        location: StoreLocation | None = None,
    ) -> None:
        self.fs: FileSystem = fs if fs is not None else open_fs(data_dir, location)

    @staticmethod
    def _conform(table: str, data: pa.RecordBatch | pa.Table) -> pa.Table:
        schema = table_schema(table)
        tbl = pa.Table.from_batches([data]) if isinstance(data, pa.RecordBatch) else data
        if tbl.schema != schema:
            tbl = tbl.select(schema.names).cast(schema)
        return tbl

    def write(
        self, table: str, data: pa.RecordBatch | pa.Table, name: str | None = None
    ) -> list[str]:
        """Sort, split by partition and write one durable file per partition; their paths.
        With `name`, each file is `<partition>/<name>.parquet` (writing again replaces it)."""
        tbl = self._conform(table, data)
        if tbl.num_rows == 0:
            return []
        # one chunk first: taking rows from many chunks spends its time gathering across them
        tbl = tbl.combine_chunks()
        # the rows are not copied sorted nor split: each file takes its rows in sorted order,
        # a row group at a time (the flusher runs beside the receivers; its memory adds up)
        order = _sorted_order(table, tbl)
        keys = partition_index(table, tbl)
        sorted_keys = keys.take(order)
        written = []
        for key in pc.unique(keys).to_pylist():
            rows = order.filter(pc.equal(sorted_keys, key))  # filter keeps the sorted order
            written.append(self._write_file(table, partition_name(table, key), tbl, name, rows))
        return written

    def _write_file(
        self,
        table: str,
        partition: str,
        data: pa.Table,
        name: str | None,
        order: pa.Array | None = None,
    ) -> str:
        """Write `data`, or its rows `order` names in that order, as one durable file."""
        if name is None:
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
            name = f"{stamp}-{uuid.uuid4().hex}"
        path = f"{table}/{partition}/{name}.parquet"
        sink = pa.BufferOutputStream()
        # dictionaries only where values repeat (names, levels); unique texts (ids, messages)
        # would fill a dictionary page only to fall back to plain encoding
        # times, sorted within each run of a file, are small steps: delta-packed, not dictionaries
        times = [f.name for f in data.schema if pa.types.is_timestamp(f.type)]
        repeated = [c for c in data.column_names if c not in UNIQUE_COLUMNS and c not in times]
        ndv = max(1, min(data.num_rows if order is None else len(order), ROW_GROUP_ROWS))
        blooms = {
            column: {"ndv": ndv, "fpp": BLOOM_FPP}
            for column in BLOOM_COLUMNS.get(table, ())
            if column in data.column_names
        }
        # min/max of free texts and random ids never prune a row group: not computed (a tenth
        # of the write); the looked-up columns keep theirs beside their Bloom filters
        described = [c for c in data.column_names if c not in UNIQUE_COLUMNS or c in blooms]
        with pq.ParquetWriter(
            sink,
            data.schema,
            compression=COMPRESSION,
            use_dictionary=repeated,
            column_encoding=dict.fromkeys(times, "DELTA_BINARY_PACKED"),
            bloom_filter_options=blooms or None,
            write_statistics=described,
        ) as writer:
            if order is None:
                writer.write_table(data, row_group_size=ROW_GROUP_ROWS)
            else:  # a row group at a time: the sorted rows never exist all at once
                for start in range(0, len(order), ROW_GROUP_ROWS):
                    writer.write_table(data.take(order[start : start + ROW_GROUP_ROWS]))
        self.fs.write_atomic(path, memoryview(sink.getvalue()))  # no copy into bytes
        return path

    def files(self, table: str) -> list[str]:
        """Every Parquet file of `table`, including ones a running compaction is replacing."""
        return _parquet(self._listed(table))

    def _listed(self, table: str) -> list[str]:
        """Every object of `table`: one listing, which callers read both files and intents
        from (on S3 each listing is requests)."""
        table_schema(table)  # unknown names fail loudly
        return self.fs.list(table)

    def _intents(self, listed: Iterable[str]) -> list[tuple[str, str, list[str]]]:
        """(intent path, merged file path, replaced file paths) of the unfinished compactions
        among the listed objects."""
        found = []
        for path in listed:
            if path.endswith(_INTENT):
                directory = path.rsplit("/", 1)[0]
                try:
                    replaced = json.loads(self.fs.read(path))
                except (OSError, ValueError):  # deleted meanwhile, or torn: never finished
                    continue
                merged = path.removesuffix(_INTENT) + ".parquet"
                found.append((path, merged, [f"{directory}/{n}" for n in replaced]))
        return found

    def live_files(self, table: str) -> list[str]:
        """The files a query reads: each record exactly once, even mid-compaction."""
        listed = self._listed(table)
        files = _parquet(listed)
        present = set(files)
        hidden: set[str] = set()
        for _, merged, replaced in self._intents(listed):
            if merged in present:
                hidden.update(replaced)
            else:
                hidden.add(merged)
        return [p for p in files if p not in hidden]

    def recover(self) -> None:
        """Finish compactions a crash interrupted: drop the replaced files if the merged one
        is durable (what the compaction does next, so finishing a live one is harmless), else
        drop the intent (the old files stay) once it is stale. A younger one may be a live
        compaction of another process on a shared store: dropping its intent would let a third
        claim the same files, and both would keep a copy of every row."""
        now = dt.datetime.now(dt.UTC)
        for table in TABLES:
            listed = self._listed(table)
            present = set(_parquet(listed))
            for intent, merged, replaced in self._intents(listed):
                if merged in present:
                    for path in replaced:
                        self.fs.delete(path)
                elif 0 < _intent_age(intent, now) <= STALE_INTENT_SECONDS:
                    continue  # until stale it only holds its files back from compaction
                self.fs.delete(intent)

    def recent_files(self, table: str, since_epoch: float) -> list[str]:
        """Live files written at or after `since_epoch`."""
        recent = []
        for path in self.live_files(table):
            with contextlib.suppress(FileNotFoundError):  # compacted away meanwhile
                if self.fs.modified(path) >= since_epoch:
                    recent.append(path)
        return recent

    def partitions(self, table: str) -> list[str]:
        """Partition paths (`dt=…[/hour=…]`) that hold files, sorted."""
        return sorted({p.split("/", 1)[1].rsplit("/", 1)[0] for p in self.files(table)})

    def read(self, path: str, columns: list[str] | None = None) -> pa.Table:
        return read_parquet(self.fs, path, columns)

    def compact(self, table: str, partition: str) -> str | None:
        """Merge a partition's small files (up to MAX_COMPACTION_MEMORY of rows per call) into one
        sorted file without duplicate ids; the new file's path, or None if there was nothing to
        merge. Crash-safe through an intent file."""
        prefix = f"{table}/{partition}/"
        schema = table_schema(table)
        old: list[str] = []
        parts: list[pa.Table] = []
        in_memory = 0
        for path in self.live_files(table):
            if not path.startswith(prefix) or self.fs.size(path) >= SMALL_FILE_BYTES:
                continue
            stored = self.read(path)
            data = _indexed(table, upgrade(stored, schema), stored.schema)
            if parts and in_memory + data.nbytes > MAX_COMPACTION_MEMORY:
                break  # the rest waits for the next round
            old.append(path)
            parts.append(data)
            in_memory += data.nbytes
        if len(old) < 2:
            return None
        merged = _unique_ids(table, pa.concat_tables(parts))
        del parts
        order = _sorted_order(table, merged)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"c-{stamp}-{uuid.uuid4().hex}"
        intent = f"{prefix}{name}{_INTENT}"
        self.fs.write_atomic(intent, json.dumps([p.rsplit("/", 1)[1] for p in old]).encode())
        if self._contended(prefix, intent, old):
            self.fs.delete(intent)  # the other compaction has them; the next round may merge
            return None
        new = self._write_file(table, partition, merged, name, order)
        for path in old:
            self.fs.delete(path)
        self.fs.delete(intent)
        return new

    def _contended(self, prefix: str, intent: str, old: list[str]) -> bool:
        """Whether another compaction (another worker on the same store) has some of `old`:
        an unfinished intent naming one of them, or one of them gone already. Called after our
        own intent is written: of two compactions of the same files, at least the later to
        write its intent sees the other's, or sees the files gone, so never do both merge them
        (each would keep a copy of every row). An intent older than STALE_INTENT_SECONDS
        whose merged file never came is a crashed compaction's: it is removed, not waited for."""
        claimed = set(old)
        listed = self.fs.list(prefix.rstrip("/"))  # other partitions' intents name none of them
        present = set(listed)
        if not claimed <= present:
            return True
        now = dt.datetime.now(dt.UTC)
        for other, merged, replaced in self._intents(listed):
            if other == intent or not claimed.intersection(replaced):
                continue
            if merged not in present and _intent_age(other, now) > STALE_INTENT_SECONDS:
                self.fs.delete(other)
                continue
            return True
        return False

    def retention(self, table: str, days: int, now: dt.datetime) -> list[str]:
        """Delete whole partitions whose every row is older than `now - days` (their day ended
        by then); the deleted partition paths."""
        cutoff = (now.astimezone(dt.UTC) - dt.timedelta(days=days)).date()
        expired = [p for p in self.partitions(table) if partition_date(p) < cutoff]
        for partition in expired:
            for path in self.fs.list(f"{table}/{partition}"):
                self.fs.delete(path)
        return expired


def _sorted_order(table: str, data: pa.Table) -> pa.Array:
    """The row indices of `data` in the table's file order (SORT_KEYS).

    A text key is sorted as each value's rank among its few distinct values (clusters, services,
    names): the same order, since both compare the UTF-8 bytes and put nulls last, and integer
    comparisons took 40% off the sort of every flush and compaction."""
    keys = {}
    for key in SORT_KEYS[table]:
        column = data.column(key)
        if pa.types.is_string(column.type):
            encoded = column.combine_chunks().dictionary_encode()
            ranks = pc.rank(encoded.dictionary, sort_keys="ascending", tiebreaker="dense")
            column = pc.take(ranks, encoded.indices)
        keys[key] = column
    return pc.sort_indices(pa.table(keys), sort_keys=[(key, "ascending") for key in keys])


def _indexed(table: str, data: pa.Table, written: pa.Schema) -> pa.Table:
    """`data` with the request-id index filled when its file was written before the index
    existed (such rows read as null, "not indexed", and every needle query had to parse them)."""
    if table != "logs" or "request_id" in written.names or data.num_rows == 0:
        return data
    return with_request_ids(data)


def _parquet(listed: Iterable[str]) -> list[str]:
    return [p for p in listed if p.endswith(".parquet")]


def _intent_age(intent: str, now: dt.datetime) -> float:
    """Seconds since the compaction that wrote `intent` (`c-<UTC stamp>-<uuid>.compacting`)
    started; 0 for a name without a stamp (never taken for stale)."""
    stamp = intent.rsplit("/", 1)[-1].removeprefix("c-").split("-", 1)[0]
    try:
        started = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%S%fZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return 0.0
    return (now - started).total_seconds()


def _unique_ids(table: str, data: pa.Table) -> pa.Table:
    """The first row of every id (a client retry that raced past the service's id set)."""
    column = ID_COLUMN[table]
    if column is None or data.num_rows == 0:
        return data
    indexed = data.append_column("__row", pa.array(range(data.num_rows), pa.int64()))
    firsts = indexed.group_by(column, use_threads=False).aggregate([("__row", "min")])
    if firsts.num_rows == data.num_rows:
        return data  # every id once (the usual case): no filtered copy of every row
    keep = pc.is_in(indexed.column("__row"), value_set=firsts.column("__row_min"))
    return data.filter(pc.or_(keep, pc.is_null(data.column(column))))
