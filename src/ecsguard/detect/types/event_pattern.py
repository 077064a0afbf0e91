"""`event_pattern`: an EventBridge event pattern over ECS events and CloudTrail records.

    type: event_pattern
    event_pattern:
      pattern: {"source": ["aws.ecs"], "detail-type": ["ECS Task State Change"],
                "detail": {"lastStatus": ["STOPPED"], "stopCode": ["EssentialContainerExited"]}}

`pattern` is a mapping or JSON text, validated with AWS's messages. Rows of the `events` and
`cloudtrail` tables are matched in the shape EventBridge gives them (eventpattern/records.py), so
a pattern copied from an EventBridge rule works unchanged. One Match per matching row; its
evidence is the row.

Sharing: every event_pattern rule registers its pattern in one process-wide PatternSet, `SHARED`.
The first rule the engine asks about a batch matches all registered patterns against it at once
(eventpattern/prefilter.py: per distinct value of each tested field, which branches it rules
out; the branches left on a row are its matches unless array consistency or `exists: false`
may decide otherwise, and only those rows are built into events for an exact match); the other
rules read their rows from that result. So N rules cost about one pass over a batch, not N.
The engine needs no change for this; `SHARED.match(table, batch)` (pattern key -> row numbers)
is there for an engine that wants to drive it directly.
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, field_validator

from ecsguard.core.errors import UserError
from ecsguard.detect.eventpattern import EventPattern, PatternSet, compile_pattern
from ecsguard.detect.eventpattern.records import TABLES, RowView, summary, to_events
from ecsguard.detect.rules import TYPES, Match, Rule, RuleType, Stateless
from ecsguard.detect.rules import rows as batch_rows


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    pattern: dict[str, Any] | str

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: dict[str, Any] | str) -> dict[str, Any] | str:
        try:
            compile_pattern(value)
        except UserError as err:
            raise ValueError(err.problem) from None
        return value


@dataclass
class _BatchResult:
    batch: pa.RecordBatch  # held so `is` identifies it (its id cannot be reused meanwhile)
    table: str
    version: int
    rows: dict[str, list[int]]  # pattern key -> matching row numbers
    # matched rows as (record, summary), converted once for all the rules that matched them
    records: dict[int, tuple[dict[str, Any], str]] = field(default_factory=dict)

    def records_at(self, rows: list[int]) -> list[tuple[dict[str, Any], str]]:
        missing = [row for row in rows if row not in self.records]
        if missing:
            # every matched row at once: one Arrow take for the batch, not one per rule
            wanted = sorted(
                {row for found in self.rows.values() for row in found} - set(self.records)
            )
            for row, record in zip(wanted, batch_rows(self.batch, wanted), strict=True):
                self.records[row] = (record, summary(self.table, record))
        return [self.records[row] for row in rows]


class SharedPatterns:
    """One PatternSet for all event_pattern rules of the process, and the result for the last
    batch. Identical patterns (same JSON, same key order) are compiled and matched once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # releases come from finalizers, which may run inside a locked section of this very
        # thread (a garbage collection during _compute): they are queued, applied under the lock
        self._released: deque[str] = deque()
        self._set = PatternSet()
        self._users: dict[str, int] = {}
        self._version = 0
        self._last: _BatchResult | None = None

    @staticmethod
    def key(pattern: EventPattern) -> str:
        return orjson.dumps(pattern.source).decode()

    def register(self, pattern: EventPattern) -> str:
        key = self.key(pattern)
        with self._lock:
            self._apply_releases()
            if key not in self._users:
                self._set.add(key, pattern)
                self._version += 1
            self._users[key] = self._users.get(key, 0) + 1
        return key

    def release(self, key: str) -> None:
        """A rule using `key` is gone (called from its finalizer: never blocks)."""
        self._released.append(key)

    def _apply_releases(self) -> None:
        """Called with the lock held."""
        while self._released:
            key = self._released.popleft()
            if key not in self._users:
                continue
            left = self._users[key] - 1
            if left > 0:
                self._users[key] = left
                continue
            self._users.pop(key, None)
            self._set.remove(key)
            self._version += 1
            self._last = None

    def __len__(self) -> int:
        with self._lock:
            self._apply_releases()
            return len(self._set)

    def matched(self, table: str, batch: pa.RecordBatch) -> Collection[str]:
        """The keys of the patterns that match some row of `batch` (rules.BatchGroup)."""
        return self.result(table, batch).rows.keys() if table in TABLES else ()

    def match(self, table: str, batch: pa.RecordBatch) -> dict[str, list[int]]:
        """Row numbers of `batch` per registered pattern key (patterns with no rows left out)."""
        return self.result(table, batch).rows

    def result(self, table: str, batch: pa.RecordBatch) -> _BatchResult:
        """The matches in `batch`, computed by the first caller for this batch."""
        with self._lock:
            self._apply_releases()
            last = self._last
            if (
                last is not None
                and last.batch is batch
                and last.table == table
                and last.version == self._version
            ):
                return last
            result = self._compute(table, batch)
            self._last = result
            return result

    def _compute(self, table: str, batch: pa.RecordBatch) -> _BatchResult:
        found: dict[str, list[int]] = {}
        if table in TABLES and batch.num_rows and len(self._set):
            wanted = self._set.top_level_fields()

            def events(rows: list[int]) -> list[dict[str, Any]]:
                subset = batch if len(rows) == batch.num_rows else batch.take(rows)
                return to_events(table, subset, wanted)

            for row, keys in self._set.match_view(RowView(table, batch), events):
                for key in keys:
                    found.setdefault(str(key), []).append(row)
        return _BatchResult(batch, table, self._version, found)


#: the process-wide set every event_pattern rule registers in (see the module docstring)
SHARED = SharedPatterns()


class EventPatternRule(Stateless):
    def __init__(self, rule: Rule) -> None:
        settings: Settings = rule.settings
        self.rule = rule
        self.pattern = compile_pattern(settings.pattern)
        self.key = SHARED.register(self.pattern)
        weakref.finalize(self, SHARED.release, self.key)
        self.batch_group = SHARED  # rules.BatchGroup: skipped in a batch its key does not match
        self.batch_key = self.key

    def on_batch(self, table: str, batch: pa.RecordBatch) -> list[Match]:
        if table not in TABLES:
            return []
        result = SHARED.result(table, batch)
        matched = result.rows.get(self.key)
        if not matched:
            return []
        out = []
        for record, text in result.records_at(matched):
            time = record.get("time")
            out.append(
                Match(
                    rule_id=self.rule.id,
                    time=time if isinstance(time, datetime) else datetime.now(UTC),
                    summary=text,
                    evidence=[dict(record)],  # a copy each: alerts never share one
                )
            )
        return out


def compile_rule(rule: Rule) -> EventPatternRule:
    return EventPatternRule(rule)


TYPES.add(
    "event_pattern",
    RuleType(
        name="event_pattern",
        settings=Settings,
        tables=TABLES,
        compile=compile_rule,
        summary="an EventBridge event pattern over ECS events and CloudTrail records",
    ),
)
