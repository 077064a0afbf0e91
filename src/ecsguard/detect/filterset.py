"""Many filter patterns over one `logs` batch, sharing the work between them.

`masks(batch).mask(pattern)` gives the rows `pattern.match` accepts (null text: no match), as
`TailFilter.mask` decides them, but per batch rather than per rule:
- a pattern text is evaluated once per batch, however many rules use it;
- terms (`"Connection refused" -"health"`) are substring tests: one search per distinct term
  over the batch's texts (natively, or joined in Python), shared by every pattern naming it;
- JSON patterns parse a line once for all of them, and only lines that could match: where the
  text has no backslash (so every JSON string in it is written verbatim), a line lacking a key the
  selector needs (`"latency_ms"`) or the text an `=` string test needs cannot match; a selector
  is resolved once per line and a test evaluated once per distinct value (`JsonRows`); with the
  native reader (json_native.cpp), a selector without wildcards is resolved in C++ and a test
  decided once per distinct value it reaches, across batches;
- regular expressions run in RE2 over the whole column (Arrow's match_substring_regex);
- space-delimited patterns run `match` per line, as before.
The last batch's work is kept per thread, so the rules after the first reuse it.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ecsguard.core.native import load, numbered, rows_with
from ecsguard.logs.query.filter_pattern import FilterPattern, evaluate
from ecsguard.logs.query.filter_pattern import tree as nodes

JSON = load("ecsguard._json_native")  # the native JSON reader, or None
SEARCH = load("ecsguard._firelens_native")  # the native text search, or None


class BatchMasks:
    """The shared per-batch work; see the module docstring."""

    def __init__(self, batch: pa.RecordBatch) -> None:
        self.batch = batch
        self._masks: dict[str, pa.BooleanArray] = {}
        self._contains: dict[tuple[str, str], set[int]] = {}
        self._joins: dict[str, tuple[str, list[int]]] = {}
        self._texts: dict[str, pa.Array] = {}
        self._lists: dict[str, list[str | None]] = {}
        self._json_rows: dict[str, JsonRows] = {}
        self._equal: dict[tuple[str, str], pa.BooleanArray] = {}
        self._valid: dict[str, set[int]] = {}

    def equal(self, column: str, value: str) -> pa.BooleanArray:
        """Rows whose `column` is `value` (null: no), once per batch for all the rules asking."""
        found = self._equal.get((column, value))
        if found is None:
            same = pc.equal(self.batch.column(column), pa.scalar(value))
            found = self._equal[(column, value)] = pc.fill_null(same, False)
        return found

    def mask(self, pattern: FilterPattern) -> pa.BooleanArray:
        found = self._masks.get(pattern.text)
        if found is None:
            found = self._masks[pattern.text] = self._compute(pattern)
        return found

    def _text(self, column: str) -> pa.Array:
        """'message', or 'json': the record's JSON fields, else its message (as TailFilter)."""
        found = self._texts.get(column)
        if found is None:
            message = _array(self.batch.column("message"))
            if column == "json":
                message = _array(pc.coalesce(self.batch.column("fields"), message))
            found = self._texts[column] = message
        return found

    def _list(self, column: str) -> list[str | None]:
        found = self._lists.get(column)
        if found is None:
            found = self._lists[column] = self._text(column).to_pylist()
        return found

    def _has(self, column: str, literal: str) -> set[int]:
        """Rows whose text contains `literal`: the native search where it is built, else
        str.find over all the texts joined (far faster than Arrow's match_substring here), by a
        separator the literal does not hold, so no find can span two rows."""
        found = self._contains.get((column, literal))
        if found is not None:
            return found
        needle = literal.encode()
        if not literal:
            found = self._valid_rows(column)
        elif SEARCH is not None and self._text(column).type == pa.string():
            # the native search over Arrow's buffer (firelens_native.cpp), 16 bytes at a time,
            # without a Python string per text (a null's slot may hold bytes: it is no match);
            # JSON patterns ask in every batch for rows holding a backslash (one byte)
            found = set(rows_with(SEARCH, self._text(column), needle))
            if self._text(column).null_count:
                found &= self._valid_rows(column)
        elif any(sep in literal for sep in _SEPARATORS) or (
            # a common text ("health" in every /healthz line): one test per line is cheaper
            # than a find and a bisection per occurrence
            self._joined(column)[0].count(literal) * 8 > len(self._text(column))
        ):
            texts = self._list(column)
            found = {row for row, text in enumerate(texts) if text is not None and literal in text}
        else:
            joined, starts = self._joined(column)
            found = set()
            at = joined.find(literal)
            while at >= 0:
                row = bisect.bisect_right(starts, at) - 1
                found.add(row)
                at = joined.find(literal, starts[row + 1]) if row + 1 < len(starts) else -1
        self._contains[(column, literal)] = found
        return found

    def _at_most_once(self, column: str, literal: str) -> bool:
        """True when no text holds `literal` twice: as many occurrences as texts holding it."""
        joined, _ = self._joined(column)
        return joined.count(literal) == len(self._has(column, literal))

    def _joined(self, column: str) -> tuple[str, list[int]]:
        found = self._joins.get(column)
        if found is None:
            texts = [text or "" for text in self._list(column)]
            starts, at = [], 0
            for text in texts:
                starts.append(at)
                at += len(text) + 1
            found = self._joins[column] = (_SEPARATORS[0].join(texts), starts)
        return found

    def _valid_rows(self, column: str) -> set[int]:
        """The rows whose text is not null."""
        valid = self._valid.get(column)
        if valid is None:
            array = self._text(column)
            valid = self._valid[column] = (
                set(pc.indices_nonzero(pc.is_valid(array)).to_pylist())
                if array.null_count
                else set(range(len(array)))
            )
        return valid

    def _compute(self, pattern: FilterPattern) -> pa.BooleanArray:
        tree = pattern.tree
        column = "json" if pattern.kind == "json" else "message"
        rows = len(self._text(column))
        valid = self._valid_rows(column)
        if isinstance(tree, nodes.MatchAll):
            return _mask(valid, rows)
        if isinstance(tree, nodes.Terms):
            if tree.alternatives:
                keep = set[int]().union(*(self._has(column, t) for t in tree.alternatives))
            else:
                keep = valid
                for term in tree.required:
                    keep = keep & self._has(column, term)
                for term in tree.excluded:
                    keep = keep - self._has(column, term)
            return _mask(keep & valid, rows)
        if isinstance(tree, nodes.JsonPattern):
            return self._json(tree, column, valid)
        if isinstance(tree, nodes.RegexPattern):
            # RE2 over the whole column: regex.py compiles each expression so that RE2 and
            # Python's `re` (what `match` runs) read it alike
            found = pc.match_substring_regex(self._text(column), pattern=tree.regex.re2)
            return pc.fill_null(found, False)
        texts = self._list(column)
        return pa.array([t is not None and pattern.match(t) is not None for t in texts], pa.bool_())

    def _json(self, tree: nodes.JsonPattern, column: str, valid: set[int]) -> pa.BooleanArray:
        maybe = valid
        needed = _needed(tree.expr)
        if needed:
            # rows with an escape anywhere are kept; the others need every literal
            present = set.intersection(*(self._has(column, text) for text in sorted(needed)))
            maybe = valid & (present | self._has(column, "\\"))
        texts = self._list(column)
        json_rows = self._json_rows.get(column)
        if json_rows is None:
            json_rows = self._json_rows[column] = JsonRows(
                texts, lambda literal: self._at_most_once(column, literal), self._text(column)
            )
        return _mask(set(json_rows.holds(tree.expr, sorted(maybe))), len(texts))


