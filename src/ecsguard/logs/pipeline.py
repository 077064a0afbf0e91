"""WAL + Parquet store + DuckDB views: the durable core every receiver and query goes through.

`ingest` is the acknowledgement point (the batch is fsynced in the WAL). `flush` moves sealed WAL
segments into Parquet and deletes a segment only after its Parquet files are durable; segments left
by a crashed process are flushed the same way. `connect` gives DuckDB views over Parquet UNION the
not-yet-flushed WAL, de-duplicated by record id, so a crash between a Parquet write and the segment
delete (or a compaction interrupted half-way) never shows a record twice.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from ecsguard.core.errors import UserError
from ecsguard.logs.schema import ID_COLUMN, TABLES, table_schema
from ecsguard.logs.store import HOURLY, Store
from ecsguard.logs.wal import DEFAULT_SEGMENT_BYTES, Wal


def conform(table: str, batch: pa.RecordBatch) -> pa.RecordBatch:
    """`batch` in `table`'s exact schema, with a fresh id for every row that has none."""
    schema = table_schema(table)
    if batch.schema != schema:
        missing = [name for name in schema.names if name not in batch.schema.names]
        if missing:
            raise UserError(
                f"batch for table {table!r} lacks columns {', '.join(missing)}",
                f"expected the columns {', '.join(schema.names)}",
            )
        try:
            batch = batch.select(schema.names).cast(schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise UserError(f"batch for table {table!r} has wrong column types: {exc}") from exc
    id_column = ID_COLUMN[table]
    if id_column is not None:
        ids = batch.column(id_column)
        if ids.null_count:
            # the id is fixed before the acknowledgement, so every replay carries the same one
            fresh = pa.array([uuid.uuid4().hex for _ in range(len(ids))], pa.string())
            filled = pc.if_else(pc.is_null(ids), fresh, ids)
            batch = batch.set_column(schema.get_field_index(id_column), id_column, filled)
    return batch


def _view_sql(table: str, parquet_glob: str | None) -> str:
    columns = ", ".join(f'"{name}"' for name in table_schema(table).names)
    hourly = table in HOURLY
    # the WAL rows get the partition columns the Parquet rows read from their paths
    wal_parts = "CAST(time AS DATE) AS dt" + (
        ", CAST(date_part('hour', time) AS INTEGER) AS hour" if hourly else ""
    )
    parts = [f"SELECT {columns}, {wal_parts} FROM _wal_{table}"]
    if parquet_glob is not None:
        types = "{'dt': 'DATE', 'hour': 'INTEGER'}" if hourly else "{'dt': 'DATE'}"
        escaped = parquet_glob.replace("'", "''")
        parts.insert(
            0,
            f"SELECT {columns}, dt{', hour' if hourly else ''} FROM read_parquet('{escaped}', "
            f"hive_partitioning = true, hive_types = {types})",
        )
    union = " UNION ALL ".join(parts)
    id_column = ID_COLUMN[table]
    if id_column is None:
        return f"SELECT DISTINCT * FROM ({union})"  # no id: identical rows are one data point
    return (
        f'SELECT * FROM ({union}) QUALIFY "{id_column}" IS NULL '
        f'OR row_number() OVER (PARTITION BY "{id_column}") = 1'
    )


class Pipeline:
    """One data directory's WAL and store."""

    def __init__(self, data_dir: Path, *, segment_bytes: int = DEFAULT_SEGMENT_BYTES) -> None:
        self.data_dir = Path(data_dir)
        self.wal = Wal(self.data_dir / "wal", segment_bytes)
        self.store = Store(self.data_dir)
        self._flush_lock = threading.Lock()

    def ingest(self, table: str, batch: pa.RecordBatch) -> None:
        """Append `batch` durably; once this returns the batch may be acknowledged.
        Raises WalFullError (retryable) when the disk is full."""
        self.wal.append(table, conform(table, batch))

    def flush(self) -> dict[str, int]:
        """Move every sealed WAL segment (this process's open one is sealed first) to Parquet;
        rows written per table."""
        rows = dict.fromkeys(TABLES, 0)
        with self._flush_lock:
            for table in TABLES:
                self.wal.rotate(table)
                for segment in self.wal.segments(table):
                    with self.wal.claim(segment) as batches:
                        if batches is None:  # another process is writing or flushing it
                            continue
                        if batches:
                            data = pa.Table.from_batches([conform(table, b) for b in batches])
                            self.store.write(table, data)  # durable when it returns
                            rows[table] += data.num_rows
                        self.wal.delete(segment)
        return rows

    def connect(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with the views logs, cloudtrail, events, metrics."""
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        for table in TABLES:
            schema = table_schema(table)
            # the WAL is read before the Parquet files are listed: a segment flushed in between
            # is then found in Parquet, so nothing falls in the gap (duplicates are removed)
            batches = [conform(table, b) for _, b in self.wal.replay(table)]
            con.register(f"_wal_{table}", pa.Table.from_batches(batches, schema=schema))
            glob = None
            if self.store.files(table):
                glob = self.store.fs.uri(table) + "/**/*.parquet"
            con.execute(f'CREATE VIEW "{table}" AS {_view_sql(table, glob)}')
        return con

    def close(self) -> None:
        self.wal.close()
