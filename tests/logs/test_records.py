from __future__ import annotations

import json
from array import array
from typing import Any

import msgspec
import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecsguard.logs.records import (
    ID_DIGEST_BYTES,
    LEVEL_KEYS,
    MESSAGE_KEYS,
    REQUEST_ID_KEYS,
    TIME_KEYS,
    LogRows,
    ReceiverOptions,
    _Head,
    body_ids,
    build_batch,
    json_rows,
    leading_time,
    level_from_text,
    levels_from_texts,
    normalize_level,
    parse_time,
    parse_times,
    record_id,
    record_ids,
    request_id_of,
    structured,
)
from ecsguard.logs.schema import EVENTS, LOGS


def records_native() -> object:
    from ecsguard.logs import records

    return records._NATIVE


T0 = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z


@pytest.mark.parametrize(
    "value",
    [
        1_704_067_200,
        1_704_067_200.0,
        1_704_067_200_000,
        1_704_067_200_000_000,
        1_704_067_200_000_000_000,
        "1704067200",
        "2024-01-01T00:00:00Z",
        "2024-01-01T09:00:00+09:00",
        "2024-01-01 00:00:00,000",
        "2024-01-01T00:00:00",
    ],
)
def test_parse_time_units_and_formats(value: object) -> None:
    assert parse_time(value) == T0


@pytest.mark.parametrize(
    "value", [None, True, "soon", float("nan"), -5, "", [1], "9999999999999999999999"]
)
def test_parse_time_rejects_garbage(value: object) -> None:
    assert parse_time(value) is None


def test_leading_time_of_plain_lines() -> None:
    assert leading_time("2024-01-01T00:00:00.123456789Z GET /") == T0 + 123456
    assert leading_time("[2024-01-01 00:00:00] boot") == T0
    assert leading_time("GET / 2024-01-01") is None


def test_levels() -> None:
    assert normalize_level("warning") == "WARN"
    assert normalize_level(50) == "ERROR"
    assert normalize_level("Custom") == "CUSTOM"
    assert normalize_level(True) is None
    assert level_from_text("2024 [ERROR] db down") == "ERROR"
    assert level_from_text('ts=1 level=warn msg="x"') == "WARN"
    assert level_from_text("see the docs for more info") is None
    assert level_from_text("Traceback (most recent call last):") == "ERROR"


def test_structured_picks_time_level_message() -> None:
    obj = {"@timestamp": "2024-01-01T00:00:00Z", "severity": "error", "msg": "boom"}
    assert structured(obj, "raw") == (T0, "ERROR", "boom")
    assert structured({"a": 1}, "raw") == (None, None, "raw")
    # a level word in the message counts when no level field exists
    assert structured({"message": "WARN disk"}, "raw").level == "WARN"


def test_record_id_is_deterministic_and_sensitive() -> None:
    base = record_id("ingest", "t/c/stdout", T0, "hello", 0)
    assert base == record_id("ingest", "t/c/stdout", T0, "hello", 0)
    assert len(base) == 2 * ID_DIGEST_BYTES
    others = {
        record_id("firelens", "t/c/stdout", T0, "hello", 0),
        record_id("ingest", "t/c/stderr", T0, "hello", 0),
        record_id("ingest", "t/c/stdout", T0 + 1, "hello", 0),
        record_id("ingest", "t/c/stdout", None, "hello", 0),
        record_id("ingest", "t/c/stdout", T0, "hello!", 0),
        record_id("ingest", "t/c/stdout", T0, "hello", 1),
    }
    assert base not in others and len(others) == 6
    record_id("x", "y", None, "lone surrogate \ud800", 0)  # must not raise


def test_build_batch_fills_constants_and_nulls() -> None:
    batch = build_batch(EVENTS, {"time": [T0, T0], "id": ["a", "b"]}, {"source": "aws.ecs"})
    assert batch.schema == EVENTS
    assert batch.column("source").to_pylist() == ["aws.ecs", "aws.ecs"]
    assert batch.column("detail").null_count == 2
    with pytest.raises(ValueError):
        build_batch(EVENTS, {"time": [T0], "id": ["a", "b"]})


