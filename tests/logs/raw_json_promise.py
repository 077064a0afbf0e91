"""What the receivers' msgspec paths promise: the general path's batch, JSON-valued parts kept as
the sender's compact text (numbers spelled as sent), in the layouts JSON senders write."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from unittest import mock

import orjson
import pyarrow as pa
from hypothesis import strategies as st

from ecsguard.logs.records import ReceiverOptions

TEXTS = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXTS
)
NESTED = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXTS, inner, max_size=3),
    max_leaves=8,
)
LAYOUTS = {
    "orjson": orjson.dumps,
    "python": lambda doc: json.dumps(doc).encode(),
    "ascii, indented": lambda doc: json.dumps(doc, indent=2).encode(),
    "utf-8, indented": lambda doc: json.dumps(doc, indent=1, ensure_ascii=False).encode(),
}


def has_float(value: object) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(map(has_float, value.values()))
    return isinstance(value, list) and any(map(has_float, value))


def same_batches(
    fast: pa.RecordBatch, general: pa.RecordBatch, json_columns: Sequence[str], exact: bool
) -> None:
    """Equal, the JSON-text columns as JSON values (numbers keep their spelling in `fast`),
    and as texts too where `exact`."""
    assert fast.schema == general.schema
    for name in fast.schema.names:
        mine, theirs = fast.column(name).to_pylist(), general.column(name).to_pylist()
        if name in json_columns:
            assert [t and orjson.loads(t) for t in mine] == [t and orjson.loads(t) for t in theirs]
            # compact: as orjson writes it, but for the spelling of numbers
            for text in mine:
                value = None if text is None else orjson.loads(text)
                assert text is None or has_float(value) or text == orjson.dumps(value).decode()
            if exact:
                assert mine == theirs, name
        else:
            assert mine == theirs, name


def same_with_and_without_native(
    module: Any, data: bytes, options: ReceiverOptions
) -> pa.RecordBatch | None:
    """A receiver module's `_fast` answers the same with its native reader (firelens_native.cpp)
    as with msgspec alone, column for column; the batch, or None."""
    expected = None
    with mock.patch.object(module, "NATIVE", None):
        expected = module._fast(data, options)
    got = module._fast(data, options)
    if expected is None:
        assert got is None
        return None
    assert got is not None and got.problems == expected.problems == []
    same_columns(got.batch, expected.batch)
    batch: pa.RecordBatch = got.batch
    return batch


def same_columns(got: pa.RecordBatch, expected: pa.RecordBatch) -> None:
    """The same schema and every column equal (a failure names the column)."""
    assert got.schema == expected.schema
    for name in expected.schema.names:
        assert got.column(name).equals(expected.column(name)), name
