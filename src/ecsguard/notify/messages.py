"""What a notification says: one alert, a group of alerts, or a throttling digest, in en or ja.

`render(alert, lang)` gives a `Message` with a subject, a plain-text body, an HTML body and a JSON
document (what webhooks, SNS and Lambda receive). Evidence records are untrusted log text: they are
cut to a few records and a few hundred characters per value, and escaped in HTML.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

import orjson

from ecsguard.core.models import Alert, Severity

Lang = Literal["en", "ja"]
Kind = Literal["alert", "group", "digest"]

MAX_EVIDENCE_RECORDS = 3
MAX_EVIDENCE_FIELDS = 12
MAX_VALUE_CHARS = 300
MAX_LISTED_ALERTS = 20  # a group or digest lists this many alerts, then "and N more"

_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "rule": "Rule",
        "severity": "Severity",
        "count": "Matches",
        "first_seen": "First seen",
        "last_seen": "Last seen",
        "key": "Key",
        "tags": "Tags",
        "state": "State",
        "evidence": "Evidence ({shown} of {total} records)",
        "console": "Console",
        "group": "{n} alerts: {title}",
        "digest": "{n} alerts held back by throttling",
        "more": "... and {n} more",
        "matches_suffix": " ({n} matches)",
        "test_title": "ecsguard test notification",
        "test_summary": "This is a test: the channel {channel} works.",
    },
    "ja": {
        "rule": "ルール",
        "severity": "重大度",
        "count": "検知件数",
        "first_seen": "初回検知",
        "last_seen": "最終検知",
        "key": "キー",
        "tags": "タグ",
        "state": "状態",
        "evidence": "エビデンス({total} 件中 {shown} 件)",
        "console": "コンソール",
        "group": "{n} 件のアラート: {title}",
        "digest": "スロットリングで保留された {n} 件のアラート",
        "more": "... ほか {n} 件",
        "matches_suffix": "({n} 件)",
        "test_title": "ecsguard テスト通知",
        "test_summary": "テスト送信です: チャネル {channel} は正常に動作しています。",
    },
}

_SEVERITY: dict[str, dict[Severity, str]] = {
    "en": {s: s.value.upper() for s in Severity},
    "ja": {
        Severity.CRITICAL: "緊急",
        Severity.HIGH: "高",
        Severity.MEDIUM: "中",
        Severity.LOW: "低",
        Severity.INFO: "情報",
    },
}


@dataclass(frozen=True)
class Message:
    """A rendered notification; `json` is the machine-readable form of the same content."""

    subject: str
    text: str
    html: str | None
    json: dict[str, Any]
    severity: Severity = Severity.INFO
    alert_ids: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "subject": self.subject,
                "text": self.text,
                "html": self.html,
                "json": self.json,
                "severity": self.severity.value,
                "alert_ids": list(self.alert_ids),
            }
        )

    @classmethod
    def from_json(cls, data: bytes | str) -> Message:
        raw = orjson.loads(data)
        return cls(
            subject=raw["subject"],
            text=raw["text"],
            html=raw.get("html"),
            json=raw["json"],
            severity=Severity(raw.get("severity", "info")),
            alert_ids=tuple(raw.get("alert_ids", ())),
        )


def render(alert: Alert, lang: Lang = "en", console_url: str = "") -> Message:
    """One alert as a message."""
    return _render([alert], "alert", lang, console_url)


def render_group(alerts: Sequence[Alert], lang: Lang = "en", console_url: str = "") -> Message:
    """Alerts of one rule and key that arrived within the group window: one message."""
    return _render(alerts, "group" if len(alerts) > 1 else "alert", lang, console_url)


def render_digest(alerts: Sequence[Alert], lang: Lang = "en", console_url: str = "") -> Message:
    """Alerts a throttled channel held back, in one message."""
    return _render(alerts, "digest", lang, console_url)


def alert_url(console_url: str, alert_id: str) -> str:
    """The console page of an alert, or "" when no console URL is configured."""
    if not console_url:
        return ""
    return f"{console_url.rstrip('/')}/alerts/{quote(alert_id, safe='')}"


def sample_alert(channel: str, lang: Lang = "en", now: datetime | None = None) -> Alert:
    """The alert a "test send" delivers."""
    now = now or datetime.now(UTC)
    words = _TEXT[lang]
    return Alert(
        id=f"test-{channel}-{int(now.timestamp())}",
        rule_id="ecsguard.test",
        title=words["test_title"],
        severity=Severity.INFO,
        summary=words["test_summary"].format(channel=channel),
        first_seen=now,
        last_seen=now,
        tags=["test"],
    )


# -- rendering --------------------------------------------------------------------------------
def _render(alerts: Sequence[Alert], kind: Kind, lang: Lang, console_url: str) -> Message:
    if not alerts:
        raise ValueError("nothing to render")
    if lang not in _TEXT:
        raise ValueError(f"unknown language {lang!r}")
    words = _TEXT[lang]
    first = alerts[0]
    severity = min((a.severity for a in alerts), key=lambda s: s.rank)  # the worst one
    label = _SEVERITY[lang][severity]
    if kind == "alert":
        headline = first.title
        if first.count > 1:
            headline += words["matches_suffix"].format(n=first.count)
    elif kind == "group":
        headline = words["group"].format(n=len(alerts), title=first.title)
    else:
        headline = words["digest"].format(n=len(alerts))
    subject = _one_line(f"[{label}] {headline}", 200)
    if kind == "alert":
        text = _alert_text(first, lang, console_url)
        body_html = _alert_html(first, lang, console_url)
    else:
        text = _list_text(alerts, lang, console_url)
        body_html = _list_html(alerts, lang, console_url)
    document = {
        "kind": kind,
        "lang": lang,
        "subject": subject,
        "severity": severity.value,
        "alert_count": len(alerts),
        "alerts": [_alert_json(a, console_url) for a in alerts[:MAX_LISTED_ALERTS]],
    }
    return Message(
        subject=subject,
        text=text,
        html=f"<html><body>{body_html}</body></html>",
        json=document,
        severity=severity,
        alert_ids=tuple(a.id for a in alerts),
    )


def _facts(alert: Alert, lang: Lang) -> list[tuple[str, str]]:
    words = _TEXT[lang]
    facts = [
        (words["rule"], alert.rule_id),
        (words["severity"], _SEVERITY[lang][alert.severity]),
        (words["count"], str(alert.count)),
        (words["first_seen"], _time(alert.first_seen)),
        (words["last_seen"], _time(alert.last_seen)),
    ]
    if alert.key:
        facts.append((words["key"], _cut(" / ".join(_plain(v) for v in alert.key))))
    if alert.tags:
        facts.append((words["tags"], ", ".join(alert.tags)))
    if alert.state:
        facts.append((words["state"], alert.state))
    return facts


def _alert_text(alert: Alert, lang: Lang, console_url: str) -> str:
    words = _TEXT[lang]
    lines = [_one_line(alert.summary, 1000), ""]
    lines += [f"{name}: {value}" for name, value in _facts(alert, lang)]
    records = _evidence(alert)
    if records:
        lines += ["", words["evidence"].format(shown=len(records), total=len(alert.evidence))]
        for number, record in enumerate(records, 1):
            lines.append(f"  {number}. " + "  ".join(f"{k}={v}" for k, v in record.items()))
    url = alert_url(console_url, alert.id)
    if url:
        lines += ["", f"{words['console']}: {url}"]
    return "\n".join(lines) + "\n"


def _alert_html(alert: Alert, lang: Lang, console_url: str) -> str:
    words = _TEXT[lang]
    esc = html.escape
    parts = [f"<p>{esc(alert.summary)}</p>", "<table>"]
    parts += [f"<tr><th>{esc(n)}</th><td>{esc(v)}</td></tr>" for n, v in _facts(alert, lang)]
    parts.append("</table>")
    records = _evidence(alert)
    if records:
        caption = words["evidence"].format(shown=len(records), total=len(alert.evidence))
        parts.append(f"<h3>{esc(caption)}</h3>")
        for record in records:
            body = "\n".join(f"{k}: {v}" for k, v in record.items())
            parts.append(f"<pre>{esc(body)}</pre>")
    url = alert_url(console_url, alert.id)
    if url:
        parts.append(f'<p><a href="{esc(url)}">{esc(words["console"])}</a></p>')
    return "".join(parts)


def _list_text(alerts: Sequence[Alert], lang: Lang, console_url: str) -> str:
    words = _TEXT[lang]
    lines = []
    for alert in alerts[:MAX_LISTED_ALERTS]:
        label = _SEVERITY[lang][alert.severity]
        line = f"- [{label}] {alert.rule_id}: {_one_line(alert.summary, 300)}"
        line += f" ({_time(alert.last_seen)})"
        url = alert_url(console_url, alert.id)
        lines.append(f"{line}\n  {url}" if url else line)
    if len(alerts) > MAX_LISTED_ALERTS:
        lines.append(words["more"].format(n=len(alerts) - MAX_LISTED_ALERTS))
    # the newest alert's details, so one message is enough to start looking
    lines += ["", _alert_text(alerts[-1], lang, console_url)]
    return "\n".join(lines)


def _list_html(alerts: Sequence[Alert], lang: Lang, console_url: str) -> str:
    words = _TEXT[lang]
    esc = html.escape
    items = []
    for alert in alerts[:MAX_LISTED_ALERTS]:
        label = _SEVERITY[lang][alert.severity]
        text = f"[{label}] {alert.rule_id}: {_one_line(alert.summary, 300)}"
        url = alert_url(console_url, alert.id)
        link = f' <a href="{esc(url)}">{esc(words["console"])}</a>' if url else ""
        items.append(f"<li>{esc(text)} ({esc(_time(alert.last_seen))}){link}</li>")
    if len(alerts) > MAX_LISTED_ALERTS:
        items.append(f"<li>{esc(words['more'].format(n=len(alerts) - MAX_LISTED_ALERTS))}</li>")
    return f"<ul>{''.join(items)}</ul><hr>" + _alert_html(alerts[-1], lang, console_url)


def _alert_json(alert: Alert, console_url: str) -> dict[str, Any]:
    data = alert.model_dump(mode="json", exclude={"evidence"})
    data["evidence"] = _evidence(alert)
    data["evidence_total"] = len(alert.evidence)
    data["url"] = alert_url(console_url, alert.id)
    return data


def _evidence(alert: Alert) -> list[dict[str, str]]:
    """The first few records, each value flattened to one cut string."""
    records = []
    for record in alert.evidence[:MAX_EVIDENCE_RECORDS]:
        items = list(record.items())
        shown = {str(k): _cut(_plain(v)) for k, v in items[:MAX_EVIDENCE_FIELDS] if v is not None}
        if len(items) > MAX_EVIDENCE_FIELDS:
            shown["…"] = f"+{len(items) - MAX_EVIDENCE_FIELDS}"
        records.append(shown)
    return records


def _plain(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return _time(value)
    try:
        return orjson.dumps(value, default=str).decode()
    except TypeError:
        return str(value)


def _cut(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _one_line(text: str, limit: int) -> str:
    return _cut(" ".join(text.split()), limit)


def _time(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")
