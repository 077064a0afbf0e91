"""Loading the optional native helpers, built by setup.py when a C++ compiler and simdjson are
there, and handing them Arrow's buffers:

- `ecsguard._firelens_native` (logs/receivers/firelens_native.cpp): the parser of FireLens
  bodies, of text lines, of CloudTrail files and of ECS events, a reader of ISO UTC times, a
  finder of text lines' levels and a text search over Arrow string arrays (users: the four
  receivers, `records.text_times` and `records.text_levels`, the EMF scan, log filter rules'
  terms);
- `ecsguard._json_native` (detect/json_native.cpp): JSON values per row of Arrow string arrays,
  numbered by distinct value, and the prefilter's per-row masks (users: the event-pattern
  prefilter, log filter rules' JSON selectors, Sigma rules' fields inside JSON).

Both check the string arrays' buffers handed to them through one reader, core/arrow_strings.h.
The sources sit in the rooms of their users; the modules are built at the top of the package,
whose `__init__` imports nothing: a module inside `logs.receivers` made loading it import that
package, whose receivers import their users, so a user imported first found it missing.
Without them, or with ECSGUARD_NATIVE=0 (to compare, or to doubt them), `load` gives None and
every caller runs its Python path, with the same results.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any

import orjson
import pyarrow as pa


def load(module: str) -> ModuleType | None:
    """The native module `module`, or None (not built, or ECSGUARD_NATIVE=0)."""
    if os.environ.get("ECSGUARD_NATIVE") == "0":
        return None
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def string_buffers(texts: pa.Array) -> tuple[memoryview, memoryview]:
    """A string array's int32 offsets (rows + 1, the array's slice of them) and its whole data
    buffer, as memoryviews over Arrow's memory (no copy)."""
    _, offsets_buffer, data_buffer = texts.buffers()
    offsets = memoryview(offsets_buffer).cast("i")[texts.offset : texts.offset + len(texts) + 1]
    return offsets, memoryview(data_buffer) if data_buffer is not None else memoryview(b"")


def validity(texts: pa.Array) -> memoryview | None:
    """The array's validity bitmap (bit `texts.offset + row`), or None when no row is null."""
    bitmap = texts.buffers()[0]
    return memoryview(bitmap) if bitmap is not None and texts.null_count else None


def rows_with(search: ModuleType, texts: pa.Array, needle: bytes) -> list[int]:
    """The rows of a string array whose bytes hold `needle` (one byte or more), by
    firelens_native.cpp's search over the array's data in place (an occurrence spanning two
    texts is in neither)."""
    offsets, whole = string_buffers(texts)
    return list(search.rows_with(offsets, whole[offsets[0] : offsets[-1]], needle))


def native_strings(built: tuple[int, bytes, bytes, bytes | None, int]) -> pa.Array:
    """A string array from a native parser's (rows, offsets, data, validity, nulls)."""
    rows, offsets, data, validity, nulls = built
    valid = None if validity is None else pa.py_buffer(validity)
    return pa.StringArray.from_buffers(
        rows, pa.py_buffer(offsets), pa.py_buffer(data), valid, nulls
    )


def numbered(reader: Any, texts: pa.Array, rows: list[int]) -> tuple[list[int], list[Any]]:
    """`reader.encode` (a json_native.cpp numbering) over a string array's buffers: the number
    per row of `rows`, and the values of the numbers new in this call, decoded."""
    offsets, data = string_buffers(texts)
    ids, fresh = reader.encode(offsets, data, validity(texts), texts.offset, rows)
    return ids, [orjson.loads(text) for text in fresh]


def note(what: str, module: ModuleType | None, gain: str) -> str:
    """Which of the two paths `what` runs, for the server's start-up lines."""
    if module is not None:
        return f"{what}: native (simdjson)"
    if os.environ.get("ECSGUARD_NATIVE") == "0":
        return f"{what}: Python (ECSGUARD_NATIVE=0)"
    return f"{what}: Python (for {gain}, install g++ and libsimdjson-dev, then reinstall ecsguard)"
