"""Rows that cannot match any pattern, found before any row is turned into an event.

Most rows of a stream match nothing, and most fields a pattern tests hold a handful of distinct
values (source, detail-type, eventName, lastStatus). So every branch of every pattern gets one bit,
and for each tested path the bits of the branches that a value *rules out* are worked out once per
distinct value and cached: a row's surviving branches are the AND of the masks of its values, path
after path, and a row is dropped as soon as none survives. Only the rows left are built into
events and matched exactly (index.py), so this filter may keep too much but never too little:
a test rules a branch out only when it fails on the path's values alone, which implies it fails
array-consistently too; `exists: false` tests, the one kind array consistency can rescue, never
rule anything out here.

The masks left on the surviving rows usually decide the match outright (`split`): a branch
alive on a row had every one of its tests hold on the values of the test's path, which is what
a match is, unless the branch has an `exists: false` test, a test on a path the view cannot
read, or two tests whose values may sit in one array (array consistency). Only rows where such
a branch is still alive are built into events and matched exactly (index.PatternSet.match_view).

Values come from a `RowView` (records.py): store columns where the EventBridge field is a column,
parsed JSON text where it is inside one; paths a table cannot say anything cheap about are skipped.
Where the native reader is built (json_native.cpp), the live rows and their masks are held there
(`_narrowed`): a path inside one JSON column is read in C++ and its distinct lists of leaves
numbered across batches, so a value is judged once however many rows hold it, and each path's
masks are ANDed into the rows' in C++.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import orjson
import pyarrow as pa

from ecsguard.core.native import load, note, string_buffers, validity
from ecsguard.detect.eventpattern.pattern import Branch, FieldTest

LEAVES = load("ecsguard._json_native")  # the native leaf reader, or None


def reader_note() -> str:
    """Which JSON reader detection runs (json_native.cpp or Python), for start-up lines."""
    return note("detection JSON reader", LEAVES, "about 1.4x the detection rate")


#: distinct values remembered per path (a path of unique values, such as an ARN, would grow it
#: without end: it is emptied when full)
CACHE_LIMIT = 50_000
#: bytes of distinct values the native reader keeps numbered per path before starting afresh
BYTES_LIMIT = 16 << 20


class RowView(Protocol):
    """How a table's rows expose EventBridge paths (records.RowView)."""

    rows: int

    def kind(self, path: str) -> str | None:
        """'column' (one scalar or nothing per row), 'json' (leaves found in parsed JSON),
        'absent' (no row has the field) or None (nothing cheap to say)."""
        ...

    def column(self, path: str) -> list[Any]:
        """One value per row, None when the event has no such field."""
        ...

    def codes(self, path: str) -> tuple[list[Any], memoryview]:
        """`column(path)` numbered: its distinct values and each row's number among them
        (int32)."""
        ...

    def leaves(self, path: str, row: int) -> list[Any]:
        """The path's scalar leaves in one row's event, as flatten.py would find them."""
        ...

    def json_values(self, path: str, rows: Sequence[int]) -> list[Any]:
        """For each of `rows`, its one leaf when that is a string, else its list of leaves."""
        ...

    def array_at(self, key: str, row: int) -> bool:
        """Whether the row's event holds an array at top-level key `key`."""
        ...

    def json_column(self, path: str) -> tuple[pa.Array, tuple[str, ...]] | None:
        """The string column whose JSON texts alone hold the path's leaves, and the keys below
        each text's root (None: only json_values can say)."""
        ...


