"""`log_filter`: a CloudWatch filter pattern over container logs (keyword triggers).

    type: log_filter
    log_filter:
      pattern: '"OutOfMemoryError" ?"Killed process"'
      service: api            # optional: only this service (and/or cluster)
      min_count: 1            # alert when this many lines match within the rule's window
      metric:                 # optional: also count matches as a metric, one datapoint a minute,
        namespace: ecsguard/logs  # which metric_alarm rules can watch
        name: api-oom-lines

Lines are matched a whole batch at a time with the same filter as the live tail (terms against the
message, JSON patterns against the parsed fields). One Match per group (the rule's `group_by`
columns, e.g. `service`) per batch carries the count and the first lines as evidence.
"""

from __future__ import annotations

import uuid
from collections import Counter, deque
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ecsguard.core.errors import UserError
from ecsguard.detect.filterset import masks
from ecsguard.detect.rules import TYPES, Match, Rule, RuleType, Stateless, micros, moment
from ecsguard.detect.rules import rows as evidence_rows
from ecsguard.logs.query.filter_pattern import compile_pattern
from ecsguard.logs.query.timerange import parse_duration
from ecsguard.logs.tail import TailFilter

EVIDENCE = 3
#: group_by names this type reads from columns (others come from the engine's evidence lookup)
_COLUMNS = ("cluster", "service", "container", "task", "level")


class MetricSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    namespace: str = "ecsguard/logs"
    name: str = Field(min_length=1)


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    pattern: str
    cluster: str | None = None
    service: str | None = None
    min_count: int = Field(default=1, ge=1)
    metric: MetricSpec | None = None

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            compile_pattern(value)
        except UserError as err:
            raise ValueError(err.problem) from None
        return value


