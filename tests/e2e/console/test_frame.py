"""The console's frame in a real browser: login, navigation, language switch, no CSP breakage."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.e2e.console.conftest import shoot
from tests.web.conftest import Running


def test_login_overview_and_switch_to_japanese(
    browser_page: Callable[..., Any], console: Running
) -> None:
    page = browser_page("admin")
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.reload()
    assert page.inner_text("h1") == "Overview"
    assert "ada (admin)" in page.inner_text("header")
    assert page.locator("#pillar-logs .figure").inner_text() == "0.0"
    shoot(page, "overview-en")
    page.click("#lang-switch")
    page.wait_for_selector("html[lang=ja]")
    assert page.inner_text("h1") == "概要"
    shoot(page, "overview-ja")
    page.click("#logout")
    page.wait_for_url(f"{console.url}/login")
    assert errors == []  # no script error, no CSP violation


def test_wrong_password_stays_on_the_login_page(browser: Any, console: Running) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{console.url}/overview")
    page.wait_for_url("**/login?next=%2Foverview")
    page.fill("input[name=user]", "ada")
    page.fill("input[name=password]", "not the password")
    page.click("#login")
    assert "not right" in page.inner_text("[role=alert]")
    context.close()
