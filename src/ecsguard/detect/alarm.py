"""CloudWatch metric alarm semantics as pure functions: M out of N, TreatMissingData, reasons.

One evaluation looks at the *evaluation range*: the last N + LOOK_BACK periods (CloudWatch
retrieves more datapoints than Evaluation Periods; its guide shows 5 for N = 3, so LOOK_BACK is 2).
Then, as the guide's "How alarm state is evaluated when data is missing" describes:

- at least N datapoints exist: the newest N decide; TreatMissingData plays no part;
- none exists: missing -> INSUFFICIENT_DATA, ignore -> the state stays, breaching -> ALARM,
  notBreaching -> OK;
- fewer than N exist: breaching / notBreaching fill the gap with as few missing periods as
  needed (every real datapoint counts); missing / ignore judge the real datapoints alone:
  M breaching -> ALARM, any non-breaching -> OK. When all are breaching but fewer than M, the
  "premature transition" rule applies: the alarm goes to ALARM if the oldest breaching datapoint
  is at least M periods old (missing; ignore keeps its state), else INSUFFICIENT_DATA
  (missing) or no change (ignore).

At least M breaching datapoints among those evaluated mean ALARM, fewer mean OK. Reasons read
like CloudWatch's StateReason ("Threshold Crossed: 3 out of the last 3 datapoints [...] were
greater than the threshold (80.0) (minimum 3 datapoints for OK -> ALARM transition).").

Per-period statistics (SampleCount, Average, Sum, Minimum, Maximum, percentiles p0-p100) come
from `PeriodStats`; percentiles are nearest-rank over the raw values of the period.
"""

from __future__ import annotations

import math
import operator
import random
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any


class State(StrEnum):
    OK = "OK"
    ALARM = "ALARM"
    INSUFFICIENT_DATA = "INSUFFICIENT_DATA"


@dataclass(frozen=True)
class Comparison:
    name: str
    test: Callable[[float, float], bool]
    words: str  # as CloudWatch's reasons say it


COMPARISONS: dict[str, Comparison] = {
    c.name: c
    for c in (
        Comparison("GreaterThanOrEqualToThreshold", operator.ge, "greater than or equal to"),
        Comparison("GreaterThanThreshold", operator.gt, "greater than"),
        Comparison("LessThanThreshold", operator.lt, "less than"),
        Comparison("LessThanOrEqualToThreshold", operator.le, "less than or equal to"),
    )
}
#: anomaly-band operators need a band, not a threshold: the anomaly_band rule type's business
BAND_OPERATORS = (
    "LessThanLowerOrGreaterThanUpperThreshold",
    "LessThanLowerThreshold",
    "GreaterThanUpperThreshold",
)
TREAT_MISSING = ("missing", "ignore", "breaching", "notBreaching")
STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
_PERCENTILE = re.compile(r"^p(\d{1,3}(?:\.\d{1,2})?)$")
LOOK_BACK = 2
#: CloudWatch: Period x EvaluationPeriods at most a day (periods under an hour) or seven days
MAX_RANGE_SHORT, MAX_RANGE_LONG = 86_400, 604_800
#: raw values kept per open period for a percentile (a uniform sample beyond this)
SAMPLE_CAP = 10_000
INITIAL_REASON = "Unchecked: Initial alarm creation"


