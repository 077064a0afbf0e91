"""Many filter patterns over one `logs` batch, sharing the work between them.

`masks(batch).mask(pattern)` gives the rows `pattern.match` accepts (null text: no match), as
`TailFilter.mask` decides them, but per batch rather than per rule:
- a pattern text is evaluated once per batch, however many rules use it;
- terms (`"Connection refused" -"health"`) are substring tests: one search per distinct term
  over the batch's texts joined, shared by every pattern naming it;
- JSON patterns parse a line once for all of them, and only lines that could match: where the
  text has no backslash (so every JSON string in it is written verbatim), a line lacking a key the
  selector needs (`"latency_ms"`) or the text an `=` string test needs cannot match;
- regular expressions and space-delimited patterns run `match` per line, as before.
The last batch's work is kept per thread, so the rules after the first reuse it.
"""

from __future__ import annotations

import bisect
import threading
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ecsguard.logs.query.filter_pattern import FilterPattern, evaluate
from ecsguard.logs.query.filter_pattern import tree as nodes


class BatchMasks:
    """The shared per-batch work; see the module docstring."""

    def __init__(self, batch: pa.RecordBatch) -> None:
        self.batch = batch
        self._masks: dict[str, pa.BooleanArray] = {}
        self._contains: dict[tuple[str, str], set[int]] = {}
        self._joins: dict[str, tuple[str, list[int]]] = {}
        self._texts: dict[str, pa.Array] = {}
        self._lists: dict[str, list[str | None]] = {}
        self._documents: dict[int, dict[str, Any] | None] = {}

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
        """Rows whose text contains `literal`: str.find over all the texts joined (far faster
        than Arrow's match_substring here), by a separator the literal does not hold, so no
        find can span two rows."""
        found = self._contains.get((column, literal))
        if found is not None:
            return found
        texts = self._list(column)
        if not literal:
            found = {row for row, text in enumerate(texts) if text is not None}
        elif any(sep in literal for sep in _SEPARATORS):
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

    def _compute(self, pattern: FilterPattern) -> pa.BooleanArray:
        tree = pattern.tree
        column = "json" if pattern.kind == "json" else "message"
        texts = self._list(column)
        valid = {row for row, text in enumerate(texts) if text is not None}
        if isinstance(tree, nodes.MatchAll):
            return _mask(valid, len(texts))
        if isinstance(tree, nodes.Terms):
            if tree.alternatives:
                keep = set[int]().union(*(self._has(column, t) for t in tree.alternatives))
            else:
                keep = valid
                for term in tree.required:
                    keep = keep & self._has(column, term)
                for term in tree.excluded:
                    keep = keep - self._has(column, term)
            return _mask(keep & valid, len(texts))
        if isinstance(tree, nodes.JsonPattern):
            return self._json(tree, column, valid)
        return pa.array([t is not None and pattern.match(t) is not None for t in texts], pa.bool_())

    def _json(self, tree: nodes.JsonPattern, column: str, valid: set[int]) -> pa.BooleanArray:
        maybe = valid
        needed = _needed(tree.expr)
        if needed:
            # rows with an escape anywhere are kept; the others need every literal
            present = set.intersection(*(self._has(column, text) for text in sorted(needed)))
            maybe = valid & (present | self._has(column, "\\"))
        texts = self._list(column)
        out = [False] * len(texts)
        documents = self._documents
        for row in sorted(maybe):
            if row not in documents:
                text = texts[row]
                documents[row] = evaluate.load_object(text) if text is not None else None
            document = documents[row]
            out[row] = document is not None and evaluate.eval_json(tree.expr, document)
        return pa.array(out, pa.bool_())


def _mask(rows: set[int], size: int) -> pa.BooleanArray:
    out = [False] * size
    for row in rows:
        out[row] = True
    return pa.array(out, pa.bool_())


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
