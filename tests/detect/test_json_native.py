"""The native leaf reader (detect/eventpattern/json_native.cpp) against the Python walk it
stands in for (records._collect over orjson's parse): the same leaves for every path, in order,
for any JSON text, including what json.dumps never writes (duplicate keys, escapes, spacing)."""

from __future__ import annotations

import json
import os
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecsguard.core.native import load, string_buffers, validity
from ecsguard.detect.eventpattern.records import _collect
from ecsguard.logs.receivers import RECEIVERS
from ecsguard.logs.records import ReceiverOptions

NATIVE: Any = load("ecsguard._json_native")
if NATIVE is None:
    if os.environ.get("CI"):
        pytest.fail("the native leaf reader was not built: .ci/run installs libsimdjson-dev")
    pytest.skip("the native leaf reader was not built", allow_module_level=True)


def python_leaves(text: str | None, parts: list[str]) -> list[Any]:
    """What the prefilter's Python path finds: no JSON, or a root that is none, has no leaves."""
    if text is None:
        return []
    try:
        root = orjson.loads(text)
    except orjson.JSONDecodeError:
        return []
    found: list[Any] = []
    _collect(root, parts, 0, found)
    return found


def native_leaves(texts: pa.Array, parts: list[str], rows: list[int]) -> list[Any]:
    """Per row the leaves the native reader numbered (None where it refused the row)."""
    ids_of = NATIVE.LeafIds(parts)
    offsets, data = string_buffers(texts)
    ids, fresh = ids_of.encode(offsets, data, validity(texts), texts.offset, rows)
    assert len(fresh) == len(ids_of) == len(set(i for i in ids if i >= 0))
    lists = [orjson.loads(text) for text in fresh]
    return [None if i < 0 else lists[i] for i in ids]


def same(a: list[Any], b: list[Any]) -> bool:
    """Equal with kinds kept apart (1, 1.0 and True are equal to Python, not to a pattern)."""
    return [(type(x), x) for x in a] == [(type(x), x) for x in b]


SCALARS = st.one_of(
    st.text(max_size=6),
    st.sampled_from(['q"uote', "back\\slash", "\x01ctl", "日本", "\u2028", "é"]),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)
KEYS = st.sampled_from(["a", "b", "a.b", "b.c", "a.b.c", "é", ""])


def objects(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    # written by hand so keys may repeat, as a sender may write them
    pair = st.tuples(KEYS, inner).map(lambda kv: f"{json.dumps(kv[0])}: {kv[1]}")
    return st.lists(pair, max_size=4).map(lambda pairs: "{" + ", ".join(pairs) + "}")


DOCUMENTS = st.recursive(
    SCALARS.map(json.dumps),
    lambda inner: st.one_of(
        objects(inner), st.lists(inner, max_size=3).map(lambda items: f"[{','.join(items)}]")
    ),
    max_leaves=14,
)
PATHS = st.lists(st.sampled_from(["a", "b", "c", "a.b"]), min_size=1, max_size=3)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.one_of(DOCUMENTS, st.none(), st.just(""), st.just("not json")), max_size=8), PATHS
)
def test_the_native_leaves_are_the_python_ones(texts: list[str | None], parts: list[str]) -> None:
    array = pa.array(texts, pa.string())
    got = native_leaves(array, parts, list(range(len(texts))))
    for text, leaves in zip(texts, got, strict=True):
        expected = python_leaves(text, parts)
        if leaves is None:  # refused: Python reads the row, so only what it reads matters
            continue
        assert same(leaves, expected), (text, parts, leaves, expected)


def test_the_cases_the_walk_must_get_right() -> None:
    texts = [
        '{"a": {"b": 1}, "a": {"b": "last"}}',  # the last of two keys, as a dict keeps
        '{"a.b": 1, "a": {"b": [2, {"c": 3}, [4.0]]}}',  # a dotted key is the same field
        '[{"a": {"b": true}}, {"a": [{"b": null}]}]',  # arrays are transparent at any level
        '{"a": {"b": {"c": 1}}}',  # an object is not a leaf
        '{"a": {"b": "x\\"y\\u0000z"}}',
        '{"a": {"b": 12345678901234567890123}}',  # beyond 64 bits: refused, Python decides
        None,
        "",
        "text",
    ]
    got = native_leaves(pa.array(texts), ["a", "b"], list(range(len(texts))))
    assert got == [
        ["last"],
        [2, 4.0, 1],
        [True, None],
        [],
        ['x"y\x00z'],
        None,
        [],
        [],
        None,
    ]
    assert type(got[1][1]) is float


def test_rows_are_numbered_by_distinct_leaves_across_calls() -> None:
    ids_of = NATIVE.LeafIds(["s"])
    texts = pa.array(['{"s": "RUNNING"}', '{"s":"RUNNING"}', '{"s": "STOPPED"}', None])
    offsets, data = string_buffers(texts)
    first = ids_of.encode(offsets, data, validity(texts), 0, [0, 1, 2, 3])
    assert first == ([0, 0, 1, 2], [b'["RUNNING"]', b'["STOPPED"]', b"[]"])
    # a later batch: known values keep their numbers, only new ones are sent
    later = pa.array(['{"s": "STOPPED"}', '{"s": "PENDING"}']).slice(0, 2)
    offsets, data = string_buffers(later)
    assert ids_of.encode(offsets, data, None, 0, [1, 0]) == ([3, 1], [b'["PENDING"]'])


