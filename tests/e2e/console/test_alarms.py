"""The alarms, health and settings pages in a real browser: an operator silences a rule and sees
the silence listed, tests an event pattern against a pasted event; hostile text stays text."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.e2e.console.conftest import log_in_page, shoot, watch
from tests.notify.conftest import HttpRecorder
from tests.web.conftest import TESTDATA, Running
from tests.web.pages.alarm_server import CPU_RULE, PLACEMENT_RULE, serve_with, webhook_config
from tests.web.pages.test_alarms import HOSTILE, placement_event

EVENTS = TESTDATA / "ecs-events"


@pytest.fixture
def armed(tmp_path: Path) -> Iterator[Running]:
    hook = HttpRecorder()
    try:
        notify = webhook_config(hook.port, "tok3n-0123456789abcdef")
        with serve_with(tmp_path / "data", [PLACEMENT_RULE, CPU_RULE], notify) as server:
            yield server
    finally:
        hook.close()


@pytest.fixture
def open_as(browser: Any, armed: Running) -> Iterator[Callable[[str], Any]]:
    pages: list[Any] = []

    def login(role: str) -> Any:
        pages.append(log_in_page(browser, armed.url, role, start="/alarms"))
        return pages[-1]

    yield login
    for page in pages:
        page.context.close()


def test_operator_silences_a_rule_and_tests_a_pattern(
    open_as: Callable[[str], Any], armed: Running
) -> None:
    reply = armed.client.post(
        "/ingest/ecs-events", content=orjson.dumps([placement_event(HOSTILE)])
    )
    assert reply.status_code == 200
    page = open_as("operator")
    problems = watch(page)
    page.wait_for_function("() => true")
    for _ in range(50):  # the worker evaluates within a second
        page.reload()
        if page.locator("#alerts tbody tr").count():
            break
        page.wait_for_timeout(200)
    assert HOSTILE in page.inner_text("#alerts")  # shown as text, not markup
    assert page.locator("#alarms-history canvas").count() == 1
    # silence the rule from its row
    page.click("tr[data-rule=placement-failure] button.silence-rule")
    assert page.input_value("#silence-form input[name=rule]") == "placement-failure"
    page.fill("#silence-form input[name=reason]", "capacity is being added")
    page.fill("#silence-form input[name=minutes]", "45")
    page.click("#add-silence")
    page.wait_for_selector("#silences tbody tr")
    row = page.inner_text("#silences tbody tr")
    assert "placement-failure" in row and "otto" in row and "capacity is being added" in row
    shoot(page, "alarms-silenced")
    # test a pattern: true, then false with the reason
    event = (EVENTS / "ecs-service-action-service-task-placement-failure.json").read_text()
    page.fill(
        "#pattern-form textarea[name=pattern]",
        '{"source": ["aws.ecs"], "detail": {"eventName": ["SERVICE_TASK_PLACEMENT_FAILURE"]}}',
    )
    page.fill("#pattern-form textarea[name=event]", event)
    page.click("#test-pattern")
    page.wait_for_selector("#pattern-verdict")
    assert page.inner_text("#pattern-verdict") == "true"
    assert "detail.eventName" in page.inner_text("#matched-fields")
    shoot(page, "alarms-pattern-true")
    page.fill("#pattern-form textarea[name=event]", event.replace("PLACEMENT_FAILURE", "X"))
    page.click("#test-pattern")
    page.wait_for_selector("#pattern-reasons")
    assert page.inner_text("#pattern-verdict") == "false"
    page.fill("#pattern-form textarea[name=pattern]", "{broken")
    page.click("#test-pattern")
    page.wait_for_selector("#pattern-error")
    assert "event pattern is not valid JSON" in page.inner_text("#pattern-error")
    # end the silence
    page.click("#silences button.unsilence")
    page.wait_for_selector("#no-silences")
    # the broken pattern's 400 is the one failed request chromium reports
    assert problems == [
        "Failed to load resource: the server responded with a status of 400 (Bad Request)"
    ]


def test_health_and_settings_render(open_as: Callable[[str], Any], armed: Running) -> None:
    from ecsguard.demo.traffic import cpu_metrics

    docs = [
        orjson.loads((EVENTS / n).read_bytes())
        for n in (
            "ecs-deployment-state-change-service-deployment-failed.json",
            "ecs-service-action-service-task-placement-failure.json",
        )
    ]
    now = placement_event("x")["time"]
    for doc in docs:
        doc["time"] = now
    docs[1]["detail"]["reason"] = HOSTILE
    assert armed.client.post("/ingest/ecs-events", content=orjson.dumps(docs)).is_success
    metrics = cpu_metrics([("default", "servicetest", "x")], minutes=60)
    assert armed.client.post("/ingest/metrics", content=metrics).is_success
    page = open_as("admin")
    problems = watch(page)
    page.click("nav a[data-page=health]")
    page.wait_for_selector("#services")
    page.click("#services a:text('servicetest')")
    page.wait_for_selector("#health-cpu canvas")
    assert page.locator("#health-memory canvas").count() == 1
    assert HOSTILE in page.inner_text("#timeline")
    shoot(page, "health-service")
    page.click("nav a[data-page=settings]")
    page.wait_for_selector("#channels")
    assert "tok3n" not in page.content()
    page.click("tr[data-channel=hook] button.test-send")
    page.wait_for_selector("tr[data-channel=hook] .settings-result .state-OK")
    page.fill("#add-user input[name=name]", "nora")
    page.fill("#add-user input[name=password]", "a long enough password")
    page.click("#add-user button[type=submit]")
    page.wait_for_selector("tr[data-user=nora]")
    shoot(page, "settings-admin")
    assert problems == []


def test_an_admin_reloads_the_rules_and_sees_a_bad_file_named(
    open_as: Callable[[str], Any], armed: Running, tmp_path: Path
) -> None:
    assert open_as("operator").locator("#reload-rules").count() == 0  # admins only
    page = open_as("admin")
    problems = watch(page)
    bad = tmp_path / "data" / "rules" / "bad.yaml"
    hostile = "<img src=x onerror=alert(1)>"
    bad.write_text(f"id: broken\ntitle: Broken\nseverity: high\ntype: {hostile}\n")
    page.click("#reload-rules")
    page.wait_for_selector("#reload-problems li")
    assert "running rules stay" in page.inner_text("#reload-error")
    listed = page.inner_text("#reload-problems")
    assert f"{bad}:" in listed and hostile in listed  # the file's text shown as text
    shoot(page, "alarms-reload-refused")
    bad.unlink()
    (tmp_path / "data" / "rules" / "again.yaml").write_text(
        PLACEMENT_RULE.replace("id: placement-failure", "id: placement-again")
    )
    page.click("#reload-rules")
    page.wait_for_selector("tr[data-rule=placement-again]")  # the page reloaded with it
    assert problems == [
        "Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"
    ]
