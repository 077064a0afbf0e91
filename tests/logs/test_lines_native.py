"""The lines receiver's native parse (firelens_native.cpp's parse_text) against its Python path:
the same batch, column for column, for every body it answers, and None for the rest (Python
reports a line that starts like JSON but is not, and replaces bytes that are not UTF-8)."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.logs.raw_json_promise import same_columns
from tests.logs.test_firelens_native import _answered, _logs

from ecsguard.logs.receivers import firelens, lines
from ecsguard.logs.records import ReceiverOptions

if firelens.NATIVE is None:
    if os.environ.get("CI"):
        pytest.fail("the native parser was not built: .ci/run installs libsimdjson-dev")
    pytest.skip("the native parser was not built", allow_module_level=True)

OPTS = ReceiverOptions(
    input_name="test", cluster="c", service="s", container="app", ingest_time_us=1_700_000_000
)


def python(body: bytes, options: ReceiverOptions = OPTS) -> pa.RecordBatch:
    return lines.parse_text(body.decode("utf-8", "replace"), options, body=body).batch


def native(body: bytes, options: ReceiverOptions = OPTS) -> pa.RecordBatch | None:
    parsed = lines._parse_native(body, options)
    if parsed is not None:
        assert parsed.problems == []
    return None if parsed is None else parsed.batch


def same(body: bytes) -> None:
    answered = native(body)
    assert answered is not None, "the native parse should answer this body"
    same_columns(answered, python(body))


# lines as they come: text lines (some leading with a time, as "2024-05-01T10:00:00Z WARN x"),
# JSON objects with the head keys, spaces Python's strip() takes, blank lines
_line = _logs | st.sampled_from(
    ["2024-05-01T10:00:00Z ERROR a", "[2024-05-01 10:00:00,123] INFO b",
     "2024-05-01T10:00:00.123456789Z c", "2024-13-01T10:00:00Z d",
     "\u0661\u0662\u0663\u0664-05-01T10:00:00Z e", "  ", "", "\r"]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(_line, min_size=1, max_size=10), st.sampled_from(["\n", "\r\n"]), st.booleans())
def test_native_gives_the_python_paths_batch(texts: list[str], sep: str, last: bool) -> None:
    body = (sep.join(texts) + (sep if last else "")).encode()
    if not _answered([{"log": text} for text in texts]):  # `{not json`: Python reports it
        assert native(body) is None
        return
    if not any(text.strip() for text in texts):
        assert native(body) is not None and python(body).num_rows == 0
        return
    same(body)


def test_bodies_only_python_answers() -> None:
    assert native(b'{"level": "info"}\n{"a": 1, "a": 2, "level": 30}\n') is None  # numeric level
    assert native(b"text \xff\xfe bytes\n") is None  # not UTF-8: Python replaces them
    assert native(b"{not json\n") is None  # Python keeps it as text and reports it
    assert lines.parse(b"{not json\n", OPTS).problems  # ... and the receiver still does


def test_multiline_bodies_take_the_python_path(monkeypatch: pytest.MonkeyPatch) -> None:
    called: list[bytes] = []
    monkeypatch.setattr(lines, "_parse_native", lambda data, options: called.append(data))
    joined = ReceiverOptions(input_name="t", multiline=True, ingest_time_us=1)
    batch = lines.parse(b"Traceback (most recent call last):\n  File x\nValueError\n", joined).batch
    assert called == [] and batch.num_rows == 1


def test_a_mixed_body_reads_as_in_python() -> None:
    body = "\n".join(
        [
            json.dumps(
                {
                    "time": "2024-05-01T10:00:00.5Z",
                    "level": "warn",
                    "msg": "slow",
                    "request_id": "r1",
                }
            ),
            "2024-05-01T10:00:01Z ERROR [main] boom",
            "   ",
            "plain words",
            json.dumps({"message": "日本", "ctx": {"trace_id": "t"}}, ensure_ascii=False),
        ]
    ).encode()
    same(body)
    batch = native(body)
    assert batch is not None
    assert batch.column("level").to_pylist() == ["WARN", "ERROR", None, None]
    assert batch.column("request_id").to_pylist()[0] == "r1"


_time_heads = st.sampled_from(
    ["2024-05-01T10:00:00Z", "[2024-05-01 10:00:00,123]", "2024-05-01T10:00:00.1234567890Z",
     "2024-05-01T10:00:00+09:00", "2024-05-01T10:00:00-0500", "2024-02-30T10:00:00Z",
     "2024-05-01T25:00:00Z", "\u0661\u0662\u0663\u0664-05-01T10:00:00Z", "9999-12-31T23:59:59Z",
     "0001-01-01T00:00:00Z", "[", "", "é", "2024-05-01T10:00", "at 2024-05-01T10:00:00Z"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.none() | st.tuples(_time_heads, st.text(max_size=8)).map("".join), max_size=8))
def test_leading_times_are_leading_time_of_each(texts: list[str | None]) -> None:
    from ecsguard.logs.records import leading_time, leading_times

    expected = [None if text is None else leading_time(text) for text in texts]
    assert leading_times(pa.array(texts, pa.string())).to_pylist() == expected