class AlarmSpecError(ValueError):
    """A setting CloudWatch would refuse; `field` is its PutMetricAlarm name."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def percentile_of(statistic: str) -> float | None:
    """50.0 for "p50", None for the basic statistics; AlarmSpecError for anything else."""
    if statistic in STATISTICS:
        return None
    found = _PERCENTILE.match(statistic) if isinstance(statistic, str) else None
    if found and float(found.group(1)) <= 100:
        return float(found.group(1))
    raise AlarmSpecError(
        "Statistic",
        f"{statistic!r} is not a statistic: use {', '.join(STATISTICS)} "
        "or a percentile p0.0 to p100 (at most two decimals, e.g. p99 or p99.9)",
    )


@dataclass(frozen=True)
class AlarmSpec:
    """The settings of a metric alarm, checked as PutMetricAlarm checks them."""

    evaluation_periods: int
    threshold: float
    comparison_operator: str
    datapoints_to_alarm: int | None = None  # None: equal to evaluation_periods
    treat_missing_data: str = "missing"
    period: int = 60
    statistic: str = "Average"
    look_back: int = LOOK_BACK

    def __post_init__(self) -> None:
        n, m = self.evaluation_periods, self.datapoints_to_alarm
        if _not_int(n) or n < 1:
            raise AlarmSpecError("EvaluationPeriods", f"must be an integer of 1 or more, not {n!r}")
        if m is not None and (_not_int(m) or not 1 <= m <= n):
            raise AlarmSpecError(
                "DatapointsToAlarm",
                f"must be an integer from 1 to EvaluationPeriods ({n}), not {m!r}",
            )
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, int | float):
            raise AlarmSpecError("Threshold", f"must be a number, not {self.threshold!r}")
        if not math.isfinite(self.threshold):
            raise AlarmSpecError("Threshold", "must be a finite number")
        if not isinstance(self.comparison_operator, str) or (
            self.comparison_operator not in COMPARISONS
        ):
            hint = (
                " (an anomaly detection band: use the anomaly_band rule type)"
                if self.comparison_operator in BAND_OPERATORS
                else ""
            )
            raise AlarmSpecError(
                "ComparisonOperator",
                f"{self.comparison_operator!r} is not one of {', '.join(COMPARISONS)}{hint}",
            )
        if not isinstance(self.treat_missing_data, str) or (
            self.treat_missing_data not in TREAT_MISSING
        ):
            raise AlarmSpecError(
                "TreatMissingData",
                f"{self.treat_missing_data!r} is not one of {', '.join(TREAT_MISSING)}",
            )
        p = self.period
        if _not_int(p) or p < 1 or (p not in (10, 20, 30) and p % 60):
            raise AlarmSpecError(
                "Period", f"must be 10, 20, 30 or a multiple of 60 seconds, not {p!r}"
            )
        limit = MAX_RANGE_SHORT if p < 3600 else MAX_RANGE_LONG
        if p * n > limit:
            raise AlarmSpecError(
                "EvaluationPeriods",
                f"Period x EvaluationPeriods is {p * n} seconds, more than the {limit} allowed",
            )
        percentile_of(self.statistic)
        if _not_int(self.look_back) or self.look_back < 0:
            raise AlarmSpecError(
                "look_back", f"must be an integer of 0 or more, not {self.look_back!r}"
            )

    @property
    def m(self) -> int:
        return (
            self.evaluation_periods
            if self.datapoints_to_alarm is None
            else self.datapoints_to_alarm
        )

    @property
    def evaluation_range(self) -> int:
        return self.evaluation_periods + self.look_back

    def breaching(self, value: float) -> bool:
        return COMPARISONS[self.comparison_operator].test(value, self.threshold)


def _not_int(value: object) -> bool:
    return isinstance(value, bool) or not isinstance(value, int)


@dataclass(frozen=True)
class Point:
    """One period's datapoint as the evaluation saw it."""

    start: datetime
    value: float | None  # None: missing (and filled when `filled`)
    breaching: bool
    filled: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "timestamp": self.start.isoformat(),
            "value": self.value,
            "breaching": self.breaching,
            "filled": self.filled,
        }


@dataclass(frozen=True)
class Evaluation:
    state: State
    reason: str
    evaluated: tuple[Point, ...] = ()  # newest first