class JsonRows:
    """JSON patterns over the lines of one batch, as `evaluate.eval_json` decides them on
    `evaluate.load_object`'s document, with less work per line:
    - a line without a backslash is parsed by orjson (several times faster than the json
      module with its first-key-wins hook); a selector reads that parse only when none of its
      keys occurs twice in the text (the only way duplicate keys, where the two parsers
      differ, can change what it reaches); otherwise, and for selectors with wildcards,
      the exact document is used;
    - a selector is resolved once per line for every test that reads it, and a test is
      evaluated once per distinct value (the same status code or level on most lines);
    - AllOf and AnyOf test their later items only on the lines still undecided."""

    def __init__(
        self,
        texts: list[str | None],
        at_most_once: Callable[[str], bool] | None = None,
        array: pa.Array | None = None,
    ) -> None:
        """`at_most_once(literal)`: whether no text holds it twice (a count over the batch
        that saves one per line); None: every line is counted. `array`: the same texts as an
        Arrow string array, which the native reader (json_native.cpp) reads in place."""
        self.texts = texts
        self._array = array if array is not None and array.type == pa.string() else None
        self._at_most_once = at_most_once
        self._once: dict[str, bool] = {}
        self._fast: dict[int, Any] = {}  # row -> orjson's object, None: not an object
        self._exact: dict[int, dict[str, Any] | None] = {}  # row -> load_object's
        self._values: dict[tuple[nodes.Step, ...], dict[int, Any]] = {}  # selector -> row -> values
        self._tests: dict[int, dict[Any, bool]] = {}  # id(test) -> value key -> result
        self._held: list[nodes.JsonTest] = []  # keeps the tests whose ids key _tests alive

    def holds(self, expr: nodes.Expr, rows: list[int]) -> list[int]:
        """The rows (of `rows`, in order) where `expr` holds on the line's JSON object."""
        if not rows:
            return rows
        if isinstance(expr, nodes.AllOf):
            for item in expr.items:
                rows = self.holds(item, rows)
                if not rows:
                    break
            return rows
        if isinstance(expr, nodes.AnyOf):
            matched: set[int] = set()
            left = rows
            for item in expr.items:
                found = self.holds(item, left)
                if found:
                    matched.update(found)
                    left = [row for row in left if row not in matched]
            return [row for row in rows if row in matched]
        if isinstance(expr, nodes.JsonTest):
            return self._test(expr, rows)
        return []

    def _test(self, test: nodes.JsonTest, rows: list[int]) -> list[int]:
        if self._array is not None and JSON is not None and nodes.WILDCARD not in test.selector:
            return self._test_native(test, rows)
        return self._test_python(test, rows)

    def _test_native(self, test: nodes.JsonTest, rows: list[int]) -> list[int]:
        """_test_python's answer, the lines parsed and the selector walked in C++; what it
        reaches is numbered by distinct value across batches (_Reached), and the test decided
        once per number. Lines simdjson refuses are left to _test_python."""
        array = self._array
        assert array is not None and JSON is not None  # the caller checked
        with _REACHED_LOCK:
            if len(_REACHED) > _REACHED_SELECTORS:  # rules reloaded many times over
                _REACHED.clear()
            reached = _REACHED.get(test.selector)
            if (
                reached is None
                or len(reached.values) > _REACHED_LIMIT
                or reached.ids.bytes > _REACHED_BYTES
            ):
                reached = _REACHED[test.selector] = _Reached(JSON.SelectorIds(list(test.selector)))
            ids, fresh = numbered(reached.ids, array, rows)
            reached.values.extend(fresh)
            decided = reached.results.setdefault(test, [])
            for values in reached.values[len(decided) :]:
                decided.append(_holds(test, values))
            out: list[int] = []
            refused: list[int] = []
            for row, number in zip(rows, ids, strict=True):
                if number >= 0:
                    if decided[number]:
                        out.append(row)
                elif number == -1:
                    refused.append(row)
        if refused:
            out = sorted(out + self._test_python(test, refused))
        return out

    def _test_python(self, test: nodes.JsonTest, rows: list[int]) -> list[int]:
        results = self._tests.get(id(test))
        if results is None:
            results = self._tests[id(test)] = {}
            self._held.append(test)
        missing = test.test == "missing"
        out = []
        for row, values in zip(rows, self.values(test.selector, rows), strict=True):
            if values is None:  # not a JSON object
                continue
            if missing:
                if not values:
                    out.append(row)
                continue
            for value in values:
                key = _value_key(value)
                if key is None:  # an array or object: never equal to anything
                    continue
                known = results.get(key)
                if known is None:
                    known = results[key] = evaluate.json_value_test(test, value)
                if known:
                    out.append(row)
                    break
        return out

    def values(self, selector: tuple[nodes.Step, ...], rows: list[int]) -> list[Any]:
        """Per row, evaluate.resolve(load_object(line), selector); None when the line holds
        no JSON object."""
        known = self._values.get(selector)
        if known is None:
            known = self._values[selector] = {}
        todo = [row for row in rows if row not in known]
        if todo:
            self._resolve(selector, todo, known)
        return [known[row] for row in rows]

    def _resolve(
        self, selector: tuple[nodes.Step, ...], rows: list[int], into: dict[int, Any]
    ) -> None:
        quoted = _quoted(selector)
        if quoted is not None and all(self._single(key) for key in quoted):
            quoted = ()  # no line writes a key of the selector twice
        texts, documents = self.texts, self._documents(rows)
        for row in rows:
            text, document = texts[row], documents[row]
            if text is None or document is None:
                into[row] = None
            elif document is _EXACT or quoted is None or any(text.count(key) > 1 for key in quoted):
                exact = self._exact_document(row, text)
                into[row] = None if exact is None else evaluate.resolve(exact, selector)
            else:
                into[row] = _walk(document, selector)

    def _single(self, literal: str) -> bool:
        found = self._once.get(literal)
        if found is None:
            test = self._at_most_once
            found = self._once[literal] = test is not None and test(literal)
        return found

    def _documents(self, rows: list[int]) -> dict[int, Any]:
        """orjson's object per line, None when it holds no JSON object, _EXACT when only the
        exact parse can tell (an escape, or something orjson refuses)."""
        fast = self._fast
        for row in rows:
            if row in fast:
                continue
            text = self.texts[row]
            document: Any
            if text is None or not text.lstrip().startswith("{"):
                document = None
            elif "\\" in text:
                document = _EXACT
            else:
                try:
                    document = orjson.loads(text)
                except orjson.JSONDecodeError:
                    document = _EXACT  # NaN, a number beyond a double, a nesting limit...
                else:
                    if type(document) is not dict:
                        document = None
            fast[row] = document
        return fast

    def _exact_document(self, row: int, text: str) -> dict[str, Any] | None:
        if row not in self._exact:
            self._exact[row] = evaluate.load_object(text)
        return self._exact[row]


