"""The native leaf reader (detect/eventpattern/json_native.cpp) against the Python walk it
stands in for (records._collect over orjson's parse): the same leaves for every path, in order,
for any JSON text, including what json.dumps never writes (duplicate keys, escapes, spacing)."""

from __future__ import annotations

import json
import os
from array import array
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecsguard.core.native import load, string_buffers, validity
from ecsguard.detect.eventpattern.records import _collect
from ecsguard.detect.sigma.fields import _walk
from ecsguard.logs.receivers import RECEIVERS
from ecsguard.logs.records import ReceiverOptions

NATIVE: Any = load("ecsguard._json_native")
if NATIVE is None:
    if os.environ.get("CI"):
        pytest.fail("the native leaf reader was not built: .ci/run installs libsimdjson-dev")
    pytest.skip("the native leaf reader was not built", allow_module_level=True)


def loaded(text: str | None) -> Any:
    """What Python reads of a row: None for no text, or a text that is not JSON."""
    try:
        return None if text is None else orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def python_leaves(text: str | None, parts: list[str]) -> list[Any]:
    """What the prefilter's Python path finds: no JSON, or a root that is none, has no leaves."""
    found: list[Any] = []
    _collect(loaded(text), parts, 0, found)
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


# --- FieldIds: a Sigma field inside JSON, as sigma/fields.py's _walk ---------------------------


def python_fields(text: str | None, parts: list[str]) -> list[Any] | None:
    """What Record.values finds (None: it reaches an object or array, whose JSON text Sigma
    compares, so the native reader must refuse the row)."""
    found = _walk(loaded(text), tuple(parts))
    return None if any(isinstance(v, dict | list) for v in found) else found


def native_fields(texts: list[str | None], parts: list[str]) -> list[Any]:
    """Per row the values the native reader numbered (None where it refused the row)."""
    ids_of = NATIVE.FieldIds(parts)
    array = pa.array(texts, pa.string())
    offsets, data = string_buffers(array)
    rows = list(range(len(texts)))
    ids, fresh = ids_of.encode(offsets, data, validity(array), array.offset, rows)
    lists = [orjson.loads(text) for text in fresh]
    return [None if i < 0 else lists[i] for i in ids]


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.one_of(DOCUMENTS, st.none(), st.just(""), st.just("not json")), max_size=8), PATHS
)
def test_the_native_fields_are_the_python_ones(texts: list[str | None], parts: list[str]) -> None:
    for text, values in zip(texts, native_fields(texts, parts), strict=True):
        expected = python_fields(text, parts)
        if values is None:  # refused: Python reads the row; only rows it must read are refused
            assert expected is None or not _parses(text), (text, parts)
            continue
        assert expected is not None, (text, parts, values)
        assert same(values, expected), (text, parts, values, expected)


def _parses(text: str | None) -> bool:
    try:
        orjson.loads(text or "null")
    except orjson.JSONDecodeError:
        return False
    return True


def test_the_cases_the_field_walk_must_get_right() -> None:
    texts = [
        '{"a": {"b": 1}, "a": {"b": "last"}}',  # the last of two keys, as a dict keeps
        '{"a.b": 1, "a": {"b": 2}}',  # the rest of the path as one key wins, alone
        '[{"a": {"b": true}}, {"a": [{"b": null}]}]',  # arrays are walked on the way
        '{"a": {"b": ["x", 2.5, null]}}',  # a list at the end gives its items
        '{"a": {"b": {"c": 1}}}',  # an object reached: refused, Python compares its text
        '{"a": {"b": ["x", ["y"]]}}',  # a list inside the list at the end: refused
        '{"a": {"c": 1}}',
        None,
        "",
        "text",
    ]
    assert native_fields(texts, ["a", "b"]) == [
        ["last"],
        [1],
        [True, None],
        ["x", 2.5, None],
        None,
        None,
        [],
        [],
        [],
        None,
    ]
    with pytest.raises(ValueError, match="at least one key"):
        NATIVE.FieldIds([])


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
    # one mask in the table: each batch found the last numbering over budget
    assert len(numbered[1]) == index.prefilter._stride


# --- Narrowing: the prefilter's masks per live row, ANDed path after path --------------------


def as_bytes(masks: list[int], words: int) -> bytes:
    return b"".join(mask.to_bytes(8 * words, "little") for mask in masks)


def masks_of(narrowing: Any, words: int) -> list[int]:
    data = narrowing.masks()
    return [
        int.from_bytes(data[at : at + 8 * words], "little") for at in range(0, len(data), 8 * words)
    ]