def evaluate(
    spec: AlarmSpec,
    values: Sequence[float | None],
    *,
    end: datetime,
    current: State = State.INSUFFICIENT_DATA,
) -> Evaluation:
    """The alarm's state at `end`, the end of the period of `values[-1]` (values oldest first).

    Periods before the first value count as missing; a NaN counts as missing.
    """
    size = spec.evaluation_range
    tail = list(values[-size:])
    window = [None] * (size - len(tail)) + tail
    first_start = end - timedelta(seconds=spec.period * size)

    def start(i: int) -> datetime:
        return first_start + timedelta(seconds=spec.period * i)

    present = [(i, float(v)) for i, v in enumerate(window) if v is not None and not math.isnan(v)]
    n, m, how = spec.evaluation_periods, spec.m, spec.treat_missing_data
    real = [Point(start(i), v, spec.breaching(v)) for i, v in present]
    text = _Reasons(spec, current, size)

    if len(present) >= n:
        chosen = tuple(reversed(real[-n:]))
        return text.decided(_verdict(chosen, m), chosen)
    if not present:
        if how == "missing":
            return Evaluation(State.INSUFFICIENT_DATA, text.no_data())
        if how == "ignore":
            return Evaluation(current, text.unchanged_no_data())
        state = State.ALARM if how == "breaching" else State.OK
        newest = tuple(
            Point(start(i), None, how == "breaching", filled=True)
            for i in reversed(range(size - n, size))
        )
        return Evaluation(state, text.no_data_filled(how == "breaching"), newest)
    if how in ("breaching", "notBreaching"):
        # as few filled periods as possible: the newest missing ones
        have = {i for i, _ in present}
        gaps = [i for i in reversed(range(size)) if i not in have][: n - len(present)]
        filled = [Point(start(i), None, how == "breaching", filled=True) for i in gaps]
        chosen = tuple(sorted([*real, *filled], key=lambda p: p.start, reverse=True))
        return text.decided(_verdict(chosen, m), chosen)
    chosen = tuple(reversed(real))
    if sum(p.breaching for p in chosen) >= m or not all(p.breaching for p in chosen):
        return text.decided(_verdict(chosen, m), chosen)
    # every datapoint breaches, but fewer than M of them: the premature-transition rule
    oldest_age = size - present[0][0]
    if how == "missing" and oldest_age >= m:
        return Evaluation(State.ALARM, text.premature(chosen, oldest_age), chosen)
    if how == "missing":
        return Evaluation(State.INSUFFICIENT_DATA, text.too_few(chosen), chosen)
    return Evaluation(current, text.unchanged(chosen), chosen)


def _verdict(points: Sequence[Point], m: int) -> State:
    return State.ALARM if sum(p.breaching for p in points) >= m else State.OK


@dataclass(frozen=True)
class _Reasons:
    """StateReason texts in CloudWatch's words."""

    spec: AlarmSpec
    current: State
    size: int

    def decided(self, state: State, points: tuple[Point, ...]) -> Evaluation:
        want = state is State.ALARM
        chosen = [p for p in points if p.breaching == want]
        filled = any(p.filled for p in chosen)
        words = ("" if want else "not ") + COMPARISONS[self.spec.comparison_operator].words
        if len(points) == 1:
            head = f"{len(chosen)} datapoint"
        else:
            head = f"{len(chosen)} out of the last {len(points)} datapoints"
        text = (
            f"Threshold Crossed: {head} {_listing(chosen)} {_verb(len(chosen))} {words} "
            f"the threshold ({_num(self.spec.threshold)})"
        )
        if filled:
            text += f" with missing data treated as [{_treated(want)}]"
        if len(points) > 1:
            n, m = self.spec.evaluation_periods, self.spec.m
            needed = m if want else n - m + 1
            text += (
                f" (minimum {needed} {_plural(needed, 'datapoint')} for "
                f"{self._arrow(state)} transition)"
            )
        return Evaluation(state, text + ".", points)

    def premature(self, points: tuple[Point, ...], age: int) -> str:
        k, m = len(points), self.spec.m
        words = COMPARISONS[self.spec.comparison_operator].words
        return (
            f"Threshold Crossed: {k} {_plural(k, 'datapoint')} {_listing(points)} {_verb(k)} "
            f"{words} the threshold ({_num(self.spec.threshold)}), the oldest {age} periods ago, "
            f"and none since was within it (minimum {m} {_plural(m, 'datapoint')} for "
            f"{self._arrow(State.ALARM)} transition)."
        )

    def too_few(self, points: tuple[Point, ...]) -> str:
        return f"Insufficient Data: {self._few(points)}."

    def unchanged(self, points: tuple[Point, ...]) -> str:
        return (
            f"Unchanged: {self._few(points)}; missing data is ignored, "
            f"the alarm stays {self.current}."
        )

    def no_data(self) -> str:
        return f"Insufficient Data: no datapoints were received for {self.size} periods."

    def unchanged_no_data(self) -> str:
        return (
            f"Unchanged: no datapoints were received for {self.size} periods; missing data is "
            f"ignored, the alarm stays {self.current}."
        )

    def no_data_filled(self, breaching: bool) -> str:
        n = self.spec.evaluation_periods
        return (
            f"Threshold Crossed: no datapoints were received for {self.size} periods and {n} "
            f"missing {_plural(n, 'datapoint')} {_verb(n)} treated as [{_treated(breaching)}]."
        )

    def _few(self, points: tuple[Point, ...]) -> str:
        k, m = len(points), self.spec.m
        words = COMPARISONS[self.spec.comparison_operator].words
        return (
            f"{k} {_plural(k, 'datapoint')} {_listing(points)} {_verb(k)} {words} the threshold "
            f"({_num(self.spec.threshold)}), fewer than the {m} needed, and {self.size - k} of the "
            f"last {self.size} periods had no datapoint"
        )

    def _arrow(self, new: State) -> str:
        old = self.current
        if old is new:  # no transition: name the one these datapoints would make
            old = State.OK if new is State.ALARM else State.ALARM
        return f"{old} -> {new}"


