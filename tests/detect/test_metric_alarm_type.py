"""The `metric_alarm` rule type over metrics batches: matching rows, per-period statistics,
evaluation on ticks, transitions as matches, bounded memory and state that survives a restart."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from ecsguard.detect.alarm import State
from ecsguard.detect.engine import AlertStore, Engine
from ecsguard.detect.loader import load_text
from ecsguard.detect.rules import TYPES, Rule
from ecsguard.detect.types.metric_alarm import CATCH_UP, MetricAlarm
from ecsguard.logs.schema import METRICS

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
DIMS = {"ClusterName": "prod", "ServiceName": "api"}


def rule(**settings: Any) -> Rule:
    base: dict[str, Any] = {
        "namespace": "ECS/ContainerInsights",
        "metric_name": "CpuUtilized",
        "dimensions": {"ServiceName": "api"},
        "statistic": "Maximum",
        "period": 60,
        "evaluation_periods": 3,
        "datapoints_to_alarm": 2,
        "threshold": 80,
        "comparison_operator": "GreaterThanThreshold",
    }
    kind = TYPES.get("metric_alarm")
    return Rule(
        id="api-cpu",
        title="API CPU high",
        type="metric_alarm",
        settings=kind.settings.model_validate({**base, **settings}),
    )


def batch(rows: Sequence[tuple[datetime, float | None]], **overrides: Any) -> pa.RecordBatch:
    n = len(rows)
    columns = {
        "time": [t for t, _ in rows],
        "namespace": [overrides.get("namespace", "ECS/ContainerInsights")] * n,
        "name": [overrides.get("name", "CpuUtilized")] * n,
        "dimensions": [overrides.get("dimensions", json.dumps(DIMS))] * n,
        "value": [v for _, v in rows],
        "unit": ["Percent"] * n,
        "id": [f"m{i}" for i in range(n)],
    }
    return pa.RecordBatch.from_pydict(columns, schema=METRICS)


def minute(i: int, second: int = 0) -> datetime:
    return T0 + timedelta(minutes=i, seconds=second)


def compiled(r: Rule) -> MetricAlarm:
    evaluator = TYPES.get("metric_alarm").compile(r)
    assert isinstance(evaluator, MetricAlarm)
    return evaluator


def test_a_rule_file_loads_with_durations_and_reports_bad_settings_by_line() -> None:
    text = """
id: api-p99
title: API latency p99
type: metric_alarm
metric_alarm:
  namespace: ecsguard/logs
  metric_name: latency
  statistic: p99.9
  period: 5m
  evaluation_periods: 3
  threshold: 500
  comparison_operator: GreaterThanOrEqualToThreshold
  treat_missing_data: notBreaching
