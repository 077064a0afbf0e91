"""CloudWatch alarm semantics: the user guide's missing-data tables, M of N, operators,
statistics, StateReason texts, history, PutMetricAlarm documents, and never a crash."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecsguard.detect.alarm import (
    COMPARISONS,
    SAMPLE_CAP,
    TREAT_MISSING,
    Alarm,
    AlarmSpec,
    AlarmSpecError,
    PeriodStats,
    State,
    Transition,
    evaluate,
    percentile,
    percentile_of,
    replay,
    spec_from_put_metric_alarm,
)

CASES = json.loads(
    (Path(__file__).parents[2].parent / "shared/testdata/alarms/cases.json").read_text()
)
END = datetime(2026, 11, 28, 10, 25, tzinfo=UTC)
#: the legend's symbols as values against GreaterThanThreshold 80
SYMBOL = {"0": 10.0, "X": 90.0, "-": None}


def case_spec(case: dict[str, Any]) -> AlarmSpec:
    return AlarmSpec(
        evaluation_periods=case["evaluation_periods"],
        datapoints_to_alarm=case["datapoints_to_alarm"],
        threshold=80.0,
        comparison_operator="GreaterThanThreshold",
        treat_missing_data=case["treat_missing_data"],
        period=case.get("period_seconds") or 300,
        look_back=case["evaluation_range"] - case["evaluation_periods"],
    )


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
@pytest.mark.parametrize("before", [State.OK, State.ALARM, State.INSUFFICIENT_DATA])
def test_user_guide_cases(case: dict[str, Any], before: State) -> None:
    values = [SYMBOL[s] for s in case["datapoints_oldest_to_newest"]]
    result = evaluate(case_spec(case), values, end=END, current=before)
    if case["expected_state"] == "NOT_ALARM":
        assert result.state is not State.ALARM
    else:
        assert result.state == case["expected_state"], result.reason
    # the guide's "# of missing data points" column: how many periods were filled in
    if "points_to_fill" in case and case["treat_missing_data"] in ("breaching", "notBreaching"):
        filled = sum(p.filled for p in result.evaluated)
        present = sum(v is not None for v in values)
        if present < case["evaluation_periods"]:
            assert filled == case["points_to_fill"]


def test_the_range_is_the_last_n_plus_two_periods() -> None:
    spec = AlarmSpec(3, 80.0, "GreaterThanThreshold")
    assert spec.evaluation_range == 5
    # an old breaching run beyond the range no longer counts: only "- - - - -" is seen
    old = [90.0, 90.0, 90.0, None, None, None, None, None]
    assert evaluate(spec, old, end=END).state is State.INSUFFICIENT_DATA
    # a shorter array: the periods before it count as missing
    assert evaluate(spec, [90.0], end=END).state is State.INSUFFICIENT_DATA


def test_ignore_keeps_whatever_state_it_had() -> None:
    spec = AlarmSpec(3, 80.0, "GreaterThanThreshold", treat_missing_data="ignore")
    for before in State:
        nothing = evaluate(spec, [None] * 5, end=END, current=before)
        assert nothing.state is before and "missing data is ignored" in nothing.reason
        # all breaching, too few and too recent for the premature rule: still no change
        recent = evaluate(spec, [None, None, None, None, 90.0], end=END, current=before)
        assert recent.state is before
    # the premature-transition rule is for `missing`; `ignore` keeps its state (older guide row
    # "X - - - -": MISSING -> ALARM, IGNORE -> retain)
    old = evaluate(spec, [90.0, None, None, None, None], end=END, current=State.OK)
    assert old.state is State.OK
    missing = AlarmSpec(3, 80.0, "GreaterThanThreshold")
    assert evaluate(missing, [90.0, None, None, None, None], end=END).state is State.ALARM


@pytest.mark.parametrize(
    ("operator", "breaching", "calm"),
    [
        ("GreaterThanOrEqualToThreshold", [80.0, 81.0], [79.9]),
        ("GreaterThanThreshold", [80.1, 1e9], [80.0, -5.0]),
        ("LessThanThreshold", [79.9, -1e9], [80.0, 81.0]),
        ("LessThanOrEqualToThreshold", [80.0, 0.0], [80.1]),
    ],
)
def test_each_operator_at_and_around_the_threshold(
    operator: str, breaching: list[float], calm: list[float]
) -> None:
    spec = AlarmSpec(1, 80.0, operator)
    for value in breaching:
        assert evaluate(spec, [value], end=END).state is State.ALARM, (operator, value)
    for value in calm:
        assert evaluate(spec, [value], end=END).state is State.OK, (operator, value)


@pytest.mark.parametrize(
    ("m", "values", "expected"),
    [
        (2, [90.0, 10.0, 90.0], State.ALARM),  # breaching points need not be consecutive
        (2, [90.0, 10.0, 10.0], State.OK),
        (3, [90.0, 90.0, 10.0], State.OK),
        (1, [10.0, 10.0, 90.0], State.ALARM),
        (2, [90.0, 90.0, 10.0, 10.0, 10.0], State.OK),  # the first two are older than N
    ],
)
def test_m_out_of_n(m: int, values: list[float], expected: State) -> None:
    spec = AlarmSpec(3, 80.0, "GreaterThanThreshold", datapoints_to_alarm=m)
    assert evaluate(spec, values, end=END).state is expected


def test_enough_real_points_make_missing_data_irrelevant() -> None:
    values = [90.0, None, 90.0, None, 90.0]  # 3 real points for N = 3
    for how in TREAT_MISSING:
        spec = AlarmSpec(3, 80.0, "GreaterThanThreshold", treat_missing_data=how)
        result = evaluate(spec, values, end=END)
        assert result.state is State.ALARM and not any(p.filled for p in result.evaluated)


def test_nan_counts_as_missing() -> None:
    spec = AlarmSpec(1, 80.0, "GreaterThanThreshold")
    assert evaluate(spec, [math.nan], end=END).state is State.INSUFFICIENT_DATA


def test_alarm_reason_reads_like_cloudwatch() -> None:
    spec = AlarmSpec(3, 80.0, "GreaterThanThreshold", period=300)
    result = evaluate(spec, [50.0, 91.0, 90.2, 95.5], end=END, current=State.OK)
    assert result.reason == (
        "Threshold Crossed: 3 out of the last 3 datapoints [95.5 (28/11/26 10:20:00), "
        "90.2 (28/11/26 10:15:00), 91.0 (28/11/26 10:10:00)] were greater than the threshold "
        "(80.0) (minimum 3 datapoints for OK -> ALARM transition)."
    )
    back = evaluate(spec, [91.0, 90.2, 10.0], end=END, current=State.ALARM)
    assert back.state is State.OK
    assert back.reason == (
        "Threshold Crossed: 1 out of the last 3 datapoints [10.0 (28/11/26 10:20:00)] was not "
        "greater than the threshold (80.0) (minimum 1 datapoint for ALARM -> OK transition)."
    )


def test_reasons_for_single_points_fills_and_no_data() -> None:
    one = AlarmSpec(1, 1.0, "GreaterThanOrEqualToThreshold", period=60)
    assert evaluate(one, [2.0], end=END).reason == (
        "Threshold Crossed: 1 datapoint [2.0 (28/11/26 10:24:00)] was greater than or equal to "
        "the threshold (1.0)."
    )
    filled = AlarmSpec(3, 80.0, "LessThanThreshold", treat_missing_data="breaching")
    reason = evaluate(filled, [None, None, 10.0, None, None], end=END).reason
    assert "were less than the threshold (80.0) with missing data treated as [Breaching]" in reason
    assert reason.count("missing (") == 2
    for how, word in (("breaching", "[Breaching]"), ("notBreaching", "[NonBreaching]")):
        spec = AlarmSpec(3, 80.0, "LessThanThreshold", treat_missing_data=how)
        assert evaluate(spec, [], end=END).reason == (
            "Threshold Crossed: no datapoints were received for 5 periods and 3 missing "
            f"datapoints were treated as {word}."
        )
    missing = AlarmSpec(3, 80.0, "LessThanThreshold")
    assert evaluate(missing, [], end=END).reason.startswith("Insufficient Data:")


def test_statistics_of_a_period() -> None:
    stats = PeriodStats()
    stats.add(3, 6.0, 1.0, 3.0, [1.0, 2.0, 3.0])
    stats.add(1, 10.0, 10.0, 10.0, [10.0])
    assert stats.value("SampleCount") == 4.0
    assert stats.value("Sum") == 16.0
    assert stats.value("Average") == 4.0
    assert stats.value("Minimum") == 1.0
    assert stats.value("Maximum") == 10.0
    assert stats.value("p50") == 2.0
    assert stats.value("p100") == 10.0
    assert stats.value("p0") == 1.0
    assert PeriodStats().value("Average") is None


@pytest.mark.parametrize(
    ("pct", "expected"),
    [(0.0, 1.0), (1.0, 1.0), (50.0, 50.0), (90.0, 90.0), (99.0, 99.0), (99.9, 100.0), (100, 100.0)],
)
def test_nearest_rank_percentiles(pct: float, expected: float) -> None:
    values = [float(v) for v in range(100, 0, -1)]
    assert percentile(values, pct) == expected


def test_percentile_names() -> None:
    assert percentile_of("p99") == 99.0
    assert percentile_of("p99.9") == 99.9
    assert percentile_of("p0.0") == 0.0
    assert percentile_of("p100") == 100.0
    assert percentile_of("Average") is None
    for bad in ("p101", "p99.999", "P99", "avg", "p", "99"):
        with pytest.raises(AlarmSpecError, match="not a statistic"):
            percentile_of(bad)


def test_a_busy_percentile_period_keeps_a_bounded_sample() -> None:
    stats = PeriodStats()
    rng = random.Random(1)
    values = [float(v) for v in range(3 * SAMPLE_CAP)]
    for start in range(0, len(values), 1000):
        chunk = values[start : start + 1000]
        stats.add(len(chunk), sum(chunk), min(chunk), max(chunk), chunk, rng)
    assert stats.sample is not None and len(stats.sample) == SAMPLE_CAP
    assert stats.value("SampleCount") == len(values)
    p50 = stats.value("p50")
    assert p50 is not None and abs(p50 - 15_000) < 1_000  # a uniform sample: close to the truth
    stats.seal("p50")
    assert stats.sample is None and stats.value("p50") == p50


def test_alarm_history_records_transitions_only() -> None:
    spec = AlarmSpec(1, 80.0, "GreaterThanThreshold", period=60)
    alarm = replay(spec, [10.0, 10.0, 90.0, 95.0, 10.0], end=END)
    assert [(t.old, t.new) for t in alarm.history] == [
        (State.INSUFFICIENT_DATA, State.OK),
        (State.OK, State.ALARM),
        (State.ALARM, State.OK),
    ]
    assert [t.time.minute for t in alarm.history] == [21, 23, 25]
    assert alarm.state is State.OK and alarm.reason == alarm.history[-1].reason
    again = Alarm(spec)
    again.restore(json.loads(json.dumps(alarm.to_dict())))
    assert again.state is alarm.state and list(again.history) == list(alarm.history)
    item = alarm.history[1].to_dict()
    assert item["HistorySummary"] == "Alarm updated from OK to ALARM"
    assert Transition.from_dict(item) == alarm.history[1]


def test_replay_lets_ignore_keep_the_state_earlier_periods_set() -> None:
    spec = AlarmSpec(1, 80.0, "GreaterThanThreshold", treat_missing_data="ignore", period=60)
    single = evaluate(spec, [90.0, None, None, None], end=END, current=State.OK)
    assert single.state is State.OK  # the last evaluation alone sees only missing data
    assert replay(spec, [90.0, None, None, None], end=END, initial=State.OK).state is State.ALARM


@pytest.mark.parametrize(
    ("changes", "field", "needle"),
    [
        ({"evaluation_periods": 0}, "EvaluationPeriods", "1 or more"),
        ({"evaluation_periods": True}, "EvaluationPeriods", "integer"),
        ({"datapoints_to_alarm": 4}, "DatapointsToAlarm", "from 1 to EvaluationPeriods (3)"),
        ({"threshold": "80"}, "Threshold", "must be a number"),
        ({"threshold": math.inf}, "Threshold", "finite"),
        ({"comparison_operator": "GreaterThan"}, "ComparisonOperator", "is not one of"),
        ({"comparison_operator": ["x"]}, "ComparisonOperator", "is not one of"),
        ({"comparison_operator": "GreaterThanUpperThreshold"}, "ComparisonOperator", "anomaly"),
        ({"treat_missing_data": "zero"}, "TreatMissingData", "is not one of"),
        ({"period": 45}, "Period", "multiple of 60"),
        ({"period": 60, "evaluation_periods": 1441}, "EvaluationPeriods", "86400"),
        ({"statistic": "Median"}, "Statistic", "not a statistic"),
        ({"look_back": -1}, "look_back", "0 or more"),
    ],
)
def test_invalid_settings_name_the_field(changes: dict[str, Any], field: str, needle: str) -> None:
    base: dict[str, Any] = {
        "evaluation_periods": 3,
        "threshold": 80.0,
        "comparison_operator": "GreaterThanThreshold",
    }
    with pytest.raises(AlarmSpecError) as caught:
        AlarmSpec(**{**base, **changes})
    assert caught.value.field == field and needle in caught.value.problem


def test_hour_periods_may_span_a_week() -> None:
    assert AlarmSpec(168, 1.0, "LessThanThreshold", period=3600).evaluation_range == 170
    with pytest.raises(AlarmSpecError, match="604800"):
        AlarmSpec(169, 1.0, "LessThanThreshold", period=3600)


PUT = {
    "AlarmName": "api-cpu",
    "MetricName": "CPUUtilization",
    "Namespace": "AWS/ECS",
    "Dimensions": [{"Name": "ServiceName", "Value": "api"}],
    "Statistic": "Average",
    "Period": 300,
    "EvaluationPeriods": 3,
    "DatapointsToAlarm": 2,
    "Threshold": 80,
    "ComparisonOperator": "GreaterThanThreshold",
    "TreatMissingData": "notBreaching",
    "AlarmActions": ["arn:aws:sns:ap-northeast-1:123456789012:ops"],
}


def test_put_metric_alarm_document() -> None:
    spec = spec_from_put_metric_alarm(PUT)
    assert (spec.evaluation_periods, spec.m, spec.period, spec.threshold) == (3, 2, 300, 80)
    assert (spec.statistic, spec.treat_missing_data) == ("Average", "notBreaching")
    bare = {k: v for k, v in PUT.items() if k not in ("DatapointsToAlarm", "TreatMissingData")}
    defaults = spec_from_put_metric_alarm(bare)
    assert (defaults.m, defaults.treat_missing_data) == (3, "missing")
    extended = {k: v for k, v in PUT.items() if k != "Statistic"} | {"ExtendedStatistic": "p99.9"}
    assert spec_from_put_metric_alarm(extended).statistic == "p99.9"


@pytest.mark.parametrize(
    ("doc", "field", "needle"),
    [
        ([PUT], "(document)", "JSON object"),
        ({**PUT, "TreatMissingDatas": "missing"}, "TreatMissingDatas", "did you mean"),
        ({k: v for k, v in PUT.items() if k != "Period"}, "Period", "required"),
        ({k: v for k, v in PUT.items() if k != "Threshold"}, "Threshold", "required"),
        ({k: v for k, v in PUT.items() if k != "Statistic"}, "Statistic", "give Statistic"),
        ({**PUT, "ExtendedStatistic": "p99"}, "Statistic", "not both"),
        ({**PUT, "Statistic": "p99"}, "Statistic", "ExtendedStatistic"),
        ({**PUT, "Statistic": None, "ExtendedStatistic": "Average"}, "ExtendedStatistic", "p99"),
        ({**PUT, "Statistic": None, "ExtendedStatistic": "p101"}, "ExtendedStatistic", "p100"),
        ({**PUT, "Metrics": []}, "Metrics", "metric math"),
        ({**PUT, "ComparisonOperator": "GreaterThan"}, "ComparisonOperator", "is not one of"),
        ({**PUT, "EvaluationPeriods": "3"}, "EvaluationPeriods", "integer"),
    ],
)
def test_bad_put_metric_alarm_documents(doc: object, field: str, needle: str) -> None:
    with pytest.raises(AlarmSpecError) as caught:
        spec_from_put_metric_alarm(doc)
    assert caught.value.field == field and needle in caught.value.problem, caught.value


values_strategy = st.lists(
    st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)), max_size=30
)


@settings(max_examples=200, deadline=None)
@given(
    values=values_strategy,
    n=st.integers(1, 8),
    m_offset=st.integers(0, 7),
    operator=st.sampled_from(sorted(COMPARISONS)),
    how=st.sampled_from(TREAT_MISSING),
    before=st.sampled_from(list(State)),
    threshold=st.floats(-1e6, 1e6),
)
def test_evaluation_never_raises_and_yields_a_state(
    values: list[float | None],
    n: int,
    m_offset: int,
    operator: str,
    how: str,
    before: State,
    threshold: float,
) -> None:
    spec = AlarmSpec(
        n, threshold, operator, datapoints_to_alarm=max(1, n - m_offset), treat_missing_data=how
    )
    result = evaluate(spec, values, end=END, current=before)
    assert result.state in set(State) and result.reason
    assert len(result.evaluated) <= n
    alarm = replay(spec, values, end=END, initial=before)
    assert alarm.state in set(State)
