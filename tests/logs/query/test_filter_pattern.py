"""Filter patterns: AWS's documented cases, the SQL path agreeing with the Python path, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from ecsguard.core.errors import UserError
from ecsguard.logs.query.filter_pattern import FilterPattern, compile_pattern
from ecsguard.logs.query.filter_pattern.pattern import IN_PYTHON_BELOW

TESTDATA = Path(__file__).parents[3].parent / "shared" / "testdata"
CASES_FILE = json.loads((TESTDATA / "logs" / "filter-pattern-cases.json").read_text())
CASES = CASES_FILE["cases"]
INVALID = CASES_FILE["invalid_patterns"]

APACHE = [
    '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534',
    '127.0.0.1 - frank [10/Oct/2000:13:35:22 -0700] "GET /apache_pb.gif HTTP/1.0" 500 5324',
    '127.0.0.1 - frank [10/Oct/2000:13:50:35 -0700] "GET /apache_pb.gif HTTP/1.0" 200 4355',
]
CLOUDTRAIL_DOC = (
    '{"eventType":"UpdateTrail","sourceIPAddress":"111.111.111.111","arrayKey":["value",'
    '"another value"],"objectList":[{"name":"a","id":1},{"name":"b","id":2}],'
    '"SomeObject":null,"ThisFlag":true}'
)
COMPOUND_DOC = (
    '{"user":{"id":1,"email":"John.Stiles@example.com"},"users":[{"id":2,"email":'
    '"John.Doe@example.com"},{"id":3,"email":"Jane.Doe@example.com"}],"actions":["GET","PUT",'
    '"DELETE"],"coordinates":[[0,1,2],[4,5,6],[7,8,9]]}'
)
# messages every pattern is also run on, to compare the SQL and Python paths beyond the cases
PROBES = [
    "",
    "ERROR",
    "error",
    "ab\n",
    "x\nhat",
    "tab\x0bhere",
    '{"a": 1, "a": "x"}',
    '{"n": NaN, "foo": "bar"}',
    '{"n": 18446744073709551616, "foo": 1e3}',
    "[1, 2]",
    '"just a string"',
    "{not json",
    '  {"eventType": "UpdateTrail"}  ',
    CLOUDTRAIL_DOC,
    COMPOUND_DOC,
    *APACHE,
]


def matches(pattern: str, *messages: str) -> list[bool]:
    compiled = compile_pattern(pattern)
    return [compiled.match(m) is not None for m in messages]


DUCKDB = duckdb.connect()  # one for the module: a connection costs tens of milliseconds


def run_predicate(predicate: str, messages: list[str | None]) -> list[bool]:
    DUCKDB.register("events", pa.table({"message": pa.array(messages, pa.string())}))
    return [row[0] for row in DUCKDB.sql(f"SELECT {predicate} FROM events").fetchall()]


def sql_matches(compiled: FilterPattern, messages: list[str | None]) -> list[bool]:
    predicate = compiled.sql("message")
    assert predicate is not None
    return run_predicate(predicate, messages)


# ---------------------------------------------------------------------- the documented cases


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_documented_case(case: dict[str, Any]) -> None:
    found = compile_pattern(case["pattern"]).match(case["event"])
    assert (found is not None) == case["expected_match"], case.get("note")
    if "expected_fields" in case:
        assert found is not None and found.extracted_values == case["expected_fields"]


@pytest.mark.parametrize("case", INVALID, ids=[c["pattern"] for c in INVALID])
def test_documented_invalid_pattern(case: dict[str, Any]) -> None:
    with pytest.raises(UserError, match="position"):
        compile_pattern(case["pattern"])


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_sql_and_mask_agree_with_python(case: dict[str, Any]) -> None:
    compiled = compile_pattern(case["pattern"])
    messages: list[str | None] = [*sorted({c["event"] for c in CASES}), *PROBES, None]
    python = [m is not None and compiled.match(m) is not None for m in messages]
    assert compiled.mask(pa.array(messages, pa.string())).to_pylist() == python
    copies = IN_PYTHON_BELOW // len(messages) + 1  # enough rows for mask to use DuckDB
    assert compiled.mask(pa.array(messages * copies, pa.string())).to_pylist() == python * copies
    if compiled.sql() is not None:
        assert sql_matches(compiled, messages) == python
    else:  # the prefilter may let more through, never fewer
        kept = run_predicate(compiled.prefilter_sql(), messages)
        assert all(k for k, p in zip(kept, python, strict=True) if p)


# ------------------------------------------------------------- more of AWS's documented rules


def test_terms_are_case_sensitive_substrings() -> None:
    # the docs: ERROR matches "Exiting with ERRORCODE: -1"
    assert matches("ERROR", "Exiting with ERRORCODE: -1", "error") == [True, False]
    assert matches('"ERROR" - "Exiting"', "Exiting with ERRORCODE: -1", "[ERROR] x") == [
        False,
        True,
    ]


def test_or_terms_are_ignored_next_to_other_terms() -> None:
    events = ["ERROR WARN message", "ERROR message", "WARN message", "INFO"]
    assert matches("?ERROR ?WARN", *events) == [True, True, True, False]
    assert matches("ERROR -WARN", *events) == [False, True, False, False]
    # mixed: the ? term is dropped, so this is just WARN
    assert matches("WARN ?ERROR", *events) == [True, False, True, False]
    assert matches("?ERROR -WARN", *events) == [False, True, False, True]
    assert matches('?" " ?x', *events) == [True] * 4
    assert matches('?" " WARN', *events) == [True, False, True, False]


def test_empty_and_blank_patterns_match_everything() -> None:
    for pattern in ("", "   ", '""', '" "', '?" "'):
        assert compile_pattern(pattern).kind == "all"
        assert matches(pattern, "anything", "") == [True, True]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ('{ $.eventType = "UpdateTrail" }', True),
        ("{ $.sourceIPAddress != 123.123.* }", True),
        ("{ $.sourceIPAddress = 111.* }", True),
        ("{ $.sourceIPAddress = *.111 }", True),
        ("{ $.sourceIPAddress = 111*111 }", False),  # a * inside is a literal *
        ('{ $.arrayKey[0] = "value" }', True),
        ("{ $.arrayKey[1] = %^another% }", True),
        ("{ $.arrayKey[2] NOT EXISTS }", True),
        ("{ $.objectList[1].id = 2 }", True),
        ("{ $.objectList[1].id >= 2.0 && $.objectList[0].id < 1e1 }", True),
        ("{ $.objectList[1].id != 2 }", False),
        ("{ $.objectList[*].name = b }", True),
        ("{ $.objectList.*.name = c }", False),
        ("{ $.SomeObject IS NULL }", True),
        ("{ $.eventType IS NULL }", False),
        ("{ $.ThisFlag IS TRUE }", True),
        ("{ $.ThisFlag is false }", False),
        ("{ $.SomeOtherObject NOT EXISTS }", True),
        ("{ $.SomeObject NOT EXISTS }", False),
        ("{ $.eventType = * }", True),
        ("{ $.SomeObject = * }", False),
        ('{ $.eventType = "1" || $.eventType != "UpdateTrail" }', False),
        ("{ $.arrayKey = value }", False),  # an array is not a value node
        ("{ $.arrayKey != value }", False),
    ],
)
def test_json_selectors_from_the_docs(pattern: str, expected: bool) -> None:
    compiled = compile_pattern(pattern)
    assert (compiled.match(CLOUDTRAIL_DOC) is not None) == expected
    assert compiled.mask(pa.array([CLOUDTRAIL_DOC])).to_pylist() == [expected]


def test_json_compound_precedence_from_the_docs() -> None:
    doesnt = '{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "GET" }'
    assert matches(doesnt, COMPOUND_DOC) == [False]
    assert matches("{ $.coordinates[1][2] = 6 && $.users[1].id > 2 }", COMPOUND_DOC) == [True]


def test_numbers_compare_as_numbers_and_strings_as_strings() -> None:
    events = ['{"code": 400}', '{"code": "400"}', '{"code": 4e2}', '{"code": true}']
    assert matches("{ $.code = 400 }", *events) == [True, False, True, False]
    assert matches('{ $.code = "400" }', *events) == [False, True, False, False]
    assert matches("{ $.code > +399.5 }", *events) == [True, False, True, False]


def test_json_patterns_need_one_json_object() -> None:
    assert matches("{ $.a NOT EXISTS }", "plain text", "[1]", "{}", '{"a": 1}') == [
        False,
        False,
        True,
        False,
    ]


def test_space_delimited_field_count_and_or_from_the_docs() -> None:
    events = ["ERROR WARN message", "ERROR message", "WARN message"]
    assert matches("[w1=ERROR, w2]", *events) == [False, True, False]
    assert matches("[w1=ERROR || w1=WARN, w2]", *events) == [False, True, True]
    assert matches("[w1 != ERROR && w1 != WARN, ...]", *events, "INFO x") == [
        False,
        False,
        False,
        True,
    ]


def values(pattern: str, message: str) -> dict[str, str] | None:
    found = compile_pattern(pattern).match(message)
    return None if found is None else found.extracted_values


def test_extracted_values_as_test_metric_filter_returns_them() -> None:
    # the TestMetricFilter API reference's Apache examples
    named = values("[ip, identity, user_id, timestamp, request, status_code, size]", APACHE[0])
    assert named == {
        "$ip": "127.0.0.1",
        "$identity": "-",
        "$user_id": "frank",
        "$timestamp": "10/Oct/2000:13:25:15 -0700",
        "$request": "GET /apache_pb.gif HTTP/1.0",
        "$status_code": "200",
        "$size": "1534",
    }
    tail = values("[..., size]", APACHE[1])
    assert tail is not None and tail["$size"] == "5324" and tail["$6"] == "500"
    assert sorted(tail) == ["$1", "$2", "$3", "$4", "$5", "$6", "$size"]
    every = values("[]", APACHE[2])
    assert every is not None and sorted(every) == [f"${n}" for n in range(1, 8)]
    assert matches("[..., status_code=200, size]", *APACHE) == [True, False, True]
    html = '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534'
    trailing = values("[..., request=*.html*, status_code=4*,]", html)
    assert trailing == {
        "$1": "127.0.0.1",
        "$2": "-",
        "$3": "frank",
        "$4": "10/Oct/2000:13:25:15 -0700",
        "$request": "GET /index.html HTTP/1.0",
        "$status_code": "404",
        "$7": "1534",
    }


def test_space_delimited_conditions() -> None:
    assert matches("[ip, ..., status = 5* && status != 503, bytes > 5000]", *APACHE) == [
        False,
        True,
        False,
    ]
    assert matches("[ip = %^127%, ..., bytes <= 1534]", *APACHE) == [True, False, False]
    assert values("[first, ..., last]", "only") is None
    assert values("[first, ..., last]", "a b") == {"$first": "a", "$last": "b"}
    assert values("[..., x = 2, ...]", "1 2 3 2") == {"$1": "1", "$x": "2", "$3": "3", "$4": "2"}
    assert values("[a, b]", '[one two] "three four"') == {"$a": "one two", "$b": "three four"}
    assert matches("[a, n = 5]", "x five", "x 5.0", "x +5") == [False, True, True]


def test_documented_quoted_phrases_with_brackets() -> None:
    events = [
        "02 May 2014 00:34:12,525 [INFO] Starting the application",
        "02 May 2014 00:34:16,142 [ERROR] Unhanded exception: InvalidQueryException",
        "02 May 2014 00:34:16,224 [ERROR] Terminating the application",
    ]
    assert matches('"[ERROR]"', *events) == [False, True, True]
    assert matches('"[ERROR]" Exception', *events) == [False, True, False]


# -------------------------------------------------------------------- regex: AWS and two engines


def test_regex_reads_the_same_in_python_and_duckdb() -> None:
    messages = ["ab\n", "a\nb", "x\x0by", "x y", "aaa", "a{,2}", "ab"]
    for pattern in ["%b$%", "%a.b%", "%x\\sy%", "%x\\Sy%", "%^a{2,3}$%", "%a\\{,2\\}%", "%b$|^x%"]:
        compiled = compile_pattern(pattern)
        python = [compiled.match(m) is not None for m in messages]
        assert sql_matches(compiled, list(messages)) == python, pattern
    assert matches("%b$%", "ab\n", "ab") == [False, True]
    assert matches("%x\\sy%", "x\x0by", "x y") == [False, True]


def test_real_cloudtrail_records_with_cis_benchmark_patterns() -> None:
    records = []
    for path in sorted(
        (TESTDATA / "cloudtrail" / "stratus-red-team-detonation-logs").glob("*.json")
    ):
        records.extend(json.loads(path.read_text()))
    messages: list[str | None] = [json.dumps(r) for r in records]
    trail = {"CreateTrail", "UpdateTrail", "DeleteTrail", "StartLogging", "StopLogging"}
    patterns = {
        "{ ($.eventName = CreateTrail) || ($.eventName = UpdateTrail) || "
        "($.eventName = DeleteTrail) || ($.eventName = StartLogging) || "
        "($.eventName = StopLogging) }": [r.get("eventName") in trail for r in records],
        '{ ($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*") }': [
            str(r.get("errorCode", "")).endswith("UnauthorizedOperation")
            or str(r.get("errorCode", "")).startswith("AccessDenied")
            for r in records
        ],
        '{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS && '
        '$.eventType != "AwsServiceEvent" }': [
            r.get("userIdentity", {}).get("type") == "Root"
            and "invokedBy" not in r.get("userIdentity", {})
            and r.get("eventType") != "AwsServiceEvent"
            for r in records
        ],
    }
    for pattern, expected in patterns.items():
        compiled = compile_pattern(pattern)
        assert [compiled.match(m or "") is not None for m in messages] == expected
        assert sql_matches(compiled, messages) == expected
    assert any(patterns[next(iter(patterns))])  # the data holds trail changes


def test_mask_takes_chunked_arrays_large_strings_and_nulls() -> None:
    rows = IN_PYTHON_BELOW  # big enough for the DuckDB path
    chunked = pa.chunked_array([["1 2", None] * rows, ["3 4"] * rows])
    expected = [True, False] * rows + [False] * rows
    in_sql = compile_pattern("[a, b = 2]")
    per_message = compile_pattern("[..., b = 2, ...]")  # two `...`: no SQL form
    assert in_sql.sql() is not None and per_message.sql() is None
    assert in_sql.mask(chunked).to_pylist() == expected
    assert per_message.mask(chunked).to_pylist() == expected
    assert compile_pattern("ERROR").mask(pa.chunked_array([], pa.string())).to_pylist() == []
    large = pa.array(["ERROR x", None] * rows, pa.large_string())
    assert compile_pattern("ERROR").mask(large).to_pylist() == [True, False] * rows


# ------------------------------------------------------------------------------ every error


ERRORS = [
    ("x" * 1025, "longer than 1024 characters at position 1025"),
    ("ERROR \udcff", "not valid Unicode at position 7"),
    ("ERROR ?", "'?' must be followed by a term at position 7"),
    ("ERROR -  ", "'-' must be followed by a term at position 7"),
    ("ERROR foo{", "unexpected '{' at position 10"),
    ('ERROR "abc', "unterminated quoted string at position 7"),
    ("%abc", "unterminated regex at position 1"),
    ("%abc% ERROR", "unexpected 'E' at position 7"),
    ("%caf\u00e9%", "multi-byte character 'é' in a regex at position 5"),
    ("%a(b%", "'(' is not allowed in a regex at position 3"),
    ("%[a[b]%", "'[' inside a character class at position 4"),
    ("%a{,2}%", "'{' must start a repetition {m}, {m,} or {m,n} at position 3"),
    ("%a{1001}%", "repetition count above 1000 at position 3"),
    ("%ab\\%", "a regex cannot end with \\ at position 4"),
    ("%\\x2%", "\\x needs two hex digits at position 2"),
    ("%\\bword%", "unsupported escape '\\\\b' in a regex at position 2"),
    ("%[abc%", "unterminated character class at position 6"),
    ("%*a%", "invalid regex: nothing to repeat at position 2"),
    ("%a*+%", "invalid regex: bad repetition operator: *+ at position 2"),
    (
        "{ $.a = %a% || $.b = %b% || $.c = %c% }",
        "more than 2 regexes in one pattern at position 35",
    ),
    ("{ $.a = }", "expected a value after '=' at position 9"),
    ("{ $.a < abc }", "'<' compares numbers at position 9"),
    ("{ $.a < %x% }", "'<' compares numbers at position 9"),
    ("{ $.a ~ 1 }", "unexpected '~' at position 7"),
    ("{ $.a IS MAYBE }", "unknown test 'IS MAYBE' at position 7"),
    ("{ $.a NOT THERE }", "unknown test 'NOT THERE' at position 7"),
    ("{ a = 1 }", "unexpected 'a' at position 3"),
    ("{ $. = 1 }", "unexpected ' ' at position 5"),
    ("{ $[0] = 1 }", "an array index must follow a property at position 4"),
    ("{ $.a[x] = 1 }", "unexpected 'x' at position 7"),
    ("{ $ = 1 }", "unexpected ' ' at position 4"),
    ("{ $.*.b[*] = 1 }", "more than one wildcard in a selector at position 3"),
    (
        "{ $.a[*] = 1 || $.b[*] = 1 || $.c[*] = 1 || $.d[*] = 1 }",
        "more than 3 wildcard selectors in a pattern at position 45",
    ),
    ("{ $.a = 1 ", "unexpected end at position 11"),
    ("{ ($.a = 1)) }", "unexpected ')' at position 12"),
    ("{ ($.a = 1 }", "unexpected '}' at position 12"),
    ("{ $.a = 1 } x", "unexpected 'x' at position 13"),
    ("[a, a]", "field name 'a' used twice at position 5"),
    ("[a = 1 || b = 2]", "the conditions of field 'a' name 'b' at position 2"),
    ("[1a]", "unexpected '1' at position 2"),
    ('[a, "b"]', "unexpected '\"' at position 5"),
    ("[a b]", "unexpected 'b' at position 4"),
    ("[a, b", "unexpected end at position 6"),
    ("[a] b", "unexpected 'b' at position 5"),
]


@pytest.mark.parametrize(("pattern", "message"), ERRORS, ids=[e[1] for e in ERRORS])
def test_error_names_the_problem_and_position(pattern: str, message: str) -> None:
    with pytest.raises(UserError) as caught:
        compile_pattern(pattern)
    assert message in caught.value.problem
    assert caught.value.problem.endswith(
        repr(pattern if len(pattern) <= 160 else pattern[:160] + "…")
    )
