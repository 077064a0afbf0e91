"""`ecsguard users`: the console's users from the command line, as a person runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.cli.test_errors import assert_one_clear_error

from ecsguard.web.users import UserStore

PASSWORD = "a long enough password"


def ecsguard(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ecsguard", "users", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_add_list_set_role_passwd_remove(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)]
    added = ecsguard("add", "alice", "--role", "admin", "--password-stdin", *data, stdin=PASSWORD)
    assert added.returncode == 0 and "added alice (admin)" in added.stdout
    assert PASSWORD not in added.stdout + added.stderr
    ecsguard("add", "bob", "--password-stdin", *data, stdin=PASSWORD + "\n")
    listed = ecsguard("list", "--output", "json", *data)
    assert json.loads(listed.stdout) == [
        {"name": "alice", "role": "admin"},
        {"name": "bob", "role": "viewer"},
    ]
    assert ecsguard("set-role", "bob", "operator", *data).returncode == 0
    changed = ecsguard("passwd", "bob", "--password-stdin", *data, stdin="another password!")
    assert changed.returncode == 0
    store = UserStore(tmp_path)
    assert store.authenticate("bob", "another password!") == store.get("bob")
    bob = store.get("bob")
    assert bob is not None and bob.role == "operator"
    assert ecsguard("remove", "bob", *data).returncode == 0
    assert store.get("bob") is None


def test_login_link_is_a_one_time_link(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)]
    ecsguard("add", "alice", "--password-stdin", *data, stdin=PASSWORD)
    link = ecsguard("login-link", "alice", "--server", "http://127.0.0.1:9999/", *data)
    url = link.stdout.strip()
    assert url.startswith("http://127.0.0.1:9999/login/once?token=")
    token = url.rpartition("=")[2]
    store = UserStore(tmp_path)
    assert store.redeem(token) == store.get("alice")
    assert store.redeem(token) is None


def test_errors_are_one_clear_line(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)]
    short = ecsguard("add", "alice", "--password-stdin", *data, stdin="short")
    assert_one_clear_error(short, "shorter than 10 characters")
    empty = ecsguard("add", "alice", "--password-stdin", *data, stdin="")
    assert_one_clear_error(empty, "no password given")
    ecsguard("add", "alice", "--password-stdin", *data, stdin=PASSWORD)
    again = ecsguard("add", "alice", "--password-stdin", *data, stdin=PASSWORD)
    assert_one_clear_error(again, "user 'alice' exists")
    for args in (("remove", "nobody"), ("set-role", "nobody", "admin"), ("login-link", "nobody")):
        assert_one_clear_error(ecsguard(*args, *data), "no user 'nobody'")
    bad_role = ecsguard("add", "carol", "--role", "root", "--password-stdin", *data, stdin=PASSWORD)
    assert bad_role.returncode == 2 and "root" in bad_role.stderr
