"""The findings, IAM and audit-trail pages in a real browser: an operator mutes a finding with a
reason and sees it muted; a viewer gets no mute button and the API refuses; hostile AWS names
and log values show as text, with no dialog and no script error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from tests.e2e.console.conftest import shoot, watch
from tests.web.conftest import Running
from tests.web.pages.estate_data import HOSTILE_CLUSTER_ARN, HOSTILE_ROLE, SCRIPT, save_into
from tests.web.pages.test_audit import OURS

PRIVILEGED = "ecs.container_privileged"


@pytest.fixture
def estate(console: Running, demo_snapshot: Any) -> Running:
    save_into(console.service.data_dir, demo_snapshot)
    return console


def test_operator_mutes_a_finding_with_a_reason(
    browser_page: Callable[..., Any], estate: Running
) -> None:
    page = browser_page("operator")
    problems = watch(page)
    page.goto(f"{estate.url}/findings?check={PRIVILEGED}")
    row = page.locator(f"tr.finding[data-check='{PRIVILEGED}']")
    assert row.locator("td.status").inner_text() == "FAIL"
    detail = page.locator("tr.finding-detail").first
    detail.locator("summary.mute").click()
    detail.locator("input[name=reason]").fill("sidecar needs it until Q3")
    shoot(page, "findings-mute-form")
    detail.locator("form.mute-form button[type=submit]").click()
    page.wait_for_url(f"{estate.url}/findings?check={PRIVILEGED}")
    # muted findings leave the default (FAIL) list; the status filter shows them
    assert page.locator(f"tr.finding[data-check='{PRIVILEGED}']").count() == 0
    page.select_option("select[name=status]", "MUTED")
    page.click("#findings-filters button[type=submit]")
    page.wait_for_url("**/findings?status=MUTED*")
    assert page.locator(f"tr.finding[data-check='{PRIVILEGED}'] td.status").inner_text() == "MUTED"
    note = page.locator(".mute-note").first.inner_text()
    assert "otto" in note and "sidecar needs it until Q3" in note
    shoot(page, "findings-muted")
    page.locator("button.unmute").first.click()
    page.wait_for_url("**/findings?status=MUTED*")
    assert page.locator(f"tr.finding[data-check='{PRIVILEGED}']").count() == 0
    assert problems == []


def test_viewer_sees_no_mute_button_and_the_api_refuses(
    browser_page: Callable[..., Any], estate: Running
) -> None:
    page = browser_page("viewer")
    problems = watch(page)
    page.goto(f"{estate.url}/findings?resource=cluster/batch")
    assert page.locator("tr.finding").count() > 0
    assert page.locator("summary.mute, form.mute-form, button.unmute").count() == 0
    # the hostile cluster name is on the page as text, and nothing ran
    assert HOSTILE_CLUSTER_ARN in page.locator("#findings-table").inner_text()
    status = page.evaluate(
        """async (body) => {
            try { await ecsguard.post('/findings/mute', body); return 'accepted'; }
            catch (e) { return e.message; }
        }""",
        {"check_id": PRIVILEGED, "resource_arn": "x", "reason": "sneaky"},
    )
    assert "needs operator" in status
    shoot(page, "findings-viewer")
    # the browser logs the refused request itself; nothing else may appear
    assert [p for p in problems if "status of 403" not in p] == []


def test_iam_page_draws_the_map_and_keeps_names_as_text(
    browser_page: Callable[..., Any], estate: Running
) -> None:
    page = browser_page("viewer")
    problems = watch(page)
    page.goto(f"{estate.url}/iam")
    assert page.locator("#iam-sprawl li").count() > 0
    assert page.locator("#iam-map svg rect").count() > 0
    assert HOSTILE_ROLE in page.locator("#tier-over-privileged").inner_text()
    assert page.locator("#iam-map script, main script").count() == 0
    page.locator("details.iam-template[data-tier=ci] summary").click()
    assert '"Version": "2012-10-17"' in page.locator("details[data-tier=ci] pre").inner_text()
    shoot(page, "iam")
    page.goto(f"{estate.url}/iam?tier=iam-admin")
    assert page.locator("section.iam-tier-list").count() == 1
    assert problems == []


def test_audit_trail_chart_and_hostile_values(
    browser_page: Callable[..., Any], estate: Running
) -> None:
    reply = estate.client.post("/ingest/cloudtrail", content=orjson.dumps({"Records": OURS}))
    assert reply.status_code == 200
    page = browser_page("viewer")
    problems = watch(page)
    page.goto(f"{estate.url}/audit")
    assert page.locator("#audit-events tbody tr").count() == len(OURS)
    assert page.locator("#audit-chart canvas").count() == 1  # uPlot drew
    text = page.locator("#audit-events").inner_text()
    assert f"Describe{SCRIPT}" in text and "service-user (operator)" in text
    shoot(page, "audit")
    page.check("input[name=errors]")
    page.click("#audit-filters button[type=submit]")
    page.wait_for_url("**/audit?*errors=1*")
    assert page.locator("#audit-events tbody tr").count() == 2
    assert problems == []
