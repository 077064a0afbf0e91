"""The detection seam: a rule is data (YAML), of one registered type, compiled to an evaluator.

A rule file holds one rule or a list under `rules:`. Every rule has the common fields below; its
type's own settings sit under the key named like the type, validated by that type's model:

    id: ecs-task-oom
    title: A task was stopped because a container ran out of memory
    severity: high                  # critical | high | medium | low | info
    type: event_pattern
    event_pattern:                  # the type's settings (its `Settings` model)
      pattern: {"source": ["aws.ecs"], "detail-type": ["ECS Task State Change"]}
    tags: [ecs, availability]
    group_by: [detail.clusterArn]   # optional: one alert per value of these fields per window
    window: 5m                      # optional: how long a burst counts as one alert (default 5m)

A type is one module in detect/types/ registering a `RuleType` in TYPES: `settings` (a pydantic
model), `tables` (which store tables it reads) and `compile(rule) -> Evaluator`. Evaluators get
Arrow batches as the pipeline stores them (`on_batch`) and, for windowed rules, clock ticks
(`on_tick`); both return `Match`es, which the engine turns into de-duplicated alerts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from ecsguard.core.models import Severity
from ecsguard.core.registry import Registry


class Rule(BaseModel):
    """The fields every rule has; `settings` holds the type's own, already validated."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
    title: str = Field(min_length=1)
    type: str
    severity: Severity = Severity.MEDIUM
    description: str = ""
    tags: tuple[str, ...] = ()
    enabled: bool = True
    group_by: tuple[str, ...] = ()
    window: str = "5m"
    settings: Any = None
    source: str = ""  # file:line, set by the loader


@dataclass(frozen=True)
class Match:
    """One reason to alert: what matched, when, and the evidence a person needs."""

    rule_id: str
    time: datetime
    summary: str  # one line: "task 1a2b stopped: OutOfMemoryError (exit 137)"
    evidence: list[dict[str, Any]] = field(default_factory=list)  # records, at most a few
    key: tuple[Any, ...] = ()  # values of the rule's group_by fields, for de-duplication
    state: str | None = None  # alarm types: ALARM / OK / INSUFFICIENT_DATA transitions
    count: int = 1  # how many records this one match stands for


class BatchGroup(Protocol):
    """Rules of one type evaluated together, once per batch (event_pattern's SharedPatterns,
    sigma's Screen). An evaluator in one names it in `batch_group` and its key there in
    `batch_key`; the engine asks the group once per batch which keys matched, and calls on_batch
    of those rules only (the others' would find nothing)."""

    def matched(self, table: str, batch: pa.RecordBatch) -> Collection[str]:
        """The keys of the group's rules that may match some row of `batch`: a key left out
        must be one whose rule matches none."""
        ...


