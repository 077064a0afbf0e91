"""`compile_pattern` and the compiled `FilterPattern` (see the package docstring for the API)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Literal

import duckdb
import pyarrow as pa

from ecsguard.logs.query.filter_pattern import evaluate, sql, syntax
from ecsguard.logs.query.filter_pattern import tree as nodes

Kind = Literal["all", "terms", "regex", "json", "delimited"]
IN_PYTHON_BELOW = 1024  # rows: ~3-10 ms of DuckDB setup buys about this many Python matches
_KINDS: dict[type, Kind] = {
    nodes.MatchAll: "all",
    nodes.Terms: "terms",
    nodes.RegexPattern: "regex",
    nodes.JsonPattern: "json",
    nodes.Delimited: "delimited",
}


@dataclass(frozen=True)
class Match:
    """One matched message. `extracted_values` is TestMetricFilter's `extractedValues`: `$name`
    or `$N` -> field text for space-delimited patterns, empty for every other kind."""

    extracted_values: dict[str, str] = field(default_factory=dict)


_NO_VALUES = Match()


class FilterPattern:
    """A compiled CloudWatch Logs filter pattern."""

    def __init__(self, text: str, tree: nodes.Pattern) -> None:
        self.text = text
        self.tree = tree
        self.kind: Kind = _KINDS[type(tree)]
        self._literals: tuple[str, ...] = (
            tuple(sql.required_literals(tree)) if isinstance(tree, nodes.Delimited) else ()
        )

    def __repr__(self) -> str:
        return f"FilterPattern({self.text!r})"

    def match(self, message: str) -> Match | None:
        """The match of one message, or None."""
        tree = self.tree
        if isinstance(tree, nodes.MatchAll):
            return _NO_VALUES
        if isinstance(tree, nodes.Terms):
            return _NO_VALUES if evaluate.match_terms(tree, message) else None
        if isinstance(tree, nodes.RegexPattern):
            return _NO_VALUES if tree.regex.search(message) else None
        if isinstance(tree, nodes.JsonPattern):
            document = evaluate.load_object(message)
            found = document is not None and evaluate.eval_json(tree.expr, document)
            return _NO_VALUES if found else None
        assert isinstance(tree, nodes.Delimited)
        if not all(text in message for text in self._literals):
            return None
        values = evaluate.match_delimited(tree, message)
        return None if values is None else Match(values)

    def sql(self, column: str = "message") -> str | None:
        """A DuckDB predicate on the SQL expression `column`, exactly as `match` decides (a NULL
        is no match), or None for the kinds SQL cannot express (space-delimited patterns, JSON
        selectors with wildcards): use `prefilter_sql` and `mask` then."""
        return sql.exact(self.tree, column)

    def prefilter_sql(self, column: str = "message") -> str:
        """A DuckDB predicate every matching row meets: `sql()` when there is one, else a cheap
        necessary condition (literals the message must contain) to run before `mask`."""
        return sql.prefilter(self.tree, column)

    def mask(self, messages: pa.Array | pa.ChunkedArray) -> pa.BooleanArray:
        """Which of `messages` (Arrow strings; nulls never match) match, in one call: DuckDB over
        the Arrow buffers where SQL can say it, else (or for a small batch, where a DuckDB query's
        few milliseconds would cost more) `match` per message."""
        exact = self.sql("m") if len(messages) >= IN_PYTHON_BELOW else None
        if exact is None:
            texts = messages.to_pylist()
            return pa.array(
                [t is not None and self.match(t) is not None for t in texts], pa.bool_()
            )
        if isinstance(messages, pa.ChunkedArray):
            messages = messages.combine_chunks()
        if not pa.types.is_string(messages.type):
            messages = messages.cast(pa.string())
        cursor = _duckdb().cursor()
        try:
            cursor.register("fp_input", pa.table({"m": messages}))
            result = cursor.sql(f"SELECT {exact} AS hit FROM fp_input").to_arrow_table()
        finally:
            cursor.close()
        hits = result.column("hit").combine_chunks()
        assert isinstance(hits, pa.BooleanArray)
        return hits


def compile_pattern(text: str) -> FilterPattern:
    """Parse and compile `text`; a bad pattern raises UserError naming the position."""
    return FilterPattern(text, syntax.parse(text))


_lock = threading.Lock()
_connection: duckdb.DuckDBPyConnection | None = None


def _duckdb() -> duckdb.DuckDBPyConnection:
    """One in-memory connection for `mask`, made on first use (each call takes a cursor)."""
    global _connection
    with _lock:
        if _connection is None:
            _connection = duckdb.connect()
        return _connection
