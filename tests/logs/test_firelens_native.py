"""The native FireLens parser (firelens_native.cpp) against the Python path it stands in for.

It must give the Python path's batch, column for column, for every body it answers, and leave
every other body to Python (None). CI builds it (g++ and libsimdjson-dev); elsewhere these tests
skip when it was not built, and ecsguard reads FireLens bodies in Python alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any
from unittest import mock

import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from tests.logs.raw_json_promise import same_columns
from tests.logs.test_receivers_firelens import OPTS, _common_records, _general, _meta_values

from ecsguard.logs.receivers import firelens
from ecsguard.logs.records import REQUEST_ID_KEYS
from ecsguard.monitor import emf

if firelens.NATIVE is None:
    if os.environ.get("CI"):
        pytest.fail("the native FireLens parser was not built: .ci/run installs libsimdjson-dev")
    pytest.skip("the native FireLens parser was not built", allow_module_level=True)


def _python(body: bytes) -> pa.RecordBatch:
    """The msgspec fast path's batch, or the general path's for other layouts."""
    lines = firelens._common_lines(body)
    if lines is None:
        return _general(body)
    return firelens._parse_common(lines, OPTS, body).batch


def _native(body: bytes) -> pa.RecordBatch | None:
    parsed = firelens._parse_native(body, OPTS)
    return None if parsed is None else parsed.batch


def _same(body: bytes) -> None:
    native = _native(body)
    assert native is not None, "the native parser should answer this body"
    same_columns(native, _python(body))


# texts a log object's keys may hold: ISO times (usual and not), levels, odd and empty texts
_head_texts = st.sampled_from(
    ["2024-05-01T10:00:00Z", "2024-05-01T10:00:00.123Z", "2024-05-01T10:00:00.123456Z",
     "2024-02-30T10:00:00Z", "2024-05-01 10:00:00,5", "1714557600", "soon", "", "info", "ERROR",
     "Warning", "ĳ", "notice", "x" * 20, "a\"b", "\\u0041", "é"]
) | st.text(max_size=6)  # fmt: skip
_key_names = ["time", "timestamp", "@timestamp", "ts", "level", "severity", "lvl", "loglevel",
              "log_level", "levelname", "message", "msg", "log", "other", "ctx"]  # fmt: skip
_objects = st.dictionaries(
    st.sampled_from([*_key_names, *REQUEST_ID_KEYS]),
    st.none() | _head_texts,
    max_size=7,
)
_nested = st.fixed_dictionaries(
    {"ctx": st.dictionaries(st.sampled_from(REQUEST_ID_KEYS), _head_texts)}
)
# Python's str.strip() strips these too; the native parser must find the same `{`
_spaces = st.sampled_from(["", " ", "\t", "\u3000", "\u00a0", "\u2028", "\x1c", "\u200b"])
_plain = st.sampled_from(
    ["ERROR boom", "for more info", "Traceback (most recent call last):", "level=warn x", "",
     "{not json", "[1]", "écrit INFO", "2024-05-01T10:00:00Z WARN x", "   "]
) | st.text(max_size=12)  # fmt: skip


def _log_text(parts: tuple[str, Any, str, bool]) -> str:
    before, obj, after, compact = parts
    if isinstance(obj, str):
        return before + obj + after
    text = json.dumps(obj, separators=(",", ":") if compact else None, ensure_ascii=compact)
    return before + text + after


_logs = st.tuples(_spaces, _plain | _objects | _nested, _spaces, st.booleans()).map(_log_text)
# the records the native parser answers: a float date, texts or null elsewhere
_META_KEYS = ("source", "ecs_cluster", "ecs_task_arn", "ecs_task_definition", "container_name")
_native_records = st.fixed_dictionaries(
    {"date": st.floats(min_value=0, max_value=2e12), "log": _logs},
    optional={key: _meta_values for key in (*_META_KEYS, "container_id")},
)


def _answered(records: list[dict[str, Any]]) -> bool:
    """Whether the native parser should answer these records (see firelens_native.cpp)."""
    for record in records:
        text = record["log"].strip()
        if text.startswith("{"):
            try:
                obj = json.loads(text)
            except ValueError:
                return False
            if not isinstance(obj, dict):
                return False
    return True


@settings(max_examples=400, deadline=None)
@given(st.lists(_native_records, min_size=1, max_size=8), st.sampled_from(["\n", "\r\n"]))
def test_native_gives_the_python_paths_batch(records: list[dict[str, Any]], sep: str) -> None:
    body = (sep.join(json.dumps(r, ensure_ascii=False) for r in records) + "\n").encode()
    if not _answered(records):  # `{not json` and the like: Python's verdict
        assert _native(body) is None
        return
    _same(body)


@settings(max_examples=300, deadline=None)
@given(st.lists(_common_records, min_size=1, max_size=6))
def test_native_answers_only_what_python_answers_alike(records: list[dict[str, Any]]) -> None:
    body = "\n".join(json.dumps(r) for r in records).encode()
    native = _native(body)
    if native is not None:
        assert native.equals(_python(body))
    assert firelens.parse(body, OPTS).batch.equals(_python(body))


def test_the_bench_shape_of_body() -> None:
    line = {
        "date": 1793491200.008,
        "source": "stdout",
        "log": json.dumps(
            {"time": "2026-11-01T00:00:00.008Z", "level": "info", "msg": "cart updated",
             "request_id": "048f565e974bceeb", "status": 200, "latency_ms": 11.0},
            separators=(",", ":"),
        ),
        "container_id": "e3e9de99f10c718b1eb0e38a675dd5af3c365296dca02eecacdabacc1165e210",
        "container_name": "/ecs-auth-9-app-9854118a9d292f923996",
        "ecs_cluster": "prod",
        "ecs_task_arn": "arn:aws:ecs:ap-northeast-1:123456789012:task/prod/d9f195d014822f",
        "ecs_task_definition": "auth:9",
    }  # fmt: skip
    plain = dict(line, log="2026-11-01 00:00:00,010 ERROR [auth] token refused")
    body = "\n".join(json.dumps(r) for r in [line, plain] * 500).encode()
    _same(body)
    batch = _native(body)
    assert batch is not None
    assert batch.column("request_id").to_pylist()[:2] == ["048f565e974bceeb", ""]
    assert batch.column("level").to_pylist()[:2] == ["INFO", "ERROR"]
    assert batch.column("task").to_pylist()[0] == "d9f195d014822f"


@pytest.mark.parametrize(
    "body",
    [
        b'{"date":1700000000,"log":"a"}',  # an int date
        b'{"date":"2024-05-01T10:00:00Z","log":"a"}',  # a text date
        b'{"log":"a"}',  # no date
        b'{"date":1.5,"log":"a","log":"b"}',  # a repeated key
        b'{"date":1.5,"log":"a","extra":"x"}',  # a key FireLens does not write
        b'{"date":1.5,"log":"a","source":1}',  # metadata that is no text
        b'{"date":1.5,"log":"{\\"level\\":30}"}',  # a numeric level (pino)
        b'{"date":1.5,"log":"{\\"time\\":1700000000000}"}',  # a numeric time
        b'{"date":1.5,"log":"{\\"msg\\":\\"a\\",\\"msg\\":\\"b\\"}"}',  # a repeated log key
        b'{"date":1.5,"log":"{\\"a\\":1e400}"}',  # beyond a double: msgspec skips it, simdjson not
        b'{"date":1.5,"log":"{not json"}',
        b'{"date":1.5,"log":"\\ud800"}',  # a lone surrogate in the envelope
        b'{"date":1.5,"log":"{\\"msg\\":\\"\\\\udc00\\"}"}',  # and in the log object
        b'{"date":1.5,"log":"\xff"}',  # not UTF-8
        b'{"date":1.5,"log":"a"}\n\n{"date":1.5,"log":"b"}',  # a blank line
        b'[{"date":1.5,"log":"a"}]',  # format json
        b'{"date":1.5,"log":"a"} {"date":1.5,"log":"b"}',  # two records on a line
        b"",
    ],
)
def test_bodies_left_to_python(body: bytes) -> None:
    assert _native(body) is None
    assert firelens.parse(body, OPTS).batch.equals(_python(body))


def test_unicode_spaces_around_a_log_object_are_stripped_as_python_does() -> None:
    body = json.dumps({"date": 1.5, "log": '\u3000\u00a0{"msg":"x","level":"warn"}\u2029'}).encode()
    _same(body)
    batch = _native(body)
    assert batch is not None
    assert batch.column("fields").to_pylist() == ['{"msg":"x","level":"warn"}']
    assert batch.column("message").to_pylist() == ["x"]


def test_ecsguard_native_0_turns_it_off() -> None:
    code = "from ecsguard.logs.receivers import firelens; print(firelens.NATIVE is None)"
    for value, off in (("0", "True"), ("1", "False")):
        env = dict(os.environ, ECSGUARD_NATIVE=value)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert out.stdout.strip() == off, out.stderr


@pytest.mark.parametrize(
    "first", ["ecsguard.monitor.emf", "ecsguard.detect.eventpattern.prefilter", "ecsguard.cli.main"]
)
def test_every_user_gets_its_module_whatever_is_imported_first(first: str) -> None:
    # the modules once sat inside logs.receivers: the EMF scan, imported first, loaded the
    # package half-way, lost the module and left the `lines` receiver unregistered
    code = (
        f"import {first}\n"
        "from ecsguard.logs.receivers import RECEIVERS, firelens\n"
        "from ecsguard.monitor import emf\n"
        "from ecsguard.detect.eventpattern import prefilter\n"
        "RECEIVERS.get('lines')\n"
        "print(firelens.NATIVE is not None, emf.FIRELENS is not None, "
        "prefilter.LEAVES is not None)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.split() == ["True", "True", "True"], out.stderr


def test_a_body_beyond_the_kept_buffers_then_a_usual_one() -> None:
    # a 12 MB line and body outgrow the per-thread buffers, which are then let go (trim)
    huge = json.dumps({"date": 1.5, "log": json.dumps({"msg": "x" * 12_000_000})}).encode()
    _same(huge)
    _same(b'{"date":2.5,"log":"after ERROR"}\n')


def test_the_start_up_note_names_the_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (
        firelens.parser_note()
        == "ingest parser (FireLens, lines, CloudTrail, events): native (simdjson)"
    )
    monkeypatch.setattr(firelens, "NATIVE", None)
    assert "install g++ and libsimdjson-dev" in firelens.parser_note()
    monkeypatch.setenv("ECSGUARD_NATIVE", "0")
    note = "ingest parser (FireLens, lines, CloudTrail, events): Python (ECSGUARD_NATIVE=0)"
    assert firelens.parser_note() == note


# ------------------------------------------------------- the text search emf.py's scan runs on


@settings(max_examples=300)
@given(
    texts=st.lists(st.none() | st.text(alphabet='_aws"Tyep x{}', max_size=70), max_size=40),
    start=st.integers(0, 6),
    needle=st.sampled_from([b"_aws", b'"Type"', b"ws", b"_aws_aws_aws_aws_aws", b"x", b"{"]),
)
@example(texts=["x_aw", "s", "ws"], start=0, needle=b"ws")  # one across two texts, then one in
def test_native_rows_with_equals_the_python_search(
    texts: list[str | None], start: int, needle: bytes
) -> None:
    """The 16-byte-wide search finds the rows the regular expression finds, texts shorter and
    longer than a vector and occurrences across texts and vector edges included."""
    array = pa.array(texts, pa.string()).slice(min(start, len(texts)))
    native = emf._rows_with(array, needle)
    with mock.patch.object(emf, "FIRELENS", None):
        assert native == emf._rows_with(array, needle)
    # exactly the texts holding it: an occurrence across two texts is in neither
    held = {i for i, text in enumerate(array.to_pylist()) if text and needle.decode() in text}
    assert native == [held]


def test_native_rows_with_refuses_what_it_cannot_search() -> None:
    rows_with = firelens.NATIVE.rows_with
    offsets = memoryview(pa.array([0, 3], pa.int32()).buffers()[1]).cast("i")
    assert rows_with(offsets, b"xab", b"ab") == [0]
    assert rows_with(offsets, b"xab", b"a") == [0]
    with pytest.raises(ValueError, match="one byte or more"):
        rows_with(offsets, b"xab", b"")
    with pytest.raises(ValueError, match="span"):
        rows_with(offsets, b"xabcd", b"ab")
    with pytest.raises(ValueError, match="int32"):
        rows_with(memoryview(b"\0\0\0\3"), b"xab", b"ab")
    backwards = memoryview(pa.array([0, 3, 1, 3], pa.int32()).buffers()[1]).cast("i")
    with pytest.raises(ValueError, match="not decrease"):
        rows_with(backwards, b"xab", b"ab")
