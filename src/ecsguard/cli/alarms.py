"""`ecsguard alarms`: CloudWatch metric alarm semantics, offline."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click
import orjson

from ecsguard.cli.common import print_json
from ecsguard.core.errors import UserError

STATES = ["OK", "ALARM", "INSUFFICIENT_DATA"]


@click.group()
def alarms() -> None:
    """CloudWatch-style metric alarms: M out of N, TreatMissingData, percentiles, reasons.

    The same semantics drive `metric_alarm` rules over the metrics table.

    \b
    Examples:
      ecsguard alarms evaluate --alarm cpu-alarm.json --datapoints last-hour.json
      echo '[91, null, 95]' | ecsguard alarms evaluate --alarm cpu-alarm.json --datapoints -
    """


@alarms.command("evaluate")
@click.option(
    "--alarm",
    "alarm_file",
    required=True,
    metavar="ALARM.json",
    help="PutMetricAlarm parameters as JSON (EvaluationPeriods, DatapointsToAlarm, Threshold, "
    "ComparisonOperator, TreatMissingData, Period, Statistic or ExtendedStatistic, ...); - for "
    "stdin.",
)
@click.option(
    "--datapoints",
    "data_file",
    required=True,
    metavar="DATA.json",
    help="A JSON array with one value per period, oldest first, null for missing; - for stdin.",
)
@click.option(
    "--initial-state",
    type=click.Choice(STATES),
    default="INSUFFICIENT_DATA",
    show_default=True,
    help="The alarm's state before this evaluation (what `ignore` keeps).",
)
@click.option(
    "--end",
    help="When the last period ends: ISO 8601 (UTC by default) or epoch seconds; "
    "default now, rounded down to the Period. Datapoint times in the reason follow from it.",
)
@click.option(
    "--history",
    is_flag=True,
    help="Evaluate at the end of every period in turn, from --initial-state, as CloudWatch "
    "would have, and add the state changes as History.",
)
def evaluate_command(
    alarm_file: str, data_file: str, initial_state: str, end: str | None, history: bool
) -> None:
    """Evaluate an alarm over datapoints at the end of the last period, as CloudWatch does.

    Prints {"StateValue": ..., "StateReason": ...}. CloudWatch looks at the last
    EvaluationPeriods + 2 periods (the evaluation range): the newest EvaluationPeriods
    datapoints decide when there are that many; with fewer, TreatMissingData says what the
    missing ones count as (missing, ignore, breaching, notBreaching). DatapointsToAlarm
    (default EvaluationPeriods) breaching datapoints mean ALARM.

    \b
    Examples:
      ecsguard alarms evaluate --alarm alarm.json --datapoints data.json
      ecsguard alarms evaluate --alarm alarm.json --datapoints data.json --initial-state OK \\
          --end 2026-11-28T10:15Z --history

    \b
    alarm.json:
      {"AlarmName": "api-cpu", "MetricName": "CPUUtilization", "Namespace": "AWS/ECS",
       "Statistic": "Average", "Period": 300, "EvaluationPeriods": 3,
       "DatapointsToAlarm": 2, "Threshold": 80, "ComparisonOperator": "GreaterThanThreshold",
       "TreatMissingData": "missing"}
    data.json:
      [42.0, 91.5, null, 88.0]
    """
    from ecsguard.detect.alarm import AlarmSpecError, State, evaluate, replay
    from ecsguard.detect.alarm import spec_from_put_metric_alarm as parse_alarm

    if alarm_file == "-" and data_file == "-":
        raise UserError(
            "--alarm and --datapoints cannot both read stdin", "give one of them as a file"
        )
    alarm_doc = _read_json(alarm_file, "--alarm")
    try:
        spec = parse_alarm(alarm_doc)
    except AlarmSpecError as err:
        raise UserError(
            f"{_name(alarm_file)}: {err.field}: {err.problem}",
            "see PutMetricAlarm's parameters; e.g. `ecsguard alarms evaluate --help`",
        ) from None
    values = _datapoints(_read_json(data_file, "--datapoints"), data_file)
    last_end = _end(end, spec.period)
    if history:
        alarm = replay(spec, values, end=last_end, initial=State(initial_state))
        print_json(
            {
                "StateValue": str(alarm.state),
                "StateReason": alarm.reason,
                "History": [t.to_dict() for t in alarm.history],
            }
        )
        return
    result = evaluate(spec, values, end=last_end, current=State(initial_state))
    print_json({"StateValue": str(result.state), "StateReason": result.reason})


def _name(path: str) -> str:
    return "stdin" if path == "-" else path


def _read_json(path: str, option: str) -> object:
    if path == "-":
        data = sys.stdin.buffer.read()
    else:
        try:
            data = Path(path).read_bytes()
        except OSError as err:
            raise UserError(
                f"{option} {path}: cannot read: {err.strerror}", "check the path"
            ) from None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as err:
        raise UserError(
            f"{_name(path)}: not valid JSON: {err.msg} (line {err.lineno}, column {err.colno})",
            f"{option} takes a JSON document",
        ) from None


def _datapoints(doc: object, path: str) -> list[float | None]:
    if not isinstance(doc, list):
        raise UserError(
            f"{_name(path)}: expected a JSON array of numbers and nulls, not {type(doc).__name__}",
            "one value per period, oldest first, e.g. [42.0, null, 91.5]",
        )
    values: list[float | None] = []
    for index, item in enumerate(doc):
        if item is not None and (isinstance(item, bool) or not isinstance(item, int | float)):
            raise UserError(
                f"{_name(path)}: item {index} is {orjson.dumps(item).decode()[:60]}, "
                "not a number or null",
                "one value per period, oldest first; null for a period without data",
            )
        values.append(None if item is None else float(item))
    return values


def _end(text: str | None, period: int) -> datetime:
    from ecsguard.logs.query.timerange import parse_instant

    if text is not None:
        return parse_instant(text, "--end")
    now = int(datetime.now(UTC).timestamp())
    return datetime.fromtimestamp(now - now % period, UTC)


@alarms.command("recommend")
@click.option(
    "--snapshot",
    "snapshot_file",
    metavar="FILE",
    help="An inventory snapshot (`ecsguard inventory -o FILE`); default the newest in "
    "DATA_DIR/snapshots.",
)
@click.option("--output", "out", metavar="FILE", help="Write the rule file here instead of stdout.")
@click.option(
    "--data-dir", envvar="ECSGUARD_DATA", help="Data directory (default ./ecsguard-data)."
)
def recommend_command(snapshot_file: str | None, out: str | None, data_dir: str | None) -> None:
    """Print a rule file with sensible alarms for every ECS service in a snapshot.

    Per service: CPU and memory above 80% (AWS/ECS, 3 of 3 five-minute periods) and running
    tasks below the desired count (ECS/ContainerInsights RunningTaskCount against the
    snapshot's desiredCount). Per target group of a service: target 5xx, unhealthy targets
    and an anomaly band on RequestCountPerTarget. The rules are metric_alarm and anomaly_band
    rules (docs/rules.md): adapt the thresholds, then load them with `ecsguard serve --rules`.

    \b
    Examples:
      ecsguard alarms recommend > alarms.yaml
      ecsguard alarms recommend --snapshot prod.json.gz --output rules/alarms.yaml
      ecsguard rules validate rules/alarms.yaml
    """
    from ecsguard.aws import snapshot as snapshots
    from ecsguard.core.config import data_dir as resolve_data_dir
    from ecsguard.monitor.recommend import render

    if snapshot_file is None:
        folder = resolve_data_dir(data_dir) / "snapshots"
        found = sorted(
            (p for p in folder.glob("*.json*") if p.name.endswith((".json", ".json.gz"))),
            key=lambda p: p.stat().st_mtime,
        )
        if not found:
            raise UserError(
                f"no snapshot in {folder}",
                "collect one with `ecsguard inventory`, or pass --snapshot FILE",
            )
        path = found[-1]
    else:
        path = Path(snapshot_file)
    text = render(snapshots.load(path), str(path))
    if out and out != "-":
        try:
            Path(out).write_text(text)
        except OSError as err:
            raise UserError(
                f"--output {out}: cannot write: {err.strerror}", "check the path"
            ) from None
        print(f"rule file written to {out}", file=sys.stderr)
        return
    sys.stdout.write(text)
    sys.stdout.flush()
