"""filterset.py: many filter patterns over one logs batch decide exactly as `match` per line."""

from __future__ import annotations

import threading

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ecsguard.detect.filterset import BatchMasks, _needed, masks
from ecsguard.logs.query.filter_pattern import compile_pattern

# every test twice: JSON fields read natively, and by Python (conftest.py)
pytestmark = pytest.mark.usefixtures("json_readers")

PATTERNS = [
    '"OutOfMemoryError"',
    '"Connection refused"',
    '?"panic:" ?"FATAL"',
    '"timed out" -"health"',
    "ERROR OutOfMemoryError",
    '"a\\nb"',
    "",
    "%upstream timed out after [0-9]+ms%",
    "%b$|^x%",  # `$` is the very end in both engines (regex.py), not before a final newline
    "%x\\sy%",  # \s: no vertical tab in either
    "%^[0-9]{2}\\.[0-9]%",
    "{ $.latency_ms > 2000 }",
    '{ $.status = 503 && $.path = "/api/pay" }',
    '{ $.level = "FATAL" }',
    '{ $.msg = "*heap space*" }',
    '{ $.level = "FATAL" || $.latency_ms > 2000 }',
    "{ $.missing NOT EXISTS }",
    '{ $.tags[0] = "x" }',
    "{ $.a.* = 1 }",
    "[ip, user, status = 5*, size]",
]

MESSAGES = [
    "2024 ERROR java.lang.OutOfMemoryError: heap",
    "dial tcp: Connection refused",
    "upstream timed out after 3021ms while reading",
    "GET /health timed out",
    "FATAL panic: nil map",
    "line one a\nb line two",
    '{"level": "FATAL", "latency_ms": 10}',
    '{"lat\\u0065ncy_ms": 3000}',  # the key is escaped: the literal prefilter must not drop it
    '{"level": "F\\u0041TAL"}',
    '{"msg": "java heap space exhausted", "status": 503, "path": "/api/pay"}',
    '  {"status": 503, "path": "/api/pay", "latency_ms": 2500}',
    '{"tags": ["x", "y"], "a": {"b": 1}}',
    "not json {",
    '{"latency_ms": 2001',
    "10.0.0.1 bob 503 120",
    "",
    None,
    "OutOfMemoryError\x00Connection refused",
    "ab\n",
    "x\x0by",
    "x\ty 10.0.0.1 日本 ab",
]
FIELDS: list[str | None] = [None] * len(MESSAGES)
FIELDS[1] = '{"level": "FATAL"}'  # a JSON pattern reads fields before the message
FIELDS[16] = '{"latency_ms": 9000}'


def batch() -> pa.RecordBatch:
    return pa.record_batch(
        {"message": pa.array(MESSAGES, pa.string()), "fields": pa.array(FIELDS, pa.string())}
    )


def per_line(text: str, data: pa.RecordBatch) -> list[bool]:
    pattern = compile_pattern(text)
    column = data.column("message")
    if pattern.kind == "json":
        column = pc.coalesce(data.column("fields"), column)
    return [t is not None and pattern.match(t) is not None for t in column.to_pylist()]


@pytest.mark.parametrize("text", PATTERNS)
def test_masks_are_what_match_decides_per_line(text: str) -> None:
    data = batch()
    shared = masks(data)
    got = shared.mask(compile_pattern(text)).to_pylist()
    assert got == per_line(text, data)


def test_a_term_never_matches_across_two_lines() -> None:
    # the native search reports a match spanning two texts for the first; the set checks it
    data = pa.record_batch(
        {
            "message": pa.array(["dial Conn", "ection refused", "Connection refused"]),
            "fields": pa.nulls(3, pa.string()),
        }
    )
    shared = BatchMasks(data)
    assert shared.mask(compile_pattern('"Connection refused"')).to_pylist() == [False, False, True]
    assert shared.mask(compile_pattern("dial")).to_pylist() == [True, False, False]


def test_all_patterns_share_one_batch_and_agree() -> None:
    data = batch()
    shared = BatchMasks(data)
    first = {text: shared.mask(compile_pattern(text)).to_pylist() for text in PATTERNS}
    again = {text: shared.mask(compile_pattern(text)).to_pylist() for text in PATTERNS}
    assert first == again == {text: per_line(text, data) for text in PATTERNS}
    assert any(any(found) for found in first.values())


