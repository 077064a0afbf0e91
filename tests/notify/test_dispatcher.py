"""The dispatcher with real channels (apprise's JSON webhook to a local HTTP server, a local
command): grouping, de-duplication, throttling, silences, retries and the durable outbox. Time is
an injected clock and `pump()` does what is due, except where the sender threads are the point."""

from __future__ import annotations

import logging
import random
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ecsguard.core.errors import UserError
from ecsguard.notify.config import NotifyConfig, parse_config
from ecsguard.notify.dispatcher import Backoff, Dispatcher

from .conftest import T0, FakeClock, HttpRecorder, Reply, make_alert

TOKEN = "tok3n-s3cret-42"
ENV = {"HOOK_TOKEN": TOKEN}
NO_JITTER = Backoff(base=2.0, factor=2.0, cap=60.0, jitter=0.0)
Make = Callable[..., Dispatcher]


def hook_config(
    port: int, *, group_wait: str = "0s", max_per_minute: int = 30, extra: str = ""
) -> NotifyConfig:
    return parse_config(
        f"""
console_url: http://console.test
channels:
  hook:
    type: webhook
    max_per_minute: {max_per_minute}
    webhook: {{url: "json://127.0.0.1:{port}/hook/${{HOOK_TOKEN}}"}}
default: {{channels: [hook], group_wait: {group_wait}}}
{extra}""",
        "notify.yaml",
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make(tmp_path: Path, clock: FakeClock) -> Iterator[Make]:
    made: list[Dispatcher] = []

    def build(config: NotifyConfig, **options: Any) -> Dispatcher:
        dispatcher = Dispatcher(
            config,
            tmp_path,
            clock=clock,
            env=ENV,
            backoff=NO_JITTER,
            rng=random.Random(7),
            **options,
        )
        made.append(dispatcher)
        return dispatcher

    yield build
    for dispatcher in made:
        dispatcher.close()


def kinds(hook: HttpRecorder) -> list[tuple[str, int]]:
    return [(r.json()["alert"]["kind"], r.json()["alert"]["alert_count"]) for r in hook.ok]


def test_alerts_of_one_rule_and_key_within_the_window_are_one_message(
    http_hook: HttpRecorder, clock: FakeClock, make: Make
) -> None:
    d = make(hook_config(http_hook.port, group_wait="30s"))
    d.submit(make_alert("a1"))
    clock.advance(10)
    d.submit(make_alert("a2"))
    d.submit(make_alert("b1", key=["prod", "api"]))  # another key: its own group
    assert d.pump() == 0 and http_hook.requests == []  # nothing is due yet
    clock.advance(21)  # 31 s after a1
    assert d.pump() == 1
    (group,) = http_hook.requests
    assert group.json()["title"] == "[HIGH] 2 alerts: A task ran out of memory"
    assert [a["id"] for a in group.json()["alert"]["alerts"]] == ["a1", "a2"]
    d.submit(make_alert("a3"))  # after the flush: a new group
    clock.advance(10)  # b1's window (opened at +10 s) has closed
    assert d.pump() == 1
    assert [a["id"] for a in http_hook.requests[-1].json()["alert"]["alerts"]] == ["b1"]
    clock.advance(30)
    d.pump()
    assert kinds(http_hook) == [("group", 2), ("alert", 1), ("alert", 1)]


def test_an_alert_is_notified_once_also_after_a_restart(
    http_hook: HttpRecorder, make: Make
) -> None:
    config = hook_config(http_hook.port)
    first = make(config)
    assert first.submit(make_alert("a1")).channels == ("hook",)
    first.pump()
    first.close()
    second = make(config)
    assert second.submit(make_alert("a1")).duplicate
    assert second.pump() == 0
    assert len(http_hook.requests) == 1
    # an alarm changing state is news under the same id
    assert not second.submit(make_alert("a1", state="OK")).duplicate
    second.pump()
    assert len(http_hook.requests) == 2


def test_a_throttled_channel_gets_the_rest_as_one_digest(
    http_hook: HttpRecorder, clock: FakeClock, make: Make
) -> None:
    d = make(hook_config(http_hook.port, max_per_minute=2))
    for i in range(5):
        d.submit(make_alert(f"a{i}", key=["prod", f"svc{i}"]))
    assert d.pump() == 2
    clock.advance(59)
    assert d.pump() == 0  # the window is still full
    assert d.stats()["hook"]["waiting"] == 3
    clock.advance(1)
    assert d.pump() == 1
    assert kinds(http_hook) == [("alert", 1), ("alert", 1), ("digest", 3)]
    digest = http_hook.requests[-1].json()
    assert digest["title"] == "[HIGH] 3 alerts held back by throttling"
    assert [a["id"] for a in digest["alert"]["alerts"]] == ["a2", "a3", "a4"]


def test_silences_stop_notifications_until_they_expire(
    http_hook: HttpRecorder, clock: FakeClock, make: Make
) -> None:
    expires = (T0 + timedelta(hours=1)).isoformat()
    extra = (
        f"silences:\n  - {{rule: 'ecs-*', key: [prod], expires: '{expires}',"
        " reason: load test, by: alice}"
    )
    d = make(hook_config(http_hook.port, extra=extra))
    result = d.submit(make_alert("a1"))
    assert result.silenced_by == d.config.silences[0].id and result.channels == ()
    added = d.add_silence(
        rule="iam-*", reason="rotation", by="bob", expires=T0 + timedelta(hours=2)
    )
    assert d.submit(make_alert("i1", rule_id="iam-key-created")).silenced_by == added.id
    assert [s.id for s in d.silences()] == [d.config.silences[0].id, added.id]
    assert d.pump() == 0 and http_hook.requests == []

    clock.advance(3600)  # the configured silence has expired
    assert [s.id for s in d.silences()] == [added.id]
    assert d.submit(make_alert("a1")).channels == ("hook",)  # silenced before, so not "seen"
    assert d.remove_silence(added.id) and not d.remove_silence(added.id)
    assert d.submit(make_alert("i1", rule_id="iam-key-created")).channels == ("hook",)
    d.pump()
    got = sorted(r.json()["alert"]["alerts"][0]["id"] for r in http_hook.ok)
    assert got == ["a1", "i1"], [(m.status, m.last_error) for m in d.messages()]


def test_the_outbox_survives_a_restart_while_the_channel_is_down(
    http_hook: HttpRecorder, clock: FakeClock, make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = hook_config(http_hook.port)
    http_hook.reply = Reply(status=503)  # the channel is down
    first = make(config)
    first.submit(make_alert("a1"))
    assert first.pump() == 1  # one attempt, failed; the channel backs off
    (queued,) = first.messages(status="pending")
    assert queued.attempts == 1 and queued.next_attempt == clock.now + 2.0
    assert "503" in (queued.last_error or "") and TOKEN not in (queued.last_error or "")
    clock.advance(2)
    assert first.pump() == 1  # second attempt, also failed: the delay doubles
    assert first.messages()[0].next_attempt == clock.now + 4.0
    first.close()  # the process stops with the message undelivered

    http_hook.reply = Reply(status=200)  # the channel comes back
    clock.advance(10)
    second = make(config)
    assert second.pump() == 1
    (sent,) = second.messages()
    assert (sent.status, sent.attempts, sent.alert_ids) == ("sent", 3, ["a1"])
    assert len(http_hook.ok) == 1  # delivered exactly once
    assert second.submit(make_alert("a1")).duplicate
    assert second.pump() == 0 and len(http_hook.ok) == 1
    assert TOKEN not in caplog.text
    assert "failed, attempt 1" in caplog.text


def test_a_message_undelivered_past_max_age_is_given_up(
    http_hook: HttpRecorder, clock: FakeClock, make: Make
) -> None:
    http_hook.reply = Reply(status=500)
    d = make(hook_config(http_hook.port), max_age=3600)
    d.submit(make_alert("a1"))
    d.pump()
    clock.advance(3601)
    assert d.pump() == 0
    (row,) = d.messages()
    assert row.status == "expired" and "500" in (row.last_error or "")


def test_test_send(http_hook: HttpRecorder, make: Make) -> None:
    d = make(hook_config(http_hook.port))
    result = d.test_send("hook")
    assert result.ok and result.error is None
    assert "ecsguard test notification" in http_hook.requests[0].json()["title"]
    assert TOKEN not in result.description
    http_hook.reply = Reply(status=404)
    failed = d.test_send("hook")
    assert not failed.ok and "404" in (failed.error or "") and TOKEN not in (failed.error or "")
    assert d.messages() == []  # test sends do not go through the outbox
    with pytest.raises(UserError, match=r"unknown channel 'slack'.*defined channels: hook"):
        d.test_send("slack")


def test_one_sending_process_per_data_directory(http_hook: HttpRecorder, make: Make) -> None:
    config = hook_config(http_hook.port)
    make(config).start()
    with pytest.raises(UserError, match="another ecsguard process is sending notifications"):
        make(config).start()


SLOW = """
import pathlib, sys, time
sys.stdin.read()
gate = pathlib.Path(sys.argv[1])
pathlib.Path(sys.argv[2]).touch()  # a send is in progress
deadline = time.monotonic() + 10
while not gate.exists() and time.monotonic() < deadline:
    time.sleep(0.01)
"""


def test_a_slow_channel_blocks_neither_the_others_nor_the_caller(
    http_hook: HttpRecorder, tmp_path: Path
) -> None:
    gate, sending = tmp_path / "open", tmp_path / "sending"
    config = parse_config(
        f"""
channels:
  fast:
    type: webhook
    webhook: {{url: "json://127.0.0.1:{http_hook.port}/hook"}}
  slow:
    type: command
    timeout: 20s
    command: {{argv: ["{sys.executable}", "-c", {SLOW!r}, "{gate}", "{sending}"]}}
default: {{channels: [slow, fast]}}
""".replace("'", '"'),
    )
    with Dispatcher(config, tmp_path / "data") as d:
        d.submit(make_alert("a1"))
        assert len(http_hook.wait_for(1)) == 1  # the fast channel delivered...
        assert d.stats()["slow"].get("sent", 0) == 0  # ...while the slow one is still busy
        deadline = time.monotonic() + 10
        # a1 must be in flight on the slow channel before a2 arrives, else the dispatcher
        # rightly groups both into one message
        while not sending.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.monotonic()
        d.submit(make_alert("a2"))  # the caller does not wait for either
        assert time.monotonic() - started < 1.0
        assert len(http_hook.wait_for(2)) == 2
        gate.touch()
        deadline = time.monotonic() + 10
        while d.stats()["slow"].get("sent", 0) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert d.stats()["slow"]["sent"] == 2, d.messages()
        assert d.stats()["fast"]["sent"] == 2


def test_backoff_grows_is_capped_and_jittered() -> None:
    exact = Backoff(base=1.0, factor=2.0, cap=10.0, jitter=0.0)
    rng = random.Random(1)
    assert [exact.delay(n, rng) for n in (1, 2, 3, 4, 5, 9)] == [1, 2, 4, 8, 10, 10]
    jittered = Backoff(base=1.0, factor=2.0, cap=10.0, jitter=0.5)
    delays = [jittered.delay(3, rng) for _ in range(200)]
    assert all(2.0 <= x <= 4.0 for x in delays) and len(set(delays)) > 100
