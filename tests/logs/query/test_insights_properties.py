"""Property tests: the parser fails only with UserError; names and strings cannot leave their
quotes; the IP address tests agree with Python's ipaddress module."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

import duckdb
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecsguard.core.errors import UserError
from ecsguard.logs.query.insights import compile_query
from ecsguard.logs.query.insights.compiler import BUILTINS, COLUMNS
from ecsguard.logs.query.insights.functions import IPV4_RE, IPV6_RE
from ecsguard.logs.query.timerange import TimeRange

FIXTURE = HealthCheck.function_scoped_fixture  # the connection is shared; each example resets it
WINDOW = TimeRange(datetime(2026, 11, 28, 9, tzinfo=UTC), datetime(2026, 11, 28, 10, tzinfo=UTC))
VOCABULARY = [
    *("fields", "filter", "stats", "sort", "limit", "parse", "display", "dedup", "pattern"),
    *("by", "as", "and", "or", "not", "like", "in", "asc", "desc", "|", ",", "(", ")"),
    *("[", "]", "=", "!=", "<", ">=", "=~", "+", "-", "*", "/", "%", "^", "#"),
    *("count(*)", "count", "sum", "pct", "bin", "bin(5m)", "5m", "1h", "abs", "concat"),
    *("earliest", "ispresent", "isValidIp", "datefloor", "now()", "substr", "strlen"),
    *("@timestamp", "@message", "@log", "level", "service", "status", "a.b", "`x y`"),
    *("1", "2.5", "-3", "100", '"ERROR"', "'x'", "/err/", "/(?<n>\\d+)/", '"a=* b=*"'),
]


def insights_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def backticked(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def logs_table() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute(
        "CREATE TABLE logs (time TIMESTAMPTZ, ingest_time TIMESTAMPTZ, cluster VARCHAR, "
        "service VARCHAR, task VARCHAR, task_definition VARCHAR, container VARCHAR, "
        "stream VARCHAR, level VARCHAR, message VARCHAR, fields VARCHAR, source VARCHAR, "
        "id VARCHAR, dt DATE, hour INTEGER)"
    )
    return connection


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    """One JSON record the generated queries run over."""
    connection = logs_table()
    put_record(connection, "GET /a 500 a=1 b=2", '{"status": 500, "a": {"b": "2"}}')
    return connection


@pytest.fixture(scope="module")
def scratch() -> duckdb.DuckDBPyConnection:
    """A table each example refills."""
    return logs_table()


def json_key(name: str) -> bool:
    """Whether `name` reads from the JSON fields (not a column or an @ field)."""
    return name not in COLUMNS and name not in BUILTINS


def put_record(con: duckdb.DuckDBPyConnection, message: str, fields: str | None) -> None:
    con.execute("DELETE FROM logs")
    con.execute(
        "INSERT INTO logs VALUES (TIMESTAMPTZ '2026-11-28 09:30:00+00', "
        "TIMESTAMPTZ '2026-11-28 09:30:01+00', 'prod', 'api', 't', 'api:1', 'app', "
        "'stdout', 'INFO', ?, ?, 'firelens', 'id-1', DATE '2026-11-28', 9)",
        [message, fields],
    )


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_any_text_compiles_or_raises_a_user_error(text: str) -> None:
    try:
        compiled = compile_query(text, WINDOW)
    except UserError:
        return
    assert compiled.sql.startswith("WITH ")


@settings(max_examples=80, deadline=None, suppress_health_check=[FIXTURE])
@given(st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=12).map(" ".join))
def test_token_soup_compiles_to_sql_duckdb_runs(con: duckdb.DuckDBPyConnection, text: str) -> None:
    try:
        compiled = compile_query(text, WINDOW)
    except UserError:
        return
    # what compiles runs: a DuckDB error here is a compiler bug, not the user's
    result = con.execute(compiled.sql)
    assert [d[0] for d in result.description or []] == list(compiled.columns)


FIELDS = ["@timestamp", "@message", "@log", "@ingestionTime", "level", "service", "status", "a.b"]
FUNCTIONS = {  # name: argument count
    **dict.fromkeys(["abs", "ceil", "floor", "log", "sqrt", "strlen", "toupper", "tolower"], 1),
    **dict.fromkeys(["trim", "ltrim", "rtrim", "ispresent", "isempty", "isblank", "round"], 1),
    **dict.fromkeys(["fromMillis", "toMillis", "isValidIp", "isValidIpV4", "isValidIpV6"], 1),
    **dict.fromkeys(["concat", "coalesce", "greatest", "least", "pow", "strcontains"], 2),
    **dict.fromkeys(["substr", "replace"], 3),
}
AGGREGATES = ["count", "count_distinct", "sum", "avg", "min", "max", "stddev", "earliest", "latest"]
leaves = st.sampled_from([*FIELDS, "1", "2.5", '"x"', '"500"', "now()", "bin(5m)"])


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    call = st.sampled_from(sorted(FUNCTIONS)).flatmap(
        lambda name: st.lists(children, min_size=FUNCTIONS[name], max_size=FUNCTIONS[name]).map(
            lambda args: f"{name}({', '.join(args)})"
        )
    )
    operator = st.sampled_from(["+", "-", "*", "/", "%", "^", "=", "!=", "<", ">=", "and", "or"])
    binary = st.tuples(children, operator, children).map(lambda t: f"({t[0]} {t[1]} {t[2]})")
    unary = children.map(lambda c: f"(not {c})") | children.map(lambda c: f"-({c})")
    like = children.map(lambda c: f"({c} like /x|5/)") | children.map(
        lambda c: f"({c} in [1, 'a'])"
    )
    periods = st.sampled_from(["datefloor", "dateceil"]).map(lambda f: f"{f}(@timestamp, 1h)")
    return call | binary | unary | like | periods


expressions = st.recursive(leaves, _combine, max_leaves=6)
aggregate = st.tuples(st.sampled_from(AGGREGATES), expressions).map(lambda t: f"{t[0]}({t[1]})")
commands = st.one_of(
    expressions.map(lambda e: f"filter {e}"),
    st.lists(expressions, min_size=1, max_size=3).map(
        lambda es: "fields " + ", ".join(f"{e} as f{i}" for i, e in enumerate(es))
    ),
    expressions.map(lambda e: f"sort {e} asc"),
    st.sampled_from(["limit 3", "dedup level", "display level, status", 'parse "* *" as p, q']),
)
queries = st.tuples(
    st.lists(commands, max_size=3),
    st.lists(aggregate, max_size=2),
    st.lists(expressions, max_size=2),
).map(
    lambda t: (
        " | ".join(
            [
                *t[0],
                *(
                    [
                        "stats "
                        + ", ".join(f"{a} as s{i}" for i, a in enumerate(t[1]))
                        + (
                            " by " + ", ".join(f"{b} as g{i}" for i, b in enumerate(t[2]))
                            if t[2]
                            else ""
                        )
                    ]
                    if t[1]
                    else []
                ),
            ]
        )
        or "fields @message"
    )
)


@settings(max_examples=80, deadline=None, suppress_health_check=[FIXTURE])
@given(queries)
def test_generated_queries_run_in_duckdb(con: duckdb.DuckDBPyConnection, text: str) -> None:
    try:
        compiled = compile_query(text, WINDOW)
    except UserError as error:  # only the errors a well-formed query can still meet
        assert "cannot follow dedup" in error.problem or "is not a condition" in error.problem
        return
    result = con.execute(compiled.sql)
    assert [d[0] for d in result.description or []] == list(compiled.columns)


@settings(max_examples=40, deadline=None, suppress_health_check=[FIXTURE])
@given(name=st.text(min_size=1, max_size=20).filter(json_key), value=st.text(max_size=20))
def test_names_and_strings_stay_inside_their_quotes(
    scratch: duckdb.DuckDBPyConnection, name: str, value: str
) -> None:
    con = scratch
    put_record(con, value, orjson.dumps({name: value}).decode())
    query = (
        f"filter {backticked(name)} = {insights_string(value)} "
        f"and @message like {insights_string(value)} "
        f"| fields concat({insights_string(value)}) as {backticked(name + '!')}, "
        f"{backticked(name)}"
    )
    compiled = compile_query(query, WINDOW)
    assert compiled.columns == (name + "!", name)
    result = con.execute(compiled.sql)
    assert [d[0] for d in result.description or []] == [name + "!", name]
    assert result.fetchall() == [(value, value)]
    assert con.execute("SELECT count(*) FROM logs").fetchone() == (1,)


def _valid(text: str, version: type[ipaddress.IPv4Address | ipaddress.IPv6Address]) -> bool:
    try:
        version(text)
    except ValueError:
        return False
    return True


candidates = st.one_of(
    st.ip_addresses(v=6).flatmap(lambda ip: st.sampled_from([str(ip), ip.exploded])),
    st.ip_addresses(v=4).map(str),
    st.text(alphabet="0123456789abcdefABCDEFg:.", max_size=45),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[FIXTURE])
@given(st.lists(candidates, min_size=1, max_size=60))
def test_ip_checks_agree_with_ipaddress(con: duckdb.DuckDBPyConnection, texts: list[str]) -> None:
    rows = con.execute(
        "SELECT regexp_matches(t, ?), regexp_matches(t, ?) FROM unnest(?) AS u(t)",
        [IPV4_RE, IPV6_RE, texts],
    ).fetchall()
    for text, (v4, v6) in zip(texts, rows, strict=True):
        assert v4 == _valid(text, ipaddress.IPv4Address), text
        assert v6 == _valid(text, ipaddress.IPv6Address), text