def test_log_rows_batch_has_the_logs_schema() -> None:
    rows = LogRows()
    for name, value in (("time", T0), ("level", None), ("message", "m"), ("fields", None)):
        rows.columns[name].append(value)
    rows.columns["id"].append("x")
    batch = rows.batch(ReceiverOptions(cluster="prod"), "ingest", T0)
    assert batch.schema == LOGS
    row = batch.to_pylist()[0]
    assert row["cluster"] == "prod" and row["source"] == "ingest" and row["service"] is None
    with pytest.raises(ValueError):
        LogRows(("nope",))


# the bulk twins must give exactly what the per-value functions give

iso_like = st.builds(
    lambda y, mo, d, h, mi, s, frac, zone: (
        f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{frac}{zone}"
    ),
    st.integers(0, 9999),
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 25),
    st.integers(0, 60),
    st.integers(0, 60),
    st.sampled_from(["", ".123", ".123456", ".1", ".1234567", ",123"]),
    st.sampled_from(["Z", "", "+09:00", "z"]),
)
time_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10**19),
    st.floats(),
    st.text(max_size=30),
    iso_like,
)
level_words = st.sampled_from(
    ["ERROR", "WARNING", "info", "level=warn", 'lvl="Err"', "level=foo", "é", "ÉINFO", "_WARN",
     "Traceback (most recent call last):", " ", "\n", "x", "severity=FATAL"]
)  # fmt: skip
texts = st.lists(level_words | st.text(max_size=4), max_size=8).map("".join)
level_values = st.one_of(st.none(), st.sampled_from(["error", "", "ß", 30, 7, True, 1.5]), texts)
objects = st.fixed_dictionaries(
    {},
    optional={
        "time": time_values,
        "ts": time_values,
        "level": level_values,
        "severity": level_values,
        "message": st.one_of(texts, st.integers()),
        "msg": st.one_of(texts, st.none()),
        "log": texts,
    },
)


@settings(max_examples=80, deadline=None)
@given(st.lists(time_values, max_size=12))
def test_parse_times_equals_parse_time(values: list[object]) -> None:
    assert parse_times(values) == [parse_time(v) for v in values]


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.one_of(st.none(), iso_like, st.text(max_size=5)), min_size=1, max_size=4), st.data()
)
def test_parse_times_of_repeated_texts_equals_parse_time(
    distinct: list[str | None], data: st.DataObject
) -> None:
    # few distinct texts among many: each is converted once, then looked up
    values = data.draw(st.lists(st.sampled_from(distinct), min_size=8, max_size=200))
    assert parse_times(values) == [parse_time(v) for v in values]


def _python_iso_to_us(texts: list[str | None]) -> list[int | None]:
    """records._iso_to_us without the native reader, one text at a time (a refused day is
    None: text_times then reads that text the long way, as the native reader leaves it)."""
    from ecsguard.logs import records

    native, records._NATIVE = records._NATIVE, None
    try:
        out = []
        for text in texts:
            found = records._iso_to_us(pa.array([text], pa.string()))
            out.append(None if found is None else found[0].as_py())
        return out
    finally:
        records._NATIVE = native


ISO_EDGES = [
    "0000-01-01T00:00:00Z",
    "0000-03-01T00:00:00Z",
    "1969-12-31T23:59:59.999999Z",
    "1970-01-01T00:00:00Z",
    "2000-02-29T12:00:00.5Z",
    "2100-02-29T00:00:00Z",
    "2024-02-29T23:59:59.999Z",
    "2199-12-31T23:59:59.999999Z",
    "2200-01-01T00:00:00Z",
    "2200-01-01T00:00:00.001Z",
    "9999-12-31T23:59:59Z",
    "2026-04-31T00:00:00Z",
    "2026-11-30T10:01:02.123456z",
    "2026-11-30T10:01:02,123Z",
    "２０２６-11-30T10:01:02Z",
]


