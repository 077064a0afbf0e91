"""Live tail: new log records as the server accepts them, over `GET /api/tail` (server-sent
events; the browser's EventSource carries the session cookie and resends Last-Event-ID itself
after a dropped connection, so the stream resumes without a gap).

The page's data (its JSON twin) is the tail's settings (filter pattern, cluster, service, how far
back to start, the terms to highlight, the stream's URL) and the server's tail figures. Starting
back (`since`) shows the stored lines of that stretch first, then the live ones. A bad filter
pattern (or duration) is reported with the compiler's message and no stream is opened.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from ecsguard.core.errors import UserError
from ecsguard.logs.query.filter_pattern import FilterPattern, compile_pattern
from ecsguard.logs.query.filter_pattern import tree as nodes
from ecsguard.logs.query.timerange import parse_duration
from ecsguard.web.page import PAGES, Page, PageContext

#: lines kept on the page; older ones leave the DOM
MAX_LINES = 2000
#: how far back the page may start (stored lines first, then live ones); "" is live only
SINCE_CHOICES = ("", "5m", "15m", "1h", "6h")
#: clusters and services offered in the filter boxes: those seen in this recent window
KNOWN_WINDOW = timedelta(hours=1)
KNOWN_LIMIT = 200


def highlight_terms(pattern: FilterPattern | None) -> list[str]:
    """The words a matching line contains: required terms and phrases, or the ?alternatives
    (excluded terms never occur in a shown line; JSON and delimited patterns name fields)."""
    if pattern is None or not isinstance(pattern.tree, nodes.Terms):
        return []
    terms = pattern.tree.required or pattern.tree.alternatives
    return [term for term in terms if term]


def _known(ctx: PageContext) -> dict[str, list[str]]:
    """Clusters and services of the last hour, for the filter boxes' suggestions."""
    service = ctx.app_state.service
    con = service.connect()
    try:
        rows = con.execute(
            "SELECT DISTINCT cluster, service FROM logs WHERE time >= ? LIMIT ?",
            [datetime.now(UTC) - KNOWN_WINDOW, KNOWN_LIMIT],
        ).fetchall()
    finally:
        con.close()
    return {
        "clusters": sorted({c for c, _ in rows if c}),
        "services": sorted({s for _, s in rows if s}),
    }


def _since_choices(ctx: PageContext, since: str) -> list[dict[str, str]]:
    """The start menu's entries; a stretch typed into the address (?since=30m) under its own
    text."""
    choices = [{"value": c, "label": ctx.t(f"since_{c}")} for c in SINCE_CHOICES]
    if since not in SINCE_CHOICES:
        choices.append({"value": since, "label": since})
    return choices


def data(ctx: PageContext) -> dict[str, Any]:
    params = ctx.params
    names = ("filter", "cluster", "service", "since")
    wanted = {name: params.get(name, "").strip() for name in names}
    since = wanted["since"]
    settings: dict[str, Any] = {
        **wanted,
        "max_lines": MAX_LINES,
        "since_choices": _since_choices(ctx, since),
        "highlight": [],
        "stream": None,
    }
    error = None
    try:
        pattern = compile_pattern(wanted["filter"]) if wanted["filter"] else None
        if wanted["since"]:
            parse_duration(wanted["since"])
        settings["highlight"] = highlight_terms(pattern)
        query = {k: v for k, v in wanted.items() if v}
        if wanted["since"]:  # as many stored lines as the page keeps
            query["limit"] = str(MAX_LINES)
        settings["stream"] = "/api/tail?" + urlencode(query)
    except UserError as err:
        error = str(err)
    hub = ctx.app_state.hub
    first, last = hub.first_seq, hub.last_seq
    stats = {
        "run": hub.run,
        "subscribers": hub.subscribers,
        "capacity": hub.capacity,
        "first_seq": first,
        "last_seq": last,
        "buffered": last - first + 1,
        "records_since_start": ctx.app_state.service.stats.records.get("logs", 0),
    }
    body: dict[str, Any] = {"settings": settings, "stats": stats, "known": _known(ctx)}
    if error is not None:
        body["error"] = error
    return body


PAGES.add(
    "tail",
    Page(
        name="tail",
        order=20,
        data=data,
        script=True,
        words={
            "en": {
                "title": "Live tail",
                "filter": "Filter pattern",
                "filter_placeholder": "ERROR -healthcheck",
                "cluster": "Cluster",
                "service": "Service",
                "since": "Start",
                "since_": "now",
                "since_5m": "5 minutes ago",
                "since_15m": "15 minutes ago",
                "since_1h": "1 hour ago",
                "since_6h": "6 hours ago",
                "history": "{n} stored lines above; new lines follow",
                "any": "any",
                "apply": "Apply",
                "pause": "Pause",
                "resume": "Resume",
                "clear": "Clear",
                "connecting": "Connecting…",
                "live": "Live",
                "reconnecting": "Connection lost; reconnecting…",
                "closed": "The server refused the stream; reload the page.",
                "paused": "Paused: {n} new lines waiting",
                "missed": "{n} records were missed: {reason}",
                "missed_unknown": "Records may have been missed: {reason}",
                "kept": "The newest {n} lines stay on the page.",
                "buffer": "Server buffer: {buffered} of {capacity} records, {subscribers} watching",
            },
            "ja": {
                "title": "ライブテイル",
                "filter": "フィルターパターン",
                "filter_placeholder": "ERROR -healthcheck",
                "cluster": "クラスター",
                "service": "サービス",
                "since": "開始",
                "since_": "今から",
                "since_5m": "5 分前から",
                "since_15m": "15 分前から",
                "since_1h": "1 時間前から",
                "since_6h": "6 時間前から",
                "history": "上は保存済みの {n} 行です。以降は新しい行です",
                "any": "すべて",
                "apply": "適用",
                "pause": "一時停止",
                "resume": "再開",
                "clear": "消去",
                "connecting": "接続中…",
                "live": "受信中",
                "reconnecting": "接続が切れました。再接続しています…",
                "closed": "サーバーがストリームを拒否しました。ページを再読み込みしてください。",
                "paused": "一時停止中: 新しい行 {n} 件が待機中",
                "missed": "{n} 件のレコードを取りこぼしました: {reason}",
                "missed_unknown": "レコードを取りこぼした可能性があります: {reason}",
                "kept": "最新の {n} 行をページに保持します。",
                "buffer": (
                    "サーバーのバッファー: {buffered} / {capacity} 件、{subscribers} 人が閲覧中"
                ),
            },
        },
    ),
)
