"""The console's frame against a real server: login, sessions, CSRF, roles, throttling, headers,
language, one-time links."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from tests.web.conftest import (
    PASSWORD,
    ROLE_USERS,
    Console,
    Running,
    add_console_users,
    csrf_of,
    login_form_token,
)

from ecsguard.web import throttle
from ecsguard.web.page import ordered
from ecsguard.web.users import UserStore


def anonymous(srv: Running) -> httpx.Client:
    return httpx.Client(base_url=srv.url, timeout=30)


def test_every_page_redirects_to_login_without_a_session(console_srv: Running) -> None:
    client = anonymous(console_srv)
    pages = ordered()
    assert pages, "no console pages registered"
    for page in pages:
        reply = client.get(f"/{page.name}", params={"q": "x"})
        assert reply.status_code == 303, page.name
        assert reply.headers["location"] == f"/login?next=%2F{page.name}%3Fq%3Dx"
        twin = client.get(f"/{page.name}.json")
        assert twin.status_code == 401 and "log in" in twin.json()["error"]
    assert client.get("/").headers["location"] == f"/{pages[0].name}"


def test_login_opens_a_session_with_strict_cookies(console_srv: Running) -> None:
    client = anonymous(console_srv)
    token = login_form_token(client)
    reply = client.post(
        "/login",
        data={"user": "ada", "password": PASSWORD, "csrf": token, "next": "/overview"},
    )
    assert reply.status_code == 303 and reply.headers["location"] == "/overview"
    cookie = next(h for h in reply.headers.get_list("set-cookie") if "ecsguard_session=" in h)
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
    page = client.get("/overview")
    assert page.status_code == 200 and "ada (admin)" in page.text
    # the database keeps only a digest of the session id
    session_id = client.cookies["ecsguard_session"]
    assert (
        session_id.encode() not in (Path(console_srv.service.data_dir) / "console.db").read_bytes()
    )


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil"])
def test_login_never_redirects_off_site(console_srv: Running, target: str) -> None:
    client = anonymous(console_srv)
    token = login_form_token(client)
    reply = client.post(
        "/login", data={"user": "ada", "password": PASSWORD, "csrf": token, "next": target}
    )
    assert reply.headers["location"] == "/"


def test_wrong_password_and_unknown_user_get_the_same_answer(console_srv: Running) -> None:
    client = anonymous(console_srv)
    token = login_form_token(client)
    answers = [
        client.post("/login", data={"user": user, "password": "wrong password!", "csrf": token})
        for user in ("vera", "nobody-at-all")
    ]
    assert [a.status_code for a in answers] == [401, 401]
    assert all("user name or password is not right" in a.text for a in answers)
    assert "ecsguard_session" not in client.cookies


def test_login_without_the_form_token_is_refused(console_srv: Running) -> None:
    client = anonymous(console_srv)
    reply = client.post("/login", data={"user": "ada", "password": PASSWORD})
    assert reply.status_code == 403 and "ecsguard_session" not in client.cookies


def test_repeated_failed_logins_are_throttled(serve: Callable[..., object], tmp_path: Path) -> None:
    with serve() as srv:  # type: ignore[attr-defined]
        add_console_users(srv.service.data_dir)
        client = anonymous(srv)
        token = login_form_token(client)
        codes = [
            client.post(
                "/login", data={"user": "vera", "password": f"guess {n}", "csrf": token}
            ).status_code
            for n in range(throttle.FREE_FAILURES + 2)
        ]
        assert codes[: throttle.FREE_FAILURES] == [401] * throttle.FREE_FAILURES
        assert codes[-1] == 429
        # now even the right password waits, and the answer says how long
        blocked = client.post("/login", data={"user": "vera", "password": PASSWORD, "csrf": token})
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
        assert "Too many failed logins" in blocked.text


def test_throttle_counts_names_and_addresses() -> None:
    limiter = throttle.LoginThrottle()
    for _ in range(throttle.FREE_FAILURES + 1):
        limiter.failed("user:a", "client:1")
    assert limiter.retry_after("user:a") > 0
    assert limiter.retry_after("user:b", "client:1") > 0  # another name, same address
    assert limiter.retry_after("user:b", "client:2") == 0
    limiter.succeeded("user:a", "client:1")
    assert limiter.retry_after("user:a", "client:1") == 0


def test_state_change_without_csrf_is_403(as_role: Callable[[str], Console]) -> None:
    console = as_role("admin")
    assert console.client.post("/logout").status_code == 403
    assert console.client.post("/logout", headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert console.client.get("/overview").status_code == 200  # still logged in
    assert console.post("/logout").status_code == 303
    assert console.client.get("/overview").status_code == 303  # the session is gone


def test_logout_form_field_token_works(as_role: Callable[[str], Console]) -> None:
    console = as_role("viewer")
    reply = console.client.post("/logout", data={"csrf": console.csrf})
    assert reply.status_code == 303 and reply.headers["location"] == "/login"


def test_security_headers_on_pages_api_and_static(as_role: Callable[[str], Console]) -> None:
    console = as_role("viewer")
    for path in ("/overview", "/overview.json", "/login", "/static/console.js", "/api/stats"):
        reply = console.client.get(path)
        csp = reply.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp, path
        assert "frame-ancestors 'none'" in csp
        assert reply.headers["x-content-type-options"] == "nosniff"


def test_no_inline_script_in_any_page(as_role: Callable[[str], Console]) -> None:
    console = as_role("admin")
    for page in ordered():
        html = console.client.get(f"/{page.name}").text
        for tag in re.findall(r"<script[^>]*>", html):
            assert "src=" in tag or 'type="application/json"' in tag, (page.name, tag)
        assert not re.search(r"\son[a-z]+=", html), page.name  # no inline event handlers


def test_language_follows_accept_language_and_the_switch(as_role: Callable[[str], Console]) -> None:
    console = as_role("viewer")
    japanese = console.client.get("/overview", headers={"Accept-Language": "ja,en;q=0.5"})
    assert '<html lang="ja">' in japanese.text and "概要" in japanese.text
    reply = console.client.post(
        "/lang", data={"csrf": console.csrf, "lang": "ja", "next": "/overview"}
    )
    assert reply.status_code == 303 and reply.headers["location"] == "/overview"
    assert "概要" in console.client.get("/overview", headers={"Accept-Language": "en"}).text
    assert console.client.post("/lang", data={"lang": "en"}).status_code == 403
    bad = console.client.post("/lang", data={"csrf": console.csrf, "lang": "xx"})
    assert bad.status_code == 400 and "unknown language" in bad.json()["error"]


def test_one_time_login_works_once(console_srv: Running) -> None:
    store = UserStore(console_srv.service.data_dir)
    token = store.one_time_login("otto")
    client = anonymous(console_srv)
    page = client.get("/login/once", params={"token": token})
    assert page.status_code == 200 and "ecsguard_session" not in client.cookies  # GET: no login
    form = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert form
    first = client.post("/login/once", data={"csrf": form.group(1), "token": token})
    assert first.status_code == 303 and "otto (operator)" in client.get("/overview").text
    again = anonymous(console_srv)
    csrf = login_form_token(again)
    second = again.post("/login/once", data={"csrf": csrf, "token": token})
    assert second.status_code == 401 and "unknown, used or expired" in second.text
    expired = store.one_time_login("otto", seconds=-1)
    assert store.redeem(expired) is None


def test_removed_user_loses_the_session(console_srv: Running) -> None:
    store = UserStore(console_srv.service.data_dir)
    store.add("temp-user", PASSWORD, "viewer")
    client = anonymous(console_srv)
    token = login_form_token(client)
    client.post("/login", data={"user": "temp-user", "password": PASSWORD, "csrf": token})
    assert csrf_of(client)
    store.remove("temp-user")
    assert client.get("/overview").status_code == 303


def test_console_session_reads_the_api_of_a_token_server(serve: Callable[..., object]) -> None:
    with serve(token="s3cret-token") as srv:  # type: ignore[attr-defined]
        add_console_users(srv.service.data_dir)
        client = anonymous(srv)
        assert client.get("/api/stats").status_code == 401
        token = login_form_token(client)
        client.post("/login", data={"user": "vera", "password": PASSWORD, "csrf": token})
        assert client.get("/api/stats").status_code == 200
        csrf = csrf_of(client)
        query = {"sql": "SELECT 1 AS one"}
        assert client.post("/api/query", json=query).status_code == 401  # no CSRF header
        ok = client.post("/api/query", json=query, headers={"X-CSRF-Token": csrf})
        assert ok.status_code == 200 and ok.json()["rows"] == [[1]]


def test_cross_site_requests_are_refused(console_srv: Running) -> None:
    client = anonymous(console_srv)
    reply = client.post(
        "/ingest/lines",
        content=b"planted line\n",
        headers={"Origin": "http://evil.example", "Content-Type": "text/plain"},
    )
    assert reply.status_code == 403 and "evil.example" in reply.json()["error"]
    same = client.post("/ingest/lines", content=b"fine\n", headers={"Origin": console_srv.url})
    assert same.status_code == 200


def test_users_store_errors(tmp_path: Path) -> None:
    from ecsguard.core.errors import UserError

    store = UserStore(tmp_path)
    with pytest.raises(UserError, match="shorter than"):
        store.add("x", "short", "viewer")
    with pytest.raises(UserError, match="unknown role"):
        store.add("x", PASSWORD, "root")
    store.add("x", PASSWORD, "viewer")
    with pytest.raises(UserError, match="exists"):
        store.add("x", PASSWORD, "admin")
    with pytest.raises(UserError, match="no user"):
        store.set_role("y", "admin")
    assert store.authenticate("x", PASSWORD) is not None
    store.set_password("x", "another long password")
    assert store.authenticate("x", PASSWORD) is None
    assert [u.name for u in store.users()] == ["x"]
    assert set(ROLE_USERS) == {"viewer", "operator", "admin"}


def test_two_admins_demoting_each_other_leave_one(tmp_path: Path) -> None:
    """The last-admin check runs inside the change's transaction: of two stores (two server
    processes) each demoting the other admin, the second is refused."""
    from ecsguard.core.errors import UserError

    first, second = UserStore(tmp_path), UserStore(tmp_path)
    first.add("ada", PASSWORD, "admin")
    first.add("bob", PASSWORD, "admin")
    first.set_role("ada", "viewer", keep_an_admin=True)
    with pytest.raises(UserError, match="bob is the last admin"):
        second.set_role("bob", "operator", keep_an_admin=True)
    with pytest.raises(UserError, match="last admin"):
        second.remove("bob", keep_an_admin=True)
    second.set_role("bob", "admin", keep_an_admin=True)  # no change: allowed
    assert {u.name: u.role for u in first.users()} == {"ada": "viewer", "bob": "admin"}
    second.remove("bob")  # the CLI, the way back in, may
    assert [u.name for u in first.users()] == ["ada"]
