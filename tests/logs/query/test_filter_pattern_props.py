"""Property tests: the parser only ever refuses with UserError, and the paths agree."""

from __future__ import annotations

import duckdb
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecsguard.core.errors import UserError
from ecsguard.logs.query.filter_pattern import compile_pattern

# pieces of the grammar, so generated text reaches deep into every branch of the parser
JSON_WORDS = "{ } [ ] ( ) $ . $.a $.b[0] [*] .* a b_1 = != < >= && || IS NULL TRUE not EXISTS"
OTHER_WORDS = '% \\ \\x2 \\d * ... , " ? - 1 -2.5e3 {2,3} [^a-c] ^ $ | + é'
FRAGMENTS = [
    *JSON_WORDS.split(),
    *OTHER_WORDS.split(),
    " ",
    "\n",
    "\x00",
]
DUCKDB = duckdb.connect()  # one for the module: a new connection per example costs 70 ms
MESSAGES = st.text(alphabet='ab 1{}[]":,.$-\n', max_size=40)


def in_sql(predicate: str, messages: list[str]) -> list[bool]:
    DUCKDB.register("events", pa.table({"message": pa.array(messages, pa.string())}))
    return [row[0] for row in DUCKDB.sql(f"SELECT {predicate} FROM events").fetchall()]


def agree(pattern_text: str, messages: list[str]) -> None:
    """The Python matcher, the SQL predicate (if any) and the prefilter agree on `messages`."""
    compiled = compile_pattern(pattern_text)
    python = [compiled.match(m) is not None for m in messages]
    exact = compiled.sql()
    if exact is not None:
        assert in_sql(exact, messages) == python
    kept = in_sql(compiled.prefilter_sql(), messages)
    assert all(k for k, p in zip(kept, python, strict=True) if p)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(st.text(max_size=60), st.lists(st.sampled_from(FRAGMENTS), max_size=20).map("".join))
)
def test_parser_refuses_only_with_user_error(text: str) -> None:
    try:
        compiled = compile_pattern(text)
    except UserError as err:
        assert "at position" in err.problem
        return
    for message in ("", "a 1", '{"a": 1, "b": [1]}', "[x y] z"):
        compiled.match(message)  # never raises either


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=14).map("".join),
    st.lists(MESSAGES, min_size=1, max_size=8),
)
def test_every_compiled_pattern_runs_the_same_in_sql(text: str, messages: list[str]) -> None:
    try:
        compile_pattern(text)
    except UserError:
        return
    agree(text, messages)


WORD = st.text(alphabet="abAB_1:é\x00", min_size=1, max_size=4)
PHRASE = st.text(alphabet="abAB_1 :[]{}()%'?-é\\", min_size=0, max_size=5)
TERM = st.tuples(
    st.sampled_from(["", "?", "-"]),
    st.one_of(WORD, PHRASE.map(lambda p: '"' + p.replace("\\", "\\\\").replace('"', "") + '"')),
).map("".join)
TERM_MESSAGE = st.text(alphabet="abAB_1 :[]'é\x00-", max_size=20)


@settings(max_examples=120, deadline=None)
@given(st.lists(TERM, min_size=1, max_size=4).map(" ".join), st.lists(TERM_MESSAGE, max_size=12))
def test_term_patterns_agree_in_sql_and_python(pattern: str, messages: list[str]) -> None:
    compiled = compile_pattern(pattern)
    predicate = compiled.sql()
    assert predicate is not None
    assert in_sql(predicate, messages) == [compiled.match(m) is not None for m in messages]


CONDITIONS = [
    "",
    "= 1",
    "!= x*",
    "> 2",
    "= %^[0-9]%",
    "= *y || {name} <= -1",
    "= *x* && {name} != xx",
]
SLOT = st.one_of(st.just("..."), st.just(""), st.sampled_from(CONDITIONS))
FIELD_MESSAGE = st.lists(
    st.sampled_from(
        ["x", "y", "xy", "1", "2.5", "-3", "[x 1]", '"1 y"', "[", '"', "\t", "\n", "٣"]
    ),
    max_size=7,
).map(" ".join)


@settings(max_examples=80, deadline=None)
@given(st.lists(SLOT, min_size=1, max_size=5), st.lists(FIELD_MESSAGE, min_size=1, max_size=10))
def test_space_delimited_patterns_agree_in_sql_and_python(
    slots: list[str], messages: list[str]
) -> None:
    written = []
    for index, slot in enumerate(slots):
        name = f"f{index}"
        written.append(slot if slot in ("...", "") else f"{name} {slot.format(name=name)}")
    pattern = "[" + ", ".join(written) + "]"
    try:
        compile_pattern(pattern)
    except UserError as err:  # the only refusal these pieces can meet: AWS's regex quota
        assert "more than 2 regexes" in err.problem
        return
    agree(pattern, messages)  # an exact SQL form exists for one `...` or none
