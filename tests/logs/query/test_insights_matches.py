"""`compile_matches`: the records an Insights query keeps before its first stats (what the
console's histogram and facets count), on the golden tests' store."""

from __future__ import annotations

import duckdb
import pytest
from tests.logs.query.test_insights import NOW, WINDOW, W, con  # noqa: F401  (the fixture)

from ecsguard.core.errors import UserError
from ecsguard.logs.query.insights import compile_matches


def count(db: duckdb.DuckDBPyConnection, sql: str) -> int:
    found = db.execute(f"SELECT count(*) FROM ({sql})").fetchone()
    assert found is not None
    return int(found[0])


def expected(db: duckdb.DuckDBPyConnection, where: str) -> int:
    return count(db, f"SELECT * FROM logs WHERE {W} AND {where}")


def test_filters_count_and_stats_sort_limit_display_do_not(
    con: duckdb.DuckDBPyConnection,  # noqa: F811
) -> None:
    query = (
        'filter service = "api" | fields @timestamp, @message | sort @timestamp asc '
        "| limit 5 | display @message | stats count(*) by level | filter level = 'ERROR'"
    )
    sql = compile_matches(query, WINDOW, now=NOW)
    assert count(con, sql) == expected(con, "service = 'api'") > 5
    # every column of the view is there, for the console's time buckets and facets
    names = [d[0] for d in con.execute(f"SELECT * FROM ({sql}) LIMIT 0").description or []]
    assert {"time", "cluster", "service", "level", "message"} <= set(names)


def test_a_query_without_filter_matches_the_window(
    con: duckdb.DuckDBPyConnection,  # noqa: F811
) -> None:
    sql = compile_matches("stats count(*) by service", WINDOW, now=NOW)
    assert count(con, sql) == expected(con, "true")


def test_a_bad_query_raises_like_compile_query() -> None:
    with pytest.raises(UserError, match="line 1"):
        compile_matches("filter service = | stats count(*)", WINDOW, now=NOW)
    # an error after the first stats counts too: the whole query must be valid
    with pytest.raises(UserError):
        compile_matches("stats count(*) by service | sort nosuch(", WINDOW, now=NOW)
