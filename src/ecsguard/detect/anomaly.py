"""Expected bands for a metric, as CloudWatch anomaly detection draws them: trend, daily and weekly
seasonality, and a width of N deviations, learnt from a training window of history.

The model is deliberately small, so a person can check it by hand:

    expected(t) = slope * (t - t0) + seasonal(slot of t) + offset
    band(t)     = expected(t) +/- deviations * spread

- *trend*: `slope` is the median of the week-over-week changes (each value minus the value at the
  same time a week before, divided by a week), so the weekly cycle cancels out and a bad hour
  moves it little. It needs 10 days of history (three days of such pairs); before, it is 0.
- *seasonality*: the detrended values are grouped by time of week (Monday 00:00 UTC onwards), or
  by time of day while there is less than a week of history; `seasonal(slot)` is the median of the
  group's values within +/-15 minutes of the slot (at least the slots either side). A
  time-of-week profile holds the daily cycle and its weekday/weekend differences at once.
- *spread*: the median absolute deviation of the leave-one-out residuals (each training value
  against the median of its slot's *other* values, so it measures how well the profile predicts
  a value it has not seen), scaled by 1.4826 to estimate a standard deviation for normal noise.
  The width at a time is the root mean square of that hour's spread (pooled with the hours beside
  it: noise is often larger at the daily peak than at night) and the overall spread. Medians
  everywhere make a few outliers in training harmless.
- A metric never below zero in training (a count) gets a band that never goes below zero.

Cold start: no band until the history spans two days and holds at least a day's worth of
periods (`readiness` says how far along it is).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import median

DAY = 86_400
POOL_SECONDS = 15 * 60  # neighbours within +/-15 min share one seasonal estimate
MIN_HISTORY_DAYS = 2  # span of history before a band exists
WEEKLY_AFTER_DAYS = 7  # time-of-week seasonality from one full week on
MIN_WEEK_PAIRS = 3  # days of week-over-week pairs before a trend is fitted
NORMAL_MAD = 1.4826  # MAD * this = standard deviation, for normal noise
MEAN_AD = 1.2533  # mean absolute deviation * this = standard deviation, for normal noise
THURSDAY = 3  # 1970-01-01 (period 0) was a Thursday; Monday is 0


@dataclass(frozen=True)
class Band:
    expected: float
    lower: float
    upper: float

    def position(self, value: float) -> str:
        """Where `value` lies: above, below or inside the band."""
        if value > self.upper:
            return "above"
        if value < self.lower:
            return "below"
        return "inside"


@dataclass(frozen=True)
class Model:
    """A fitted band model for one series; period indexes are time // period (UTC)."""

    period_seconds: int
    weekly: bool  # time-of-week seasonality, else time-of-day
    profile: tuple[float, ...]  # seasonal value per slot
    slope: float  # change per period
    origin: int  # the period index where the trend term is zero
    offset: float  # median residual, so the band is centred on the data
    spread: float  # robust standard deviation of all residuals
    hourly_spread: tuple[float, ...]  # the same per hour of week (or of day), for the width
    non_negative: bool
    trained_until: int  # last period index of the training data (exclusive)
    points: int  # training periods used

    @property
    def slots_per_day(self) -> int:
        return DAY // self.period_seconds

    def slot(self, index: int) -> int:
        per_day = self.slots_per_day
        if self.weekly:
            return (index + THURSDAY * per_day) % (7 * per_day)
        return index % per_day

    def expected(self, index: int) -> float:
        trend = self.slope * (index - self.origin)
        return trend + self.profile[self.slot(index)] + self.offset

    def band(self, index: int, deviations: float) -> Band:
        centre = self.expected(index)
        hour = self.slot(index) * self.period_seconds // 3600
        width = deviations * self.hourly_spread[hour]
        lower = centre - width
        if self.non_negative:
            lower = max(lower, 0.0)
        return Band(centre, lower, centre + width)

    def describe(self) -> str:
        """One line for alert reasons: what the band is made of."""
        season = "time-of-week" if self.weekly else "time-of-day"
        trend = f"trend {self.slope * self.slots_per_day:+.4g}/day" if self.slope else "no trend"
        return f"{season} seasonality, {trend}, spread {self.spread:.4g} from {self.points} periods"


def readiness(points: Mapping[int, float], period_seconds: int) -> tuple[bool, str]:
    """Whether `points` are enough history for a band, and if not, how far along they are."""
    per_day = DAY // period_seconds
    if not points:
        return False, f"no history yet; a band needs {MIN_HISTORY_DAYS} days of it"
    span_days = (max(points) - min(points) + 1) / per_day
    if span_days >= MIN_HISTORY_DAYS and len(points) >= per_day:
        return True, f"{span_days:.1f} days of history"
    return False, (
        f"{span_days:.1f} of {MIN_HISTORY_DAYS} days of history "
        f"({len(points)} of at least {per_day} periods with data)"
    )