def _listing(points: Iterable[Point]) -> str:
    parts = [
        f"{'missing' if p.value is None else _num(p.value)} ({p.start:%d/%m/%y %H:%M:%S})"
        for p in points
    ]
    return f"[{', '.join(parts)}]"


def _num(value: float) -> str:
    return repr(float(value))


def _verb(count: int) -> str:
    return "was" if count == 1 else "were"


def _plural(count: int, word: str) -> str:
    return word if count == 1 else word + "s"


def _treated(breaching: bool) -> str:
    return "Breaching" if breaching else "NonBreaching"


@dataclass(frozen=True)
class Transition:
    """One entry of the alarm's history (DescribeAlarmHistory's StateUpdate)."""

    time: datetime
    old: State
    new: State
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "Timestamp": self.time.isoformat(),
            "HistoryItemType": "StateUpdate",
            "HistorySummary": f"Alarm updated from {self.old} to {self.new}",
            "StateReason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Transition:
        old, new = data["HistorySummary"].removeprefix("Alarm updated from ").split(" to ")
        return cls(
            datetime.fromisoformat(data["Timestamp"]), State(old), State(new), data["StateReason"]
        )


@dataclass
class Alarm:
    """An alarm's state, reason and recent history; `update` applies an evaluation."""

    spec: AlarmSpec
    state: State = State.INSUFFICIENT_DATA
    reason: str = INITIAL_REASON
    history: deque[Transition] = field(default_factory=lambda: deque(maxlen=100))

    def update(
        self, values: Sequence[float | None], end: datetime
    ) -> tuple[Evaluation, Transition | None]:
        result = evaluate(self.spec, values, end=end, current=self.state)
        if result.state is self.state:
            return result, None
        change = Transition(end, self.state, result.state, result.reason)
        self.history.append(change)
        self.state, self.reason = result.state, result.reason
        return result, change

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": str(self.state),
            "reason": self.reason,
            "history": [t.to_dict() for t in self.history],
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        self.state = State(data.get("state", State.INSUFFICIENT_DATA))
        self.reason = str(data.get("reason", INITIAL_REASON))
        self.history.clear()
        self.history.extend(Transition.from_dict(item) for item in data.get("history", []))


def replay(
    spec: AlarmSpec,
    values: Sequence[float | None],
    *,
    end: datetime,
    initial: State = State.INSUFFICIENT_DATA,
) -> Alarm:
    """Evaluate at the end of every period of `values`, as CloudWatch would have, in order."""
    alarm = Alarm(spec, state=initial)
    for k in range(1, len(values) + 1):
        alarm.update(values[:k], end - timedelta(seconds=spec.period * (len(values) - k)))
    return alarm


# --- per-period statistics ---------------------------------------------------------------------


@dataclass
class PeriodStats:
    """What one period's datapoints add up to; `sample` holds raw values for percentiles."""

    count: int = 0
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf
    sample: list[float] | None = None  # kept only while a percentile may still be asked
    sealed: float | None = None  # the percentile, once the period closed and its sample went

    def add(
        self,
        count: int,
        total: float,
        low: float,
        high: float,
        raw: Sequence[float] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.count += count
        self.total += total
        self.low = min(self.low, low)
        self.high = max(self.high, high)
        if raw is None or self.sealed is not None:
            return
        sample = self.sample if self.sample is not None else []
        seen = self.count - count  # values offered before this call
        for value in raw:
            seen += 1
            if len(sample) < SAMPLE_CAP:
                sample.append(value)
            else:  # reservoir sampling keeps a uniform sample of a busy period
                slot = (rng or random).randrange(seen)
                if slot < SAMPLE_CAP:
                    sample[slot] = value
        self.sample = sample

    def value(self, statistic: str) -> float | None:
        if self.count == 0:
            return None
        if statistic == "SampleCount":
            return float(self.count)
        if statistic == "Sum":
            return self.total
        if statistic == "Average":
            return self.total / self.count
        if statistic == "Minimum":
            return self.low
        if statistic == "Maximum":
            return self.high
        if self.sealed is not None:
            return self.sealed
        pct = percentile_of(statistic)
        assert pct is not None
        return percentile(self.sample or [], pct)

    def seal(self, statistic: str) -> None:
        """Keep only the percentile: a closed period no longer needs its raw values."""
        if self.sample is not None:
            self.sealed = self.value(statistic)
            self.sample = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"count": self.count, "sum": self.total}
        if self.count:
            data.update(min=self.low, max=self.high)
        if self.sample is not None:
            data["sample"] = self.sample
        if self.sealed is not None:
            data["sealed"] = self.sealed
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PeriodStats:
        return cls(
            count=int(data["count"]),
            total=float(data["sum"]),
            low=float(data.get("min", math.inf)),
            high=float(data.get("max", -math.inf)),
            sample=[float(v) for v in data["sample"]] if "sample" in data else None,
            sealed=float(data["sealed"]) if "sealed" in data else None,
        )


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest rank: the smallest value with at least pct% of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


