"""The live-tail page in a real browser: a line posted while the page is open appears within 2 s,
filter terms are marked, hostile text stays text, pause holds new lines (with a count) until
resume, a dropped connection resumes without a gap or a repeat, and the server's `missed` event
is shown."""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.e2e.console.conftest import log_in_page, shoot, watch
from tests.web.conftest import Running, add_console_users, running

HOSTILE = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']


def post(console: Running, *lines: str, service: str = "api") -> None:
    reply = httpx.post(
        f"{console.url}/ingest/lines",
        params={"cluster": "prod", "service": service},
        content=("\n".join(lines) + "\n").encode(),
        timeout=10,
    )
    assert reply.status_code == 200, reply.text


def open_tail(page: Any, url: str, query: str = "") -> None:
    page.goto(f"{url}/tail{query}")
    page.locator("#tail-status", has_text="Live").wait_for(timeout=5000)


def test_new_lines_arrive_marked_and_pause_holds_them(
    browser_page: Callable[..., Any], console: Running
) -> None:
    tag = f"t{uuid.uuid4().hex[:10]}"
    page = browser_page("viewer")
    problems = watch(page, console_errors=False)
    open_tail(page, console.url, f"?filter={tag}")
    lines = page.locator("#tail-lines .line")
    post(console, f"ERROR {tag} first line", "unrelated line")
    lines.filter(has_text=f"{tag} first line").wait_for(timeout=2000)
    assert lines.count() == 1  # the filter keeps the unrelated line out
    assert page.locator("#tail-lines mark").first.inner_text() == tag
    post(console, *(f"{tag} {text}" for text in HOSTILE), service="evil")
    for text in HOSTILE:
        page.get_by_text(text).wait_for(timeout=2000)
    assert page.locator("#tail-lines img, #tail-lines script").count() == 0
    shoot(page, "tail-live")

    page.click("#tail-pause")
    post(console, f"{tag} while paused")
    page.locator("#tail-status", has_text="1 new lines waiting").wait_for(timeout=2000)
    assert lines.filter(has_text="while paused").count() == 0
    shoot(page, "tail-paused")
    page.click("#tail-pause")
    lines.filter(has_text="while paused").wait_for(timeout=2000)
    assert lines.count() == 4

    # new settings reopen the stream: another service's lines, no filter
    page.fill("#tail-filter", "")
    page.fill("#tail-service", "other")
    page.click("#tail-apply")
    page.wait_for_url(f"{console.url}/tail?service=other")
    page.locator("#tail-status", has_text="Live").wait_for(timeout=5000)
    post(console, f"{tag} from other", service="other")
    post(console, f"{tag} from api again")
    lines.filter(has_text="from other").wait_for(timeout=2000)
    assert lines.filter(has_text="from api again").count() == 0
    assert problems == []


def test_bad_filter_shows_the_message(browser_page: Callable[..., Any], console: Running) -> None:
    page = browser_page("viewer")
    page.goto(f"{console.url}/tail?filter=%7B%20%24.a%20%3D%20%7D")
    assert "filter pattern" in page.inner_text("#tail-error")
    page.fill("#tail-filter", "ERROR")
    page.click("#tail-apply")
    page.locator("#tail-status", has_text="Live").wait_for(timeout=5000)
    assert page.locator("#tail-error").is_hidden()


