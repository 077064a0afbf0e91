"""Playwright driving Debian's chromium against a real console server.

Each test gets `console`: a server on its own data directory with one user per role
(tests.web.conftest.ROLE_USERS); `browser_page(role)` opens a page logged in through the real
login form. `shoot(page, name)` writes a screenshot under test-artifacts/screenshots/.
Without a chromium the tests skip locally and fail under CI (which installs it).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from tests.web.conftest import PASSWORD, ROLE_USERS, Running, add_console_users, running

ARTIFACTS = Path(__file__).parents[3] / "test-artifacts" / "screenshots"


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


# Module scope, not session: while Playwright's sync API runs, its event loop counts as running
# in this thread, and any later test calling asyncio.run() in the same worker would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs it with apt-get")
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        launched = driver.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield launched
        launched.close()


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Running]:
    data_dir = tmp_path / "data"
    add_console_users(data_dir)
    with running(data_dir) as server:
        yield server


def log_in_page(
    browser: Any, url: str, role: str, start: str = "/overview", lang: str = "en"
) -> Any:
    """A new browser context logged in through the login form as the ROLE_USERS user of
    `role`, on `start` (the login's `next`)."""
    context = browser.new_context(locale=lang, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto(f"{url}/login?next={quote(start, safe='')}")
    page.fill("input[name=user]", ROLE_USERS[role])
    page.fill("input[name=password]", PASSWORD)
    page.click("#login")
    page.wait_for_url(f"{url}{start}")
    return page


@pytest.fixture
def browser_page(browser: Any, console: Running) -> Iterator[Callable[..., Any]]:
    """`browser_page("viewer", lang="en")`: a Playwright page logged in with that role."""
    pages: list[Any] = []

    def open_as(role: str, lang: str = "en") -> Any:
        pages.append(log_in_page(browser, console.url, role, lang=lang))
        return pages[-1]

    yield open_as
    for page in pages:
        page.context.close()


def watch(page: Any, console_errors: bool = True) -> list[str]:
    """What went wrong in the page: dialogs (an injected alert() that ran), uncaught script
    errors and, with `console_errors`, console errors (CSP violations are reported there)."""
    problems: list[str] = []
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.on("pageerror", lambda e: problems.append(str(e)))
    if console_errors:
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    return problems


def shoot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
