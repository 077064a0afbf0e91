"""Sigma rules over Arrow batches of the cloudtrail table: a vectorised prefilter, then the rule.

The prefilter of a rule reads a few plain text columns (eventSource and eventName for most
rules). Those columns are dictionary-encoded once per batch, and the distinct combinations of
their values, a few hundred standing for thousands of rows, are shared by every rule reading the
same columns. A rule runs its prefilter on each distinct combination only, remembering the answer
across batches, so in steady state it costs a dictionary look-up per combination and one Arrow
gather per batch. The whole condition then runs in Python on the candidate rows alone, with just
the columns it reads converted from Arrow, unless the prefilter was the whole condition.

A prefilter reading a column of scattered values (userAgent, userIdentity.arn, sourceIPAddress)
would meet new combinations in every batch; such a rule first applies its demands on
eventSource/eventName alone (shared combinations) and on each other column alone (its distinct
values), answers remembered, then its prefilter on the few rows left.

A condition that reads fields inside JSON (`userIdentity.sessionContext.sessionIssuer.type`) and
no keyword is decided the same way, per combination of the values at every place it reads, where
the native reader is built: json_native.cpp's FieldIds numbers each candidate row's values, so
repeated rows are neither parsed nor tested in Python (_Whole). Rows whose values it cannot
stand for (an object, whose JSON text Sigma compares) are tested one by one, as without it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ecsguard.core.native import load, string_buffers, validity
from ecsguard.detect.rules import Codes, column_codes, dictionary_codes
from ecsguard.detect.sigma.compiler import Compiled
from ecsguard.detect.sigma.fields import Place, Record

FIELDS = load("ecsguard._json_native")  # the native reader of fields inside JSON, or None

Key = tuple[Any, ...]
_MEMO_LIMIT = 8192  # combinations remembered per rule before its memo starts afresh
_FIELD_BYTES = 1 << 20  # numbered text per place and rule before its numbering starts afresh
_FEW = 48  # candidate rows below which testing each costs less than numbering them (_Whole)


@dataclass(frozen=True)
class KeyIndex:
    keys: list[Key]  # distinct value combinations of some columns in a batch
    inverse: pa.Array  # row -> position in `keys`


def key_index(batch: pa.RecordBatch, columns: tuple[str, ...]) -> KeyIndex:
    """The distinct combinations of `columns` in `batch`, and each row's combination (each
    column's encoding shared with every rule reading it, event patterns too)."""
    return combined(
        [
            column_codes(batch, name)
            if name in batch.schema.names
            else dictionary_codes(_column(batch, name))
            for name in columns
        ]
    )


def _column(batch: pa.RecordBatch, name: str) -> pa.Array:
    if name in batch.schema.names:
        return batch.column(name)
    return pa.nulls(batch.num_rows, pa.string())  # a batch from before the column existed