def test_starting_back_shows_stored_lines_then_live_ones(
    browser_page: Callable[..., Any], console: Running
) -> None:
    stamp = (datetime.now(UTC) - timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    post(console, f"{stamp} stored before the page opened", "<b>stored</b> and hostile")
    page = browser_page("viewer")
    problems = watch(page, console_errors=False)
    open_tail(page, console.url, "?since=15m")
    assert page.locator("#tail-since").input_value() == "15m"
    notice = page.locator("#tail-lines .tail-notice")
    notice.wait_for(timeout=5000)
    assert notice.inner_text() == "2 stored lines above; new lines follow"
    post(console, "live after the stored ones")
    lines = page.locator("#tail-lines .line")
    lines.filter(has_text="live after the stored ones").wait_for(timeout=2000)
    first, second, between, live = lines.all_inner_texts()
    assert first.endswith("stored before the page opened")
    assert first.startswith(f"{stamp[11:19]}.000 api")  # a whole second still reads as a time
    assert second.endswith(" <b>stored</b> and hostile")
    assert between == "2 stored lines above; new lines follow"
    assert live.endswith(" live after the stored ones")
    assert page.locator("#tail-lines b").count() == 0  # log text stays text
    shoot(page, "tail-since")
    # back to "now": the stream reopens without the stored lines
    page.select_option("#tail-since", "")
    page.click("#tail-apply")
    page.wait_for_url(f"{console.url}/tail")
    page.locator("#tail-status", has_text="Live").wait_for(timeout=5000)
    assert page.locator("#tail-lines .tail-notice").count() == 1  # the first stream's, kept
    assert problems == []


@pytest.fixture
def small_hub(tmp_path: Path) -> Iterator[Running]:
    """A console whose tail buffer holds 5 records, so a bigger batch overruns it."""
    data_dir = tmp_path / "data"
    add_console_users(data_dir)
    with running(data_dir, tail_capacity=5) as server:
        yield server


def test_missed_records_are_reported(browser: Any, small_hub: Running) -> None:
    page = log_in_page(browser, small_hub.url, "viewer", start="/tail")
    context = page.context
    try:
        page.locator("#tail-status", has_text="Live").wait_for(timeout=5000)
        post(small_hub, *(f"line {i}" for i in range(20)))
        notice = page.locator("#tail-lines .tail-notice")
        notice.wait_for(timeout=2000)
        assert notice.inner_text().startswith("15 records were missed")
        page.locator("#tail-lines .line", has_text="line 19").wait_for(timeout=2000)
        assert page.locator("#tail-lines .line:not(.tail-notice)").count() == 5
        shoot(page, "tail-missed")
    finally:
        context.close()


class CuttableProxy:
    """A TCP forwarder to the server whose open connections can be cut, as a flaky network
    would; it keeps accepting new ones."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.open: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection(("127.0.0.1", self.target))
            with self.lock:
                self.open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def cut(self) -> None:
        with self.lock:
            dropped, self.open = self.open, []
        for sock in dropped:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.listener.close()
        self.cut()


def test_a_dropped_connection_resumes_without_gap_or_repeat(browser: Any, console: Running) -> None:
    """EventSource reconnects by itself and sends Last-Event-ID: lines stored while the
    connection was down arrive after it, and none twice."""
    proxy = CuttableProxy(int(console.url.rsplit(":", 1)[1]))
    page = log_in_page(browser, proxy.url, "viewer", start="/tail")
    context = page.context
    try:
        page.locator("#tail-status", has_text="Live").wait_for(timeout=5000)
        lines = page.locator("#tail-lines .line")
        post(console, "before the cut")
        lines.filter(has_text="before the cut").wait_for(timeout=2000)
        proxy.cut()
        page.locator("#tail-status", has_text="reconnecting").wait_for(timeout=5000)
        post(console, "while the connection was down")
        lines.filter(has_text="while the connection was down").wait_for(timeout=10_000)
        page.locator("#tail-status", has_text="Live").wait_for(timeout=5000)
        post(console, "after the reconnect")
        lines.filter(has_text="after the reconnect").wait_for(timeout=2000)
        assert [line.split(" ", 3)[3] for line in lines.all_inner_texts()] == [
            "before the cut",
            "while the connection was down",
            "after the reconnect",
        ]
        assert page.locator("#tail-lines .tail-notice").count() == 0  # nothing was missed
        shoot(page, "tail-reconnected")
    finally:
        context.close()
        proxy.close()
