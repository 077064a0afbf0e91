"""The settings page against a real server: server settings without the token, channels with
their secrets masked, a test send to a real local webhook, and user management."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.notify.conftest import HttpRecorder
from tests.web.conftest import TOKEN, Console, Running, add_console_users, log_in, running
from tests.web.pages.alarm_server import serve_with, webhook_config

from ecsguard.demo.emulator import free_port

SECRET = "s3cr3t-hook-t0ken-abcdef123456"


@pytest.fixture(scope="module")
def hook() -> Iterator[HttpRecorder]:
    recorder = HttpRecorder()
    yield recorder
    recorder.close()


@pytest.fixture(scope="module")
def notifying(tmp_path_factory: pytest.TempPathFactory, hook: HttpRecorder) -> Iterator[Running]:
    """Serve with the webhook `hook` (its URL carries SECRET) and a channel nobody listens on."""
    config = webhook_config(hook.port, SECRET).replace(
        "default:",
        "  down:\n"
        "    type: webhook\n"
        "    webhook:\n"
        f'      url: "json://127.0.0.1:{free_port()}/hooks/{SECRET}"\n'
        "    timeout: 2s\n"
        "default:",
    )
    with serve_with(tmp_path_factory.mktemp("settings"), notify=config) as server:
        yield server


def test_every_role_sees_settings_and_channels_without_secrets(notifying: Running) -> None:
    for role in ("viewer", "operator", "admin"):
        console = log_in(notifying.url, role)
        twin = console.client.get("/settings.json")
        html = console.client.get("/settings")
        assert twin.status_code == 200 and html.status_code == 200
        for text in (twin.text, html.text):
            assert SECRET not in text and "/hooks/" not in text
        data = twin.json()
        assert data["server"]["host"] == "127.0.0.1" and data["server"]["tls"] is False
        assert data["server"]["token"] is False and data["server"]["notify"] is True
        assert data["server"]["port"] == int(notifying.url.rsplit(":", 1)[1])
        assert data["server"]["data_dir"] == str(notifying.service.data_dir)
        hook = next(c for c in data["channels"] if c["name"] == "hook")
        assert hook["type"] == "webhook" and hook["target"].startswith("webhook json://127.0.0.1:")
        assert hook["target"].endswith("/***")
        assert (data["users"] is not None) == (role == "admin")
        console.client.close()


def test_test_send_reaches_the_webhook(notifying: Running, hook: HttpRecorder) -> None:
    admin = log_in(notifying.url, "admin")
    before = len(hook.requests)
    reply = admin.post("/settings/test-send", json={"channel": "hook"})
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert answer["ok"] is True and answer["error"] is None and answer["channel"] == "hook"
    (received,) = hook.wait_for(before + 1)[before:]
    assert received.path == f"/hooks/{SECRET}" and received.json()["alert"]
    # a channel that is down: the error says so, without the token
    reply = admin.post("/settings/test-send", json={"channel": "down"})
    assert reply.status_code == 200 and reply.json()["ok"] is False
    assert reply.json()["error"] and SECRET not in reply.text
    admin.client.close()


def test_test_send_checks_csrf_role_and_input(notifying: Running) -> None:
    admin, operator = log_in(notifying.url, "admin"), log_in(notifying.url, "operator")
    reply = admin.client.post("/settings/test-send", json={"channel": "hook"})
    assert reply.status_code == 403 and "CSRF" in reply.json()["error"]
    reply = operator.post("/settings/test-send", json={"channel": "hook"})
    assert reply.status_code == 403 and "admin" in reply.json()["error"]
    reply = admin.post("/settings/test-send", json={"channel": "nope"})
    assert reply.status_code == 400 and "unknown channel 'nope'" in reply.json()["error"]
    assert "hook" in reply.json()["error"]  # the defined ones are named
    reply = admin.post("/settings/test-send", json={})
    assert reply.status_code == 400 and "`channel` is required" in reply.json()["error"]
    admin.client.close()
    operator.client.close()


def test_without_channels_test_send_is_409(as_role: Callable[[str], Console]) -> None:
    admin = as_role("admin")
    assert admin.client.get("/settings.json").json()["channels"] is None
    assert "--notify" in admin.client.get("/settings").text
    reply = admin.post("/settings/test-send", json={"channel": "hook"})
    assert reply.status_code == 409 and "--notify" in reply.json()["error"]


def test_a_token_is_a_yes_never_its_value(tmp_path: Path) -> None:
    add_console_users(tmp_path)
    with running(tmp_path, token=TOKEN) as server:
        admin = log_in(server.url, "admin")
        twin = admin.client.get("/settings.json")
        assert twin.json()["server"]["token"] is True
        assert TOKEN not in twin.text and TOKEN not in admin.client.get("/settings").text
        admin.client.close()


def test_admins_manage_users(tmp_path: Path) -> None:
    with serve_with(tmp_path / "d") as server:
        admin, operator = log_in(server.url, "admin"), log_in(server.url, "operator")

        def names() -> dict[str, str]:
            users = admin.client.get("/settings.json").json()["users"]
            return {u["name"]: u["role"] for u in users}

        assert names() == {"ada": "admin", "otto": "operator", "vera": "viewer"}
        new = {"name": "nora", "role": "operator", "password": "long enough password"}
        # csrf, role, input
        assert admin.client.post("/settings/users/add", json=new).status_code == 403
        reply = operator.post("/settings/users/add", json=new)
        assert reply.status_code == 403 and "admin" in reply.json()["error"]
        for body, message in [
            ({**new, "password": "short"}, "shorter than 10"),
            ({**new, "role": "root"}, "unknown role 'root'"),
            ({**new, "name": "ada"}, "user 'ada' exists"),
            ({"name": "x", "role": "viewer"}, "`password` is required"),
        ]:
            reply = admin.post("/settings/users/add", json=body)
            assert reply.status_code == 400 and message in reply.json()["error"], body
        assert admin.post("/settings/users/add", json=new).json() == {
            "user": {"name": "nora", "role": "operator"}
        }
        assert log_in(server.url, "operator").client.get("/settings.json").status_code == 200
        # set role, remove
        assert admin.post(
            "/settings/users/role", json={"name": "nora", "role": "viewer"}
        ).is_success
        assert names()["nora"] == "viewer"
        reply = admin.post("/settings/users/role", json={"name": "nora", "role": "god"})
        assert reply.status_code == 400 and "unknown role" in reply.json()["error"]
        reply = admin.post("/settings/users/role", json={"name": "ghost", "role": "viewer"})
        assert reply.status_code == 400 and "no user 'ghost'" in reply.json()["error"]
        reply = operator.post("/settings/users/remove", json={"name": "nora"})
        assert reply.status_code == 403
        assert admin.post("/settings/users/remove", json={"name": "nora"}).json() == {
            "removed": "nora"
        }
        reply = admin.post("/settings/users/remove", json={"name": "nora"})
        assert reply.status_code == 400 and "no user 'nora'" in reply.json()["error"]
        # the last admin stays
        for path, body in [
            ("/settings/users/remove", {"name": "ada"}),
            ("/settings/users/role", {"name": "ada", "role": "operator"}),
        ]:
            reply = admin.post(path, json=body)
            assert reply.status_code == 400 and "last admin" in reply.json()["error"], path
        assert names()["ada"] == "admin"
        # with a second admin, ada may step down
        assert admin.post("/settings/users/role", json={"name": "otto", "role": "admin"}).is_success
        assert admin.post("/settings/users/role", json={"name": "ada", "role": "viewer"}).is_success
        reply = admin.post("/settings/users/add", json={**new, "name": "late"})
        assert reply.status_code == 403  # her session now holds the viewer role
        admin.client.close()
        operator.client.close()