@pytest.mark.skipif(records_native() is None, reason="the native reader is not built")
@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.one_of(st.none(), iso_like, st.sampled_from(ISO_EDGES), st.text(max_size=5))),
    st.integers(0, 3),
)
def test_native_iso_times_read_what_arrow_reads(values: list[str | None], start: int) -> None:
    from ecsguard.logs.records import _iso_to_us

    texts = pa.array(["2026-01-01T00:00:00Z"] * start + values, pa.string()).slice(start)
    found = _iso_to_us(texts)
    assert found is not None
    assert found.to_pylist() == _python_iso_to_us(values)


@pytest.mark.skipif(records_native() is None, reason="the native reader is not built")
def test_native_iso_times_refuse_buffers_that_do_not_hold_the_rows() -> None:
    native: Any = records_native()
    text = b"2026-01-01T00:00:00Z"
    with pytest.raises(ValueError, match="offsets outside the data"):
        native.iso_times(array("i", [0, 40]), text, None, 0, 1 << 62)
    with pytest.raises(ValueError, match="offsets must be int32"):
        native.iso_times(array("q", [0, 20]), text, None, 0, 1 << 62)
    with pytest.raises(ValueError, match="validity bitmap"):
        native.iso_times(array("i", [0, 20]), text, b"\x01", 8, 1 << 62)
    values, read, nulls = native.iso_times(array("i", [0, 20]), text, None, 0, 1 << 62)
    assert (array("q", values)[0], read, nulls) == (1767225600000000, b"\x01", 0)


@settings(max_examples=80, deadline=None)
@given(st.lists(texts, max_size=12))
def test_levels_from_texts_equals_level_from_text(messages: list[str]) -> None:
    assert levels_from_texts(messages) == [level_from_text(m) for m in messages]


request_values = st.one_of(st.none(), st.sampled_from(["", "r1", "r2"]), st.integers(0, 3))
json_objects = st.tuples(
    objects, st.dictionaries(st.sampled_from(REQUEST_ID_KEYS), request_values, max_size=3)
).map(lambda parts: {**parts[0], **parts[1]})
odd_texts = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        [
            "{}",
            '{"a":',
            "[1]",
            '"{}"',
            '{"msg": "x"} trailing',
            '{"level": 1e400}',
            '{"time": 1e400, "msg": "x"}',
            '{"level": "warn", "level": "error"}',
            '{"request_id": "a", "request_id": "b"}',
            '{"request_id": "\\u0061"}',
            '{"request-id": "a", "traceId": "a"}',
            '{"msg": "\\ud800"}',
            '{"a": 1}\n{"b": 2}',
        ]
    ),
)


def _reference(texts: list[str]) -> list[tuple[object, ...]]:
    """(row, time, level, message, request id) of each text orjson reads as one object."""
    out = []
    for row, text in enumerate(texts):
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            out.append((row, *structured(obj, text), request_id_of(obj, text)))
    return out


def _rows(texts: list[str]) -> list[tuple[object, ...]]:
    found = json_rows(texts)
    return list(zip(*found, strict=True))


@settings(max_examples=150, deadline=None)
@given(st.lists(json_objects.map(json.dumps) | odd_texts, max_size=8))  # json: NaN, huge ints
def test_json_rows_equal_structured_and_request_id_of(texts: list[str]) -> None:
    assert _rows(texts) == _reference(texts)


def test_json_rows_near_the_depth_limits() -> None:
    # the decoder gives up before orjson does: orjson's reading decides
    texts = ['{"a":' * depth + "1" + "}" * depth + "" for depth in (900, 1020, 1100)]
    texts = [text.replace('{"a":1', '{"a":1,"msg":"deep"', 1) for text in texts]
    assert _rows(texts) == _reference(texts)


def test_json_rows_heads_read_the_documented_keys() -> None:
    names = [field.encode_name for field in msgspec.structs.fields(_Head)]
    assert names == [*TIME_KEYS, *LEVEL_KEYS, *MESSAGE_KEYS, *REQUEST_ID_KEYS]


