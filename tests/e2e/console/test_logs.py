"""The logs page in a real browser: a search shows rows, a row's detail, facets that narrow the
search, the state in the URL; hostile log text stays text; a bad query shows the compiler's
message."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from tests.e2e.console.conftest import shoot, watch
from tests.web.conftest import Running

HOSTILE = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']


def seed(console: Running) -> str:
    tag = f"t{uuid.uuid4().hex[:10]}"
    for service, lines in {
        "api": [f'{{"level":"ERROR","msg":"{tag} boom","status":500}}'] * 1
        + [f'{{"level":"INFO","msg":"{tag} ok {i}"}}' for i in range(3)],
        "evil": [f"{tag} {text}" for text in HOSTILE],
    }.items():
        body = ("\n".join(lines) + "\n").encode()
        reply = httpx.post(
            f"{console.url}/ingest/lines",
            params={"cluster": "prod", "service": service},
            content=body,
            timeout=10,
        )
        assert reply.status_code == 200, reply.text
    return tag


def test_search_rows_detail_facets_and_link(
    browser_page: Callable[..., Any], console: Running
) -> None:
    tag = seed(console)
    page = browser_page("viewer")
    problems = watch(page)
    page.goto(f"{console.url}/logs")
    page.fill("#q", tag)
    page.select_option("#since", "15m")
    page.click("#run")
    page.wait_for_url(re.compile(rf".*/logs\?.*q={tag}.*"))
    rows = page.locator("#rows tbody tr")
    assert rows.count() == 6
    assert page.locator("#histogram canvas").count() >= 1
    # hostile text is shown as text, and runs nothing
    assert page.get_by_text(HOSTILE[0]).count() == 1
    assert page.get_by_text(HOSTILE[1]).count() == 1
    assert page.locator("#rows img").count() == 0
    # a row's detail: every field, the JSON fields pretty-printed
    page.locator("#rows tbody tr", has_text="boom").click()
    detail = page.inner_text("#detail")
    assert '"service": "api"' in detail and '"status": 500' in detail and '"id":' in detail
    shoot(page, "logs-search")
    # a facet narrows the search; the URL carries it, so a reload shows the same
    page.locator("[data-facet=service] a", has_text="api").click()
    page.wait_for_url(re.compile(r".*service=api.*"))
    assert page.locator("#rows tbody tr").count() == 4
    page.reload()
    assert page.locator("#rows tbody tr").count() == 4
    assert "api" in page.inner_text("#active-filters")
    # dragging across the histogram zooms: the range becomes start/end in the URL
    box = page.locator("#histogram .u-over").bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.5, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.999, y, steps=8)
    page.mouse.up()
    page.wait_for_url(re.compile(r".*start=.*end=.*"))
    assert "since=" not in page.url and "service=api" in page.url
    assert page.input_value("#since") == "" and page.input_value("#start").startswith("20")
    assert page.locator("#rows tbody tr").count() == 4
    assert problems == []


def test_insights_query_and_bad_query(browser_page: Callable[..., Any], console: Running) -> None:
    tag = seed(console)
    page = browser_page("viewer")
    problems = watch(page)
    page.goto(f"{console.url}/logs")
    page.check("#mode-insights")
    page.fill("#q", f'filter @message like "{tag}" | stats count(*) as n by service')
    page.click("#run")
    page.wait_for_url(re.compile(r".*mode=insights.*"))
    assert page.locator("#rows thead").inner_text().lower().split() == ["service", "n"]
    assert page.locator("#rows tbody tr", has_text="api").inner_text().split() == ["api", "4"]
    page.fill("#q", "stats count(* by service")
    page.click("#run")
    error = page.locator("#query-error")
    error.wait_for()
    assert "line 1" in error.inner_text()
    shoot(page, "logs-bad-query")
    assert problems == []