class Evaluator(Protocol):
    def on_batch(self, table: str, batch: pa.RecordBatch) -> list[Match]:
        """Matches in a batch of `table` (only tables the type declared)."""
        ...

    def on_tick(self, now: datetime) -> list[Match]:
        """Matches that only time reveals (windows closing, alarms evaluating)."""
        ...

    def state(self) -> dict[str, Any]:
        """JSON-able state to persist, so a restart continues where it stopped."""
        ...

    def restore(self, state: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class RuleType:
    name: str
    settings: type[BaseModel]
    tables: Sequence[str]
    compile: Callable[[Rule], Evaluator]
    summary: str = ""  # one line for `ecsguard rules types`


TYPES: Registry[RuleType] = Registry("rule type")


class Stateless:
    """Base for evaluators without windows or memory."""

    def on_batch(self, table: str, batch: pa.RecordBatch) -> list[Match]:
        return []

    def on_tick(self, now: datetime) -> list[Match]:
        return []

    def state(self) -> dict[str, Any]:
        return {}

    def restore(self, state: dict[str, Any]) -> None:
        return None


def rows(batch: pa.RecordBatch, indices: Sequence[int]) -> list[dict[str, Any]]:
    """The rows at `indices` as dicts (evidence), as `to_pylist` gives them: converted only for
    the rows that matched, their times by `_values` (pyarrow's own conversion of a time with a
    zone takes 6 µs, the most of a matched row's)."""
    if not indices:
        return []
    # one row (most log filter groups) is a zero-copy slice: a take costs a kernel per column
    if len(indices) == 1 and 0 <= indices[0] < batch.num_rows:
        taken = batch.slice(indices[0], 1)
    else:
        taken = batch.take(pa.array(indices, pa.int64()))
    names, columns = taken.schema.names, [_values(column) for column in taken.columns]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def _values(column: pa.Array) -> list[Any]:
    kind = column.type
    if not (pa.types.is_timestamp(kind) and kind.unit == "us") or column.null_count:
        return column.to_pylist()
    try:
        return [moment(us, kind) for us in _buffer_micros(column)]
    except OverflowError:  # beyond datetime's years: pyarrow says so its own way
        return column.to_pylist()


def micros(column: pa.Array, rows: Sequence[int]) -> list[int | None]:
    """Epoch microseconds of a timestamp column's values at `rows` (None: null), read from its
    buffer where it holds µs and no nulls: an Arrow call costs 20 µs on a posted batch."""
    kind = column.type
    if kind.unit == "us" and not column.null_count:
        found = _buffer_micros(column)
        return [found[row] for row in rows]
    taken = pc.cast(column.take(pa.array(rows, pa.int64())), pa.timestamp("us", tz=kind.tz))
    values: list[int | None] = taken.cast(pa.int64()).to_pylist()
    return values


def moment(us: int, kind: pa.DataType) -> datetime:
    """The datetime pyarrow gives for `us` microseconds in a timestamp column of type `kind`
    (the same zone object, so equal in every way), without its 6 µs a value."""
    epoch = _EPOCHS.get(kind.tz)
    if epoch is None:
        epoch = _EPOCHS[kind.tz] = pa.scalar(0, pa.timestamp("us", tz=kind.tz)).as_py()
    return epoch + timedelta(microseconds=us)


def _buffer_micros(column: pa.Array) -> memoryview:
    """The int64 values of a µs timestamp column without nulls, from its buffer in place."""
    start = column.offset
    return memoryview(column.buffers()[1]).cast("q")[start : start + len(column)]


_EPOCHS: dict[str | None, datetime] = {}  # time zone -> its 1970-01-01T00:00


Codes = tuple[list[Any], pa.Array]  # distinct values, and each row's position among them


def dictionary_codes(column: pa.Array | pa.ChunkedArray) -> Codes:
    """The column's distinct values (null last, where there is one) and each row's position
    among them (int32, no nulls). Each Arrow call costs 20 µs on a posted batch, so none that is
    not needed."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    encoded = pc.dictionary_encode(column)
    values: list[Any] = encoded.dictionary.to_pylist()
    codes = encoded.indices
    if codes.type != pa.int32():
        codes = codes.cast(pa.int32())
    if codes.null_count:
        values.append(None)  # null takes the last number
        codes = codes.fill_null(len(values) - 1)
    return values, codes


def column_codes(batch: pa.RecordBatch, name: str) -> Codes:
    """`dictionary_codes` of `batch`'s column `name`, worked out once per batch for every rule
    type that asks: event patterns and Sigma rules both number CloudTrail's event names,
    sources, error codes and user agents, and an encoding costs 0.1 ms a column."""
    with _LAST.lock:
        if _LAST.batch is not batch:
            _LAST.batch, _LAST.codes = batch, {}
        found = _LAST.codes.get(name)
        if found is None:
            found = _LAST.codes[name] = dictionary_codes(batch.column(name))
        return found


class _LastCodes:
    """column_codes' answers for the batch asked about last."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.batch: pa.RecordBatch | None = None
        self.codes: dict[str, Codes] = {}


_LAST = _LastCodes()