def test_the_last_batch_is_kept_per_thread() -> None:
    data = batch()
    assert masks(data) is masks(data)
    other = batch()
    assert masks(other) is not masks(data)
    seen: list[BatchMasks] = []
    worker = threading.Thread(target=lambda: seen.append(masks(other)))
    worker.start()
    worker.join()
    assert seen[0] is not masks(other)


def test_needed_texts_of_json_patterns() -> None:
    def needed(text: str) -> set[str]:
        tree = compile_pattern(text).tree
        return _needed(tree.expr)  # type: ignore[union-attr]

    assert needed('{ $.status = 503 && $.path = "/api/pay" }') == {'"status"', '"path"', "/api/pay"}
    assert needed('{ $.level = "FATAL" || $.level = "ERROR" }') == {'"level"'}
    assert needed('{ $.msg = "*heap*" }') == {'"msg"', "heap"}
    assert needed("{ $.missing NOT EXISTS }") == set()
    assert needed('{ $.a = "*" }') == {'"a"'}  # any text: no value literal
    assert needed('{ $.q != "x" }') == {'"q"'}


# --- JSON lines generated: duplicate keys, escapes, arrays, numbers vs strings, non-ASCII ----

KEYS = ["level", "status", "latency_ms", "msg", "a", "tags", "Level"]
SCALAR_TEXTS = st.sampled_from(
    [
        '"FATAL"',
        '"fatal"',
        '"F\\u0041TAL"',
        '"503"',
        "503",
        "503.0",
        "2001",
        "1e3",
        "123456789012345678901234567890",
        "1e400",
        "NaN",
        "-0",
        "true",
        "false",
        "null",
        '"java heap space"',
        '"Ünïcode 日本"',
        '"x"',
        '""',
    ]
)


def _objects(depth: int) -> st.SearchStrategy[str]:
    value = SCALAR_TEXTS if depth == 0 else st.one_of(SCALAR_TEXTS, _objects(depth - 1))
    member = st.tuples(
        st.sampled_from(KEYS).map(lambda k: f'"{k}"' if k != "Level" else '"lev\\u0065l"'),
        st.one_of(value, st.lists(value, max_size=3).map(lambda v: "[" + ",".join(v) + "]")),
    )
    # lists of members (not dicts): the same key may come twice, as in real lines
    return st.lists(member, max_size=5).map(
        lambda members: "{" + ",".join(f"{k}: {v}" for k, v in members) + "}"
    )


JSON_PATTERNS = [
    "{ $.latency_ms > 2000 }",
    "{ $.status = 503 }",
    '{ $.status = "503" }',
    '{ $.status = 503 && $.level = "FATAL" }',
    '{ $.level = "FATAL" || $.latency_ms >= 1000 }',
    '{ $.level != "FATAL" }',
    '{ $.msg = "*heap*" }',
    "{ $.msg = * }",
    "{ $.level IS NULL }",
    "{ $.level IS TRUE }",
    "{ $.status NOT EXISTS }",
    "{ $.a.level = 503 }",
    '{ $.a.a.msg = "x" }',
    '{ $.tags[0] = "x" }',
    "{ $.tags[1] = 503 }",
    "{ $.a.* = 503 }",
    "{ $.a[*].level IS FALSE }",
    '{ ($.status >= 500 && $.latency_ms > 1500) || $.msg = "x" }',
]


@settings(max_examples=200, deadline=None)
@example(['{"status": 503, "status": 1}', '{"status": 2}'])  # a duplicate key: the first counts
@example(['{"lev\\u0065l": "FATAL", "level": "x"}'])  # an escaped duplicate
@example(['{"a": {"level": 503, "level": null}}', '{"a": 1, "a": {"level": 503}}'])
@given(
    st.lists(
        st.one_of(_objects(2), st.sampled_from(["not json", " {", "[1, 2]", "  {}"])),
        min_size=1,
        max_size=12,
    )
)
def test_json_patterns_over_generated_lines_agree_with_match(lines: list[str]) -> None:
    data = pa.record_batch(
        {"message": pa.array(lines, pa.string()), "fields": pa.nulls(len(lines), pa.string())}
    )
    shared = BatchMasks(data)
    for text in JSON_PATTERNS:
        pattern = compile_pattern(text)
        expected = [pattern.match(line) is not None for line in lines]
        assert shared.mask(pattern).to_pylist() == expected, text