_EXACT = object()


class _Reached:
    """A selector's native numbering of what it reaches, the values of each number, and each
    test's answer per number."""

    def __init__(self, ids: Any) -> None:
        self.ids = ids
        self.values: list[list[Any]] = []
        self.results: dict[nodes.JsonTest, list[bool]] = {}


#: selectors without wildcards -> what they reached so far; shared by the threads' BatchMasks
_REACHED: dict[tuple[nodes.Step, ...], _Reached] = {}
_REACHED_LOCK = threading.Lock()
#: distinct values remembered per selector (a request id would grow it without end)
_REACHED_LIMIT = 50_000
_REACHED_BYTES = 16 << 20  # and bytes of them
_REACHED_SELECTORS = 1_000  # selectors remembered (those of rules since removed among them)


def _holds(test: nodes.JsonTest, values: list[Any]) -> bool:
    """eval_json on a line where the selector reached `values` (an object or array reached is
    written {} by the native reader: present, equal to nothing)."""
    if test.test == "missing":
        return not values
    return any(evaluate.json_value_test(test, value) for value in values)


def _walk(document: dict[str, Any], selector: tuple[nodes.Step, ...]) -> list[Any]:
    """evaluate.resolve for a selector without wildcards."""
    node: Any = document
    for step in selector:
        kind = type(node)
        if not (
            (kind is dict and step in node)
            or (kind is list and type(step) is int and step < len(node))
        ):
            return []
        node = node[step]
    return [node]


