"""`anomaly_band`: alarm when a metric leaves the band of values its history says to expect
(CloudWatch anomaly detection alarms; the model is in ecsguard.detect.anomaly).

    type: anomaly_band
    anomaly_band:
      namespace: ECS/ContainerInsights
      metric_name: CpuUtilized
      dimensions: {ClusterName: prod}  # a subset: every series that has these is its own band
      statistic: Average               # SampleCount, Average, Sum, Minimum or Maximum
      period: 5m                       # divides an hour, at least 1m
      deviations: 2                    # the band's half-width, in standard deviations
      training_days: 14                # history the band is learnt from (2 to 28 days)
      direction: both                  # above, below or both
      evaluation_periods: 3            # N: the last N periods with data...
      datapoints_to_alarm: 3           # M: ...of which M outside the band mean ALARM

Batches add matching rows to per-period aggregates of each series (a series is one distinct set
of dimensions). A tick evaluates every period that ended at least a minute before (so rows a
little late still count): the period's statistic is compared with the band fitted on the
`training_days` before it (refitted each hour of data), then joins the history. The state is
INSUFFICIENT_DATA until the history is long enough for a band (two days), then OK or ALARM. With
2 deviations about one period in twenty of ordinary noise falls outside the band, hence the
default of three periods in a row before an ALARM. A Match is returned when a series enters
ALARM and when it leaves it; its summary gives the value and the band.

`state()` holds, per series, the values of the training window (one number per period), the
periods not yet evaluated and the alarm state, so a restart neither forgets nor re-alerts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ecsguard.core.errors import UserError
from ecsguard.detect.anomaly import DAY, Band, Model, fit, readiness
from ecsguard.detect.rules import TYPES, Match, Rule, RuleType
from ecsguard.logs.query.timerange import parse_duration

STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
SETTLE_SECONDS = 60  # a period is evaluated this long after it ends: late rows still count
REFIT_SECONDS = 3600  # the band is refitted after this much new history
EVIDENCE = 5
STATE_VERSION = 1
INSUFFICIENT_DATA, OK, ALARM = "INSUFFICIENT_DATA", "OK", "ALARM"


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    namespace: str = Field(min_length=1)
    metric_name: str = Field(min_length=1)
    dimensions: dict[str, str] = Field(default_factory=dict)
    statistic: str = "Average"
    period: int = 300
    deviations: float = Field(default=2.0, gt=0, le=100)
    training_days: int = Field(default=14, ge=2, le=28)
    direction: Literal["above", "below", "both"] = "both"
    evaluation_periods: int = Field(default=3, ge=1, le=100)
    datapoints_to_alarm: int | None = Field(default=None, ge=1)
    max_series: int = Field(default=50, ge=1, le=1000)

    @field_validator("period", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip().isdigit():
            try:
                return int(parse_duration(value).total_seconds())
            except UserError as err:
                raise ValueError(f"{err.problem} ({err.hint})") from None
        return value

    @field_validator("period")
    @classmethod
    def _divides_hour(cls, value: int) -> int:
        if value < 60 or 3600 % value:
            raise ValueError(
                f"period {value}s must be at least a minute and divide an hour "
                "(1m, 2m, 5m, 10m, 15m, 30m, 1h, ...)"
            )
        return value

    @field_validator("statistic")
    @classmethod
    def _statistic(cls, value: str) -> str:
        if value not in STATISTICS:
            raise ValueError(f"{value!r} is not a statistic here: use {', '.join(STATISTICS)}")
        return value

    @model_validator(mode="after")
    def _m_of_n(self) -> Settings:
        if self.datapoints_to_alarm is not None and (
            self.datapoints_to_alarm > self.evaluation_periods
        ):
            raise ValueError("datapoints_to_alarm cannot exceed evaluation_periods")
        return self

    @property
    def m(self) -> int:
        return self.datapoints_to_alarm or self.evaluation_periods


@dataclass
class Aggregate:
    """One period's rows: enough for every statistic this type offers."""

    count: int = 0
    total: float = 0.0
    low: float = float("inf")
    high: float = float("-inf")

    def add(self, count: int, total: float, low: float, high: float) -> None:
        self.count += count
        self.total += total
        self.low = min(self.low, low)
        self.high = max(self.high, high)

    def value(self, statistic: str) -> float:
        return {
            "SampleCount": float(self.count),
            "Average": self.total / self.count if self.count else 0.0,
            "Sum": self.total,
            "Minimum": self.low,
            "Maximum": self.high,
        }[statistic]


