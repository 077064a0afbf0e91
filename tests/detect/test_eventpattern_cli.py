"""`ecsguard events test-event-pattern`: TestEventPattern's answer, per event, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.cli.test_errors import assert_one_clear_error, ecsguard

from ecsguard.cli.main import cli
from ecsguard.core.errors import UserError

ECS_EVENTS = Path(__file__).parents[2].parent / "shared" / "testdata" / "ecs-events"
PATTERN = '{"source": ["aws.ecs"], "detail": {"eventName": [{"prefix": "SERVICE_TASK"}]}}'


def run(*args: str, stdin: str | None = None) -> str:
    result = CliRunner().invoke(cli, ["events", "test-event-pattern", *args], input=stdin)
    assert result.exit_code == 0, result.output
    return result.output


def test_one_event_as_text_or_file() -> None:
    placement = ECS_EVENTS / "ecs-service-action-service-task-placement-failure.json"
    steady = ECS_EVENTS / "ecs-service-action-service-steady-state.json"
    assert run("--event-pattern", PATTERN, "--event", f"file://{placement}") == (
        '{"Result": true}\n'
    )
    assert run("--event-pattern", PATTERN, "--event", f"file://{steady}") == '{"Result": false}\n'
    assert run("--event-pattern", '{"a": [1]}', "--event", '{"a": 1.0}') == '{"Result": true}\n'


def test_many_events_one_line_each_in_order(tmp_path: Path) -> None:
    names = [
        "ecs-service-action-service-task-placement-failure.json",
        "ecs-service-action-service-steady-state.json",
        "ecs-service-action-service-task-start-impaired.json",
    ]
    lines = [json.dumps(json.loads((ECS_EVENTS / name).read_text())) for name in names]
    events = tmp_path / "events.ndjson"
    events.write_text(lines[0] + "\n\n" + "\n".join(lines[1:]) + "\n")
    pattern = tmp_path / "pattern.json"
    pattern.write_text(PATTERN)
    expected = '{"Result": true}\n{"Result": false}\n{"Result": true}\n'
    assert run("--event-pattern", f"file://{pattern}", "--events", str(events)) == expected
    piped = run("--event-pattern", PATTERN, "--events", "-", stdin="\n".join(lines))
    assert piped == expected


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--event-pattern", '{"source": []}', "--event", "{}"], "Empty arrays are not allowed"),
        (["--event-pattern", "{", "--event", "{}"], "invalid JSON"),
        (["--event-pattern", "{}", "--event", "{}"], "Empty objects are not allowed"),
        (["--event-pattern", '{"a": ["b"]}', "--event", "[1]"], "an event is a JSON object"),
        (["--event-pattern", '{"a": ["b"]}', "--event", "{x"], "the event is not valid JSON"),
        (["--event-pattern", '{"a": ["b"]}'], "give --event or --events"),
        (
            ["--event-pattern", '{"a": ["b"]}', "--event", "{}", "--events", "-"],
            "give --event or --events",
        ),
        (["--event-pattern", "file:///nonexistent/p.json", "--event", "{}"], "cannot read"),
        (["--event-pattern", '{"a": ["b"]}', "--events", "/nonexistent.ndjson"], "cannot read"),
    ],
)
def test_bad_input_is_a_user_error(args: list[str], problem: str) -> None:
    result = CliRunner().invoke(cli, ["events", "test-event-pattern", *args])
    assert isinstance(result.exception, UserError), result.output
    assert problem in result.exception.problem


def test_bad_ndjson_line_is_named(tmp_path: Path) -> None:
    events = tmp_path / "events.ndjson"
    events.write_text('{"a": "b"}\n{broken\n')
    result = CliRunner().invoke(
        cli,
        [
            "events",
            "test-event-pattern",
            "--event-pattern",
            '{"a": ["b"]}',
            "--events",
            str(events),
        ],
    )
    assert isinstance(result.exception, UserError)
    assert "event on line 2 is not valid JSON" in result.exception.problem


def test_invalid_pattern_is_one_line_and_exit_2() -> None:
    run = ecsguard(
        "events",
        "test-event-pattern",
        "--event-pattern",
        '{"detail": {"c-count": [{"numeric": [">", 0, "<"]}]}}',
        "--event",
        "{}",
    )
    assert run.returncode == 2
    assert_one_clear_error(
        run, "Event pattern is not valid. Reason: Value of < must be numeric (at detail.c-count)"
    )
    assert len(run.stderr.strip().splitlines()) == 1