@settings(max_examples=150, deadline=None)
@given(
    words=st.integers(1, 3),
    rows=st.integers(0, 12),
    steps=st.lists(
        st.tuples(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=4), st.data()),
        max_size=4,
    ),
    data=st.data(),
)
def test_narrowing_ands_masks_as_python_does(
    words: int, rows: int, steps: list[Any], data: Any
) -> None:
    """Path after path, each live row's mask ANDed with its number's, rows left with none
    dropped: the same rows and masks as the Python loop (_survive without the native reader)."""
    top = (1 << (64 * words)) - 1
    start = data.draw(st.integers(1, top))
    narrowing = NATIVE.Narrowing(rows, start.to_bytes(8 * words, "little"))
    live, masks = list(range(rows)), [start] * rows
    for entries, draw in steps:
        table = [draw.draw(st.integers(0, top)) for _ in entries]
        by_row = draw.draw(st.booleans())
        count = rows if by_row else len(live)
        numbers = [draw.draw(st.integers(-1, len(table) - 1)) for _ in range(count)]
        expected_masks = [
            mask & table[numbers[row if by_row else i]]
            if numbers[row if by_row else i] >= 0
            else mask
            for i, (row, mask) in enumerate(zip(live, masks, strict=True))
        ]
        dropped = narrowing.apply(as_bytes(table, words), array("i", numbers), by_row)
        kept = [(row, mask) for row, mask in zip(live, expected_masks, strict=True) if mask]
        assert dropped == len(live) - len(kept)
        live, masks = [row for row, _ in kept], [mask for _, mask in kept]
        assert narrowing.live() == live and len(narrowing) == len(live)
        assert masks_of(narrowing, words) == masks


def test_narrowing_takes_the_numbers_encode_live_gave_and_those_set() -> None:
    texts = pa.array(['{"s": "A"}', '{"s": "B"}', "{bad", None, '{"s": "A"}'])
    narrowing = NATIVE.Narrowing(5, (0b111).to_bytes(8, "little"))
    leaf_ids = NATIVE.LeafIds(["s"])
    offsets, data = string_buffers(texts)
    fresh, refused = leaf_ids.encode_live(narrowing, offsets, data, validity(texts), texts.offset)
    assert [orjson.loads(text) for text in fresh] == [["A"], ["B"], []]
    assert refused == [2]  # simdjson refused it: Python decides its mask
    narrowing.set(2, 3)
    table = as_bytes([0b001, 0b010, 0b000, 0b100], 1)  # A, B, no leaves, the refused row's
    assert narrowing.apply(table) == 1  # row 3 (null: no leaves) left with no branch
    assert narrowing.live() == [0, 1, 2, 4]
    assert masks_of(narrowing, 1) == [0b001, 0b010, 0b100, 0b001]


def test_narrowing_refuses_what_it_cannot_read() -> None:
    one = (1).to_bytes(8, "little")
    with pytest.raises(ValueError, match="whole 64-bit words"):
        NATIVE.Narrowing(3, b"\x01\x02")
    narrowing = NATIVE.Narrowing(3, one)
    with pytest.raises(ValueError, match="encode_live first"):
        narrowing.apply(one)
    with pytest.raises(ValueError, match="whole masks"):
        narrowing.apply(b"\x01\x02\x03", array("i", [0, 0, 0]))
    with pytest.raises(ValueError, match="fewer numbers"):
        narrowing.apply(one, array("i", [0, 0]))
    with pytest.raises(ValueError, match="int32"):
        narrowing.apply(one, array("q", [0, 0, 0]))
    with pytest.raises(IndexError, match="beyond the table"):
        narrowing.apply(as_bytes([0], 1), array("i", [0, 1, 0]))
    with pytest.raises(IndexError, match="no such live row"):
        narrowing.set(0, 0)
    assert narrowing.live() == [0, 1, 2]  # nothing refused changed a mask
    assert NATIVE.Narrowing(4, bytes(8)).live() == []  # no branch at all: no row


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(DOCUMENTS, st.none(), st.just("not json")), min_size=1, max_size=8),
    st.lists(PATHS, min_size=1, max_size=4),
    st.integers(0, 200),
)
def test_a_parse_kept_for_the_batch_numbers_rows_as_a_parse_of_their_own(
    texts: list[str | None], paths: list[list[str]], kept: int
) -> None:
    """A Narrowing keeps each row's parse for the batch's next paths, up to `kept_bytes` of
    text (then it parses again): whatever it kept, each path numbers every row as `encode`,
    which parses the row for itself (and is held to the Python walk above)."""
    array = pa.array(texts, pa.string())
    offsets, data = string_buffers(array)
    narrowing = NATIVE.Narrowing(len(texts), (1).to_bytes(8, "little"), kept)
    for parts in paths:
        leaf_ids = NATIVE.LeafIds(parts)
        leaf_ids.encode_live(narrowing, offsets, data, validity(array), 0)
        numbers = narrowing.pending()
        alone, fresh = leaf_ids.encode(offsets, data, validity(array), 0, narrowing.live())
        assert numbers == alone and fresh == []
        narrowing.apply((1).to_bytes(8, "little") * len(leaf_ids))  # every row stays
    assert narrowing.live() == list(range(len(texts)))
    assert narrowing.kept_bytes <= kept
