"""The native events reader (firelens_native.cpp's parse_events) gives `_fast` the batch its
msgspec path gives, column for column, or leaves the body to it."""

from __future__ import annotations

import os
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.logs.raw_json_promise import LAYOUTS, NESTED, same_with_and_without_native
from tests.logs.test_receivers_ecs_events import EVENT, OPTIONS, OPTS, files

from ecsguard.logs.receivers import ecs_events
from ecsguard.logs.records import compact_json

if ecs_events.NATIVE is None:
    if os.environ.get("CI"):
        pytest.fail("the native parser was not built: .ci/run installs libsimdjson-dev")
    pytest.skip("the native parser was not built", allow_module_level=True)


def native(data: bytes) -> Any:
    return ecs_events.NATIVE.parse_events(compact_json(data.strip()))


ODD = st.none() | st.sampled_from(["", "a\\b", 'q"uote', "caf\u00e9"]) | st.integers(0, 2)
VARIED = st.fixed_dictionaries(
    {},
    optional={"source": ODD, "account": ODD, "region": ODD, "detail": NESTED, "resources": ODD},
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.tuples(EVENT, VARIED), max_size=4) | st.tuples(EVENT, VARIED),
    st.sampled_from(sorted(LAYOUTS)),
    st.booleans(),
)
def test_the_native_reader_gives_the_msgspec_batch(doc: Any, layout: str, defaults: bool) -> None:
    merged = [{**a, **b} for a, b in doc] if isinstance(doc, list) else {**doc[0], **doc[1]}
    same_with_and_without_native(ecs_events, LAYOUTS[layout](merged), OPTIONS if defaults else OPTS)


def test_it_answers_the_sample_events_msgspec_answers() -> None:
    answered = 0
    for path in files():
        data = path.read_bytes()
        if same_with_and_without_native(ecs_events, data, OPTS) is not None:
            assert native(data) is not None, path.name
            answered += 1
    assert answered  # samples without a time go to the general path, which reports it


EVENT_TEXT = b'{"id":"a","time":"2026-11-29T17:47:29Z","source":"aws.ecs"'


@pytest.mark.parametrize(
    "data",
    [
        EVENT_TEXT + b',"source":"again"}',  # a repeated key: msgspec's to decide
        EVENT_TEXT + b',"id":""}',
        EVENT_TEXT + b',"region":7}',
        EVENT_TEXT + b',"x":nul}',
        b"[" + EVENT_TEXT + b"},7]",
        b'{"id":"a"}',
    ],
)
def test_bodies_it_leaves_to_python(data: bytes) -> None:
    assert native(data) is None
    same_with_and_without_native(ecs_events, data, OPTS)


def test_an_escape_in_detail_and_defaults_for_account_and_region() -> None:
    data = b"[" + EVENT_TEXT + b',"account":"","detail":{"k":"a\\/b","n":1.50}}]'
    assert native(data) is not None
    batch = same_with_and_without_native(ecs_events, data, OPTIONS)
    assert isinstance(batch, pa.RecordBatch)
    row = batch.to_pylist()[0]
    assert row["detail"] == orjson.dumps({"k": "a/b", "n": 1.5}).decode()
    assert (row["account"], row["region"]) == ("1", "r")
