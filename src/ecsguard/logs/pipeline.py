"""WAL + Parquet store + DuckDB views: the durable core every receiver and query goes through.

`ingest` is the acknowledgement point (the batch is fsynced in the WAL). `flush` moves sealed WAL
segments into Parquet files named after the segment and deletes a segment only after its files are
durable; segments left by a crashed process are flushed the same way, replacing any files a crashed
flush wrote. `connect` gives DuckDB views over the live Parquet files UNION ALL the WAL; files of a
segment the view already reads from the WAL are left out, so no record is counted twice and no
query pays for de-duplication.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from ecsguard.core.errors import UserError
from ecsguard.core.runtime import spread_native_threads
from ecsguard.logs.records import with_request_ids
from ecsguard.logs.schema import ID_COLUMN, TABLES, table_schema
from ecsguard.logs.store import HOURLY, Store, StoreLocation
from ecsguard.logs.wal import DEFAULT_SEGMENT_BYTES, FrameParts, Wal


def conform(table: str, batch: pa.RecordBatch, *, written: bool = False) -> pa.RecordBatch:
    """`batch` in `table`'s exact schema, with a fresh id for every row that has none.
    `written`: the batch comes from the WAL, maybe of an older version, so columns added since
    then are filled with nulls instead of refused."""
    schema = table_schema(table)
    if batch.schema != schema:
        missing = [name for name in schema.names if name not in batch.schema.names]
        if missing and written:
            for name in missing:
                field = schema.field(name)
                batch = batch.append_column(field, pa.nulls(batch.num_rows, field.type))
        elif missing:
            raise UserError(
                f"batch for table {table!r} lacks columns {', '.join(missing)}",
                f"expected the columns {', '.join(schema.names)}",
            )
        try:
            batch = batch.select(schema.names).cast(schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise UserError(f"batch for table {table!r} has wrong column types: {exc}") from exc
    if table == "logs" and not written:
        batch = _index_request_ids(batch)
    id_column = ID_COLUMN[table]
    if id_column is not None:
        ids = batch.column(id_column)
        if ids.null_count:
            # the id is fixed before the acknowledgement, so every replay carries the same one
            fresh = pa.array([uuid.uuid4().hex for _ in range(len(ids))], pa.string())
            filled = pc.if_else(pc.is_null(ids), fresh, ids)
            batch = batch.set_column(schema.get_field_index(id_column), id_column, filled)
    return batch


def _index_request_ids(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Fill the `request_id` index of a new logs batch that has none: every receiver's batch
    passes here before the WAL. A batch read back from the WAL keeps what it has (null in
    segments written before the column existed: queries fall back to the JSON)."""
    if batch.num_rows == 0 or batch.column("request_id").null_count < batch.num_rows:
        return batch
    return with_request_ids(batch)


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _view_sql(table: str, parquet_files: list[str]) -> str:
    columns = ", ".join(f'"{name}"' for name in table_schema(table).names)
    hourly = table in HOURLY
    # the WAL rows get the partition columns the Parquet rows read from their paths
    wal_parts = "CAST(time AS DATE) AS dt" + (
        ", CAST(date_part('hour', time) AS INTEGER) AS hour" if hourly else ""
    )
    wal = f"SELECT {columns}, {wal_parts} FROM _wal_{table}"
    if not parquet_files:
        return wal
    types = "{'dt': 'DATE', 'hour': 'INTEGER'}" if hourly else "{'dt': 'DATE'}"
    listing = ", ".join(_sql_text(path) for path in parquet_files)
    # union_by_name: files written before a column was added read it as NULL; BY NAME with the
    # WAL (always the whole schema) does the same when no file has the column yet
    parquet = (
        f"SELECT * FROM read_parquet([{listing}], "
        f"hive_partitioning = true, hive_types = {types}, union_by_name = true)"
    )
    return (
        f"SELECT {columns}, dt{', hour' if hourly else ''} FROM ({parquet} UNION ALL BY NAME {wal})"
    )


def segment_file_name(segment: Path) -> str:
    """The Parquet file name (without suffix) of a WAL segment's rows, in every partition."""
    return f"w-{segment.stem}"


class Pipeline:
    """One data directory's WAL and store (under the data directory, or `store` such as S3;
    the WAL is always on local disk)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        store: StoreLocation | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.location = store
        self.wal = Wal(self.data_dir / "wal", segment_bytes)
        self.store = Store(self.data_dir, location=store)
        self._flush_lock = threading.Lock()

    def ingest(self, table: str, batch: pa.RecordBatch) -> FrameParts:
        """Append `batch` durably; once this returns the batch may be acknowledged. The WAL
        frame written (header, payload). Raises WalFullError (retryable) when the disk is full."""
        return self.wal.append(table, conform(table, batch))

    def flush(self, max_age: float | None = None) -> dict[str, int]:
        """Move every sealed WAL segment to Parquet; rows written per table. This process's open
        segment is sealed first, or with `max_age` only once it is that many seconds old (a busy
        table's segments seal when full)."""
        rows = dict.fromkeys(TABLES, 0)
        with self._flush_lock:
            for table in TABLES:
                self.wal.rotate(table, older_than=max_age)
                for segment in self.wal.segments(table):
                    with self.wal.claim(segment) as claimed:
                        if claimed is None:  # another process is writing or flushing it
                            continue
                        if claimed.batches:
                            batches = [conform(table, b, written=True) for b in claimed.batches]
                            data = pa.Table.from_batches(batches)
                            # durable when it returns; a re-flush replaces the same files
                            self.store.write(table, data, name=segment_file_name(segment))
                            rows[table] += data.num_rows
                        self.wal.delete(segment)
        return rows

    def connect(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with the views logs, cloudtrail, events, metrics."""
        with spread_native_threads():  # DuckDB's threads use every CPU, not the server's one
            con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        self.store.fs.attach(con)
        for table in TABLES:
            schema = table_schema(table)
            # the WAL is read before the Parquet files are listed, so a segment flushed in
            # between falls in no gap; its files are then skipped, as its rows are read here
            segments = list(self.wal.read_segments(table))
            batches = [conform(table, b, written=True) for s in segments for b in s.batches]
            con.register(f"_wal_{table}", pa.Table.from_batches(batches, schema=schema))
            read = {segment_file_name(s.path) + ".parquet" for s in segments}
            files = [
                self.store.fs.uri(path)
                for path in self.store.live_files(table)
                if path.rsplit("/", 1)[1] not in read
            ]
            con.execute(f'CREATE VIEW "{table}" AS {_view_sql(table, files)}')
        return con

    def close(self) -> None:
        self.wal.close()
