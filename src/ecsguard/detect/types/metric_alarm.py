"""`metric_alarm`: a CloudWatch-style alarm over the metrics table (and log metric filters).

    type: metric_alarm
    metric_alarm:
      namespace: ECS/ContainerInsights
      metric_name: CpuUtilized
      dimensions: {ClusterName: prod, ServiceName: api}   # a subset of the row's dimensions
      statistic: p99                # SampleCount, Average, Sum, Minimum, Maximum or p0.0-p100
      period: 5m                    # seconds, or a duration: 10s, 30s, 1m, 5m, 1h
      evaluation_periods: 3         # N
      datapoints_to_alarm: 2        # M (default N)
      threshold: 80
      comparison_operator: GreaterThanThreshold
      treat_missing_data: missing   # missing, notBreaching, breaching, ignore

Batches add their matching rows to per-period aggregates (count, sum, min, max; a bounded sample
of raw values while a percentile period is open). Each tick evaluates the alarm at the end of
every period that closed since the last tick, in order (ecsguard.detect.alarm holds the
semantics), and returns a Match only when the state changes, its summary the StateReason; then
only the periods of the next evaluation range are kept (between ticks, at most CATCH_UP more).
A log_filter rule's metric produces rows in the same table.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails

from ecsguard.core.errors import UserError
from ecsguard.detect.alarm import (
    Alarm,
    AlarmSpec,
    AlarmSpecError,
    PeriodStats,
    percentile_of,
)
from ecsguard.detect.rules import TYPES, Match, Rule, RuleType, column_codes
from ecsguard.logs.query.timerange import parse_duration

EVIDENCE = 10
#: periods held between two ticks beyond the evaluation range, and evaluated by one tick at most:
#: a replay feeds hours of records before its tick; a sender's clock far ahead is cut off here
CATCH_UP = 1440
_SETTING = {
    "EvaluationPeriods": "evaluation_periods",
    "DatapointsToAlarm": "datapoints_to_alarm",
    "Threshold": "threshold",
    "ComparisonOperator": "comparison_operator",
    "TreatMissingData": "treat_missing_data",
    "Period": "period",
    "Statistic": "statistic",
}


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    namespace: str = Field(min_length=1)
    metric_name: str = Field(min_length=1)
    dimensions: dict[str, str] = Field(default_factory=dict)
    statistic: str = "Average"
    period: int = 60
    evaluation_periods: int = 1
    datapoints_to_alarm: int | None = None
    threshold: float
    comparison_operator: str
    treat_missing_data: str = "missing"

    @field_validator("period", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip().isdigit():
            try:
                return int(parse_duration(value).total_seconds())
            except UserError as err:
                raise ValueError(err.problem) from None
        return value

    @model_validator(mode="after")
    def _valid(self) -> Settings:
        try:
            self.spec()
        except AlarmSpecError as err:  # reported at the setting's own line, not the block's
            name = _SETTING.get(err.field, err.field)
            detail = InitErrorDetails(
                type="value_error",
                loc=(name,),
                input=getattr(self, name, None),
                ctx={"error": ValueError(err.problem)},
            )
            raise ValidationError.from_exception_data("metric_alarm", [detail]) from None
        return self

    def spec(self) -> AlarmSpec:
        return AlarmSpec(
            evaluation_periods=self.evaluation_periods,
            datapoints_to_alarm=self.datapoints_to_alarm,
            threshold=self.threshold,
            comparison_operator=self.comparison_operator,
            treat_missing_data=self.treat_missing_data,
            period=self.period,
            statistic=self.statistic,
        )


class MetricAlarm:
    """One alarm over the rows of one metric; state survives restarts through state()/restore()."""

    def __init__(self, rule: Rule) -> None:
        settings: Settings = rule.settings
        self.rule = rule
        self.settings = settings
        self.spec = settings.spec()
        self.alarm = Alarm(self.spec)
        self.percentile = percentile_of(self.spec.statistic) is not None
        self.periods: dict[int, PeriodStats] = {}  # period index (start // period) -> aggregate
        self.next_end: int | None = None  # the period index whose start is the next evaluation
        self.dropped = 0  # rows too old for any future evaluation, or too far ahead
        self.rng = random.Random(rule.id)  # a reproducible sample of busy percentile periods

    # --- batches ------------------------------------------------------------------------------

    def on_batch(self, table: str, batch: pa.RecordBatch) -> list[Match]:
        if table != "metrics" or batch.num_rows == 0:
            return []
        if self.settings.metric_name not in column_codes(batch, "name")[0]:
            return []  # the usual case: one lookup, shared by the alarms, not ten Arrow calls
        rows = batch.filter(self._mask(batch))
        if rows.num_rows == 0:
            return []
        period_us = self.spec.period * 1_000_000
        starts = pc.floor_temporal(rows.column("time"), multiple=self.spec.period, unit="second")
        index = pc.divide(pc.cast(starts, pa.int64()), period_us)
        aggregates = [("v", "count"), ("v", "sum"), ("v", "min"), ("v", "max")]
        if self.percentile:
            aggregates.append(("v", "list"))
        grouped = (
            pa.table({"k": index, "v": rows.column("value")}).group_by("k").aggregate(aggregates)
        )
        raw = grouped.column("v_list").to_pylist() if self.percentile else None
        for i, (k, count, total, low, high) in enumerate(
            zip(
                *(
                    grouped.column(c).to_pylist()
                    for c in ("k", "v_count", "v_sum", "v_min", "v_max")
                ),
                strict=True,
            )
        ):
            stats = self.periods.setdefault(k, PeriodStats())
            stats.add(count, total, low, high, raw[i] if raw else None, self.rng)
        self._bound()
        return []

    def _mask(self, batch: pa.RecordBatch) -> pa.Array:
        """Rows of this metric with a finite value, dimensions matched once per distinct text."""
        mask = pc.and_(
            pc.equal(batch.column("namespace"), self.settings.namespace),
            pc.equal(batch.column("name"), self.settings.metric_name),
        )
        mask = pc.and_(mask, pc.is_finite(batch.column("value")))
        if self.settings.dimensions:
            texts = batch.column("dimensions")
            wanted = [t for t in pc.unique(texts).to_pylist() if self._dimensions_match(t)]
            mask = pc.and_(mask, pc.is_in(texts, value_set=pa.array(wanted, pa.string())))
        return pc.fill_null(mask, False)

    def _dimensions_match(self, text: str | None) -> bool:
        if not text:
            return False
        try:
            found = orjson.loads(text)
        except orjson.JSONDecodeError:
            return False
        if isinstance(found, list):  # the API's [{"Name": .., "Value": ..}] form
            found = {
                d.get("Name"): d.get("Value") for d in found if isinstance(d, dict) and "Name" in d
            }
        if not isinstance(found, dict):
            return False
        return all(found.get(k) == v for k, v in self.settings.dimensions.items())

    def _bound(self) -> None:
        """Keep what the coming evaluations need: the range before the next one, CATCH_UP after."""
        size = self.spec.evaluation_range
        keys = sorted(self.periods)
        if self.next_end is not None:
            low, high = self.next_end - size, self.next_end + CATCH_UP
            keep = [k for k in keys if low <= k <= high]
        else:
            keep = keys[-(size + CATCH_UP) :]
        if len(keep) != len(keys):
            kept = set(keep)
            for k in keys:
                if k not in kept:
                    self.dropped += self.periods.pop(k).count

    # --- ticks --------------------------------------------------------------------------------

    def on_tick(self, now: datetime) -> list[Match]:
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        period, size = self.spec.period, self.spec.evaluation_range
        current = int(now.timestamp()) // period  # the open period; every earlier one has closed
        if self.next_end is not None and current < self.next_end:
            return []
        if self.next_end is not None:
            first = self.next_end
        else:  # the first tick: from the end of the oldest period with data
            first = min(self.periods, default=current - 1) + 1
        first = min(max(first, current - CATCH_UP), current)
        matches = []
        for end_index in range(first, current + 1):
            values = [self._value(k) for k in range(end_index - size, end_index)]
            end = datetime.fromtimestamp(end_index * period, UTC)
            result, change = self.alarm.update(values, end)
            if change is None:
                continue
            evidence = [
                {
                    "time": p.start,
                    "namespace": self.settings.namespace,
                    "name": self.settings.metric_name,
                    "statistic": self.spec.statistic,
                    "value": p.value,
                    "breaching": p.breaching,
                    "filled": p.filled,
                }
                for p in result.evaluated[:EVIDENCE]
            ]
            matches.append(
                Match(
                    rule_id=self.rule.id,
                    time=end,
                    summary=change.reason,
                    evidence=evidence,
                    state=str(change.new),
                )
            )
        self.next_end = current + 1
        for k, stats in list(self.periods.items()):
            if k < current:
                stats.seal(self.spec.statistic)  # closed: a percentile needs no raw values now
        self._bound()
        return matches

    def _value(self, index: int) -> float | None:
        stats = self.periods.get(index)
        return None if stats is None else stats.value(self.spec.statistic)

    def datapoints(self, now: datetime) -> list[tuple[datetime, float | None]]:
        """The evaluation range as the next tick at `now` would see it (for tests and the UI)."""
        period, size = self.spec.period, self.spec.evaluation_range
        current = int(now.timestamp()) // period
        return [
            (datetime.fromtimestamp(k * period, UTC), self._value(k))
            for k in range(current - size, current)
        ]

    # --- persistence --------------------------------------------------------------------------

    def _identity(self) -> dict[str, Any]:
        """What the aggregates depend on: if a rule edit changes it, they are dropped."""
        return {
            "namespace": self.settings.namespace,
            "metric_name": self.settings.metric_name,
            "dimensions": self.settings.dimensions,
            "statistic": self.spec.statistic,
            "period": self.spec.period,
        }

    def state(self) -> dict[str, Any]:
        return {
            "version": 1,
            "metric": self._identity(),
            "alarm": self.alarm.to_dict(),
            "next_end": self.next_end,
            "periods": {str(k): s.to_dict() for k, s in sorted(self.periods.items())},
        }

    def restore(self, state: dict[str, Any]) -> None:
        if not state or state.get("version") != 1:
            return
        self.alarm.restore(state.get("alarm", {}))
        if state.get("metric") != self._identity():
            return  # another metric or period: the old aggregates do not apply
        next_end = state.get("next_end")
        self.next_end = int(next_end) if next_end is not None else None
        self.periods = {int(k): PeriodStats.from_dict(v) for k, v in state["periods"].items()}
        self._bound()


TYPES.add(
    "metric_alarm",
    RuleType(
        name="metric_alarm",
        settings=Settings,
        tables=("metrics",),
        compile=MetricAlarm,
        summary="CloudWatch-style alarm: statistic per period, M of N, TreatMissingData",
    ),
)
