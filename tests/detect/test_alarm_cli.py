"""`ecsguard alarms evaluate`: PutMetricAlarm JSON and datapoints in, CloudWatch's state out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.cli.test_errors import assert_one_clear_error, ecsguard

from ecsguard.cli.main import cli
from ecsguard.core.errors import UserError

ALARM = {
    "AlarmName": "api-cpu",
    "MetricName": "CPUUtilization",
    "Namespace": "AWS/ECS",
    "Statistic": "Average",
    "Period": 300,
    "EvaluationPeriods": 3,
    "DatapointsToAlarm": 3,
    "Threshold": 80.0,
    "ComparisonOperator": "GreaterThanThreshold",
}
END = "2026-11-28T10:20:00Z"


def write(tmp_path: Path, name: str, doc: object) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return str(path)


def run(*args: str, stdin: str | None = None) -> dict[str, object]:
    result = CliRunner().invoke(cli, ["alarms", "evaluate", *args], input=stdin)
    assert result.exit_code == 0, result.output
    out: dict[str, object] = json.loads(result.output)
    return out


def test_files_in_state_and_reason_out(tmp_path: Path) -> None:
    alarm = write(tmp_path, "alarm.json", ALARM)
    data = write(tmp_path, "data.json", [50, 91.0, 90.2, 95.5])
    out = run("--alarm", alarm, "--datapoints", data, "--end", END, "--initial-state", "OK")
    assert out == {
        "StateValue": "ALARM",
        "StateReason": "Threshold Crossed: 3 out of the last 3 datapoints [95.5 (28/11/26 "
        "10:15:00), 90.2 (28/11/26 10:10:00), 91.0 (28/11/26 10:05:00)] were greater than the "
        "threshold (80.0) (minimum 3 datapoints for OK -> ALARM transition).",
    }


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("missing", "INSUFFICIENT_DATA"),
        ("breaching", "ALARM"),
        ("notBreaching", "OK"),
        ("ignore", "OK"),  # keeps --initial-state
    ],
)
def test_all_missing_by_treat_missing_data(tmp_path: Path, how: str, expected: str) -> None:
    alarm = write(tmp_path, "alarm.json", {**ALARM, "TreatMissingData": how})
    out = run("--alarm", alarm, "--datapoints", "-", "--initial-state", "OK", stdin="[null, null]")
    assert out["StateValue"] == expected


def test_alarm_from_stdin_and_percentile(tmp_path: Path) -> None:
    doc = {k: v for k, v in ALARM.items() if k != "Statistic"} | {
        "ExtendedStatistic": "p99.9",
        "DatapointsToAlarm": 2,
        "ComparisonOperator": "LessThanOrEqualToThreshold",
    }
    data = write(tmp_path, "data.json", [None, 80, None, 80])
    out = run("--alarm", "-", "--datapoints", data, "--end", END, stdin=json.dumps(doc))
    assert out["StateValue"] == "ALARM"
    assert "were less than or equal to the threshold (80.0)" in str(out["StateReason"])


def test_default_initial_state_and_end(tmp_path: Path) -> None:
    alarm = write(tmp_path, "alarm.json", ALARM)
    out = run("--alarm", alarm, "--datapoints", "-", stdin="[91, 92, 93]")
    assert out["StateValue"] == "ALARM"
    assert "INSUFFICIENT_DATA -> ALARM" in str(out["StateReason"])


def test_history_replays_every_period(tmp_path: Path) -> None:
    alarm = write(tmp_path, "alarm.json", {**ALARM, "EvaluationPeriods": 1, "DatapointsToAlarm": 1})
    data = write(tmp_path, "data.json", [10, 90, 95, 10])
    out = run("--alarm", alarm, "--datapoints", data, "--end", END, "--history")
    history = out["History"]
    assert isinstance(history, list)
    assert [h["HistorySummary"] for h in history] == [
        "Alarm updated from INSUFFICIENT_DATA to OK",
        "Alarm updated from OK to ALARM",
        "Alarm updated from ALARM to OK",
    ]
    assert [h["Timestamp"] for h in history] == [
        "2026-11-28T10:05:00+00:00",
        "2026-11-28T10:10:00+00:00",
        "2026-11-28T10:20:00+00:00",
    ]
    assert out["StateValue"] == "OK"


@pytest.mark.parametrize(
    ("alarm_doc", "data_doc", "needles"),
    [
        ("{not json", "[]", ["alarm.json: not valid JSON", "line 1"]),
        (ALARM, "[1, 2,", ["data.json: not valid JSON"]),
        ({**ALARM, "ComparisonOperator": "Above"}, "[]", ["alarm.json: ComparisonOperator:"]),
        ({k: v for k, v in ALARM.items() if k != "Period"}, "[]", ["alarm.json: Period:"]),
        ({**ALARM, "EvaluationPeriods": 0}, "[]", ["alarm.json: EvaluationPeriods:"]),
        ({**ALARM, "Treshold": 1}, "[]", ["alarm.json: Treshold:", "did you mean Threshold"]),
        (ALARM, {"values": [1]}, ["data.json: expected a JSON array"]),
        (ALARM, [1, "2"], ['data.json: item 1 is "2"']),
        (ALARM, [True], ["data.json: item 0 is true"]),
        (ALARM, "[NaN]", ["data.json: not valid JSON"]),
    ],
)
def test_bad_input_names_the_file_and_field(
    tmp_path: Path, alarm_doc: object, data_doc: object, needles: list[str]
) -> None:
    alarm = write(tmp_path, "alarm.json", alarm_doc)
    data = write(tmp_path, "data.json", data_doc)
    result = CliRunner().invoke(cli, ["alarms", "evaluate", "--alarm", alarm, "--datapoints", data])
    assert isinstance(result.exception, UserError), result.output
    for needle in needles:
        assert needle in result.exception.problem, result.exception.problem


def test_missing_file_and_double_stdin(tmp_path: Path) -> None:
    runner = CliRunner()
    gone = runner.invoke(
        cli, ["alarms", "evaluate", "--alarm", str(tmp_path / "nope.json"), "--datapoints", "-"]
    )
    assert isinstance(gone.exception, UserError) and "cannot read" in gone.exception.problem
    both = runner.invoke(cli, ["alarms", "evaluate", "--alarm", "-", "--datapoints", "-"])
    assert isinstance(both.exception, UserError) and "both" in both.exception.problem
    alarm = write(tmp_path, "a.json", ALARM)
    bad_end = runner.invoke(
        cli,
        ["alarms", "evaluate", "--alarm", alarm, "--datapoints", "-", "--end", "yesterday"],
        input="[]",
    )
    assert isinstance(bad_end.exception, UserError) and "--end" in bad_end.exception.problem


def test_the_command_exits_2_with_one_line(tmp_path: Path) -> None:
    alarm = write(tmp_path, "alarm.json", {**ALARM, "TreatMissingData": "sometimes"})
    run_ = ecsguard("alarms", "evaluate", "--alarm", alarm, "--datapoints", alarm)
    assert run_.returncode == 2
    assert_one_clear_error(run_, "alarm.json: TreatMissingData:", "'sometimes' is not one of")
    assert run_.stdout == ""
