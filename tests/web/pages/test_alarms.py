"""The alarms page against a real server: rules and their state, alerts of a range, silences
through the notification dispatcher (a real local webhook), and the event-pattern tester."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.notify.conftest import HttpRecorder
from tests.web.conftest import TESTDATA, Console, Running, log_in
from tests.web.pages.alarm_server import CPU_RULE, PLACEMENT_RULE, serve_with, webhook_config

EVENTS = TESTDATA / "ecs-events"
HOSTILE = '"><img src=x onerror=alert(1)><script>alert(1)</script>'


def placement_event(reason: str) -> dict[str, Any]:
    """The documented placement-failure event, happening now, with its own id and reason."""
    event = orjson.loads(
        (EVENTS / "ecs-service-action-service-task-placement-failure.json").read_bytes()
    )
    event["time"] = datetime.now(UTC).isoformat()
    event["id"] = f"test-{reason}-{time.monotonic_ns()}"
    event["detail"]["reason"] = reason
    return event


def wait_for_alerts(console: Console, count: int, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        page = console.client.get("/alarms.json").json()
        if page["alert_count"] >= count or time.monotonic() > deadline:
            return page
        time.sleep(0.05)


@pytest.fixture(scope="module")
def hook() -> Iterator[HttpRecorder]:
    recorder = HttpRecorder()
    yield recorder
    recorder.close()


@pytest.fixture(scope="module")
def armed(tmp_path_factory: pytest.TempPathFactory, hook: HttpRecorder) -> Iterator[Running]:
    """Serve with a placement-failure rule, a CPU alarm and a webhook channel."""
    notify = webhook_config(hook.port, "tok3n-in-the-path-0123456789")
    with serve_with(
        tmp_path_factory.mktemp("alarms"), [PLACEMENT_RULE, CPU_RULE], notify
    ) as server:
        yield server


@pytest.fixture
def armed_as(armed: Running) -> Iterator[Callable[[str], Console]]:
    opened: list[Console] = []

    def open_as(role: str) -> Console:
        opened.append(log_in(armed.url, role))
        return opened[-1]

    yield open_as
    for console in opened:
        console.client.close()


def ingest(server: Running, *events: dict[str, Any]) -> None:
    reply = server.client.post("/ingest/ecs-events", content=orjson.dumps(list(events)))
    assert reply.status_code == 200 and reply.json()["stored"] == len(events), reply.text


# -- without rules or channels -----------------------------------------------------------------


def test_without_rules_the_page_says_how_to_load_them(as_role: Callable[[str], Console]) -> None:
    viewer = as_role("viewer")
    twin = viewer.client.get("/alarms.json").json()
    assert twin["rules"] is None and twin["notify"] is False and twin["silences"] is None
    assert twin["alerts"] == [] and twin["range"]["since"] == "24h"
    page = viewer.client.get("/alarms")
    assert page.status_code == 200 and "--rules FILE" in page.text and "--notify" in page.text


def test_silence_without_a_dispatcher_is_409(as_role: Callable[[str], Console]) -> None:
    operator = as_role("operator")
    reply = operator.post("/alarms/silence", json={"rule": "*", "minutes": 5, "reason": "x"})
    assert reply.status_code == 409 and "--notify" in reply.json()["error"]
    reply = operator.post("/alarms/unsilence", json={"id": "abc"})
    assert reply.status_code == 409


def test_a_bad_range_is_400(as_role: Callable[[str], Console]) -> None:
    viewer = as_role("viewer")
    reply = viewer.client.get("/alarms.json", params={"since": "yesterday"})
    assert reply.status_code == 400 and "yesterday" in reply.json()["error"]
    reply = viewer.client.get("/alarms.json", params={"since": "1h", "start": "2024-01-01"})
    assert reply.status_code == 400


# -- the event-pattern tester ------------------------------------------------------------------

PATTERN = {"source": ["aws.ecs"], "detail": {"eventName": ["SERVICE_TASK_PLACEMENT_FAILURE"]}}


def test_a_pattern_matches_a_pasted_event_and_names_the_fields(
    as_role: Callable[[str], Console],
) -> None:
    viewer = as_role("viewer")  # it changes nothing: every role may test
    event = (EVENTS / "ecs-service-action-service-task-placement-failure.json").read_text()
    reply = viewer.post(
        "/alarms/test-pattern", json={"pattern": orjson.dumps(PATTERN).decode(), "event": event}
    )
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert answer["Result"] is True
    assert {m["field"]: m["values"] for m in answer["matched"]} == {
        "source": ["aws.ecs"],
        "detail.eventName": ["SERVICE_TASK_PLACEMENT_FAILURE"],
    }
    steady = (EVENTS / "ecs-service-action-service-steady-state.json").read_text()
    answer = viewer.post("/alarms/test-pattern", json={"pattern": PATTERN, "event": steady}).json()
    assert answer["Result"] is False and answer["matched"] == []
    assert answer["reasons"] == [
        "detail.eventName: 'SERVICE_STEADY_STATE' does not match "
        '["SERVICE_TASK_PLACEMENT_FAILURE"]'
    ]


def test_the_tester_agrees_with_the_cli_on_the_documented_patterns(
    as_role: Callable[[str], Console],
) -> None:
    from ecsguard.detect.eventpattern import matches

    viewer = as_role("viewer")
    patterns = orjson.loads((EVENTS / "doc_event_patterns.json").read_bytes())
    patterns = [p.get("pattern", p) if isinstance(p, dict) else p for p in patterns]
    files = sorted(p for p in EVENTS.glob("ecs-*.json") if ".truncated" not in p.name)
    seen = set()
    for pattern in patterns:
        for file in files:
            event = orjson.loads(file.read_bytes())
            answer = viewer.post("/alarms/test-pattern", json={"pattern": pattern, "event": event})
            assert answer.status_code == 200, answer.text
            assert answer.json()["Result"] is matches(pattern, event), (pattern, file.name)
            seen.add(answer.json()["Result"])
    assert seen == {True, False}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"pattern": "{not json", "event": "{}"}, "the event pattern is not valid JSON"),
        ({"pattern": '{"source": "aws.ecs"}', "event": "{}"}, "the event pattern is not valid"),
        ({"pattern": "[1]", "event": "{}"}, "the event pattern is not valid"),
        ({"pattern": '{"source": ["aws.ecs"]}', "event": "{oops"}, "the event is not valid JSON"),
        ({"pattern": '{"source": ["aws.ecs"]}', "event": "[1, 2]"}, "an event is a JSON object"),
        ({"pattern": "", "event": "{}"}, "the event pattern: paste a JSON object"),
        ({"pattern": '{"source": ["aws.ecs"]}'}, "the event: paste a JSON object"),
    ],
)
def test_a_bad_pattern_or_event_is_400_naming_which(
    as_role: Callable[[str], Console], body: dict[str, Any], message: str
) -> None:
    reply = as_role("viewer").post("/alarms/test-pattern", json=body)
    assert reply.status_code == 400 and message in reply.json()["error"], reply.text


def test_the_tester_needs_the_csrf_token(as_role: Callable[[str], Console]) -> None:
    viewer = as_role("viewer")
    reply = viewer.client.post("/alarms/test-pattern", json={"pattern": PATTERN, "event": {}})
    assert reply.status_code == 403 and "CSRF" in reply.json()["error"]
    reply = viewer.post(
        "/alarms/test-pattern", content=b"not json", headers={"Content-Type": "application/json"}
    )
    assert reply.status_code == 400 and "not JSON" in reply.json()["error"]


# -- with rules and a webhook ------------------------------------------------------------------


def test_rules_alerts_history_and_silences(
    armed: Running, armed_as: Callable[[str], Console], hook: HttpRecorder
) -> None:
    viewer, operator = armed_as("viewer"), armed_as("operator")
    before = len(hook.requests)
    ingest(armed, placement_event("RESOURCE:MEMORY"))
    twin = wait_for_alerts(viewer, 1)
    assert twin["alert_count"] == 1 and twin["by_severity"] == {"high": 1}
    (alert,) = twin["alerts"]
    assert alert["rule_id"] == "placement-failure" and alert["key"] == ["RESOURCE:MEMORY"]
    hour = int(datetime.fromisoformat(alert["last_seen"]).timestamp()) // 3600 * 3600
    assert twin["history"]["x"][-1] == hour and twin["history"]["series"]["high"][-1] == 1
    rules = {r["id"]: r for r in twin["rules"]}
    assert rules["placement-failure"]["type"] == "event_pattern"
    assert rules["placement-failure"]["alarm"] is None
    # the worker ticks once a second and saves the alarm's state: no datapoints yet
    deadline = time.monotonic() + 5
    while rules["api-cpu-high"]["alarm"] is None and time.monotonic() < deadline:
        time.sleep(0.1)
        rules = {r["id"]: r for r in viewer.client.get("/alarms.json").json()["rules"]}
    assert rules["api-cpu-high"]["alarm"]["state"] == "INSUFFICIENT_DATA"
    assert rules["api-cpu-high"]["severity"] == "medium"
    delivered = hook.wait_for(before + 1)
    assert b"RESOURCE:MEMORY" in delivered[-1].body

    # silenced: the next alert of the rule is stored but not sent
    reply = operator.post(
        "/alarms/silence",
        json={"rule": "placement-failure", "minutes": 30, "reason": "capacity being added"},
    )
    assert reply.status_code == 200, reply.text
    silence = reply.json()["silence"]
    listed = viewer.client.get("/alarms.json").json()["silences"]
    assert [(s["id"], s["by"], s["reason"]) for s in listed] == [
        (silence["id"], "otto", "capacity being added")
    ]
    until = datetime.fromisoformat(listed[0]["expires"]) - datetime.now(UTC)
    assert 29 * 60 < until.total_seconds() <= 30 * 60
    ingest(armed, placement_event("RESOURCE:CPU"))
    assert wait_for_alerts(viewer, 2)["alert_count"] == 2
    # ended: the following alert goes out, and it is the next message the hook receives
    # (had the silenced one been sent, it would have arrived first)
    reply = operator.post("/alarms/unsilence", json={"id": silence["id"]})
    assert reply.status_code == 200 and reply.json() == {"removed": silence["id"]}
    assert viewer.client.get("/alarms.json").json()["silences"] == []
    ingest(armed, placement_event("RESOURCE:FARGATE"))
    delivered = hook.wait_for(before + 2)
    assert len(delivered) == before + 2
    assert b"RESOURCE:FARGATE" in delivered[-1].body and b"RESOURCE:CPU" not in delivered[-1].body
    # one rule's alerts only
    only = viewer.client.get("/alarms.json", params={"rule": "api-cpu-high"}).json()
    assert only["alert_count"] == 0 and only["range"]["rule"] == "api-cpu-high"


def test_hostile_text_in_alerts_is_escaped(
    armed: Running, armed_as: Callable[[str], Console]
) -> None:
    viewer = armed_as("viewer")
    count = viewer.client.get("/alarms.json").json()["alert_count"]
    ingest(armed, placement_event(HOSTILE))
    twin = wait_for_alerts(viewer, count + 1)
    assert any(a["key"] == [HOSTILE] for a in twin["alerts"])
    page = viewer.client.get("/alarms").text
    assert "<img src=x" not in page and "<script>alert(1)" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_silence_actions_check_csrf_role_and_input(armed_as: Callable[[str], Console]) -> None:
    viewer, operator = armed_as("viewer"), armed_as("operator")
    good = {"rule": "ecs-*", "key": ["prod", "*"], "minutes": 5, "reason": "deploy"}
    reply = operator.client.post("/alarms/silence", json=good)
    assert reply.status_code == 403 and "CSRF" in reply.json()["error"]
    reply = viewer.post("/alarms/silence", json=good)
    assert reply.status_code == 403 and "operator" in reply.json()["error"]
    reply = viewer.post("/alarms/unsilence", json={"id": "x"})
    assert reply.status_code == 403
    reply = operator.client.post("/alarms/unsilence", json={"id": "x"})
    assert reply.status_code == 403
    bad = [
        ({**good, "reason": ""}, "`reason` is required"),
        ({**good, "minutes": 0}, "between 1 and"),
        ({**good, "minutes": "soon"}, "whole number"),
        ({**good, "key": "prod"}, "`key` must be a list"),
        ({**good, "rule": ""}, "`rule` must be"),
        ({**good, "severity": "high"}, "unknown field 'severity'"),
    ]
    for body, message in bad:
        reply = operator.post("/alarms/silence", json=body)
        assert reply.status_code == 400 and message in reply.json()["error"], (body, reply.text)
    reply = operator.post("/alarms/unsilence", json={})
    assert reply.status_code == 400 and "`id` is required" in reply.json()["error"]
    reply = operator.post("/alarms/unsilence", json={"id": "no-such-silence"})
    assert reply.status_code == 404
    added = operator.post("/alarms/silence", json=good).json()["silence"]
    assert added["rule"] == "ecs-*" and added["key"] == ["prod", "*"] and added["by"] == "otto"
    assert operator.post("/alarms/unsilence", json={"id": added["id"]}).status_code == 200


def test_a_configured_silence_is_listed_but_ended_in_its_file(tmp_path: Path) -> None:
    notify = webhook_config(9, "x") + (
        "silences:\n"
        "  - {rule: 'placement-*', reason: 'known issue', by: ops,\n"
        "     expires: '2999-01-01T00:00:00Z'}\n"
    )
    with serve_with(tmp_path / "d", [PLACEMENT_RULE], notify) as server:
        operator = log_in(server.url, "operator")
        (listed,) = operator.client.get("/alarms.json").json()["silences"]
        assert listed["by"] == "ops" and listed["source"].endswith(":9")
        reply = operator.post("/alarms/unsilence", json={"id": listed["id"]})
        assert reply.status_code == 400 and "remove it there" in reply.json()["error"]
        operator.client.close()


def test_the_history_spans_the_range_or_starts_at_the_first_alert() -> None:
    from tests.notify.conftest import make_alert

    from ecsguard.web.pages.alarms import per_hour

    alert = make_alert(severity="low")  # last seen 2026-11-28 09:00 UTC
    at = int(alert.last_seen.timestamp())
    day = per_hour(
        [alert], alert.last_seen - timedelta(hours=23), alert.last_seen + timedelta(hours=1)
    )
    assert len(day["x"]) == 24 and day["x"][-1] == at and day["series"] == {"low": [0] * 23 + [1]}
    ever = per_hour([alert], datetime(1970, 1, 1, tzinfo=UTC), alert.last_seen + timedelta(hours=3))
    assert ever["x"] == [at, at + 3600, at + 7200] and ever["series"]["low"] == [1, 0, 0]
    # one hour's range still has two points, so that the chart has a width
    hour = per_hour([alert], alert.last_seen, alert.last_seen + timedelta(minutes=30))
    assert hour["x"] == [at - 3600, at] and hour["series"]["low"] == [0, 1]
    assert per_hour([], alert.last_seen, alert.last_seen) == {"x": [], "series": {}}