# --- PutMetricAlarm documents ---------------------------------------------------------------

#: PutMetricAlarm's parameters and DescribeAlarms' extra fields: accepted, most of them unused
_KNOWN_FIELDS = {
    "AlarmName",
    "AlarmDescription",
    "ActionsEnabled",
    "OKActions",
    "AlarmActions",
    "InsufficientDataActions",
    "MetricName",
    "Namespace",
    "Statistic",
    "ExtendedStatistic",
    "Dimensions",
    "Period",
    "Unit",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "EvaluateLowSampleCountPercentile",
    "Metrics",
    "Tags",
    "ThresholdMetricId",
    "AlarmArn",
    "AlarmConfigurationUpdatedTimestamp",
    "StateValue",
    "StateReason",
    "StateReasonData",
    "StateUpdatedTimestamp",
    "StateTransitionedTimestamp",
    "EvaluationState",
}
_REQUIRED = ("EvaluationPeriods", "Threshold", "ComparisonOperator", "Period")


def spec_from_put_metric_alarm(doc: object) -> AlarmSpec:
    """An AlarmSpec from a PutMetricAlarm request (or a DescribeAlarms MetricAlarms entry)."""
    import difflib

    if not isinstance(doc, dict):
        raise AlarmSpecError("(document)", "expected a JSON object of PutMetricAlarm parameters")
    for name in doc:
        if name not in _KNOWN_FIELDS:
            close = difflib.get_close_matches(str(name), sorted(_KNOWN_FIELDS), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise AlarmSpecError(str(name), f"is not a PutMetricAlarm parameter{hint}")
    if "Metrics" in doc or "ThresholdMetricId" in doc:
        field = "Metrics" if "Metrics" in doc else "ThresholdMetricId"
        raise AlarmSpecError(
            field, "metric math and anomaly bands are not evaluated here: give MetricName/Statistic"
        )
    for name in _REQUIRED:
        if name not in doc:
            raise AlarmSpecError(name, "is required")
    basic, extended = doc.get("Statistic"), doc.get("ExtendedStatistic")
    if (basic is None) == (extended is None):
        raise AlarmSpecError(
            "Statistic",
            "give Statistic (SampleCount, Average, Sum, Minimum, Maximum) or ExtendedStatistic "
            "(p0.0 to p100)" + (", not both" if basic is not None else ""),
        )
    if basic is not None and basic not in STATISTICS:
        raise AlarmSpecError(
            "Statistic",
            f"{basic!r} is not one of {', '.join(STATISTICS)} "
            "(percentiles go in ExtendedStatistic)",
        )
    if extended is not None:
        try:
            if not isinstance(extended, str) or percentile_of(extended) is None:
                raise AlarmSpecError("Statistic", f"{extended!r} is not a percentile such as p99")
        except AlarmSpecError as err:
            raise AlarmSpecError("ExtendedStatistic", err.problem) from None
    return AlarmSpec(
        evaluation_periods=doc["EvaluationPeriods"],
        datapoints_to_alarm=doc.get("DatapointsToAlarm"),
        threshold=doc["Threshold"],
        comparison_operator=doc["ComparisonOperator"],
        treat_missing_data=doc.get("TreatMissingData", "missing"),
        period=doc["Period"],
        statistic=str(basic if basic is not None else extended),
    )