@dataclass
class Series:
    """One series' memory: history for training, open periods, and its alarm state."""

    dimensions: dict[str, str]
    history: dict[int, float] = field(default_factory=dict)  # period index -> statistic
    pending: dict[int, Aggregate] = field(default_factory=dict)  # not evaluated yet
    evaluated_until: int | None = None  # periods before this index are evaluated
    recent: list[dict[str, Any]] = field(default_factory=list)  # last N evaluated periods
    state: str = INSUFFICIENT_DATA
    model: Model | None = None
    dropped: int = 0  # rows that came after their period was evaluated

    def to_dict(self) -> dict[str, Any]:
        start = min(self.history, default=0)
        end = max(self.history, default=-1) + 1
        return {
            "dimensions": self.dimensions,
            "history_start": start,
            "history": [self.history.get(i) for i in range(start, end)],
            "pending": {
                str(k): [a.count, a.total, a.low, a.high] for k, a in sorted(self.pending.items())
            },
            "evaluated_until": self.evaluated_until,
            "recent": self.recent,
            "state": self.state,
            "dropped": self.dropped,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Series:
        start = int(data.get("history_start", 0))
        history = {
            start + offset: float(value)
            for offset, value in enumerate(data.get("history", []))
            if value is not None
        }
        pending = {}
        for key, (count, total, low, high) in data.get("pending", {}).items():
            pending[int(key)] = Aggregate(int(count), float(total), float(low), float(high))
        until = data.get("evaluated_until")
        return cls(
            dimensions=dict(data.get("dimensions", {})),
            history=history,
            pending=pending,
            evaluated_until=None if until is None else int(until),
            recent=list(data.get("recent", [])),
            state=str(data.get("state", INSUFFICIENT_DATA)),
            dropped=int(data.get("dropped", 0)),
        )


def _dimensions(text: str | None) -> dict[str, str] | None:
    """A row's dimensions as a dict: the {"Name": "Value"} form or the API's list form."""
    if not text:
        return {}
    try:
        found = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if isinstance(found, list):
        found = {d.get("Name"): d.get("Value") for d in found if isinstance(d, dict)}
    if not isinstance(found, dict):
        return None
    return {str(k): str(v) for k, v in found.items() if k is not None}


class AnomalyBand:
    """Bands for every series of one metric; see the module docstring."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.settings: Settings = rule.settings
        self.period = self.settings.period
        self.training = self.settings.training_days * DAY // self.period
        self.catch_up = DAY // self.period  # periods one tick evaluates at most
        self.series: dict[str, Series] = {}
        self.ignored_series = 0
        self._matching_texts: dict[str | None, str | None] = {}  # dimensions text -> series key

    # --- batches ------------------------------------------------------------------------------

    def on_batch(self, table: str, batch: pa.RecordBatch) -> list[Match]:
        if table != "metrics" or batch.num_rows == 0:
            return []
        mask = pc.and_(
            pc.equal(batch.column("namespace"), self.settings.namespace),
            pc.equal(batch.column("name"), self.settings.metric_name),
        )
        mask = pc.fill_null(pc.and_(mask, pc.is_finite(batch.column("value"))), False)
        rows = batch.filter(mask)
        if rows.num_rows == 0:
            return []
        series_of = {
            text: self._series_key(text)
            for text in pc.unique(rows.column("dimensions")).to_pylist()
        }
        index = pc.divide(pc.cast(rows.column("time"), pa.int64()), self.period * 1_000_000)
        grouped = (
            pa.table({"d": rows.column("dimensions"), "k": index, "v": rows.column("value")})
            .group_by(["d", "k"])
            .aggregate([("v", "count"), ("v", "sum"), ("v", "min"), ("v", "max")])
        )
        columns = ("d", "k", "v_count", "v_sum", "v_min", "v_max")
        for text, period, count, total, low, high in zip(
            *(grouped.column(c).to_pylist() for c in columns), strict=True
        ):
            key = series_of[text]
            series = self.series.get(key) if key is not None else None
            if series is None:
                continue
            if series.evaluated_until is not None and period < series.evaluated_until:
                series.dropped += count
                continue
            series.pending.setdefault(period, Aggregate()).add(count, total, low, high)
        return []

    def _series_key(self, text: str | None) -> str | None:
        """The series a dimensions text belongs to (None: not this rule's), worked out once."""
        if text in self._matching_texts:
            return self._matching_texts[text]
        found = _dimensions(text)
        key = None
        if found is not None and all(
            found.get(k) == v for k, v in self.settings.dimensions.items()
        ):
            key = orjson.dumps(found, option=orjson.OPT_SORT_KEYS).decode()
            if key not in self.series:
                if len(self.series) >= self.settings.max_series:
                    self.ignored_series += 1
                    key = None
                else:
                    self.series[key] = Series(found)
        if len(self._matching_texts) < 10_000:  # bounded: a cache, not a record
            self._matching_texts[text] = key
        return key

    # --- ticks --------------------------------------------------------------------------------

    def on_tick(self, now: datetime) -> list[Match]:
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        # periods ending at least SETTLE_SECONDS ago are closed
        closed_until = (int(now.timestamp()) - SETTLE_SECONDS) // self.period
        matches: list[Match] = []
        for key, series in self.series.items():
            due = sorted(k for k in series.pending if k < closed_until)
            if not due:
                continue
            # a long replay: the oldest periods only feed the history, unevaluated
            for period in due[: -self.catch_up]:
                series.history[period] = series.pending.pop(period).value(self.settings.statistic)
            for period in due[-self.catch_up :]:
                match = self._evaluate(key, series, period)
                if match is not None:
                    matches.append(match)
            series.evaluated_until = closed_until
            self._prune(series, closed_until)
        return matches

    def _evaluate(self, key: str, series: Series, period: int) -> Match | None:
        value = series.pending.pop(period).value(self.settings.statistic)
        model = series.model
        if model is None or period - model.trained_until >= REFIT_SECONDS // self.period:
            window = {k: v for k, v in series.history.items() if period - self.training <= k}
            model = series.model = fit(window, self.period)
        series.history[period] = value
        if model is None:
            return None  # cold start: INSUFFICIENT_DATA until the history is long enough
        band = model.band(period, self.settings.deviations)
        position = band.position(value)
        breaching = position != "inside" and self.settings.direction in ("both", position)
        series.recent.append(
            {
                "time": _iso(period * self.period),
                "value": value,
                "expected": band.expected,
                "lower": band.lower,
                "upper": band.upper,
                "breaching": breaching,
            }
        )
        del series.recent[: -self.settings.evaluation_periods]
        breaches = sum(1 for point in series.recent if point["breaching"])
        new_state = ALARM if breaches >= self.settings.m else OK
        old_state, series.state = series.state, new_state
        if new_state == old_state or ALARM not in (new_state, old_state):
            return None  # only entering and leaving ALARM are news
        return Match(
            rule_id=self.rule.id,
            time=datetime.fromtimestamp((period + 1) * self.period, UTC),
            summary=self._summary(series, value, band, position, breaches, model),
            evidence=[dict(point, dimensions=series.dimensions) for point in series.recent][
                -EVIDENCE:
            ],
            key=self._key(key, series),
            state=new_state,
        )

    def _summary(
        self, series: Series, value: float, band: Band, position: str, breaches: int, model: Model
    ) -> str:
        s = self.settings
        dims = ",".join(f"{k}={v}" for k, v in sorted(series.dimensions.items()))
        metric = f"{s.namespace} {s.metric_name}" + (f" {{{dims}}}" if dims else "")
        where = "inside" if position == "inside" else position
        text = (
            f"{metric} {s.statistic} {value:.4g} {where} the expected band "
            f"{band.lower:.4g}..{band.upper:.4g} ({s.deviations:g} deviations)"
        )
        if series.state == ALARM:
            text += f"; {breaches} of the last {len(series.recent)} periods outside"
        return f"{text}; {model.describe()}"

    def _key(self, key: str, series: Series) -> tuple[Any, ...]:
        if not self.rule.group_by:
            return (key,)  # each series is its own alarm
        names = [name.removeprefix("dimensions.") for name in self.rule.group_by]
        return tuple(series.dimensions.get(name) for name in names)

    def _prune(self, series: Series, closed_until: int) -> None:
        """Bounded memory: the training window of history, and a day of periods ahead."""
        oldest = closed_until - self.training
        for period in [k for k in series.history if k < oldest]:
            del series.history[period]
        for period in [k for k in series.pending if k > closed_until + self.catch_up]:
            series.dropped += series.pending.pop(period).count

    # --- what a person or the console asks --------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        """Each series' state, with the reason a band is missing during cold start."""
        out = []
        for series in self.series.values():
            _, reason = readiness(series.history, self.period)
            out.append(
                {
                    "dimensions": series.dimensions,
                    "state": series.state,
                    "history": reason,
                    "last": series.recent[-1] if series.recent else None,
                }
            )
        return out

    # --- persistence --------------------------------------------------------------------------

    def _identity(self) -> dict[str, Any]:
        s = self.settings
        return {
            "namespace": s.namespace,
            "metric_name": s.metric_name,
            "dimensions": s.dimensions,
            "statistic": s.statistic,
            "period": s.period,
        }

    def state(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "metric": self._identity(),
            "series": {key: series.to_dict() for key, series in self.series.items()},
        }

    def restore(self, state: dict[str, Any]) -> None:
        if not state or state.get("version") != STATE_VERSION:
            return
        if state.get("metric") != self._identity():
            return  # another metric, statistic or period: the history does not apply
        self.series = {
            key: Series.from_dict(data)
            for key, data in list(state.get("series", {}).items())[: self.settings.max_series]
        }
        self._matching_texts.clear()


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


TYPES.add(
    "anomaly_band",
    RuleType(
        name="anomaly_band",
        settings=Settings,
        tables=("metrics",),
        compile=AnomalyBand,
        summary="alarm when a metric leaves the band its history (trend, daily, weekly) expects",
    ),
)
