"""Sigma rules over Arrow batches of the cloudtrail table: a vectorised prefilter, then the rule.

The prefilter of a rule reads a few plain text columns (eventSource and eventName for most
rules). Those columns are dictionary-encoded once per batch, and the distinct combinations of
their values, a few hundred standing for thousands of rows, are shared by every rule reading the
same columns. A rule runs its prefilter on each distinct combination only, remembering the answer
across batches, so in steady state it costs a dictionary look-up per combination and one Arrow
gather per batch. The whole condition then runs in Python on the candidate rows alone, with just
the columns it reads converted from Arrow, unless the prefilter was the whole condition.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ecsguard.detect.sigma.compiler import Compiled
from ecsguard.detect.sigma.fields import Record

Key = tuple[Any, ...]
_MEMO_LIMIT = 8192  # combinations remembered per rule before its memo starts afresh


@dataclass(frozen=True)
class KeyIndex:
    keys: list[Key]  # distinct value combinations of some columns in a batch
    inverse: pa.Array  # row -> position in `keys`


def _codes(column: pa.Array | pa.ChunkedArray) -> tuple[list[Any], pa.Array]:
    """The column's distinct values (null last) and each row's position among them."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    encoded = pc.dictionary_encode(column)
    values: list[Any] = encoded.dictionary.to_pylist()
    codes = pc.cast(encoded.indices.fill_null(len(values)), pa.int64())
    return [*values, None], codes  # null gets the last code


Codes = tuple[list[Any], pa.Array]


def key_index(
    batch: pa.RecordBatch, columns: tuple[str, ...], encoded: dict[str, Codes] | None = None
) -> KeyIndex:
    """The distinct combinations of `columns` in `batch`, and each row's combination
    (`encoded`: each column's dictionary encoding, shared between calls on one batch)."""
    encoded = {} if encoded is None else encoded
    for name in columns:
        if name not in encoded:
            present = name in batch.schema.names  # a batch from before the column existed
            column = batch.column(name) if present else pa.nulls(batch.num_rows, pa.string())
            encoded[name] = _codes(column)
    values, codes = encoded[columns[0]]
    keys: list[Key] = [(v,) for v in values]
    for name in columns[1:]:
        values, more = encoded[name]
        # codes stay below the row count, so the product of two fits in 64 bits
        combined = pc.dictionary_encode(pc.add(pc.multiply(codes, len(values)), more))
        keys = [
            (*keys[c // len(values)], values[c % len(values)])
            for c in combined.dictionary.to_pylist()
        ]
        codes = pc.cast(combined.indices, pa.int64())
    return KeyIndex(keys, codes)


class _LastBatch:
    """Key indexes of the batch seen last: every rule evaluating one batch shares them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._batch: pa.RecordBatch | None = None
        self._indexes: dict[tuple[str, ...], KeyIndex] = {}
        self._encoded: dict[str, Codes] = {}

    def get(self, batch: pa.RecordBatch, columns: tuple[str, ...]) -> KeyIndex:
        with self._lock:
            if self._batch is not batch:
                self._batch, self._indexes, self._encoded = batch, {}, {}
            if columns not in self._indexes:
                self._indexes[columns] = key_index(batch, columns, self._encoded)
            return self._indexes[columns]


_LAST = _LastBatch()


class BatchMatcher:
    """One compiled rule, ready for batches; remembers its prefilter's answers."""

    def __init__(self, compiled: Compiled) -> None:
        self.compiled = compiled
        self._memo: dict[Key, bool] = {}

    def _admits(self, key: Key) -> bool:
        known = self._memo.get(key)
        if known is None:
            pin = self.compiled.pin
            assert pin is not None
            known = pin.test(Record(dict(zip(pin.columns, key, strict=True))))
            if len(self._memo) >= _MEMO_LIMIT:
                self._memo.clear()
            self._memo[key] = known
        return known

    def candidates(self, batch: pa.RecordBatch) -> list[int] | None:
        """Rows the prefilter lets through; None: every row (nothing to prefilter on)."""
        pin = self.compiled.pin
        if pin is None:
            return None
        index = _LAST.get(batch, pin.columns)
        # most combinations are known from earlier batches: one dict look-up each
        get = self._memo.get
        admitted = [get(key) for key in index.keys]
        if None in admitted:
            admitted = [
                self._admits(key) if known is None else known
                for key, known in zip(index.keys, admitted, strict=True)
            ]
        if True not in admitted:
            return []
        if False not in admitted:
            return None
        mask = pc.take(pa.array(admitted, pa.bool_()), index.inverse)
        chosen: list[int] = pc.indices_nonzero(mask).to_pylist()
        return chosen

    def rows(self, batch: pa.RecordBatch) -> list[int]:
        """Indices of the rows the rule matches."""
        if batch.num_rows == 0:
            return []
        chosen = self.candidates(batch)
        pin = self.compiled.pin
        if pin is not None and pin.exact:
            return list(range(batch.num_rows)) if chosen is None else chosen
        if chosen is not None and not chosen:
            return []
        part = batch.select([c for c in batch.schema.names if c in self.compiled.columns])
        if chosen is None:
            chosen = list(range(batch.num_rows))
        else:
            part = part.take(pa.array(chosen, pa.int64()))
        test = self.compiled.test
        return [i for i, row in zip(chosen, part.to_pylist(), strict=True) if test(Record(row))]
