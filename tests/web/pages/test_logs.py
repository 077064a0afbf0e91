"""The logs page against a real server: its JSON twin on seeded lines (rows newest first, the
histogram, facets, facet filters, Insights and filter modes), errors as messages, hostile text
escaped in the HTML."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from tests.web.conftest import Console, Running

HOSTILE = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']


def ingest(srv: Running, lines: list[str], **where: str) -> None:
    body = ("\n".join(lines) + "\n").encode()
    reply = httpx.post(f"{srv.url}/ingest/lines", params=where, content=body, timeout=10)
    assert reply.status_code == 200 and reply.json()["stored"] == len(lines), reply.text


@pytest.fixture(scope="module")
def seeded(console_srv: Running) -> str:
    """A tag only this module's lines carry: 3 api errors, 2 api infos, 1 worker error in
    cluster prod, 1 api line in cluster stage, and the hostile lines."""
    tag = f"t{uuid.uuid4().hex[:10]}"
    ingest(
        console_srv,
        [f'{{"level":"ERROR","msg":"{tag} boom {i}","status":500}}' for i in range(3)]
        + [f'{{"level":"INFO","msg":"{tag} fine {i}","status":200}}' for i in range(2)],
        cluster="prod",
        service="api",
    )
    ingest(
        console_srv,
        [f'{{"level":"ERROR","msg":"{tag} worker down"}}'],
        cluster="prod",
        service="worker",
    )
    ingest(
        console_srv, [f'{{"level":"INFO","msg":"{tag} staging"}}'], cluster="stage", service="api"
    )
    ingest(console_srv, [f"{tag} {text}" for text in HOSTILE], cluster="prod", service="evil")
    return tag


def twin(console: Console, **params: str) -> dict[str, Any]:
    return console.twin("logs", **params)


def column(body: dict, name: str) -> list[object]:
    index = body["columns"].index(name)
    return [row[index] for row in body["rows"]]


def facet(body: dict, name: str) -> dict[object, int]:
    return {item["value"]: item["count"] for item in body["facets"][name]}


def test_filter_mode_rows_histogram_and_facets(
    as_role: Callable[[str], Console], seeded: str
) -> None:
    body = twin(as_role("viewer"), q=seeded, since="15m")
    assert "error" not in body
    assert len(body["rows"]) == 9 and body["truncated"] is False
    times = column(body, "time")
    assert times == sorted(times, reverse=True)  # newest first
    assert body["histogram"]["total"] == 9 == sum(body["histogram"]["counts"])
    assert len(body["histogram"]["times"]) == len(body["histogram"]["counts"]) <= 120
    assert facet(body, "service") == {"api": 6, "worker": 1, "evil": 2}
    assert facet(body, "cluster") == {"prod": 8, "stage": 1}
    assert facet(body, "level")["ERROR"] == 4
    # every field of the record travels with the row (the detail view shows them)
    assert {"fields", "task", "id", "source"} <= set(body["columns"])


def test_facet_links_add_a_filter_and_keep_the_search(
    as_role: Callable[[str], Console], seeded: str
) -> None:
    console = as_role("viewer")
    body = twin(console, q=seeded, since="15m")
    link = next(i["link"] for i in body["facets"]["service"] if i["value"] == "api")
    state = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
    assert state == {"mode": "filter", "q": seeded, "since": "15m", "service": "api"}
    narrowed = twin(console, **state)
    assert len(narrowed["rows"]) == 6 and facet(narrowed, "service") == {"api": 6}
    assert narrowed["filters"][0]["name"] == "service"
    both = twin(console, **state, level="ERROR", cluster="prod")
    assert len(both["rows"]) == 3 and both["histogram"]["total"] == 3
    # the share link reproduces the whole state
    assert parse_qs(urlsplit(both["link"]).query)["level"] == ["ERROR"]


def test_json_filter_patterns_and_patterns_sql_cannot_finish(
    as_role: Callable[[str], Console], seeded: str
) -> None:
    console = as_role("viewer")
    body = twin(console, q="{ $.status >= 500 }", since="15m", service="api", cluster="prod")
    assert len([m for m in column(body, "message") if seeded in str(m)]) == 3
    # a space-delimited pattern runs as a SQL prefilter plus the Arrow mask, counts included
    delimited = twin(console, q=f"[tag = {seeded}, word = boom, n]", since="15m")
    assert len(delimited["rows"]) == 3 and delimited["histogram"]["total"] == 3
    assert facet(delimited, "service") == {"api": 3}


def test_insights_mode_and_its_sql(as_role: Callable[[str], Console], seeded: str) -> None:
    console = as_role("viewer")
    query = f'filter @message like "{seeded}" | stats count(*) as n by service | sort n desc'
    body = twin(console, mode="insights", q=query, since="1h")
    assert body["columns"] == ["service", "n"]
    assert body["rows"][0] == ["api", 6]
    assert "SELECT" in body["sql"]
    # the histogram counts the records before stats: every line with the tag
    assert body["histogram"]["total"] == 9
    faceted = twin(console, mode="insights", q=query, since="1h", cluster="stage")
    assert faceted["rows"] == [["api", 1]] and faceted["histogram"]["total"] == 1
    raw = twin(console, mode="insights", q=f'filter @message like "{seeded}"', since="1h")
    assert raw["columns"] == ["@timestamp", "@message"] and len(raw["rows"]) == 9


def test_absolute_range_and_limit(as_role: Callable[[str], Console], seeded: str) -> None:
    console = as_role("viewer")
    body = twin(console, q=seeded, start="2000-01-01T00:00Z", end="2000-01-02T00:00Z")
    assert body["rows"] == [] and body["histogram"]["total"] == 0
    assert body["histogram"]["bucket_seconds"] == 900  # a day in at most 120 bars
    everything = twin(console, q=seeded, start="2000-01-01T00:00Z")
    assert len(everything["rows"]) == 9


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"mode": "insights", "q": "stats count(* by service"}, "line 1"),
        ({"mode": "insights", "q": "filter @message like /(/"}, "query failed"),
        ({"mode": "filter", "q": "{ $.status >= }"}, "filter pattern"),
        ({"since": "forever"}, "duration"),
        ({"since": "", "start": "2026-01-02", "end": "2026-01-01"}, "not before"),
        ({"mode": "sql", "q": "select 1"}, "unknown mode"),
    ],
)
def test_bad_searches_come_back_as_messages(
    as_role: Callable[[str], Console], params: dict[str, str], message: str
) -> None:
    console = as_role("viewer")
    body = twin(console, **params)
    assert message in str(body["error"]) and body["rows"] == []
    page = console.client.get("/logs", params=params)
    assert page.status_code == 200 and 'id="query-error"' in page.text


def test_hostile_text_is_escaped_in_the_page(
    as_role: Callable[[str], Console], seeded: str
) -> None:
    page = as_role("viewer").client.get("/logs", params={"q": seeded, "since": "15m"})
    assert page.status_code == 200
    for text in HOSTILE:
        assert text not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    # the page data block escapes < too, so it cannot close its <script> element
    assert "<script>alert" not in page.text


def test_needs_a_session(console_srv: Running) -> None:
    reply = httpx.get(f"{console_srv.url}/logs.json", timeout=10)
    assert reply.status_code == 401


def test_rows_are_the_newest_when_the_matches_exceed_the_limit(
    as_role: Callable[[str], Console], console_srv: Running
) -> None:
    """600 matches: 300 from 50 minutes ago, 300 from 2 minutes ago. The rows query reads only
    the newest buckets the counts point at, and still returns exactly the newest 500."""
    from datetime import UTC, datetime, timedelta

    tag = f"t{uuid.uuid4().hex[:10]}"
    now = datetime.now(UTC)
    lines = [
        f'{{"time":"{(now - timedelta(minutes=minutes, milliseconds=i)).isoformat()}",'
        f'"msg":"{tag} {age} {i}"}}'
        for minutes, age in ((50, "old"), (2, "new"))
        for i in range(300)
    ]
    ingest(console_srv, lines, service="bulk")
    body = twin(as_role("viewer"), q=tag, since="1h")
    assert body["histogram"]["total"] == 600 and body["truncated"] is True
    messages = column(body, "message")
    assert len(messages) == 500
    assert sum(" new " in str(m) for m in messages) == 300
    assert sum(" old " in str(m) for m in messages) == 200
    times = column(body, "time")
    assert times == sorted(times, reverse=True)
    # the 200 old rows are the newest of the old ones
    assert max(int(str(m).rsplit(" ", 1)[1]) for m in messages if " old " in str(m)) == 199


def test_every_word_is_in_both_languages() -> None:
    import ecsguard.web.pages  # noqa: F401  (registers the pages)
    from ecsguard.web.page import PAGES

    words = dict(PAGES)["logs"].words
    assert set(words["en"]) == set(words["ja"])


def test_japanese_page(as_role: Callable[[str], Console], seeded: str) -> None:
    page = as_role("viewer").client.get(
        "/logs", params={"q": seeded, "since": "15m"}, headers={"Accept-Language": "ja"}
    )
    assert (
        page.status_code == 200 and "時間ごとの一致件数" in page.text and "ファセット" in page.text
    )
