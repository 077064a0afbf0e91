"""anomaly_band: the band model (trend, daily and weekly seasons, robust spread, cold start) and
the rule type over metrics batches (ALARM on a spike and a level drop, none on normal days,
state across a restart)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa
import pytest
from pydantic import ValidationError

from ecsguard.detect import types as _types  # noqa: F401  (registers the rule types)
from ecsguard.detect.anomaly import DAY, fit, readiness
from ecsguard.detect.rules import TYPES, Rule
from ecsguard.detect.types.anomaly_band import AnomalyBand, Settings
from ecsguard.logs.schema import METRICS

PERIOD = 900  # 15 minutes: 96 periods a day keep the tests fast
PER_DAY = DAY // PERIOD
START = datetime(2026, 11, 7, tzinfo=UTC)  # a Saturday: so is the live day after 14
FIRST = int(START.timestamp()) // PERIOD
NOISE = 3.0


def normal(index: int) -> float:
    """The noiseless metric: level 100 rising 2 a day, a daily cycle of +/-40, weekends -30."""
    day = (index - FIRST) / PER_DAY
    hour = (index % PER_DAY) / PER_DAY
    weekend = datetime.fromtimestamp(index * PERIOD, UTC).weekday() >= 5
    return 100 + 2 * day + 40 * math.sin(2 * math.pi * (hour - 0.25)) - (30 if weekend else 0)


def history(days: float, seed: int = 7, first: int = FIRST) -> dict[int, float]:
    rnd = random.Random(seed)
    return {i: normal(i) + rnd.gauss(0, NOISE) for i in range(first, first + int(days * PER_DAY))}


# --- the model ------------------------------------------------------------------------------


def test_band_follows_trend_and_both_seasons() -> None:
    model = fit(history(14), PERIOD)
    assert model is not None and model.weekly
    assert model.slope * PER_DAY == pytest.approx(2.0, abs=0.3)
    assert model.spread == pytest.approx(NOISE, rel=0.25)
    week_after = range(FIRST + 14 * PER_DAY, FIRST + 21 * PER_DAY)
    errors = [abs(model.expected(i) - normal(i)) for i in week_after]
    assert max(errors) < 2.5 * NOISE  # peaks, troughs and weekends all followed
    assert sum(errors) / len(errors) < NOISE


def test_a_few_outliers_in_training_barely_move_the_band() -> None:
    clean = history(14)
    dirty = dict(clean)
    for i in random.Random(1).sample(sorted(dirty), 20):
        dirty[i] = dirty[i] * 10  # 20 wild values (0.15 % of the training window)
    a, b = fit(clean, PERIOD), fit(dirty, PERIOD)
    assert a is not None and b is not None
    after = range(FIRST + 14 * PER_DAY, FIRST + 15 * PER_DAY)
    shift = max(abs(a.expected(i) - b.expected(i)) for i in after)
    assert shift < NOISE
    assert b.spread < 1.2 * a.spread


def test_cold_start_needs_two_days() -> None:
    assert fit({}, PERIOD) is None
    ready, reason = readiness({}, PERIOD)
    assert not ready and "no history" in reason
    one_day = history(1)
    assert fit(one_day, PERIOD) is None
    ready, reason = readiness(one_day, PERIOD)
    assert not ready and reason.startswith("1.0 of 2 days")
    two_days = fit(history(2), PERIOD)
    assert two_days is not None and not two_days.weekly and two_days.slope == 0.0


def test_sparse_history_is_not_enough() -> None:
    sparse = {i: 5.0 for i in range(FIRST, FIRST + 3 * PER_DAY, 4)}  # 3 days, a quarter filled
    assert fit(sparse, PERIOD) is None
    assert "periods with data" in readiness(sparse, PERIOD)[1]


def test_counts_never_get_a_negative_band_and_constants_still_get_a_width() -> None:
    rare = {i: (1.0 if i % 97 == 0 else 0.0) for i in range(FIRST, FIRST + 3 * PER_DAY)}
    model = fit(rare, PERIOD)
    assert model is not None and model.spread > 0
    band = model.band(FIRST + 3 * PER_DAY, 2)
    assert band.lower == 0.0 and 0 < band.upper < 1
    assert band.position(1.0) == "above" and band.position(0.0) == "inside"


# --- the rule type --------------------------------------------------------------------------


def rule(**settings: Any) -> Rule:
    values: dict[str, Any] = {
        "namespace": "ECS/ContainerInsights",
        "metric_name": "CpuUtilized",
        "dimensions": {"ClusterName": "prod"},
        "period": "15m",
    }
    values.update(settings)
    return Rule(
        id="cpu-band",
        title="CPU outside its usual band",
        type="anomaly_band",
        settings=Settings(**values),
    )


def batch(points: dict[int, float], service: str = "api", **override: Any) -> pa.RecordBatch:
    dims = orjson.dumps({"ClusterName": "prod", "ServiceName": service}).decode()
    times = [datetime.fromtimestamp(i * PERIOD + 60, UTC) for i in points]
    columns = {
        "time": times,
        "namespace": ["ECS/ContainerInsights"] * len(points),
        "name": ["CpuUtilized"] * len(points),
        "dimensions": [dims] * len(points),
        "value": list(points.values()),
        "unit": ["Percent"] * len(points),
        "id": [f"m{i}" for i in range(len(points))],
    }
    for name, value in override.items():
        columns[name] = [value] * len(points)
    return pa.RecordBatch.from_pydict(columns, schema=METRICS)


def end_of(index: int) -> datetime:
    """A tick just after period `index` has ended and settled."""
    return datetime.fromtimestamp((index + 1) * PERIOD + 61, UTC)


@pytest.fixture(scope="module")
def fourteen_days() -> dict[str, Any]:
    """The state after 14 days of history (a replay: one batch, one tick), then a few periods
    right on the expected values so it is OK. Restored by the tests that start from there."""
    evaluator = AnomalyBand(rule())
    points = history(14)
    evaluator.on_batch("metrics", batch(points))
    assert evaluator.on_tick(end_of(max(points))) == []  # the replay's last day is evaluated
    for i in range(max(points) + 1, max(points) + 4):
        evaluator.on_batch("metrics", batch({i: normal(i)}))
        evaluator.on_tick(end_of(i))
    [series] = evaluator.series.values()
    assert series.state == "OK"
    return orjson.loads(orjson.dumps(evaluator.state()))


AFTER_TRAINING = FIRST + 14 * PER_DAY + 3  # the first period after the fixture's history


def trained(evaluator: AnomalyBand, state: dict[str, Any]) -> int:
    evaluator.restore(state)
    assert evaluator.series, "the state applies to this rule"
    return AFTER_TRAINING


def run(
    evaluator: AnomalyBand, first: int, periods: int, value: Callable[[int], float], seed: int = 3
) -> list[Any]:
    """Live: one row and one tick per period."""
    rnd = random.Random(seed)
    matches = []
    for i in range(first, first + periods):
        evaluator.on_batch("metrics", batch({i: value(i) + rnd.gauss(0, NOISE)}))
        matches += evaluator.on_tick(end_of(i))
    return matches


def test_quiet_on_a_normal_day_alarms_on_a_spike_and_recovers(fourteen_days: dict) -> None:
    evaluator = AnomalyBand(rule())
    now = trained(evaluator, fourteen_days)
    assert run(evaluator, now, PER_DAY - 3, normal) == []  # a Saturday, weekend level and all
    now += PER_DAY - 3
    spike = run(evaluator, now, 4, lambda i: normal(i) + 60)  # an hour at +20 noise widths
    assert [m.state for m in spike] == ["ALARM"]
    alarm = spike[0]
    assert "above the expected band" in alarm.summary and "CpuUtilized" in alarm.summary
    assert "ServiceName=api" in alarm.summary and "3 of the last 3 periods" in alarm.summary
    last = alarm.evidence[-1]
    assert last["breaching"] and last["value"] > last["upper"] > last["expected"] > last["lower"]
    # at the end of a spike period (the third at the latest: noise may have begun the count)
    assert alarm.time in [datetime.fromtimestamp((now + k) * PERIOD, UTC) for k in (1, 2, 3)]
    recovered = run(evaluator, now + 4, 2, normal)
    assert [m.state for m in recovered] == ["OK"]
    assert "inside the expected band" in recovered[0].summary


def test_a_level_drop_alarms_below(fourteen_days: dict) -> None:
    evaluator = AnomalyBand(rule())
    now = trained(evaluator, fourteen_days)
    drop = run(evaluator, now, 8, lambda i: normal(i) * 0.5)
    assert [m.state for m in drop] == ["ALARM"]
    assert "below the expected band" in drop[0].summary


def test_direction_above_ignores_a_drop(fourteen_days: dict) -> None:
    evaluator = AnomalyBand(rule(direction="above"))
    now = trained(evaluator, fourteen_days)
    assert run(evaluator, now, 8, lambda i: normal(i) * 0.5) == []


def test_one_of_one_alarms_on_a_single_period(fourteen_days: dict) -> None:
    evaluator = AnomalyBand(rule(evaluation_periods=1))
    now = trained(evaluator, fourteen_days)
    states = [m.state for m in run(evaluator, now, 1, lambda i: normal(i) + 60)]
    assert states == ["ALARM"]


def test_cold_start_stays_insufficient_data() -> None:
    evaluator = AnomalyBand(rule(evaluation_periods=1))
    assert run(evaluator, FIRST, PER_DAY, lambda i: normal(i) + (500 if i % 50 == 0 else 0)) == []
    [status] = evaluator.status()
    assert status["state"] == "INSUFFICIENT_DATA"
    assert status["history"].startswith("1.0 of 2 days")


def test_state_survives_a_restart_without_repeating_an_alarm(fourteen_days: dict) -> None:
    evaluator = AnomalyBand(rule())
    now = trained(evaluator, fourteen_days)
    assert [m.state for m in run(evaluator, now, 3, lambda i: normal(i) + 60)] == ["ALARM"]
    saved = orjson.loads(orjson.dumps(evaluator.state()))
    assert saved["series"] and next(iter(saved["series"].values()))["state"] == "ALARM"
    assert len(orjson.dumps(saved)) < 60_000  # per-period numbers, not raw rows
    restarted = AnomalyBand(rule())
    restarted.restore(saved)
    assert run(restarted, now + 3, 2, lambda i: normal(i) + 60) == []  # still ALARM: no news
    assert [m.state for m in run(restarted, now + 5, 2, normal)] == ["OK"]
    # an edited rule (another statistic) starts afresh rather than misreading the history
    edited = AnomalyBand(rule(statistic="Maximum"))
    edited.restore(saved)
    assert edited.series == {}


def test_history_is_bounded_by_the_training_window() -> None:
    evaluator = AnomalyBand(rule(training_days=3))
    points = history(5)
    evaluator.on_batch("metrics", batch(points))
    evaluator.on_tick(end_of(max(points)))
    [series] = evaluator.series.values()
    assert len(series.history) <= 3 * PER_DAY


def test_each_matching_series_is_its_own_band_and_others_are_ignored() -> None:
    evaluator = AnomalyBand(rule(max_series=2))
    points = history(3)
    evaluator.on_batch("metrics", batch(points, "api"))
    evaluator.on_batch("metrics", batch(points, "web"))
    evaluator.on_batch("metrics", batch(points, "worker"))  # beyond max_series
    evaluator.on_batch("metrics", batch(points, "api", namespace="AWS/ECS"))
    evaluator.on_batch("metrics", batch(points, "api", dimensions='{"ClusterName": "dev"}'))
    evaluator.on_batch("metrics", batch(points, "api", dimensions="not json"))
    evaluator.on_batch("logs", batch(points, "api"))  # not a table this type reads
    assert sorted(s.dimensions["ServiceName"] for s in evaluator.series.values()) == ["api", "web"]
    assert evaluator.ignored_series == 1
    evaluator.on_tick(end_of(max(points)))
    assert all(len(s.history) == len(points) for s in evaluator.series.values())


def test_rows_after_their_period_was_evaluated_are_counted_not_used(fourteen_days: dict) -> None:
    evaluator = AnomalyBand(rule())
    now = trained(evaluator, fourteen_days)
    evaluator.on_batch("metrics", batch({now - 5: 1000.0}))
    [series] = evaluator.series.values()
    assert series.dropped == 1 and now - 5 not in series.pending


def test_group_by_picks_dimensions_for_the_key(fourteen_days: dict) -> None:
    base = rule(evaluation_periods=1)
    grouped = AnomalyBand(base.model_copy(update={"group_by": ("dimensions.ServiceName",)}))
    now = trained(grouped, fourteen_days)
    [match] = run(grouped, now, 1, lambda i: normal(i) + 60)
    assert match.key == ("api",)


def test_registered_with_its_table() -> None:
    kind = TYPES.get("anomaly_band")
    assert kind.tables == ("metrics",) and kind.settings is Settings


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"period": "7m"}, "divide an hour"),
        ({"period": "30s"}, "at least a minute"),
        ({"period": "soon"}, "cannot read the duration"),
        ({"statistic": "p99"}, "is not a statistic"),
        ({"deviations": 0}, "greater than 0"),
        ({"training_days": 1}, "greater than or equal to 2"),
        ({"direction": "sideways"}, "'above', 'below' or 'both'"),
        ({"evaluation_periods": 2, "datapoints_to_alarm": 3}, "cannot exceed"),
        ({"treshold": 3}, "Extra inputs are not permitted"),
    ],
)
def test_bad_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        rule(**settings)


def test_a_tick_without_a_zone_is_utc(fourteen_days: dict) -> None:
    evaluator = AnomalyBand(rule(evaluation_periods=1))
    now = trained(evaluator, fourteen_days)
    evaluator.on_batch("metrics", batch({now: normal(now) + 60}))
    naive = (end_of(now) + timedelta(0)).replace(tzinfo=None)
    assert [m.state for m in evaluator.on_tick(naive)] == ["ALARM"]
