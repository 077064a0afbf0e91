"""The native CloudTrail reader (firelens_native.cpp's parse_cloudtrail) gives `_fast` the batch
its msgspec path gives, column for column, or leaves the file to it."""

from __future__ import annotations

import os
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.logs.raw_json_promise import LAYOUTS, NESTED, TEXTS, same_with_and_without_native
from tests.logs.test_receivers_cloudtrail import EVENT, OPTS, files

from ecsguard.logs.receivers import cloudtrail
from ecsguard.logs.records import compact_json

if cloudtrail.NATIVE is None:
    if os.environ.get("CI"):
        pytest.fail("the native parser was not built: .ci/run installs libsimdjson-dev")
    pytest.skip("the native parser was not built", allow_module_level=True)


def native(data: bytes) -> Any:
    return cloudtrail.NATIVE.parse_cloudtrail(compact_json(data))


def same(data: bytes) -> pa.RecordBatch | None:
    return same_with_and_without_native(cloudtrail, data, OPTS)


ODD = st.sampled_from(
    ["", "true", "TRUE", "False", "maybe", "1", "a\\b", 'q"uote', "caf\u00e9", "\u2028"]
)
VARIED = st.fixed_dictionaries(
    {},
    optional={
        "eventSource": st.none() | ODD | st.integers(0, 3),
        "readOnly": st.none() | st.booleans() | ODD | st.integers(0, 1),
        "userIdentity": st.none()
        | TEXTS
        | st.fixed_dictionaries(
            {},
            optional={
                "type": st.none() | ODD | st.integers(0, 1),
                "arn": st.none() | ODD,
                "accountId": st.none() | ODD,
                "sessionContext": st.none()
                | st.integers(0, 1)
                | st.fixed_dictionaries(
                    {},
                    optional={
                        "sessionIssuer": st.none()
                        | ODD
                        | st.fixed_dictionaries({}, optional={"arn": st.none() | ODD | NESTED})
                    },
                ),
            },
        ),
        "requestParameters": NESTED,
        "resources": st.none() | st.lists(NESTED, max_size=2),
        "recipientAccountId": st.none() | ODD,
    },
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.tuples(EVENT, VARIED).map(lambda pair: {**pair[0], **pair[1]}), max_size=4),
    st.sampled_from(sorted(LAYOUTS)),
    st.booleans(),
)
def test_the_native_reader_gives_the_msgspec_batch(
    records: list[dict[str, Any]], layout: str, envelope: bool
) -> None:
    same(LAYOUTS[layout]({"Records": records, "other": [1]} if envelope else records))


def test_it_answers_real_trails() -> None:
    for path in files():
        data = path.read_bytes()
        assert native(data) is not None, path.name
        assert same(data) is not None


RECORD = (
    b'{"eventID":"a","eventTime":"2026-11-29T17:47:29Z","eventName":"X",'
    b'"userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/a"}'
)

# a record whose identity's sessionContext holds `%s`
ISSUED = (
    b'[{"eventID":"a","eventTime":"2026-11-29T17:47:29Z","eventName":"X",'
    b'"userIdentity":{"sessionContext":{%s}}}]'
)


@pytest.mark.parametrize(
    "data",
    [
        # what only the Python paths decide: the native reader leaves them to msgspec
        b"[" + RECORD + b',"eventName":"Y"}]',  # a repeated key
        b"[" + RECORD + b',"userIdentity":{"type":"A","type":"B"}}]',
        ISSUED % b'"sessionIssuer":null,"sessionIssuer":{}',
        ISSUED % b'"sessionIssuer":{"arn":"a","arn":"b"}',
        b'{"Records":[' + RECORD + b'}],"Records":[]}',
        # and what neither stores as it is
        b"[" + RECORD + b',"eventID":""}]',
        b'[{"eventTime":"2026-11-29T17:47:29Z","eventName":"X","eventID":"a","x":tru}]',
        b'[{"eventTime":"2026-11-29T17:47:29Z","eventID":"a"}]',
        b'{"records":[' + RECORD + b"}]}",
        b"[" + RECORD + b',"readOnly":1}]',
        b"[" + RECORD + b',"userIdentity":"me"}]',
        b"[" + RECORD + b"}] trailing",
        b"[" + RECORD + b"},7]",
    ],
)
def test_files_it_leaves_to_python(data: bytes) -> None:
    assert native(data) is None
    same(data)


def test_a_time_that_does_not_read_leaves_the_file_to_the_general_path() -> None:
    data = b'[{"eventTime":"not a time","eventName":"X","eventID":"a"}]'
    assert native(data) is not None  # the texts are read natively, the times in Arrow
    assert cloudtrail._fast(data, OPTS) is None
    assert same(data) is None


def test_a_kept_json_text_with_an_escape_reads_as_the_python_path_writes_it() -> None:
    data = b"[" + RECORD + b',"requestParameters":{"k":"a\\/b","n":1.50},"resources":[1.50]}]'
    assert native(data) is not None
    row = same(data).to_pylist()[0]  # type: ignore[union-attr]
    assert row["request_parameters"] == '{"k":"a/b","n":1.5}'  # rewritten, as raw_json_column
    assert row["resources"] == "[1.50]"  # no escape: as sent


def test_it_reads_keys_and_texts_with_escapes_and_a_lone_issuer_arn() -> None:
    record = {
        "eventID": "a",
        "eventTime": "2026-11-29T17:47:29Z",
        "event\u004eame": "Get\u00e9",
        "eventSource": "",
        "readOnly": "TRUE",
        "userIdentity": {"sessionContext": {"sessionIssuer": {"arn": "arn:issuer"}}},
        "responseElements": None,
        "resources": [],
    }
    data = orjson.dumps([record]).replace(b"eventName", b"event\\u004eame")
    assert native(data) is not None
    row = same(data).to_pylist()[0]  # type: ignore[union-attr]
    assert row["event_name"] == "Get\u00e9" and row["event_source"] is None
    assert row["identity_arn"] == "arn:issuer" and row["read_only"] is True
    assert row["response_elements"] is None and row["resources"] == "[]"


def test_a_huge_file_then_a_small_one() -> None:
    # past 8 MB a thread's parsers are not kept (firelens_native.cpp's Readers::trim)
    big = [
        {**orjson.loads(RECORD + b"}"), "eventID": f"e{i}", "requestParameters": {"pad": "x" * 600}}
        for i in range(16_000)
    ]
    data = orjson.dumps({"Records": big})
    assert len(data) > 8 << 20
    batch = same(data)
    assert batch is not None and batch.num_rows == 16_000
    assert same(b"[" + RECORD + b"}]") is not None