def test_a_sliced_array_with_nulls_reads_its_own_rows() -> None:
    whole = pa.array(['{"a": 1}', None, '{"a": 2}', None, '{"a": 3}'])
    part = whole.slice(1, 4)  # null, 2, null, 3: offsets and validity start one row in
    assert native_leaves(part, ["a"], [0, 1, 2, 3]) == [[], [2], [], [3]]


def test_bad_arguments_are_refused_not_read() -> None:
    ids_of = NATIVE.LeafIds(["a"])
    texts = pa.array(['{"a": 1}', '{"a": 2}'])
    offsets, data = string_buffers(texts)
    with pytest.raises(IndexError, match="outside the array"):
        ids_of.encode(offsets, data, None, 0, [2])
    with pytest.raises(IndexError, match="outside the array"):
        ids_of.encode(offsets, data, None, 0, [-1])
    with pytest.raises(ValueError, match="offsets outside the data"):
        ids_of.encode(offsets, data[:3], None, 0, [1])
    with pytest.raises(ValueError, match="int32"):
        ids_of.encode(memoryview(bytes(12)), data, None, 0, [0])
    with pytest.raises(ValueError, match="validity bitmap"):
        ids_of.encode(offsets, data, memoryview(b"\xff"), 7, [0])
    with pytest.raises(ValueError, match="at least one key"):
        NATIVE.LeafIds([])
    assert len(ids_of) == 0  # nothing was numbered by the refused calls


# --- SelectorIds: a CloudWatch JSON selector without wildcards, as load_object + resolve -----


def selector_values(texts: list[str | None], steps: list[str | int]) -> list[Any]:
    ids_of = NATIVE.SelectorIds(steps)
    array = pa.array(texts, pa.string())
    offsets, data = string_buffers(array)
    ids, fresh = ids_of.encode(
        offsets, data, validity(array), array.offset, list(range(len(texts)))
    )
    values = [orjson.loads(text) for text in fresh]
    return [{-1: "refused", -2: "no object"}[i] if i < 0 else values[i] for i in ids]


def test_a_selector_reaches_what_load_object_and_resolve_reach() -> None:
    texts = [
        '{"a": {"b": 1}, "a": {"b": 2}}',  # the first of two keys, as load_object keeps it
        '  {"a": {"b": [5, 6]}}',  # an array reached: present, equal to nothing
        '{"a": {"c": 1}}',  # nothing reached
        '{"a": [{"b": 1}]}',  # a key does not reach into an array
        '{"a.b": 7}',  # nor is a dotted key the path
        "[1]",
        "text",
        None,
        "",
        '{"a": {"b": NaN}}',  # json.loads reads NaN: Python decides
        '{"a": {"b": 1}} trailing',
    ]
    assert selector_values(texts, ["a", "b"]) == [
        [1],
        [{}],
        [],
        [],
        [],
        "no object",
        "no object",
        "no object",
        "no object",
        "refused",
        "refused",
    ]
    assert selector_values(['{"t": ["x", {"y": 2.0}]}'] * 2, ["t", 1, "y"]) == [[2.0], [2.0]]
    assert selector_values(['{"t": ["x"]}', '{"t": {"1": 3}}'], ["t", 1]) == [[], []]
    with pytest.raises(ValueError, match="at least one step"):
        NATIVE.SelectorIds([])


def test_large_values_are_left_to_python_and_the_numbering_is_bounded() -> None:
    ids_of = NATIVE.LeafIds(["a"])
    big = "x" * 5000  # log text is untrusted: unique large values must not pile up natively
    texts = pa.array([json.dumps({"a": big}), json.dumps({"a": "small"})])
    offsets, data = string_buffers(texts)
    ids, fresh = ids_of.encode(offsets, data, None, 0, [0, 1])
    assert ids == [-1, 0] and fresh == [b'["small"]']
    assert ids_of.bytes == 2 * len(b'["small"]')


def test_the_prefilter_starts_a_new_numbering_past_its_byte_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ecsguard.detect.eventpattern import PatternSet, compile_pattern
    from ecsguard.detect.eventpattern import prefilter as module
    from ecsguard.detect.eventpattern.records import RowView

    monkeypatch.setattr(module, "BYTES_LIMIT", 10)
    found = PatternSet({0: compile_pattern({"detail": {"s": ["STOPPED"]}})})
    base = {"version": "0", "source": "s", "detail-type": "t", "account": "1", "region": "r"}
    for status in ("RUNNING", "STOPPED", "PENDING", "STOPPED"):
        event = {**base, "id": status, "detail": {"s": status}}
        batch = RECEIVERS.get("ecs_events")(json.dumps([event]).encode(), ReceiverOptions()).batch
        expected = [0] if status == "STOPPED" else []
        assert found.candidates(RowView("events", batch)) == expected
    index = found._index
    assert index is not None and index.prefilter is not None
    numbered = index.prefilter._numbered[("detail.s", ("s",))]
    assert len(numbered[1]) == 1  # each batch found the last numbering over budget
