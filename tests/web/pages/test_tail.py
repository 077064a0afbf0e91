"""The live-tail page against a real server: the JSON twin (settings, highlight terms, the
stream's URL, the hub's figures), a bad filter pattern as a message, and the stream the page
opens answering the session cookie."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import httpx
from tests.web.conftest import Console, Running

from ecsguard.logs.query.filter_pattern import compile_pattern
from ecsguard.web.pages.tail import highlight_terms


def test_twin_has_settings_terms_and_stats(
    as_role: Callable[[str], Console], console_srv: Running
) -> None:
    console = as_role("viewer")
    tag = f"t{uuid.uuid4().hex[:10]}"
    before = console.client.get("/tail.json").json()["stats"]
    lines = f"{tag} one\n{tag} two\n".encode()
    reply = httpx.post(
        f"{console_srv.url}/ingest/lines",
        params={"cluster": "prod", "service": f"svc-{tag}"},
        content=lines,
        timeout=10,
    )
    assert reply.status_code == 200
    body = console.client.get(
        "/tail.json", params={"filter": f'ERROR "{tag} x" -health', "service": f"svc-{tag}"}
    ).json()
    assert "error" not in body
    settings = body["settings"]
    assert settings["highlight"] == ["ERROR", f"{tag} x"]
    assert settings["max_lines"] == 2000
    stream = parse_qs(urlsplit(settings["stream"]).query)
    assert urlsplit(settings["stream"]).path == "/api/tail"
    assert stream == {"filter": [f'ERROR "{tag} x" -health'], "service": [f"svc-{tag}"]}
    stats = body["stats"]
    assert stats["last_seq"] == before["last_seq"] + 2
    assert stats["buffered"] == stats["last_seq"] - stats["first_seq"] + 1
    assert stats["capacity"] >= stats["buffered"] and stats["run"] == before["run"]
    assert f"svc-{tag}" in body["known"]["services"] and "prod" in body["known"]["clusters"]


def test_bad_filter_is_a_message_and_no_stream(as_role: Callable[[str], Console]) -> None:
    console = as_role("viewer")
    body = console.client.get("/tail.json", params={"filter": "{ $.a = }"}).json()
    assert "filter pattern" in body["error"] and body["settings"]["stream"] is None
    page = console.client.get("/tail", params={"filter": "{ $.a = }"})
    assert page.status_code == 200 and "filter pattern" in page.text


def test_highlight_terms_by_pattern_kind() -> None:
    assert highlight_terms(compile_pattern("?ERROR ?WARN")) == ["ERROR", "WARN"]
    assert highlight_terms(compile_pattern('"a b" c -d')) == ["a b", "c"]
    assert highlight_terms(compile_pattern("{ $.a = 1 }")) == []
    assert highlight_terms(compile_pattern("%ab+%")) == []
    assert highlight_terms(None) == []


def test_the_stream_answers_the_session_cookie(
    as_role: Callable[[str], Console], console_srv: Running
) -> None:
    """What the page's EventSource does: GET /api/tail with the cookie, and a record arrives."""
    console = as_role("viewer")
    tag = f"t{uuid.uuid4().hex[:10]}"
    stream = console.client.get("/tail.json", params={"filter": tag}).json()["settings"]["stream"]
    with console.client.stream("GET", stream, timeout=httpx.Timeout(10, read=5)) as reply:
        assert reply.status_code == 200
        lines = reply.iter_lines()
        assert next(lines) == "event: ready"
        httpx.post(f"{console_srv.url}/ingest/lines", content=f"{tag} hello\n".encode(), timeout=10)
        seen = ""
        for line in lines:
            if line.startswith("data:") and tag in line:
                seen = line
                break
    assert f"{tag} hello" in seen


def test_needs_a_session(console_srv: Running) -> None:
    assert httpx.get(f"{console_srv.url}/tail.json", timeout=10).status_code == 401


def test_every_word_is_in_both_languages() -> None:
    import ecsguard.web.pages  # noqa: F401  (registers the pages)
    from ecsguard.web.page import PAGES

    words = dict(PAGES)["tail"].words
    assert set(words["en"]) == set(words["ja"])


def test_japanese_page(as_role: Callable[[str], Console]) -> None:
    page = as_role("viewer").client.get("/tail", headers={"Accept-Language": "ja"})
    assert page.status_code == 200 and "ライブテイル" in page.text and "一時停止" in page.text


def test_starting_back_asks_the_stream_for_stored_lines(as_role: Callable[[str], Console]) -> None:
    console = as_role("viewer")
    body = console.client.get("/tail.json", params={"since": "15m", "service": "api"}).json()
    settings = body["settings"]
    assert parse_qs(urlsplit(settings["stream"]).query) == {
        "service": ["api"],
        "since": ["15m"],
        "limit": [str(settings["max_lines"])],  # as many stored lines as the page keeps
    }
    assert [c["value"] for c in settings["since_choices"]] == ["", "5m", "15m", "1h", "6h"]
    assert settings["since_choices"][2]["label"] == "15 minutes ago"
    typed = console.client.get("/tail.json", params={"since": "30m"}).json()["settings"]
    assert typed["since_choices"][-1] == {"value": "30m", "label": "30m"}
    bad = console.client.get("/tail.json", params={"since": "soon"}).json()
    assert "duration 'soon'" in bad["error"] and bad["settings"]["stream"] is None