class Prefilter:
    """Built once per set of patterns; `survivors(view)` is the per-batch part."""

    def __init__(self, branches: Sequence[Branch]) -> None:
        self.all = (1 << len(branches)) - 1
        grouped: dict[str, dict[str, tuple[FieldTest, int]]] = {}
        for bit, branch in enumerate(branches):
            for test in branch:
                if test.exists_false:
                    continue
                tests = grouped.setdefault(test.path, {})
                # identical lists on one path are one test (tested once per value)
                known = tests.get(test.shown)
                bits = (known[1] if known else 0) | (1 << bit)
                tests[test.shown] = (known[0] if known else test, bits)
        self.tests = {path: list(tests.values()) for path, tests in grouped.items()}
        # the paths that rule out the most branches first
        self.weight = {
            path: bin(_union(bits for _, bits in tests)).count("1")
            for path, tests in self.tests.items()
        }
        self._undecidable, self._top_shared = _undecidable(branches)
        self._unread: dict[tuple[tuple[str, str], ...], int] = {}
        self._cache: dict[tuple[str, str], dict[Any, int]] = {}
        #: (path, keys below the JSON root) -> (the native numbering of its leaf lists, the
        #: branches each number leaves alive, as a table of masks for a Narrowing)
        self._numbered: dict[tuple[str, tuple[str, ...]], tuple[Any, bytearray]] = {}
        self._stride = 8 * max(1, (len(branches) + 63) // 64)  # bytes of one mask's words
        self._order: dict[tuple[tuple[str, str], ...], list[tuple[str, str]]] = {}
        #: (path, kind) -> rows tried, rows dropped
        self._stats: dict[tuple[str, str], tuple[int, int]] = {}

    def alive(self, path: str, leaves: list[Any]) -> int:
        """The branches the values `leaves` of `path` do not rule out."""
        # tests_hold on one test, inline (paths of unique values, such as ARNs, ask often)
        killed = 0
        for test, bits in self.tests[path]:
            if not leaves:
                killed |= bits  # exists:false tests are not here: the rest need a value
            elif not test.exists_true:
                accepts = test.accepts
                for value in leaves:
                    if accepts(value):
                        break
                else:
                    killed |= bits
        return self.all & ~killed

    def order(self, view: RowView) -> list[tuple[str, str]]:
        """(path, kind) to test for this view: columns first (cheap), then the paths that
        dropped the most rows they were tried on so far (a row needs several paths to be
        dropped when patterns branch on different fields), the heaviest first at the start."""
        kinds = self._kinds(view)
        order = self._order.get(kinds)
        if order is None:
            order = [(path, kind) for path, kind in kinds if kind]
            self._order[kinds] = order
        order.sort(key=self._rank)
        return order

    def _kinds(self, view: RowView) -> tuple[tuple[str, str], ...]:
        return tuple((path, view.kind(path) or "") for path in self.tests)

    def _unread_bits(self, view: RowView) -> int:
        """Branches with a test on a path this view cannot read (never ruled out by it)."""
        kinds = self._kinds(view)
        bits = self._unread.get(kinds)
        if bits is None:
            bits = 0
            for path, kind in kinds:
                if not kind:
                    bits |= _union(branches for _, branches in self.tests[path])
            self._unread[kinds] = bits
        return bits

    def _rank(self, item: tuple[str, str]) -> tuple[bool, float, int]:
        path, kind = item
        tried, dropped = self._stats.get(item, (0, 0))
        return (kind == "json", -(dropped + 1) / (tried + 2), -self.weight[path])

    def survivors(self, view: RowView) -> list[int]:
        """Row numbers some branch may still match, in order."""
        return self._survive(view)[0]

    def split(self, view: RowView) -> tuple[list[tuple[int, int]], list[tuple[int, int, int]]]:
        """The survivors in two lists: (row, branches) where the masks alone decide which
        branches match, and (row, branches matched, branches to test exactly) for the others.

        A branch left alive on a row had every test hold on the values of its path, which is
        a match unless it has an `exists: false` test (never tried here), a test on a path the
        view could not read, or two tests whose values may sit in one array (then array
        consistency decides): that is, two paths sharing more than their top-level key, or
        sharing a top-level key whose value is an array in this row. Only such branches are
        left to test, and only where alive: a branch ruled out here cannot match."""
        live, masks = self._survive(view)
        if not live:
            return [], []
        undecided = self._undecidable | self._unread_bits(view)
        decided: list[tuple[int, int]] = []
        exact: list[tuple[int, int, int]] = []
        for row, mask in zip(live, masks, strict=True):
            unsure = mask & undecided
            for top, bits in self._top_shared:
                if mask & bits & ~unsure and view.array_at(top, row):
                    unsure |= mask & bits
            if unsure:
                exact.append((row, mask & ~unsure, unsure))
            else:
                decided.append((row, mask))
        return decided, exact

    def _survive(self, view: RowView) -> tuple[list[int], list[int]]:
        """(rows still live, the branches alive on each of them): two parallel lists, each
        path's step a few comprehensions over them (no per-row statements)."""
        live = list(range(view.rows))
        masks = [self.all] * view.rows
        if not self.tests:
            return live, masks
        if LEAVES is not None:
            return self._narrowed(view)
        stats = self._stats
        for item in self.order(view):
            if not live:
                break
            alives = self._alives(item, view, live)
            masks = [mask & alive for mask, alive in zip(masks, alives, strict=True)]
            kept = [row for row, mask in zip(live, masks, strict=True) if mask]
            tried, dropped = stats.get(item, (0, 0))
            stats[item] = (tried + len(live), dropped + len(live) - len(kept))
            if len(kept) < len(live):
                masks = [mask for mask in masks if mask]
            live = kept
        return live, masks

    def _narrowed(self, view: RowView) -> tuple[list[int], list[int]]:
        """_survive with the live rows and their masks held in json_native.cpp (a Narrowing):
        each path gives a table of masks, one per number, and a number per live row; a path
        inside one JSON column is read and numbered there too (`_narrow_json`), the others by
        their masks, worked out in Python as without the native reader."""
        assert LEAVES is not None  # the caller checked
        narrowing = LEAVES.Narrowing(view.rows, self._words(self.all))
        stats = self._stats
        for item in self.order(view):
            before = len(narrowing)
            if not before:
                break
            path, kind = item
            source = view.json_column(path) if kind == "json" else None
            if source is not None:
                dropped = self._narrow_json(path, *source, narrowing, view)
            elif kind == "column":
                dropped = self._narrow_column(item, view, narrowing)
            elif kind == "absent":
                every = array("i", bytes(4 * before))  # number 0 for every live row
                alive = self._value_mask(self._cache_of(item), path, None)
                dropped = narrowing.apply(self._words(alive), every)
            else:
                alives = self._alives(item, view, narrowing.live())
                numbers: dict[int, int] = {}  # a row's mask -> its number in the table
                ids = array("i", [numbers.setdefault(alive, len(numbers)) for alive in alives])
                dropped = narrowing.apply(b"".join(map(self._words, numbers)), ids)
            tried, was = stats.get(item, (0, 0))
            stats[item] = (tried + before, was + dropped)
        data, stride = narrowing.masks(), self._stride
        starts = range(0, len(data), stride)
        masks = [int.from_bytes(data[at : at + stride], "little") for at in starts]
        return narrowing.live(), masks

    def _narrow_column(self, item: tuple[str, str], view: RowView, narrowing: Any) -> int:
        """Narrow by a column path, through its codes: the mask of each distinct value the live
        rows hold (a column of unique values, such as ids, would otherwise ask a mask for every
        row of the batch, however few are still live). The rows dropped."""
        path = item[0]
        values, codes = view.codes(path)
        cache = self._cache_of(item)
        if len(values) * 4 <= len(narrowing):  # few values: each, without reading the rows
            wanted: Iterable[int] = range(len(values))
        else:
            wanted = {codes[row] for row in narrowing.live()}
        stride = self._stride
        table = bytearray(stride * len(values))  # a code no live row holds is never read
        for code in wanted:
            mask = self._words(self._value_mask(cache, path, values[code]))
            table[code * stride : (code + 1) * stride] = mask
        return int(narrowing.apply(table, codes, by_row=True))

    def _narrow_json(
        self, path: str, texts: pa.Array, parts: tuple[str, ...], narrowing: Any, view: RowView
    ) -> int:
        """Narrow by `path`, its leaves read natively from `texts` (json_native.cpp): each
        distinct list of leaves is numbered across batches and its mask worked out in Python
        when first seen. Rows simdjson refuses are read by json_values, so they are judged as
        without the native reader. The rows dropped."""
        assert LEAVES is not None  # the caller checked
        state = self._numbered.get((path, parts))
        if (
            state is None
            or len(state[1]) > CACHE_LIMIT * self._stride
            or state[0].bytes > BYTES_LIMIT
        ):
            state = self._numbered[(path, parts)] = (LEAVES.LeafIds(list(parts)), bytearray())
        leaf_ids, table = state
        offsets, data = string_buffers(texts)
        fresh, refused = leaf_ids.encode_live(
            narrowing, offsets, data, validity(texts), texts.offset
        )
        for text in fresh:
            table += self._words(self.alive(path, orjson.loads(text)))
        if not refused:
            return int(narrowing.apply(table))
        # each refused row's mask goes at the table's end for this call only
        known = len(table) // self._stride
        live = narrowing.live()
        values = view.json_values(path, [live[at] for at in refused])
        for number, (at, value) in enumerate(zip(refused, values, strict=True), known):
            table += self._words(self.alive(path, [value] if type(value) is str else value))
            narrowing.set(at, number)
        try:
            return int(narrowing.apply(table))
        finally:
            del table[known * self._stride :]

    def _alives(self, item: tuple[str, str], view: RowView, live: list[int]) -> list[int]:
        """The branches each of the `live` rows leaves alive on the path (its kind 'column',
        'absent', or 'json' read by json_values), from the cache of masks per value."""
        path, kind = item
        cache = self._cache_of(item)
        if kind == "absent":
            return [self._value_mask(cache, path, None)] * len(live)
        get = cache.get
        if kind == "column":
            column = view.column(path)
            values = [column[row] for row in live]
            alives: list[Any] = [get(value) for value in values]
        else:
            # one value per row: a string (the one leaf, the common case, cached as it is) or
            # the list of leaves (cached by their JSON, never equal to a str)
            values = view.json_values(path, live)
            try:
                alives = [
                    get(value) if type(value) is str else get(_dumps(value)) for value in values
                ]
            except TypeError:  # an integer beyond 64 bits: the misses say why
                alives = [get(value) if type(value) is str else None for value in values]
        return self._fill(path, kind, cache, values, alives) if None in alives else alives

    def _cache_of(self, item: tuple[str, str]) -> dict[Any, int]:
        """The masks per value of (path, kind), emptied when full (a path of unique values,
        such as an ARN, would grow it without end)."""
        cache = self._cache.setdefault(item, {})
        if len(cache) > CACHE_LIMIT:
            cache.clear()
        return cache

    def _value_mask(self, cache: dict[Any, int], path: str, value: Any) -> int:
        """The branches one value leaves alive (None: no value; an absent path has none),
        through `cache`: a column's value, or a JSON path's one string leaf."""
        alive = cache.get(value)
        if alive is None:
            alive = cache[value] = self.alive(path, [] if value is None else [value])
        return alive

    def _words(self, mask: int) -> bytes:
        """`mask` as the Narrowing holds it: whole 64-bit words, little-endian."""
        return mask.to_bytes(self._stride, "little")

    def _fill(
        self,
        path: str,
        kind: str,
        cache: dict[Any, int],
        values: list[Any],
        alives: list[Any],
    ) -> list[int]:
        """`alives` with the masks the cache did not hold (new values, lists of leaves)
        worked out, and cached."""
        alives = list(alives)
        for i, value in enumerate(values):
            if alives[i] is not None:
                continue
            if kind == "column" or type(value) is str:
                alives[i] = self._value_mask(cache, path, value)
                continue
            key = _key(value)
            alive = cache.get(key) if key is not None else None
            if alive is None:
                alive = self.alive(path, value)
                if key is not None:
                    cache[key] = alive
            alives[i] = alive
        return alives


def _undecidable(branches: Sequence[Branch]) -> tuple[int, list[tuple[str, int]]]:
    """(branches the masks never decide alone, [(top-level key, branches with two tests
    sharing only that key)]): see Prefilter.split."""
    undecidable = 0
    top_shared: dict[str, int] = {}
    for bit, branch in enumerate(branches):
        if any(test.exists_false for test in branch):
            undecidable |= 1 << bit
            continue
        parts = [test.path.split(".") for test in branch]
        for i, first in enumerate(parts):
            for second in parts[i + 1 :]:
                shared = 0
                while shared < min(len(first), len(second)) and first[shared] == second[shared]:
                    shared += 1
                if shared > 1:
                    undecidable |= 1 << bit
                elif shared == 1:
                    top_shared[first[0]] = top_shared.get(first[0], 0) | 1 << bit
    return undecidable, sorted(top_shared.items())


_dumps = orjson.dumps


def _key(leaves: list[Any]) -> bytes | None:
    """A cache key that keeps True, 1 and 1.0 apart (a tuple would not)."""
    try:
        return orjson.dumps(leaves)
    except TypeError:  # an integer beyond 64 bits: not cached
        return None


def _union(values: Iterable[int]) -> int:
    out = 0
    for value in values:
        out |= value
    return out
