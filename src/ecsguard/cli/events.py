"""`ecsguard events`: EventBridge tools that need no AWS account."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import orjson

from ecsguard.core.errors import UserError


@click.group()
def events() -> None:
    """EventBridge event patterns, tested locally (no AWS account, no API calls).

    The patterns are the ones the `event_pattern` rule type runs over ECS events and CloudTrail.
    """


def _text(value: str, what: str) -> str:
    """A value as given, or the contents of file://PATH (as the AWS CLI reads it)."""
    if not value.startswith("file://"):
        return value
    path = Path(value.removeprefix("file://"))
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) else "not UTF-8 text"
        raise UserError(f"cannot read {what} from {path}: {reason}") from None


def _event(text: str, where: str) -> dict[str, Any]:
    try:
        event = orjson.loads(text)
    except orjson.JSONDecodeError as err:
        raise UserError(f"{where} is not valid JSON: {err}") from None
    if not isinstance(event, dict):
        raise UserError(f"{where} is not valid: an event is a JSON object")
    return event


def _ndjson(source: str) -> list[dict[str, Any]]:
    try:
        data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as err:
        raise UserError(f"cannot read events from {source}: {err.strerror}") from None
    out = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        if line.strip():
            out.append(_event(line.decode("utf-8", "replace"), f"event on line {number}"))
    return out


def _result(matched: bool) -> str:
    return '{"Result": true}' if matched else '{"Result": false}'


@events.command("test-event-pattern")
@click.option(
    "--event-pattern",
    "pattern_text",
    required=True,
    help="The pattern: JSON text or file://PATH.",
)
@click.option("--event", "event_text", help="One event: JSON text or file://PATH.")
@click.option(
    "--events",
    "events_file",
    type=click.Path(allow_dash=True, dir_okay=False),
    help="Many events, one JSON object per line (NDJSON); - reads stdin.",
)
def test_event_pattern(pattern_text: str, event_text: str | None, events_file: str | None) -> None:
    """Test an event pattern on an event, like the AWS TestEventPattern API.

    Prints {"Result": true} or {"Result": false}; with --events, one such line per event, in
    order. The whole EventBridge syntax is supported (exact values, prefix, suffix,
    anything-but, numeric, exists, equals-ignore-case, wildcard, cidr, $or); matching is
    array-consistent as on AWS. Unlike the API, the event need not carry every top-level
    field (id, account, time...). An invalid pattern is one line with AWS's reason, exit 2.

    \b
    Examples:
      ecsguard events test-event-pattern \\
          --event-pattern '{"source": ["aws.ecs"], "detail": {"lastStatus": ["STOPPED"]}}' \\
          --event file://task-stopped.json
      ecsguard events test-event-pattern --event-pattern file://rule.json --events events.ndjson
    """
    from ecsguard.detect.eventpattern import compile_pattern

    if (event_text is None) == (events_file is None):
        raise UserError("give --event or --events (one of them)")
    pattern = compile_pattern(_text(pattern_text, "the event pattern"))
    if event_text is not None:
        event = _event(_text(event_text, "the event"), "the event")
        click.echo(_result(pattern.matches(event)))
        return
    assert events_file is not None
    lines = [_result(pattern.matches(event)) for event in _ndjson(events_file)]
    if lines:
        click.echo("\n".join(lines))