_QUOTED: dict[tuple[nodes.Step, ...], tuple[str, ...] | None] = {}


def _quoted(selector: tuple[nodes.Step, ...]) -> tuple[str, ...] | None:
    """The selector's keys as the text writes them ("level"), whose count in a line says
    whether orjson's parse reaches what the exact one does (a key written twice may be a
    duplicate, where the two differ); None when that cannot be told (a wildcard, a key that
    JSON would escape)."""
    if selector not in _QUOTED:
        keys: list[str] = []
        plain = True
        for step in selector:
            if type(step) is str and _verbatim(step):
                keys.append(f'"{step}"')
            elif type(step) is not int:
                plain = False
        _QUOTED[selector] = tuple(keys) if plain else None
    return _QUOTED[selector]


def _value_key(value: Any) -> Any:
    """A cache key for json_value_test's answer on a scalar: strings as they are, numbers by
    value (1 and 1.0 test alike), booleans and null apart; None for arrays and objects."""
    kind = type(value)
    if kind is str:
        return value
    if kind is bool:
        return ("b", value)
    if kind is int or kind is float:
        return ("n", value)
    if value is None:
        return ("z",)
    return None


def _mask(rows: set[int], size: int) -> pa.BooleanArray:
    """`size` booleans, true at `rows`: the bitmap written directly (a list of `size` Python
    booleans converted by Arrow cost more than the search that found the rows)."""
    bits = bytearray((size + 7) // 8)
    for row in rows:
        bits[row >> 3] |= 1 << (row & 7)
    mask = pa.BooleanArray.from_buffers(pa.bool_(), size, [None, pa.py_buffer(bits)])
    assert isinstance(mask, pa.BooleanArray)
    return mask


def _array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values


def _verbatim(text: str) -> bool:
    """True when JSON writes `text` as it is (no escapes needed)."""
    return bool(text) and not any(ch in '"\\' or ord(ch) < 0x20 for ch in text)


def _needed(expr: nodes.Expr) -> set[str]:
    """Texts a JSON line must contain (when it has no escapes) for `expr` to hold on it."""
    if isinstance(expr, nodes.AllOf):
        return set[str]().union(*(_needed(item) for item in expr.items))
    if isinstance(expr, nodes.AnyOf):
        options = [_needed(item) for item in expr.items]
        return set.intersection(*options) if options else set()
    if not isinstance(expr, nodes.JsonTest) or expr.test == "missing":
        return set()
    # a value was reached: every named key is in the document, so in the text, quoted
    needed = {f'"{step}"' for step in expr.selector if isinstance(step, str) and _verbatim(step)}
    test = expr.test
    if (
        isinstance(test, nodes.Compare)
        and test.op == "="
        and isinstance(test.value, nodes.Text)
        and not test.value.is_any
        and _verbatim(test.value.text)
    ):
        needed.add(test.value.text)  # only a string value can equal text (json_value_test)
    return needed


#: joins the texts of a batch for searching; a literal holding the first is searched per row
_SEPARATORS = ("\x00",)
_local = threading.local()


def masks(batch: pa.RecordBatch) -> BatchMasks:
    """The shared work for `batch` (the last batch's is kept, per thread)."""
    last: BatchMasks | None = getattr(_local, "last", None)
    if last is None or last.batch is not batch:
        last = _local.last = BatchMasks(batch)
    return last
