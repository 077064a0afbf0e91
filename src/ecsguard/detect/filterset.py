"""Many filter patterns over one `logs` batch, sharing the work between them.

`masks(batch).mask(pattern)` gives the rows `pattern.match` accepts (null text: no match), as
`TailFilter.mask` decides them, but per batch rather than per rule:
- a pattern text is evaluated once per batch, however many rules use it;
- terms (`"Connection refused" -"health"`) are substring tests: one Arrow `match_substring`
  per distinct term over the whole column, shared by every pattern naming it;
- JSON patterns parse a line once for all of them, and only lines that could match: where the
  text has no backslash (so every JSON string in it is written verbatim), a line lacking a key the
  selector needs (`"latency_ms"`) or the text an `=` string test needs cannot match;
- regular expressions and space-delimited patterns run `match` per line, as before.
The last batch's work is kept per thread, so the rules after the first reuse it.
"""

from __future__ import annotations

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
        self._contains: dict[tuple[str, str], pa.BooleanArray] = {}
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

    def _has(self, column: str, literal: str) -> pa.BooleanArray:
        found = self._contains.get((column, literal))
        if found is None:
            hit = pc.match_substring(self._text(column), literal).fill_null(False)
            found = self._contains[(column, literal)] = hit
        return found

    def _compute(self, pattern: FilterPattern) -> pa.BooleanArray:
        tree = pattern.tree
        column = "json" if pattern.kind == "json" else "message"
        valid = pc.is_valid(self._text(column))
        if isinstance(tree, nodes.MatchAll):
            return valid
        if isinstance(tree, nodes.Terms):
            if tree.alternatives:
                return _any([self._has(column, term) for term in tree.alternatives], valid)
            keep = valid
            for term in tree.required:
                keep = pc.and_(keep, self._has(column, term))
            for term in tree.excluded:
                keep = pc.and_(keep, pc.invert(self._has(column, term)))
            return keep
        texts = self._list(column)
        if isinstance(tree, nodes.JsonPattern):
            return self._json(tree, column, valid)
        return pa.array([t is not None and pattern.match(t) is not None for t in texts], pa.bool_())

    def _json(
        self, tree: nodes.JsonPattern, column: str, valid: pa.BooleanArray
    ) -> pa.BooleanArray:
        maybe = valid
        needed = _needed(tree.expr)
        if needed:
            verbatim = pc.invert(self._has(column, "\\"))
            present = _all([self._has(column, literal) for literal in sorted(needed)])
            maybe = pc.and_(maybe, pc.or_(pc.invert(verbatim), present))
        texts = self._list(column)
        out = [False] * len(texts)
        documents = self._documents
        for row in pc.indices_nonzero(maybe).to_pylist():
            if row not in documents:
                text = texts[row]
                documents[row] = evaluate.load_object(text) if text is not None else None
            document = documents[row]
            out[row] = document is not None and evaluate.eval_json(tree.expr, document)
        return pa.array(out, pa.bool_())


def _array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values


def _any(masks: list[pa.BooleanArray], valid: pa.BooleanArray) -> pa.BooleanArray:
    keep = pa.array([False] * len(valid), pa.bool_())
    for mask in masks:
        keep = pc.or_(keep, mask)
    return pc.and_(keep, valid)


def _all(masks: list[pa.BooleanArray]) -> pa.BooleanArray:
    keep = masks[0]
    for mask in masks[1:]:
        keep = pc.and_(keep, mask)
    return keep


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


_local = threading.local()


def masks(batch: pa.RecordBatch) -> BatchMasks:
    """The shared work for `batch` (the last batch's is kept, per thread)."""
    last: BatchMasks | None = getattr(_local, "last", None)
    if last is None or last.batch is not batch:
        last = _local.last = BatchMasks(batch)
    return last
