"""POST /api/rules/reload and `ecsguard rules reload` against a real server: new rule files are
read and evaluated, an invalid one changes nothing and is named with its line, a console user
needs the admin role, and a server without detection says so."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.cli.test_errors import assert_one_clear_error, closed_port, ecsguard
from tests.web.conftest import TOKEN, Running, log_in
from tests.web.pages.alarm_server import PLACEMENT_RULE, serve_with
from tests.web.pages.test_alarms import ingest, placement_event

SECOND_RULE = PLACEMENT_RULE.replace("id: placement-failure", "id: placement-again")
BAD_RULE = """
id: broken
title: Broken
severity: high
type: event_pattern
event_pattern:
  pattern: {"source": "aws.ecs"}
"""


@pytest.fixture
def armed(tmp_path: Path) -> Iterator[Running]:
    with serve_with(tmp_path / "data", [PLACEMENT_RULE]) as server:
        yield server


def alerted_rules(server: Running) -> set[str]:
    reply = server.client.get("/api/alerts", params={"since": "1h"})
    assert reply.status_code == 200, reply.text
    return {alert["rule_id"] for alert in reply.json()["alerts"]}


def test_new_rule_files_are_read_and_evaluated(armed: Running, tmp_path: Path) -> None:
    rules = tmp_path / "data" / "rules"
    (rules / "again.yaml").write_text(SECOND_RULE)
    reply = armed.client.post("/api/rules/reload")
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"reloaded": True, "enabled": 2}
    assert armed.client.get("/api/stats").json()["detection"]["rules"] == 2
    ingest(armed, placement_event("after-reload"))
    deadline = time.monotonic() + 15
    while alerted_rules(armed) != {"placement-failure", "placement-again"}:
        assert time.monotonic() < deadline, alerted_rules(armed)
        time.sleep(0.1)


def test_an_invalid_file_changes_nothing_and_is_named_with_its_line(
    armed: Running, tmp_path: Path
) -> None:
    bad = tmp_path / "data" / "rules" / "bad.yaml"
    bad.write_text(BAD_RULE)
    reply = armed.client.post("/api/rules/reload")
    assert reply.status_code == 422, reply.text
    body = reply.json()
    assert body["enabled"] == 1 and "running rules stay" in body["error"]
    assert any(f"{bad}:" in problem for problem in body["problems"]), body
    # the CLI prints the same problems and exits 2
    run = ecsguard("rules", "reload", "--server", armed.url)
    assert run.returncode == 2
    assert_one_clear_error(run, f"{bad}:", "running rules stay")
    bad.unlink()
    run = ecsguard("rules", "reload", "--server", armed.url, "--output", "json")
    assert run.returncode == 0, run.stderr
    assert '"enabled": 1' in run.stdout or '"enabled":1' in run.stdout


def test_console_users_need_the_admin_role_and_the_csrf_token(armed: Running) -> None:
    viewer, admin = log_in(armed.url, "viewer"), log_in(armed.url, "admin")
    try:
        refused = viewer.post("/api/rules/reload")
        assert refused.status_code == 403 and "needs admin" in refused.json()["error"]
        assert admin.client.post("/api/rules/reload").status_code == 403  # no CSRF header
        reply = admin.post("/api/rules/reload")
        assert reply.status_code == 200, reply.text
    finally:
        viewer.client.close()
        admin.client.close()


def test_the_cli_says_rules_reloaded(armed: Running) -> None:
    run = ecsguard("rules", "reload", "--server", armed.url)
    assert run.returncode == 0, run.stderr
    assert "rules reloaded: 1 enabled" in run.stdout


def test_without_detection_or_the_token_the_reload_is_refused(srv: Running) -> None:
    run = ecsguard("rules", "reload", "--server", srv.url)  # no token
    assert_one_clear_error(run, "refused the token", "ECSGUARD_TOKEN")
    run = ecsguard("rules", "reload", "--server", srv.url, env={"ECSGUARD_TOKEN": TOKEN})
    assert_one_clear_error(run, "(409)", "serve --rules")


def test_an_unreachable_server_is_one_clear_error() -> None:
    run = ecsguard("rules", "reload", "--server", f"http://127.0.0.1:{closed_port()}")
    assert_one_clear_error(run, "cannot reach the ecsguard server")