def combined(parts: list[Codes]) -> KeyIndex:
    """The distinct combinations of several encoded columns of the same rows."""
    values, codes = parts[0]
    keys: list[Key] = [(v,) for v in values]
    for values, more in parts[1:]:
        # a combined code is below len(keys) * len(values): 32 bits hold it for any posted
        # batch (a cast to 64 costs as much as the arithmetic), 64 bits for any batch at all
        if len(keys) * len(values) >= 1 << 31:
            codes, more = pc.cast(codes, pa.int64()), pc.cast(more, pa.int64())
        factor = pa.scalar(len(values), codes.type)  # a Python int would widen to 64 bits
        pairs = pc.dictionary_encode(pc.add(pc.multiply(codes, factor), more))
        keys = [
            (*keys[c // len(values)], values[c % len(values)]) for c in pairs.dictionary.to_pylist()
        ]
        codes = pairs.indices
    return KeyIndex(keys, codes)


class _LastBatch:
    """Key indexes of the batch seen last: every rule evaluating one batch shares them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._batch: pa.RecordBatch | None = None
        self._indexes: dict[tuple[str, ...], KeyIndex] = {}

    def get(self, batch: pa.RecordBatch, columns: tuple[str, ...]) -> KeyIndex:
        with self._lock:
            if self._batch is not batch:
                self._batch, self._indexes = batch, {}
            if columns not in self._indexes:
                self._indexes[columns] = key_index(batch, columns)
            return self._indexes[columns]


_LAST = _LastBatch()


#: columns whose values are nearly all distinct (a session in an ARN, an address, an agent's
#: version): combinations with them are seldom seen twice, so remembering answers per
#: combination does not pay; the rule's demands on eventSource/eventName go first
_SCATTERED = frozenset({"user_agent", "identity_arn", "source_ip", "access_key_id"})
_EVENT_KEY = ("event_name", "event_source")  # sorted, as pins list their columns


class _Memo:
    """A test's answers per combination of column values, bounded (`record`: the Record a
    combination stands for; by default the columns' values)."""

    def __init__(
        self,
        test: Callable[[Record], bool],
        columns: tuple[str, ...],
        record: Callable[[Key], Record] | None = None,
    ) -> None:
        self.test = test
        self.columns = columns
        self.record = record or (lambda key: Record(dict(zip(columns, key, strict=True))))
        self.known: dict[Key, bool] = {}

    def admitted(self, keys: list[Key]) -> list[bool]:
        # most combinations are known from earlier batches: one dict look-up each
        get = self.known.get
        found = [get(key) for key in keys]
        if None in found:
            found = [
                self.passes(key) if known is None else known
                for key, known in zip(keys, found, strict=True)
            ]
        return found  # type: ignore[return-value]

    def passes(self, key: Key) -> bool:
        """The test's answer for one combination, remembered."""
        known = self.known.get(key)
        if known is None:
            known = self.test(self.record(key))
            if len(self.known) >= _MEMO_LIMIT:
                self.known.clear()
            self.known[key] = known
        return known


_REFUSED = object()  # a row the native reader left to Python (see json_native.cpp's FieldIds)


class _Whole:
    """The whole condition decided once per combination of the values at the places it reads,
    for a rule that reads fields inside JSON (`userIdentity.sessionContext.sessionIssuer.type`):
    the native reader numbers what each row holds there, so rows holding combinations seen
    before are neither parsed nor tested in Python. The JSON text of a place's values stands
    for them in a combination (`true` and `1` are equal in Python, not in Sigma)."""

    def __init__(self, test: Callable[[Record], bool], places: tuple[Place, ...]) -> None:
        assert FIELDS is not None  # the caller checked
        self.places = places
        self._readers = {place: FIELDS.FieldIds(list(place[1])) for place in places if place[1]}
        self._texts: dict[Place, list[bytes]] = {place: [] for place in self._readers}
        self._memo = _Memo(test, (), self._record)
        self._lock = threading.Lock()  # the numberings and their texts change together

    def _record(self, key: Key) -> Record:
        row: dict[str, Any] = {}
        found: dict[Place, list[Any]] = {}
        for place, value in zip(self.places, key, strict=True):
            if place[1]:
                found[place] = orjson.loads(value)
            else:
                row[place[0]] = value
        return Record(row, found)

    def rows(self, batch: pa.RecordBatch, chosen: list[int]) -> tuple[list[int], list[int]]:
        """(the rows of `chosen` the condition holds on, those left to the test per row)"""
        taken = pa.array(chosen, pa.int64())
        parts: list[Codes] = []
        with self._lock:
            for place in self.places:
                column = _column(batch, place[0])
                if not place[1]:
                    parts.append(dictionary_codes(column.take(taken)))
                elif pa.types.is_string(column.type):
                    parts.append(self._numbered(place, column, chosen))
                else:  # not text: Python reads it
                    parts.append(([_REFUSED], pa.array([0] * len(chosen), pa.int64())))
        index = combined(parts)
        refused = [_REFUSED in key for key in index.keys]
        if True not in refused:
            return self._take(chosen, index, self._memo.admitted(index.keys)), []
        readable = [key for key, left in zip(index.keys, refused, strict=True) if not left]
        decided = iter(self._memo.admitted(readable))
        answers = [False if r else next(decided) for r in refused]
        return self._take(chosen, index, answers), self._take(chosen, index, refused)

    @staticmethod
    def _take(chosen: list[int], index: KeyIndex, wanted: list[bool]) -> list[int]:
        if True not in wanted:
            return []
        positions = pc.indices_nonzero(pc.take(pa.array(wanted, pa.bool_()), index.inverse))
        return [chosen[i] for i in positions.to_pylist()]

    def _numbered(self, place: Place, column: pa.Array, chosen: list[int]) -> Codes:
        assert FIELDS is not None  # _Whole is made only with the native reader
        reader = self._readers[place]
        if reader.bytes > _FIELD_BYTES:  # past its budget the numbering starts afresh
            reader = self._readers[place] = FIELDS.FieldIds(list(place[1]))
            self._texts[place] = []
        texts = self._texts[place]
        offsets, data = string_buffers(column)
        ids, fresh = reader.encode(offsets, data, validity(column), column.offset, chosen)
        texts.extend(fresh)
        numbers, codes = dictionary_codes(pa.array(ids, pa.int64()))
        return [_REFUSED if n is None or n < 0 else texts[n] for n in numbers], codes


class BatchMatcher:
    """One compiled rule, ready for batches; remembers its prefilter's answers."""

    def __init__(self, compiled: Compiled) -> None:
        self.compiled = compiled
        pin = compiled.pin
        self._pin = None if pin is None else _Memo(pin.test, pin.columns)
        places = compiled.places
        exact = pin is not None and pin.exact
        self._whole = (
            _Whole(compiled.test, places)
            if FIELDS is not None and places and not exact and any(p for _, p in places)
            else None
        )
        # a prefilter reading scattered values is narrowed first by what the condition asks
        # of eventSource/eventName, and of each other column alone (answers per value)
        self._narrowing: list[_Memo] = []
        if pin is not None and _SCATTERED & set(pin.columns):
            if compiled.names_events is not None:
                self._narrowing.append(_Memo(compiled.names_events, _EVENT_KEY))
            for column, test in compiled.single_columns:
                self._narrowing.append(_Memo(test, (column,)))

    @property
    def screen(self) -> _Memo | None:
        """The rule's first demand on a batch, per combination of a few columns (its prefilter,
        or the first stage of a narrowed one): where no combination of a batch passes it, the
        rule matches no row there (see Screen). None: the rule has no such demand."""
        return self._narrowing[0] if self._narrowing else self._pin

    def candidates(self, batch: pa.RecordBatch) -> list[int] | None:
        """Rows the prefilter lets through; None: every row (nothing to prefilter on)."""
        pin = self._pin
        if pin is None:
            return None
        if self._narrowing:
            return self._narrowed(batch, pin)
        index = _LAST.get(batch, pin.columns)
        admitted = pin.admitted(index.keys)
        if True not in admitted:
            return []
        if False not in admitted:
            return None
        mask = pc.take(pa.array(admitted, pa.bool_()), index.inverse)
        chosen: list[int] = pc.indices_nonzero(mask).to_pylist()
        return chosen

    def _narrowed(self, batch: pa.RecordBatch, pin: _Memo) -> list[int]:
        """The prefilter when it reads a column of scattered values: first the rule's demands
        on eventSource/eventName (combinations shared with most rules) and on each other
        column alone (distinct values), answers remembered; then the whole prefilter on the
        few rows left, per row."""
        mask: pa.Array | None = None
        for stage in self._narrowing:
            index = _LAST.get(batch, stage.columns)
            admitted = stage.admitted(index.keys)
            if True not in admitted:
                return []
            if False in admitted:
                part = pc.take(pa.array(admitted, pa.bool_()), index.inverse)
                mask = part if mask is None else pc.and_(mask, part)
        every = mask is None
        rows = list(range(batch.num_rows)) if every else pc.indices_nonzero(mask).to_pylist()
        if not rows:
            return []
        taken = pa.array(rows, pa.int64())
        names = batch.schema.names  # a batch from before a column existed reads it as null
        keys = list(
            zip(
                *(
                    batch.column(c).take(taken).to_pylist() if c in names else [None] * len(rows)
                    for c in pin.columns
                ),
                strict=True,
            )
        )
        return [row for row, ok in zip(rows, pin.admitted(keys), strict=True) if ok]

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
        if chosen is None:
            chosen = list(range(batch.num_rows))
        if self._whole is None or len(chosen) < _FEW:
            return self._tested(batch, chosen)
        found, left = self._whole.rows(batch, chosen)
        return sorted(found + self._tested(batch, left)) if left else found

    def _tested(self, batch: pa.RecordBatch, chosen: list[int]) -> list[int]:
        """The rows of `chosen` the whole condition holds on, tested one by one."""
        if not chosen:
            return []
        part = batch.select([c for c in batch.schema.names if c in self.compiled.columns])
        if len(chosen) < batch.num_rows:
            part = part.take(pa.array(chosen, pa.int64()))
        test = self.compiled.test
        return [i for i, row in zip(chosen, part.to_pylist(), strict=True) if test(Record(row))]


class Screen:
    """Which Sigma rules may match some row of a batch (rules.BatchGroup), decided for all of
    them at once: per distinct combination of their screening columns (BatchMatcher.screen),
    the set of rules whose screen passes it, remembered across batches. Most rules name a few
    events, so most batches hold none of theirs; asking each rule to hear so was a look-up per
    combination and rule, and their calls, about a tenth of a CloudTrail batch's detection."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # releases come from finalizers, which may run while this thread holds the lock
        self._released: list[str] = []
        self._screens: dict[tuple[str, ...], dict[str, _Memo]] = {}  # columns -> key -> screen
        self._passing: dict[tuple[str, ...], dict[Key, frozenset[str]]] = {}
        self._next = 0

    def register(self, screen: _Memo) -> str:
        """A key for a rule screened by `screen`; `release` it when the rule is gone."""
        with self._lock:
            self._apply_releases()
            self._next += 1
            key = f"sigma-{self._next}"
            self._screens.setdefault(screen.columns, {})[key] = screen
            self._passing.pop(screen.columns, None)  # the remembered sets lack the new rule
            return key

    def release(self, key: str) -> None:
        """A rule using `key` is gone (called from its finalizer: never blocks)."""
        self._released.append(key)

    def _apply_releases(self) -> None:
        while self._released:
            key = self._released.pop()
            for columns, screens in list(self._screens.items()):
                if screens.pop(key, None) is not None:
                    self._passing.pop(columns, None)
                    if not screens:
                        del self._screens[columns]

    def matched(self, table: str, batch: pa.RecordBatch) -> set[str]:
        """The keys of the rules whose screen passes some combination in `batch`."""
        found: set[str] = set()
        if table != "cloudtrail" or batch.num_rows == 0:
            return found
        with self._lock:
            self._apply_releases()
            for columns, screens in self._screens.items():
                passing = self._passing.setdefault(columns, {})
                if len(passing) >= _MEMO_LIMIT:
                    passing.clear()
                for combination in _LAST.get(batch, columns).keys:
                    keys = passing.get(combination)
                    if keys is None:
                        keys = passing[combination] = frozenset(
                            key for key, screen in screens.items() if screen.passes(combination)
                        )
                    if keys:
                        found.update(keys)
        return found


#: the process-wide screen every sigma rule with a screening demand registers in
SCREEN = Screen()
