"""`ecsguard logs filter`: a filter pattern over the `logs` view, in SQL wherever SQL can say it.

Terms, phrases, regexes and space-delimited patterns test `message`. JSON patterns test the
record's JSON: `fields` (a JSON log line as received, with the receiver's extras) when the record
has one, else `message`, since a JSON line's `message` column holds only its message text.
A JSON pattern that needs a request id (`{ $.request_id = "x" }`) also tests the `request_id`
index column, so DuckDB reads only the row groups whose Bloom filter may hold the id.
Patterns SQL cannot express run as a SQL prefilter, then `mask` over the fetched Arrow batches,
stopping at the limit.
"""

from __future__ import annotations

from typing import Any

import duckdb

from ecsguard.core.errors import UserError
from ecsguard.logs.query.filter_pattern.pattern import FilterPattern
from ecsguard.logs.query.filter_pattern.sql import request_id_sql, request_id_values
from ecsguard.logs.query.timerange import TimeRange

COLUMNS = ("time", "cluster", "service", "container", "level", "message")
BATCH_ROWS = 65_536


def text_column(pattern: FilterPattern) -> str:
    return "coalesce(fields, message)" if pattern.kind == "json" else "message"


def where_clause(
    pattern: FilterPattern,
    window: TimeRange,
    *,
    cluster: str | None = None,
    service: str | None = None,
    level: str | None = None,
) -> tuple[str, list[Any], bool]:
    """The WHERE condition of a search over `logs`, its parameters, and whether it is exact
    (False: the rows it selects still need `pattern.mask` over the text column)."""
    column = text_column(pattern)
    where = [window.sql("time")]
    params: list[Any] = []
    for name, value in (("cluster", cluster), ("service", service), ("level", level)):
        if value is not None:
            where.append(f"{name} = ?")
            params.append(value)
    ids = request_id_values(pattern.tree)
    if ids is not None:  # before the JSON test: row groups without the id are skipped
        where.append(request_id_sql(ids))
    exact = pattern.sql(column)
    where.append(exact if exact is not None else pattern.prefilter_sql(column))
    return " AND ".join(where), params, exact is not None


def search_logs(
    con: duckdb.DuckDBPyConnection,
    pattern: FilterPattern,
    window: TimeRange,
    *,
    cluster: str | None = None,
    service: str | None = None,
    level: str | None = None,
    limit: int | None = 100,
    columns: tuple[str, ...] = COLUMNS,
    newest_first: bool = False,
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Matching log records in time order (oldest first, as FilterLogEvents returns them;
    `newest_first` for a console)."""
    column = text_column(pattern)
    where, params, exact = where_clause(
        pattern, window, cluster=cluster, service=service, level=level
    )
    select = ", ".join(columns)
    order = "time DESC" if newest_first else "time"
    query = f"SELECT {select}, {column} AS _text FROM logs WHERE {where} ORDER BY {order}"
    if exact and limit:
        query += f" LIMIT {int(limit)}"
    try:
        reader = con.sql(query, params=params).to_arrow_reader(BATCH_ROWS)
        rows: list[tuple[Any, ...]] = []
        for batch in reader:
            if not exact:
                batch = batch.filter(pattern.mask(batch.column("_text")))
            for record in batch.select(list(columns)).to_pylist():
                rows.append(tuple(record[name] for name in columns))
                if limit and len(rows) >= limit:
                    return list(columns), rows
    except duckdb.Error as err:
        first = str(err).splitlines()[0]
        raise UserError(f"search failed: {first}", "check the data directory") from None
    return list(columns), rows