class LogFilter(Stateless):
    def __init__(self, rule: Rule) -> None:
        settings: Settings = rule.settings
        self.rule = rule
        self.settings = settings
        self.filter = TailFilter(
            settings.cluster, settings.service, compile_pattern(settings.pattern)
        )
        self.window = parse_duration(rule.window)
        self.group_by = [
            c for c in rule.group_by if c in ("cluster", "service", "container", "task")
        ]
        self.recent: dict[tuple[Any, ...], deque[tuple[datetime, int]]] = {}
        self.counts: dict[datetime, int] = {}  # matches per minute, for the metric

    def on_batch(self, table: str, batch: pa.RecordBatch) -> list[Match]:
        rows = self._hits(batch)
        if not rows:
            return []
        # only the matched rows' times and keys are read; whole rows only for the evidence
        kind = batch.schema.field("time").type
        times = micros(batch.column("time"), rows)
        if self.settings.metric is not None:
            for minute, n in _per_minute(times, kind).items():
                self.counts[minute] = self.counts.get(minute, 0) + n
        matches = []
        for key, group in _groups(batch, rows, times, self.group_by, self.window.total_seconds()):
            last = times[group[-1]]
            now = datetime.now(UTC) if last is None else moment(last, kind)
            if not self._due(key, now, len(group)):
                continue
            first = evidence_rows(batch, [rows[i] for i in group[:EVIDENCE]])
            text = str(first[0].get("message") or "")[:200]
            matches.append(
                Match(
                    rule_id=self.rule.id,
                    time=now,
                    summary=f"{len(group)} line(s) matched {self.settings.pattern!r}: {text}",
                    evidence=first,
                    key=key,
                    count=len(group),
                )
            )
        return matches

    def _hits(self, batch: pa.RecordBatch) -> list[int]:
        """The rows that pass, as TailFilter.mask decides; the pattern's part is shared with
        every other rule over the same batch (filterset.py)."""
        if not batch.num_rows:
            return []
        shared = masks(batch)
        keep = shared.mask(self.filter.pattern) if self.filter.pattern else None
        if keep is not None and not keep.true_count:
            return []  # most rules, most batches: nothing else to do
        for column, value in (
            ("cluster", self.settings.cluster),
            ("service", self.settings.service),
        ):
            if value is not None:
                same = shared.equal(column, value)
                # a body of lines comes from one service: its rows are all in, or all out
                count = same.true_count
                if not count:
                    return []
                if count < len(same):
                    keep = same if keep is None else pc.and_(keep, same)
        if keep is None:
            return list(range(batch.num_rows))
        found: list[int] = pc.indices_nonzero(keep).to_pylist()
        return found

    def _due(self, key: tuple[Any, ...], now: datetime, count: int) -> bool:
        """True when the matches inside the window reach min_count."""
        if self.settings.min_count == 1:
            return True
        seen = self.recent.setdefault(key, deque())
        seen.append((now, count))
        while seen and seen[0][0] < now - self.window:
            seen.popleft()
        if sum(n for _, n in seen) >= self.settings.min_count:
            seen.clear()  # the next alert needs a fresh min_count
            return True
        return False

    def metrics(self) -> pa.RecordBatch | None:
        """Datapoints of the minutes counted so far (taken, so each is emitted once)."""
        metric = self.settings.metric
        if metric is None or not self.counts:
            return None
        minutes, self.counts = sorted(self.counts.items()), {}
        from ecsguard.logs.records import metric_ids
        from ecsguard.logs.schema import METRICS

        contents = [(metric.namespace, metric.name, "{}", float(n), "Count") for _, n in minutes]
        # a minute counted over two ticks is two datapoints of possibly equal content: a token
        # per emission keeps their ids apart (they are never re-sent, only replayed from the WAL)
        token = uuid.uuid4().hex
        ids = metric_ids(
            "detect",
            [self.rule.id] * len(minutes),
            [int(m.timestamp() * 1_000_000) for m, _ in minutes],
            contents,
            [token] * len(minutes),
        )
        return pa.RecordBatch.from_pydict(
            {
                "time": [m for m, _ in minutes],
                "namespace": [c[0] for c in contents],
                "name": [c[1] for c in contents],
                "dimensions": [c[2] for c in contents],
                "value": [c[3] for c in contents],
                "unit": [c[4] for c in contents],
                "id": ids,
            },
            schema=METRICS,
        )


def _per_minute(times: list[int | None], kind: pa.DataType) -> dict[datetime, int]:
    """Matches per minute of their times (epoch µs; None: no time, not counted)."""
    counts = Counter(us - us % _MINUTE_US for us in times if us is not None)
    return {moment(minute, kind): n for minute, n in sorted(counts.items())}


_MINUTE_US = 60_000_000


def _groups(
    batch: pa.RecordBatch,
    rows: list[int],
    times: list[int | None],
    columns: list[str],
    window_seconds: float,
) -> list[tuple[tuple[Any, ...], list[int]]]:
    """The matched rows (positions in `rows`, whose times in epoch µs are `times`) per group
    key and window-long time bucket (a replayed batch can span hours; the engine joins matches
    of adjacent buckets that fall within one window)."""
    step = max(int(window_seconds * 1_000_000), 1)
    buckets = [None if t is None else t // step for t in times]
    if columns:
        taken = pa.array(rows, pa.int64())
        keys = list(zip(*(batch.column(c).take(taken).to_pylist() for c in columns), strict=True))
    else:
        keys = [()] * len(rows)
    by_key: dict[tuple[tuple[Any, ...], Any], list[int]] = {}
    for index, (key, bucket) in enumerate(zip(keys, buckets, strict=True)):
        by_key.setdefault((key, bucket), []).append(index)
    return [(k, v) for (k, _), v in by_key.items()]


TYPES.add(
    "log_filter",
    RuleType(
        name="log_filter",
        settings=Settings,
        tables=("logs",),
        compile=LogFilter,
        summary="a CloudWatch filter pattern over container logs, optionally counted as a metric",
    ),
)
