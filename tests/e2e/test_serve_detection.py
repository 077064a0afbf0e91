"""Detection inside `ecsguard serve`: a posted line that matches a rule is an alert within
seconds, visible through /api/alerts and `ecsguard rules alerts`; a bad rule file stops serve
before it listens; SIGHUP reloads the rules, unless one is bad."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ecsguard.demo.logs import notify_config
from ecsguard.demo.logserver import ServeProcess

RULE = """
id: api-errors
title: Errors in the API
severity: high
type: log_filter
group_by: [service]
log_filter: {pattern: ERROR, service: api}
"""


def test_a_matching_line_becomes_an_alert(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULE)
    with ServeProcess(tmp_path / "data", args=["--rules", str(rules)]) as server:
        deadline = time.monotonic() + 10  # the start-up lines after "listening" come after it
        while "detection JSON reader" not in (started := "".join(server.output)):
            assert time.monotonic() < deadline, started
            time.sleep(0.05)
        assert "detection: 1 rules" in started
        assert re.search(r"detection JSON reader: (native \(simdjson\)|Python \()", started)
        body = "starting\nERROR payment declined\nERROR again\n"
        sent = time.monotonic()
        reply = httpx.post(f"{server.url}/ingest/lines?service=api", content=body)
        assert reply.status_code == 200, reply.text
        alerts: list[dict[str, object]] = []
        while not alerts and time.monotonic() - sent < 10:
            alerts = httpx.get(f"{server.url}/api/alerts").json()["alerts"]
            time.sleep(0.05)
        assert alerts, "no alert within 10 s"
        (alert,) = alerts
        assert alert["rule_id"] == "api-errors" and alert["count"] == 2
        assert alert["key"] == ["api"] and alert["severity"] == "high"
        stats = httpx.get(f"{server.url}/api/stats").json()
        assert stats["detection"]["rules"] == 1 and stats["detection"]["rule_errors"] == {}
        assert stats["detection"]["restarts"] == 0 and stats["detection"]["queued"] >= 0
    listed = subprocess.run(
        [
            sys.executable,
            "-m",
            "ecsguard",
            "rules",
            "alerts",
            "--output",
            "json",
            "--data-dir",
            str(tmp_path / "data"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert '"rule_id": "api-errors"' in listed.stdout


def wait_for_output(server: ServeProcess, text: str) -> str:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        output = "".join(server.output)
        if text in output:
            return output
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in the server's output: {''.join(server.output)}")


def test_sighup_reloads_the_rules_unless_one_is_bad(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "errors.yaml").write_text(RULE)
    with ServeProcess(tmp_path / "data", args=["--rules", str(rules)]) as server:
        (rules / "bad.yaml").write_text(
            "id: x\ntitle: t\ntype: log_filter\nlog_filter: {pattern: '{'}\n"
        )
        server.proc.send_signal(signal.SIGHUP)
        output = wait_for_output(server, "rules not reloaded, 1 problem(s)")
        assert f"{rules / 'bad.yaml'}:4: log_filter.pattern" in output
        (rules / "bad.yaml").unlink()
        (rules / "errors.yaml").write_text(RULE.replace("pattern: ERROR", "pattern: WARN"))
        server.proc.send_signal(signal.SIGHUP)
        wait_for_output(server, "rules reloaded, 1 enabled")
        reply = httpx.post(f"{server.url}/ingest/lines?service=api", content="ERROR x\nWARN y\n")
        assert reply.status_code == 200
        sent, alerts = time.monotonic(), []
        while not alerts and time.monotonic() - sent < 10:
            alerts = httpx.get(f"{server.url}/api/alerts").json()["alerts"]
            time.sleep(0.05)
        (alert,) = alerts
        assert alert["count"] == 1 and "WARN y" in str(alert)  # the new pattern, not the old
        assert server.proc.poll() is None and "Traceback" not in "".join(server.output)


def test_a_bad_rule_file_stops_serve_before_it_listens(tmp_path: Path) -> None:
    rules = tmp_path / "bad.yaml"
    rules.write_text("id: x\ntitle: t\ntype: log_filter\nlog_filter: {pattern: '{ $.a = '}\n")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "ecsguard",
            "serve",
            "--port",
            "0",
            "--forward-port",
            "0",
            "--data-dir",
            str(tmp_path),
            "--rules",
            str(rules),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert f"{rules}:4: log_filter.pattern" in run.stderr
    assert "Traceback" not in run.stderr
    assert "listening" not in run.stdout


def test_an_alert_is_delivered_through_the_outbox(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULE)
    notify, inbox = notify_config(tmp_path)  # the demo's local channel: a command to a file
    args = ["--rules", str(rules), "--notify", str(notify)]
    with ServeProcess(tmp_path / "data", args=args) as server:
        sent = time.monotonic()
        reply = httpx.post(f"{server.url}/ingest/lines?service=api", content="ERROR boom\n")
        assert reply.status_code == 200
        while not inbox.exists() and time.monotonic() - sent < 15:
            time.sleep(0.05)
        assert inbox.exists(), "the alert did not reach the channel within 15 s"
    delivered = inbox.read_text()
    assert "Errors in the API" in delivered and "ERROR boom" in delivered
    tested = subprocess.run(
        [
            sys.executable,
            "-m",
            "ecsguard",
            "notify",
            "test",
            "inbox",
            "--config",
            str(notify),
            "--data-dir",
            str(tmp_path / "data"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "accepted a test message" in tested.stdout
    valid = subprocess.run(
        [sys.executable, "-m", "ecsguard", "notify", "validate", str(notify)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "1 channel(s), 0 route(s): valid" in valid.stdout


def spawned_children(pid: int) -> list[int]:
    """Processes `pid` started through multiprocessing's spawn (not its resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # it ended meanwhile
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        if parent == pid and b"spawn_main" in command:
            found.append(int(entry.name))
    return found


def placement(server: ServeProcess, expected: tuple[set[int], set[int]]) -> tuple[set[int], ...]:
    """(the server's main thread's CPUs, the detection process's): `expected` as soon as they
    are (the detection process takes its CPU once its engine is built), else the last seen."""
    seen: tuple[set[int], ...] = ()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and seen != expected:
        children = spawned_children(server.proc.pid)
        with contextlib.suppress(OSError):  # a child that ended meanwhile
            seen = tuple(os.sched_getaffinity(pid) for pid in [server.proc.pid, *children])
        time.sleep(0.1)
    return seen


CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


@pytest.mark.skipif(len(CPUS) < 2, reason="pinning needs two CPUs to choose from")
def test_the_server_and_detection_each_keep_to_a_cpu_of_their_own(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULE)
    with ServeProcess(tmp_path / "pinned", args=["--rules", str(rules)]) as server:
        output = wait_for_output(server, "threads: ")  # printed after the address
        said = re.search(r"the server's on CPU (\d+), detection on CPU (\d+)", output)
        assert said, output
        chosen = ({int(said[1])}, {int(said[2])})
        assert chosen[0] != chosen[1] and placement(server, chosen) == chosen
        reply = httpx.get(f"{server.url}/api/query", params={"sql": "SELECT count(*) FROM logs"})
        assert reply.status_code == 200, reply.text  # DuckDB started from a pinned thread
    with ServeProcess(
        tmp_path / "free", args=["--rules", str(rules), "--no-pin-threads"]
    ) as server:
        assert placement(server, (set(CPUS), set(CPUS))) == (set(CPUS), set(CPUS))
