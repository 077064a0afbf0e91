"""Every way an Insights query can be wrong gets one clear UserError, with a position when the
text is at fault; the query text never reaches the SQL unquoted."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pytest

from ecsguard.core.errors import UserError
from ecsguard.logs.query.insights import compile_query
from ecsguard.logs.query.timerange import TimeRange

WINDOW = TimeRange(datetime(2026, 11, 28, 9, tzinfo=UTC), datetime(2026, 11, 28, 10, tzinfo=UTC))

# (query, a fragment of the problem, the position it names or None)
ERRORS: list[tuple[str, str, str | None]] = [
    # lexer
    ("filter a { b", "unexpected character '{'", "line 1, column 10"),
    ('filter a = "abc', "unterminated string", "line 1, column 12"),
    ("fields ``", "empty field name", "line 1, column 8"),
    ("fields `abc", "unterminated field name", "line 1, column 8"),
    ("filter a like /abc", "unterminated regular expression", "line 1, column 15"),
    ("stats count(*) by bin(5x)", "unknown time unit 'x' in '5x'", "line 1, column 23"),
    # parser
    ("", "the query is empty", None),
    ("  # only a comment\n", "the query is empty", None),
    ("pattern @message", "the Insights command 'pattern' is not supported", "line 1, column 1"),
    ("fields a | diff", "the Insights command 'diff' is not supported", "line 1, column 12"),
    ("unmask @message", "'unmask' is not supported", "line 1, column 1"),
    ("anomaly", "'anomaly' is not supported", "line 1, column 1"),
    ("filterIndex a = 1", "'filterIndex' is not supported", "line 1, column 1"),
    ("fields a | frobnicate b", "unexpected 'frobnicate'", "line 1, column 12"),
    ("filter level = 'ERRO' by", "unexpected 'by'", "line 1, column 23"),
    ("filter level =", "unexpected end of query", "line 1, column 15"),
    ("fields a\n| filter b = \n| limit 1", "unexpected '|'", "line 3, column 1"),
    ("limit 0", "unexpected '0'", "line 1, column 7"),
    ("limit 1.5", "unexpected '1.5'", "line 1, column 7"),
    ("limit ten", "unexpected 'ten'", "line 1, column 7"),
    ("parse @message as x", "unexpected 'as'", "line 1, column 16"),
    ("filter (a = 1", "unexpected end of query", "line 1, column 14"),
    ("fields a as 1", "unexpected '1'", "line 1, column 13"),
    ("fields a,", "unexpected end of query", "line 1, column 10"),
    ("stats count(*) by", "unexpected end of query", "line 1, column 18"),
    ("filter a not b", "unexpected 'not'", "line 1, column 10"),
    # compiler
    ("stats count(*) as n | fields level", "unknown field 'level' after stats", "column 30"),
    ("stats count(*) as n | sort @timestamp", "unknown field '@timestamp' after stats", None),
    ("stats level", "field 'level' must be inside an aggregate function", "line 1, column 7"),
    ("filter count(*) > 1", "count() is an aggregate: use it in stats", "line 1, column 8"),
    ("stats sum(count(*))", "count() cannot be inside another aggregate", "line 1, column 11"),
    ("fields frob(a)", "unknown function 'frob'", "line 1, column 8"),
    ("fields abs(1, 2)", "abs() takes 1 arguments, not 2", "line 1, column 8"),
    ("fields substr(a)", "substr() takes 2 to 3 arguments, not 1", "line 1, column 8"),
    ("fields concat()", "concat() takes 1 or more arguments, not 0", "line 1, column 8"),
    ("stats count(a, b)", "count() takes 0 to 1 arguments, not 2", "line 1, column 7"),
    ("fields abs(*)", "* goes only in count(*)", "line 1, column 12"),
    ("stats sum(*)", "* goes only in count(*)", "line 1, column 11"),
    ("filter a = /x/", "a /regex/ goes only after like or =~", "line 1, column 12"),
    ("filter a > 5m", "a period (5m) goes only in bin()", "line 1, column 12"),
    ("filter level", "'level' is not a condition", "line 1, column 8"),
    ('filter "abc"', "'\"abc\"' is not a condition", "line 1, column 8"),
    ("filter a > 1e999", "the number 1e999 is too large", "line 1, column 12"),
    ("filter a > 99999999999999999999", "is too large", "line 1, column 12"),
    ("filter a like b", 'like and =~ take a "substring" or a /regex/', "line 1, column 15"),
    ("filter a =~ 5", 'like and =~ take a "substring" or a /regex/', "line 1, column 13"),
    ("filter a in [b]", "in [...] takes strings and numbers", "line 1, column 14"),
    ("stats count(*) by bin(5)", "bin() needs a period such as 5m", "line 1, column 23"),
    ("fields datefloor(@timestamp, 0ms)", "datefloor() needs a period", "line 1, column 30"),
    ("stats count(*) by bin(1.5mo)", "bin() needs a period", "line 1, column 23"),
    (
        "stats count(*) as n by service | stats earliest(n)",
        "earliest() needs @timestamp, which is gone after stats",
        "line 1, column 40",
    ),
    ("stats count(*) as n | stats count(*) by bin(1m)", "bin() needs @timestamp", None),
    ("filter isIpInSubnet(ip, subnet)", "isIpInSubnet() takes a subnet", "line 1, column 25"),
    ('filter isIpInSubnet(ip, "nope")', "'nope' is not a subnet", "line 1, column 25"),
    ('filter isIpInSubnet(ip, "2001:db8::/32")', "IPv6 subnets are not supported", None),
    ('filter isIpv6InSubnet(ip, "10.0.0.0/8")', "IPv6 subnets are not supported", None),
    ("stats pct(a, 101)", "pct() takes a percentile from 0 to 100", "line 1, column 14"),
    ("stats pct(a, b)", "pct() takes a percentile from 0 to 100", "line 1, column 14"),
    ("stats count(*), count(*)", "stats returns 'count(*)' twice", "line 1, column 17"),
    ("dedup a | sort b", "sort cannot follow dedup", "line 1, column 11"),
    ('parse @message "a=* b=*" as x', "the pattern has 2 * but 1 names follow as", "column 16"),
    ('parse @message "no star" as x', "the pattern has 0 * but 1 names", "column 16"),
    ("parse @message /(?<a>x)/ as b", "names its fields with (?<name>...) groups", "column 16"),
    ("parse @message /(x)/", "the /regex/ has no named group", "line 1, column 16"),
]


@pytest.mark.parametrize(("query", "problem", "position"), ERRORS, ids=[e[0] for e in ERRORS])
def test_bad_queries_get_one_clear_error(query: str, problem: str, position: str | None) -> None:
    with pytest.raises(UserError) as caught:
        compile_query(query, WINDOW)
    assert problem in caught.value.problem
    if position is not None:
        assert position in caught.value.problem
    assert caught.value.hint or "empty" not in problem


def test_syntax_error_message_reads_as_documented() -> None:
    with pytest.raises(UserError) as caught:
        compile_query("filter level = 'ERRO' by", WINDOW)
    assert caught.value.problem == "unexpected 'by' at line 1, column 23"


def test_injection_attempts_stay_inside_their_quotes() -> None:
    message = "x'; DROP TABLE logs; --"
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE logs AS SELECT TIMESTAMPTZ '2026-11-28 09:30:00+00' AS time, "
        "? AS message, '{\"a\": 1}' AS fields, 'c' AS cluster, 's' AS service, 'id1' AS id, "
        "DATE '2026-11-28' AS dt, 9 AS hour",
        [message],
    )
    hostile = {
        'filter @message like "\'; DROP TABLE logs; --" | fields @message': message,
        "filter @message like /'; DROP TABLE logs; --/ | fields @message": message,
        'filter @message in ["x\'; DROP TABLE logs; --"] | fields @message': message,
        'fields `"; DROP TABLE logs; --` | filter ispresent(@message)': None,
        'fields concat(`a\'); DROP TABLE logs; --`, @message) as `b""; x`': message,
        'parse @message "x\'; DROP * --" as `"y` | fields `"y`': "TABLE logs;",
    }
    for query, value in hostile.items():
        compiled = compile_query(query, WINDOW)
        rows = con.execute(compiled.sql).fetchall()
        assert con.execute("SELECT count(*) FROM logs").fetchone() == (1,), query
        assert rows == [(value,)], (query, rows)
    names = compile_query('fields a | fields `b""; x`, `\'c`', WINDOW).columns
    assert names == ("a", 'b""; x', "'c")
