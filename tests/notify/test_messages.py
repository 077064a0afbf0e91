from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ecsguard.notify.messages import (
    MAX_EVIDENCE_RECORDS,
    MAX_LISTED_ALERTS,
    MAX_VALUE_CHARS,
    Message,
    alert_url,
    render,
    render_digest,
    render_group,
    sample_alert,
)

from .conftest import make_alert

CONSOLE = "https://ecsguard.example.com/"


def test_english_alert_has_the_facts_a_person_needs() -> None:
    alert = make_alert(
        "a/1",
        count=3,
        evidence=[{"time": datetime(2026, 11, 28, 9, 0, 5, tzinfo=UTC), "message": "OOMKilled"}],
        state="ALARM",
    )
    message = render(alert, "en", CONSOLE)
    assert message.subject == "[HIGH] A task ran out of memory (3 matches)"
    assert "task 1a2b stopped: OutOfMemoryError (exit 137)" in message.text
    for fact in (
        "Rule: ecs-task-oom",
        "Severity: HIGH",
        "Matches: 3",
        "First seen: 2026-11-28 09:00:00 UTC",
        "Key: prod / web",
        "Tags: ecs",
        "State: ALARM",
        "Evidence (1 of 1 records)",
        "message=OOMKilled",
        "time=2026-11-28 09:00:05 UTC",
        "Console: https://ecsguard.example.com/alerts/a%2F1",
    ):
        assert fact in message.text, fact
    assert message.json["kind"] == "alert"
    assert message.json["alerts"][0]["url"] == "https://ecsguard.example.com/alerts/a%2F1"
    assert message.json["alerts"][0]["evidence"] == [
        {"time": "2026-11-28 09:00:05 UTC", "message": "OOMKilled"}
    ]
    assert message.alert_ids == ("a/1",)


def test_japanese_alert() -> None:
    message = render(make_alert(severity="critical"), "ja", CONSOLE)
    assert message.subject == "[緊急] A task ran out of memory"
    assert "ルール: ecs-task-oom" in message.text
    assert "重大度: 緊急" in message.text
    assert "初回検知: 2026-11-28 09:00:00 UTC" in message.text
    assert "コンソール: https://ecsguard.example.com/alerts/a1" in message.text
    assert message.html is not None and "重大度" in message.html
    assert message.json["lang"] == "ja"


def test_log_text_is_escaped_in_html_and_cut() -> None:
    hostile = '<script>alert("x")</script>' + "A" * 1000
    alert = make_alert(
        summary="<b>bold</b> & more",
        evidence=[{"message": hostile, "n": i} for i in range(10)],
    )
    message = render(alert, "en", 'https://c.example/"><x')
    assert message.html is not None
    assert "<script>" not in message.html and "&lt;script&gt;" in message.html
    assert (
        "<b>bold</b>" not in message.html and "&lt;b&gt;bold&lt;/b&gt; &amp; more" in message.html
    )
    assert '"><x' not in message.html  # the link is escaped too
    evidence = message.json["alerts"][0]["evidence"]
    assert len(evidence) == MAX_EVIDENCE_RECORDS
    assert len(evidence[0]["message"]) == MAX_VALUE_CHARS
    assert evidence[0]["message"].endswith("…")
    assert message.json["alerts"][0]["evidence_total"] == 10
    assert f"Evidence ({MAX_EVIDENCE_RECORDS} of 10 records)" in message.text


def test_group_of_one_rule_and_key() -> None:
    alerts = [make_alert(f"a{i}", summary=f"task {i} stopped") for i in range(5)]
    en = render_group(alerts, "en", CONSOLE)
    assert en.subject == "[HIGH] 5 alerts: A task ran out of memory"
    assert en.json["kind"] == "group" and en.json["alert_count"] == 5
    assert all(f"task {i} stopped" in en.text for i in range(5))
    ja = render_group(alerts, "ja", CONSOLE)
    assert ja.subject == "[高] 5 件のアラート: A task ran out of memory"
    assert render_group(alerts[:1], "en").json["kind"] == "alert"


def test_digest_lists_at_most_a_screenful_and_takes_the_worst_severity() -> None:
    alerts = [make_alert(f"a{i}", severity="low") for i in range(MAX_LISTED_ALERTS + 5)]
    alerts.append(make_alert("worst", severity="critical", rule_id="root-usage"))
    message = render_digest(alerts, "en")
    assert message.subject == f"[CRITICAL] {len(alerts)} alerts held back by throttling"
    assert "... and 6 more" in message.text
    assert len(message.json["alerts"]) == MAX_LISTED_ALERTS
    assert message.json["alert_count"] == len(alerts)
    assert "Console" not in message.text  # no console URL configured: no link
    ja = render_digest(alerts, "ja")
    assert ja.subject.startswith("[緊急] スロットリングで保留された")


def test_message_round_trips_through_json() -> None:
    message = render(make_alert(), "ja", CONSOLE)
    assert Message.from_json(message.to_json()) == message


def test_test_alert_and_urls() -> None:
    alert = sample_alert("ops-mail", "ja", datetime(2026, 1, 1, tzinfo=UTC))
    assert "ops-mail" in alert.summary and alert.rule_id == "ecsguard.test"
    assert alert_url("", "x") == ""
    assert alert_url("http://h/", "a b") == "http://h/alerts/a%20b"


def test_unknown_language_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown language"):
        render(make_alert(), "fr", CONSOLE)  # type: ignore[arg-type]