def test_record_ids_equal_record_id() -> None:
    # a stream's prefix is hashed once: its rows must still differ by their own parts
    rows = [
        ("t/c/stdout", T0, "hello", 0),
        ("t/c/stderr", None, "é \ud800", 7),
        ("t/c/stdout", T0, "hello", 1),
        ("t/c/stdout", T0 + 1, "", 2),
    ]
    assert record_ids("ingest", *map(list, zip(*rows, strict=True))) == [
        record_id("ingest", *row) for row in rows
    ]


def test_body_ids_are_stable_and_distinct_per_body_source_and_block() -> None:
    body = b'{"log":"a"}\n{"log":"b"}'
    context = ReceiverOptions().id_context("firelens")
    ids = body_ids(context, body, 2).to_pylist()
    assert ids == body_ids(context, body, 2).to_pylist()  # a resend: the same ids
    assert len(set(ids)) == 2 and all(len(i) == 20 and int(i, 16) >= 0 for i in ids)
    assert set(ids).isdisjoint(body_ids(context, body + b"\n", 2).to_pylist())
    # another source, or options that fill other columns: other records
    for other in (
        ReceiverOptions().id_context("ingest"),
        ReceiverOptions(task="t2").id_context("firelens"),
        ReceiverOptions(multiline=True).id_context("firelens"),
    ):
        assert set(ids).isdisjoint(body_ids(other, body, 2).to_pylist())
    # not the input's name or the ingest time: a resend from another client is the same
    assert ReceiverOptions(input_name="x", ingest_time_us=1).id_context("firelens") == context
    # past 65,536 rows a block starts with a prefix of its own
    many = body_ids(context, body, 70_000).to_pylist()
    assert len(set(many)) == 70_000 and many[:2] == ids
    assert many[65_536][:16] != many[65_535][:16] and many[65_536].endswith("0000")
    assert body_ids(context, b"", 0).to_pylist() == []


level_pieces = st.sampled_from(
    ["TRACE", "DEBUG", "INFO", "NOTICE", "WARN", "WARNING", "ERR", "ERROR", "ERRORS", "FATAL",
     "CRIT", "CRITICAL", "PANIC", "level=", 'level="', "lvl=", "severity=", "loglevel=error",
     "information", "alert", "Emerg", "=", '"', "_", "1", " ", "-", "[", "]", "é", "x" * 60,
     "Traceback (most recent call last):"]
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.none(), st.lists(level_pieces | st.text(max_size=3), max_size=12).map("".join)
        ),
        max_size=10,
    ),
    st.integers(0, 3),
)
def test_native_text_levels_find_what_level_from_text_finds(
    values: list[str | None], start: int
) -> None:
    """Texts of level words, keys and boundaries, some longer than the 200-character head, some
    not ASCII (left to Python), nulls, an array offset: the native levels, Arrow's and Python's
    agree."""
    from ecsguard.logs.records import _arrow_text_levels, text_levels

    texts = pa.array(["ERROR"] * start + values, pa.string()).slice(start)
    expected = [None if text is None else level_from_text(text) for text in values]
    assert text_levels(texts).to_pylist() == expected
    if values:
        assert _arrow_text_levels(texts).to_pylist() == expected


@pytest.mark.skipif(records_native() is None, reason="the native reader is not built")
def test_native_text_levels_leave_non_ascii_heads_to_python_and_refuse_bad_buffers() -> None:
    native: Any = records_native()
    lines = [b"x" * 199 + b"\xc3\xa9 ERROR", b"x" * 200 + b"\xc3\xa9 ERROR", b"INFO"]
    offsets = array("i", [0])
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    assert list(native.text_levels(offsets, b"".join(lines), None, 0)) == [7, 0, 3]
    with pytest.raises(ValueError, match="offsets outside the data"):
        native.text_levels(array("i", [0, 40]), b"INFO", None, 0)