def fit(points: Mapping[int, float], period_seconds: int) -> Model | None:
    """The band model for `points` (period index -> value), or None when they are too few."""
    ready, _ = readiness(points, period_seconds)
    if not ready:
        return None
    per_day = DAY // period_seconds
    indexes = sorted(points)
    first, last = indexes[0], indexes[-1]
    span_days = (last - first + 1) / per_day
    slope = _weekly_slope(points, per_day)
    origin = last
    detrended = {i: points[i] - slope * (i - origin) for i in indexes}

    weekly = span_days >= WEEKLY_AFTER_DAYS
    slots = 7 * per_day if weekly else per_day
    shift = THURSDAY * per_day if weekly else 0
    by_slot: list[list[float]] = [[] for _ in range(slots)]
    by_index: list[list[tuple[int, float]]] = [[] for _ in range(slots)]
    for index, value in detrended.items():
        by_slot[(index + shift) % slots].append(value)
        by_index[(index + shift) % slots].append((index, value))
    reach = max(1, POOL_SECONDS // period_seconds)
    overall = median(detrended.values())
    profile: list[float] = []
    residuals: dict[int, float] = {}
    for slot in range(slots):
        pooled = sorted(
            value for step in range(-reach, reach + 1) for value in by_slot[(slot + step) % slots]
        )
        profile.append(_median_without(pooled, None) if pooled else overall)
        # leave-one-out residuals: each value against the median of the others, so the spread
        # measures how well the profile predicts a value it has not seen
        for index, value in by_index[slot]:
            if len(pooled) > 1:
                residuals[index] = value - _median_without(pooled, bisect_left(pooled, value))
    if not residuals:
        return None
    offset = median(residuals.values())
    spread = _spread([r - offset for r in residuals.values()], overall)
    hourly = _hourly_spread(residuals, offset, shift, slots, period_seconds)
    # an hour's own spread is noisy (a few dozen values): halfway to the overall spread
    hourly_spread = tuple(math.sqrt((local * local + spread * spread) / 2) for local in hourly)
    return Model(
        period_seconds=period_seconds,
        weekly=weekly,
        profile=tuple(profile),
        slope=slope,
        origin=origin,
        offset=offset,
        spread=spread,
        hourly_spread=hourly_spread,
        non_negative=min(points.values()) >= 0,
        trained_until=last + 1,
        points=len(points),
    )


def _median_without(ordered: list[float], skip: int | None) -> float:
    """The median of sorted `ordered` leaving out the item at `skip` (None: leave none out)."""
    size = len(ordered) - (skip is not None)

    def item(position: int) -> float:
        return ordered[position + (skip is not None and position >= skip)]

    middle = size // 2
    if size % 2:
        return item(middle)
    return (item(middle - 1) + item(middle)) / 2


def _spread(deviations_from_centre: list[float], level: float) -> float:
    """A robust standard deviation: 1.4826 * MAD, or for a mostly constant series (MAD 0) the
    mean absolute deviation, which still sees its rare changes."""
    absolute = [abs(d) for d in deviations_from_centre]
    spread = NORMAL_MAD * median(absolute) if absolute else 0.0
    if spread == 0.0 and absolute:
        spread = MEAN_AD * sum(absolute) / len(absolute)
    return max(spread, 1e-9 * max(1.0, abs(level)))


def _hourly_spread(
    residuals: Mapping[int, float], offset: float, shift: int, slots: int, period_seconds: int
) -> list[float]:
    """The residuals' robust spread for each hour of the season, pooled with the hours beside it
    (noise is often larger at the daily peak than at night)."""
    per_hour = 3600 // period_seconds
    hours = slots // per_hour
    by_hour: list[list[float]] = [[] for _ in range(hours)]
    for index, residual in residuals.items():
        by_hour[((index + shift) % slots) // per_hour].append(residual - offset)
    spreads = []
    for hour in range(hours):
        pooled = by_hour[hour - 1] + by_hour[hour] + by_hour[(hour + 1) % hours]
        spreads.append(_spread(pooled, 0.0) if pooled else 0.0)
    return spreads


def _weekly_slope(points: Mapping[int, float], per_day: int) -> float:
    """Per-period trend: the median change from a week before at the same time of week, over
    every period that has one (the weekly cycle cancels out; a bad hour moves the median little)."""
    week = 7 * per_day
    changes = [
        value - points[index - week] for index, value in points.items() if index - week in points
    ]
    if len(changes) < MIN_WEEK_PAIRS * per_day:
        return 0.0
    return median(changes) / week
