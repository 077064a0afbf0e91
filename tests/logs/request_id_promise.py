"""The request-id index's promise, as DuckDB (what queries use) reads the stored `fields`."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from ecsguard.logs.records import REQUEST_ID_KEYS


def assert_request_id_promise(batch: pa.RecordBatch) -> None:
    """A record whose key K DuckDB reads as the text x has request_id x or null, so
    `request_id = x` never skips a record a JSON test would match."""
    con = duckdb.connect()
    con.register("b", pa.Table.from_batches([batch]))
    for key in REQUEST_ID_KEYS:
        path = '$."' + key + '"'
        rows = con.execute(
            "SELECT request_id, json_extract_string(fields, ?) FROM b"
            " WHERE json_type(fields, ?) = 'VARCHAR'",
            [path, path],
        ).fetchall()
        for indexed, value in rows:
            assert indexed is None or indexed == value, (key, indexed, value)