"""
    loaded = load_text(text, "latency.yaml")
    assert loaded.errors == []
    settings = loaded.rules[0].settings
    assert (settings.period, settings.statistic, settings.spec().m) == (300, "p99.9", 3)
    bad = text.replace("period: 5m", "period: 45").replace("p99.9", "p99.999")
    assert load_text(bad, "latency.yaml").errors == [
        "latency.yaml:9: metric_alarm.period: Value error, must be 10, 20, 30 or a multiple of "
        "60 seconds, not 45"
    ]
    bad = text.replace("GreaterThanOrEqualToThreshold", "Above")
    [problem] = load_text(bad, "latency.yaml").errors
    assert problem.startswith(
        "latency.yaml:12: metric_alarm.comparison_operator: Value error, 'Above' is not one of"
    )
    bad = text.replace("period: 5m", "period: soon")
    assert "latency.yaml:9: metric_alarm.period" in load_text(bad, "latency.yaml").errors[0]
    bad = text.replace("  threshold: 500\n", "  threshold: 500\n  thresold: 1\n")
    assert "metric_alarm.thresold: Extra inputs are not permitted" in "".join(
        load_text(bad, "latency.yaml").errors
    )


def test_transitions_are_matches_with_the_reason() -> None:
    alarm = compiled(rule())
    assert alarm.on_batch("metrics", batch([(minute(0, 5), 50.0), (minute(0, 40), 60.0)])) == []
    [first] = alarm.on_tick(minute(1, 1))  # minute 0 closed: INSUFFICIENT_DATA -> OK
    assert first.state == "OK" and first.time == minute(1)
    alarm.on_batch("metrics", batch([(minute(1, 10), 85.0), (minute(1, 50), 99.0)]))
    assert alarm.on_tick(minute(2, 1)) == []  # 1 of 2 needed
    alarm.on_batch("metrics", batch([(minute(2, 10), 70.0), (minute(2, 20), 90.0)]))
    [fired] = alarm.on_tick(minute(3))
    assert fired.state == "ALARM" and fired.rule_id == "api-cpu"
    assert fired.summary == (
        "Threshold Crossed: 2 out of the last 3 datapoints [90.0 (28/11/26 10:02:00), "
        "99.0 (28/11/26 10:01:00)] were greater than the threshold (80.0) "
        "(minimum 2 datapoints for OK -> ALARM transition)."
    )
    assert [e["value"] for e in fired.evidence] == [90.0, 99.0, 60.0]  # Maximum per minute
    assert alarm.on_tick(minute(3, 30)) == []  # same period: nothing new to evaluate
    assert alarm.alarm.state is State.ALARM
    assert [(t.old, t.new) for t in alarm.alarm.history] == [
        (State.INSUFFICIENT_DATA, State.OK),
        (State.OK, State.ALARM),
    ]


def test_only_this_metric_and_a_superset_of_its_dimensions_count() -> None:
    alarm = compiled(rule(evaluation_periods=1, datapoints_to_alarm=None))
    rows = [(minute(0, 1), 99.0)]
    others = [
        batch(rows, namespace="AWS/ECS"),
        batch(rows, name="MemoryUtilized"),
        batch(rows, dimensions=json.dumps({"ServiceName": "web", "ClusterName": "prod"})),
        batch(rows, dimensions="{not json"),
        batch(rows, dimensions=None),
        batch(rows, dimensions="[1, 2]"),
        batch([(minute(0, 2), None), (minute(0, 3), float("nan")), (minute(0, 4), float("inf"))]),
    ]
    for other in others:
        alarm.on_batch("metrics", other)
    alarm.on_batch("logs", batch(rows))  # not a table this type reads
    assert alarm.periods == {}
    api_form = json.dumps([{"Name": "ServiceName", "Value": "api"}, {"Name": "X", "Value": "y"}])
    alarm.on_batch("metrics", batch(rows, dimensions=api_form))
    [match] = alarm.on_tick(minute(1))
    assert match.state == "ALARM"


@pytest.mark.parametrize(
    ("statistic", "expected"),
    [
        ("SampleCount", 100.0),
        ("Sum", 5050.0),
        ("Average", 50.5),
        ("Minimum", 1.0),
        ("Maximum", 100.0),
        ("p50", 50.0),
        ("p99", 99.0),
        ("p99.9", 100.0),
        ("p0.0", 1.0),
    ],
)
def test_statistics_over_rows_of_several_batches(statistic: str, expected: float) -> None:
    alarm = compiled(rule(statistic=statistic, evaluation_periods=1, datapoints_to_alarm=None))
    values = [float(v) for v in range(1, 101)]
    for chunk in (values[:37], values[37:80], values[80:]):
        alarm.on_batch("metrics", batch([(minute(0, i % 60), v) for i, v in enumerate(chunk)]))
    assert alarm.datapoints(minute(1))[-1] == (minute(0), expected)
    alarm.on_tick(minute(1))
    assert alarm.datapoints(minute(1))[-1] == (minute(0), expected)  # sealed: same answer
    if statistic.startswith("p"):
        assert alarm.periods[int(minute(0).timestamp()) // 60].sample is None


def test_percentile_periods_stay_open_until_they_close() -> None:
    alarm = compiled(rule(statistic="p90", evaluation_periods=1, datapoints_to_alarm=None))
    alarm.on_batch("metrics", batch([(minute(0, s), float(s)) for s in range(10)]))
    alarm.on_batch("metrics", batch([(minute(1, s), float(s)) for s in range(10)]))
    alarm.on_tick(minute(1, 30))
    closed, open_ = (alarm.periods[int(minute(i).timestamp()) // 60] for i in (0, 1))
    assert closed.sample is None and closed.sealed == 8.0
    assert open_.sample is not None and len(open_.sample) == 10


def test_a_replayed_hour_is_evaluated_period_by_period() -> None:
    alarm = compiled(rule(evaluation_periods=2, datapoints_to_alarm=2))
    rows = [(minute(i, 30), 95.0 if 20 <= i < 25 else 10.0) for i in range(60)]
    assert alarm.on_batch("metrics", batch(rows)) == []
    matches = alarm.on_tick(minute(60, 5))
    assert [(m.state, m.time) for m in matches] == [
        ("OK", minute(1)),
        ("ALARM", minute(22)),
        ("OK", minute(26)),
    ]
    size = alarm.spec.evaluation_range
    assert len(alarm.periods) <= size


def test_memory_stays_bounded() -> None:
    alarm = compiled(rule())
    size = alarm.spec.evaluation_range
    rows = [(minute(i), 1.0) for i in range(3 * CATCH_UP)]
    alarm.on_batch("metrics", batch(rows))
    assert len(alarm.periods) == size + CATCH_UP  # before any tick: the newest periods
    alarm.on_tick(minute(3 * CATCH_UP))
    assert len(alarm.periods) == size - 1  # the range of the next evaluation; its last is empty
    # a sender whose clock runs days ahead cannot grow it past the catch-up bound
    far = [(minute(3 * CATCH_UP + 10 * CATCH_UP + i), 1.0) for i in range(100)]
    alarm.on_batch("metrics", batch(far))
    assert len(alarm.periods) <= size + CATCH_UP + 1
    assert alarm.dropped >= 100


def test_late_rows_count_while_their_period_is_in_range() -> None:
    alarm = compiled(rule(evaluation_periods=3, datapoints_to_alarm=3, statistic="Sum"))
    alarm.on_tick(minute(10))
    alarm.on_batch("metrics", batch([(minute(8), 90.0), (minute(9), 90.0)]))
    alarm.on_batch("metrics", batch([(minute(7), 90.0)]))  # late, yet inside the range
    alarm.on_batch("metrics", batch([(minute(1), 1000.0)]))  # too old to matter: dropped
    assert alarm.on_tick(minute(10, 30)) == []  # the same period: nothing closed since
    [match] = alarm.on_tick(minute(11))
    assert match.state == "ALARM" and alarm.dropped == 1
    assert [e["time"] for e in match.evidence] == [minute(9), minute(8), minute(7)]


def test_state_round_trip_continues_without_a_second_alert() -> None:
    first = compiled(rule())
    first.on_batch("metrics", batch([(minute(0), 90.0), (minute(1), 95.0)]))
    assert [m.state for m in first.on_tick(minute(2))] == ["ALARM"]
    first.on_batch("metrics", batch([(minute(2), 97.0)]))
    saved = json.loads(json.dumps(first.state(), default=str))

    second = compiled(rule())
    second.restore(saved)
    assert second.alarm.state is State.ALARM and second.next_end == first.next_end
    assert second.periods.keys() == first.periods.keys()
    assert second.on_tick(minute(3)) == []  # still ALARM: no duplicate
    second.on_batch("metrics", batch([(minute(3), 10.0), (minute(4), 10.0)]))
    assert [m.state for m in second.on_tick(minute(5))] == ["OK"]
    assert len(second.alarm.history) == 2


def test_restore_after_a_rule_edit_keeps_the_state_but_not_the_aggregates() -> None:
    first = compiled(rule())
    first.on_batch("metrics", batch([(minute(0), 90.0), (minute(1), 95.0)]))
    first.on_tick(minute(2))
    edited = compiled(rule(period=300))
    edited.restore(first.state())
    assert edited.alarm.state is State.ALARM and edited.periods == {}
    fresh = compiled(rule())
    fresh.restore({})
    fresh.restore({"version": 99})
    assert fresh.alarm.state is State.INSUFFICIENT_DATA


def test_through_the_engine_a_restart_does_not_alert_twice(tmp_path: Path) -> None:
    r = rule(evaluation_periods=1, datapoints_to_alarm=None)
    store = AlertStore(tmp_path / "detect.db")
    try:
        engine = Engine([r], store)
        engine.process("metrics", batch([(minute(0, 5), 99.0)]))
        alerts = engine.tick(minute(1))
        assert [a.state for a in alerts] == ["ALARM"]
        assert alerts[0].summary.startswith("Threshold Crossed: 1 datapoint [99.0")
        engine.process("metrics", batch([(minute(1, 5), 98.0)]))
        restarted = Engine([r], store)
        assert restarted.tick(minute(2)) == []
        restarted.process("metrics", batch([(minute(2, 5), 5.0)]))
        assert [a.state for a in restarted.tick(minute(3))] == ["OK"]
    finally:
        store.close()
