"""Alarms: the loaded rules with their alarm state, the alerts of a time range (listed and charted
per hour by severity), notification silences, and an event-pattern tester.

Actions (operator): POST /alarms/silence and /alarms/unsilence act on the notification
dispatcher's silences (409 when serve runs without --notify). Admins get a button that posts to
/api/rules/reload, which reads the rule files again. POST /alarms/test-pattern (viewer;
it changes nothing, but as a POST it carries the CSRF token) runs the code of
`ecsguard events test-event-pattern` on a pasted pattern and event.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from ecsguard.core.models import Alert, Severity
from ecsguard.web.auth import ApiError
from ecsguard.web.console import Action
from ecsguard.web.page import PAGES, Page, PageContext

DEFAULT_SINCE = "24h"
#: alerts read for one range (the chart counts them; the table lists the newest LISTED)
MAX_ALERTS = 5000
LISTED = 200
#: the chart spans the whole range up to this long
HISTORY_DAYS = 31
#: a silence lasts at least a minute and at most 30 days
MAX_SILENCE_MINUTES = 30 * 24 * 60
MAX_BODY = 256 * 1024
SILENCE_FIELDS = {"rule", "key", "minutes", "reason"}


# -- reading -----------------------------------------------------------------------------------


def rule_state(rule_type: str, saved: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a rule's persisted state says about its alarm: metric_alarm keeps one state and
    reason, anomaly_band one state per series (the worst one counts)."""
    if not saved:
        return None
    if rule_type == "metric_alarm":
        alarm = saved.get("alarm") or {}
        return {"state": alarm.get("state"), "reason": alarm.get("reason")}
    if rule_type == "anomaly_band":
        states = Counter(str(s.get("state")) for s in (saved.get("series") or {}).values())
        worst = next((s for s in ("ALARM", "INSUFFICIENT_DATA", "OK") if states.get(s)), None)
        return {"state": worst, "series": dict(states)}
    return None


def firing(ctx: PageContext) -> list[str]:
    """The ids of the alarm rules (metric_alarm, anomaly_band) now in ALARM."""
    return [r["id"] for r in _rules(ctx) or [] if (r["alarm"] or {}).get("state") == "ALARM"]


def _rules(ctx: PageContext) -> list[dict[str, Any]] | None:
    detection = ctx.app_state.detection
    if detection is None:
        return None
    return [
        {
            "id": rule.id,
            "title": rule.title,
            "type": rule.type,
            "severity": str(rule.severity),
            "tags": list(rule.tags),
            "source": rule.source,
            "error": detection.errors.get(rule.id),
            "alarm": rule_state(rule.type, detection.store.state(rule.id)),
        }
        for rule in sorted(detection.rules.values(), key=lambda r: r.id)
    ]


def _alerts(ctx: PageContext, start: datetime, end: datetime, rule: str | None) -> list[Alert]:
    from ecsguard.detect.engine import stored_alerts

    detection = ctx.app_state.detection
    running = detection.store if detection is not None else None
    found = stored_alerts(ctx.console.data_dir, running, since=start, rule=rule, limit=MAX_ALERTS)
    return [a for a in found if a.last_seen < end]


def per_hour(alerts: list[Alert], start: datetime, end: datetime) -> dict[str, Any]:
    """Alerts per hour (by last_seen) and severity over the range; a range longer than
    HISTORY_DAYS (one open to the past starts in 1970) starts at the first alert's hour. At least
    two hours, so that a chart has a width."""
    if not alerts:
        return {"x": [], "series": {}}
    hour = 3600
    if end - start > timedelta(days=HISTORY_DAYS):
        start = max(start, min(a.last_seen for a in alerts))
    last = (end.timestamp() - 1) // hour * hour
    first = min(start.timestamp() // hour * hour, last - hour)
    x = [int(first + i * hour) for i in range(int((last - first) // hour) + 1)]
    index = {moment: i for i, moment in enumerate(x)}
    series = {s.value: [0] * len(x) for s in Severity}
    for alert in alerts:
        slot = index.get(int(alert.last_seen.timestamp() // hour * hour))
        if slot is not None:
            series[str(alert.severity)][slot] += 1
    return {"x": x, "series": {k: v for k, v in series.items() if any(v)}}


def silence_dict(silence: Any) -> dict[str, Any]:
    return {
        "id": silence.id,
        "rule": silence.rule,
        "key": list(silence.key),
        "reason": silence.reason,
        "by": silence.by,
        "expires": silence.expires.isoformat(),
        "created": silence.created.isoformat(),
        # silences of the notify config file are removed there, not here
        "source": silence.source,
    }


def data(ctx: PageContext) -> dict[str, Any]:
    params = ctx.params
    window = ctx.time_window(DEFAULT_SINCE)
    start, end = window.start, window.end
    rule = params.get("rule") or None
    found = _alerts(ctx, start, end, rule)
    dispatcher = ctx.app_state.dispatcher
    silences = [silence_dict(s) for s in dispatcher.silences()] if dispatcher is not None else None
    rules = _rules(ctx)
    return {
        "range": {
            "since": params.get("since") or ("" if params.get("start") else DEFAULT_SINCE),
            "start": start.isoformat(),
            "end": end.isoformat(),
            "rule": rule,
        },
        "rules": rules,
        "alarms": len(firing(ctx)),
        "alerts": [a.model_dump(mode="json") for a in found[:LISTED]],
        "alert_count": len(found),
        "truncated": len(found) >= MAX_ALERTS,
        "by_severity": dict(Counter(str(a.severity) for a in found)),
        "history": per_hour(found, start, end),
        "notify": dispatcher is not None,
        "silences": silences,
        "reloadable": ctx.app_state.reloader is not None,
    }


# -- actions -----------------------------------------------------------------------------------

router = APIRouter()


async def body_of(ctx: PageContext) -> dict[str, Any]:
    """The request's JSON object, or 400."""
    raw = await ctx.request.body()
    if len(raw) > MAX_BODY:
        raise ApiError(400, f"the request is larger than {MAX_BODY // 1024} KiB")
    try:
        body = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError as err:
        raise ApiError(400, f"the request body is not JSON: {err}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return body


def _dispatcher(ctx: PageContext) -> Any:
    dispatcher = ctx.app_state.dispatcher
    if dispatcher is None:
        raise ApiError(
            409,
            "no notification channels are configured, so there is nothing to silence: "
            "start `ecsguard serve` with --notify notify.yaml",
        )
    return dispatcher


def _silence_args(body: dict[str, Any]) -> tuple[str, list[str], int, str]:
    unknown = sorted(set(body) - SILENCE_FIELDS)
    if unknown:
        raise ApiError(
            400,
            f"unknown field {unknown[0]!r}: a silence matches `rule` (a rule id glob) and "
            "`key` (globs against the alert's key, in order), for `minutes`, with a `reason`",
        )
    rule = body.get("rule", "*")
    if not isinstance(rule, str) or not rule.strip() or len(rule) > 200:
        raise ApiError(400, "`rule` must be a rule id or glob such as ecs-* (1-200 characters)")
    key = body.get("key", [])
    if not isinstance(key, list) or not all(isinstance(k, str) for k in key) or len(key) > 20:
        raise ApiError(400, "`key` must be a list of at most 20 texts (globs)")
    minutes = body.get("minutes")
    if isinstance(minutes, str) and minutes.strip().isdigit():
        minutes = int(minutes)
    if not isinstance(minutes, int) or isinstance(minutes, bool):
        raise ApiError(400, "`minutes` must be a whole number of minutes")
    if not 1 <= minutes <= MAX_SILENCE_MINUTES:
        raise ApiError(400, f"`minutes` must be between 1 and {MAX_SILENCE_MINUTES} (30 days)")
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 500:
        raise ApiError(400, "`reason` is required: say why (1-500 characters)")
    return rule.strip(), key, minutes, reason.strip()


@router.post("/alarms/silence")
async def silence(ctx: Action) -> dict[str, Any]:
    ctx.require("operator")
    dispatcher = _dispatcher(ctx)
    rule, key, minutes, reason = _silence_args(await body_of(ctx))
    expires = datetime.now(UTC) + timedelta(minutes=minutes)
    added = await run_in_threadpool(
        lambda: dispatcher.add_silence(
            rule=rule, key=key, reason=reason, by=ctx.user.name, expires=expires
        )
    )
    return {"silence": silence_dict(added)}


@router.post("/alarms/unsilence")
async def unsilence(ctx: Action) -> dict[str, Any]:
    ctx.require("operator")
    dispatcher = _dispatcher(ctx)
    silence_id = (await body_of(ctx)).get("id")
    if not isinstance(silence_id, str) or not silence_id:
        raise ApiError(400, "`id` is required: the id of the silence to end")
    configured = next((s for s in dispatcher.config.silences if s.id == silence_id), None)
    if configured is not None:
        raise ApiError(
            400, f"silence {silence_id} is defined in {configured.source}: remove it there"
        )
    if not await run_in_threadpool(dispatcher.remove_silence, silence_id):
        raise ApiError(404, f"no silence {silence_id!r}; the list shows the active ones")
    return {"removed": silence_id}


def _json_input(value: Any, what: str) -> Any:
    """A text area's JSON text (or an already parsed value)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ApiError(400, f"{what}: paste a JSON object")
    if not isinstance(value, str):
        return value
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as err:
        raise ApiError(400, f"{what} is not valid JSON: {err}") from None


def pattern_result(pattern_doc: Any, event: Any) -> dict[str, Any]:
    """{"Result": bool} as TestEventPattern answers, plus the fields that matched (true) or the
    reasons of the closest branch (false); 400 for an invalid pattern or event."""
    from ecsguard.detect.eventpattern import InvalidPatternError, compile_pattern
    from ecsguard.detect.eventpattern.flatten import flatten
    from ecsguard.detect.eventpattern.pattern import branch_matches

    try:
        pattern = compile_pattern(pattern_doc)
    except InvalidPatternError as err:
        raise ApiError(400, f"the event pattern is not valid: {err.problem}") from None
    if not isinstance(event, dict):
        raise ApiError(400, "the event is not valid: an event is a JSON object")
    if not pattern.matches(event):
        return {"Result": False, "matched": [], "reasons": pattern.explain(event)}
    leaves, arrayed = flatten(event, pattern.wanted)
    branch = next(b for b in pattern.branches if branch_matches(b, leaves, arrayed))
    matched = [
        {
            "field": test.path,
            "pattern": test.shown,
            "values": [v for v, _ in leaves.get(test.path, []) if test.accepts(v)][:5],
        }
        for test in branch
    ]
    return {"Result": True, "matched": matched, "reasons": []}


@router.post("/alarms/test-pattern")
async def check_pattern(ctx: Action) -> dict[str, Any]:
    body = await body_of(ctx)
    pattern = _json_input(body.get("pattern"), "the event pattern")
    event = _json_input(body.get("event"), "the event")
    return await run_in_threadpool(pattern_result, pattern, event)


PAGES.add(
    "alarms",
    Page(
        name="alarms",
        order=50,
        data=data,
        router=router,
        script=True,
        words={
            "en": {
                "title": "Alarms",
                "range": "Range",
                "since": "Last",
                "rule": "Rule",
                "all_rules": "all rules",
                "rules": "Rules",
                "reload_rules": "Reload rules",
                "reload_hint": "Read the rule files again (as SIGHUP does); with any invalid file "
                "the running rules stay.",
                "no_rules": "No rules are loaded: start the server with "
                "`ecsguard serve --rules FILE` (or --rules builtin:ecs-operations).",
                "id": "Id",
                "type": "Type",
                "severity": "Severity",
                "state": "State",
                "reason": "Reason",
                "error": "Error",
                "in_alarm": "{n} in ALARM",
                "alerts": "Alerts",
                "alert_count": "{n} alerts in the range",
                "truncated": "Only the newest {n} alerts are counted.",
                "history": "Alerts per hour by severity",
                "no_alerts": "No alerts in this range.",
                "last_seen": "Last seen",
                "count": "Count",
                "summary": "Summary",
                "key": "Key",
                "silence": "Silence",
                "silences": "Silences",
                "no_notify": "No notification channels are configured, so alerts are only "
                "stored: start the server with `--notify notify.yaml` to send and silence them.",
                "no_silences": "No active silences.",
                "by": "By",
                "why": "Why",
                "until": "Until",
                "end_silence": "End",
                "from_config": "from {source}",
                "silence_rule": "Rule id or glob",
                "silence_key": "Key globs (comma-separated, optional)",
                "minutes": "Minutes",
                "silence_reason": "Reason",
                "add_silence": "Silence",
                "silenced": "Silence {id} added.",
                "operator_only": "Silencing needs the operator role.",
                "test_pattern": "Test an event pattern against a pasted event",
                "pattern": "Event pattern (JSON)",
                "event": "Event (JSON)",
                "test": "Test",
                "result": "Result",
                "matched_fields": "Fields that matched",
                "reasons": "Why not",
            },
            "ja": {
                "title": "アラーム",
                "range": "期間",
                "since": "直近",
                "rule": "ルール",
                "all_rules": "すべてのルール",
                "rules": "ルール",
                "reload_rules": "ルールを再読み込み",
                "reload_hint": "ルールファイルを読み直します (SIGHUP と同じ)。不正なファイルが"
                "ひとつでもあれば、実行中のルールはそのまま残ります。",
                "no_rules": "ルールが読み込まれていません: `ecsguard serve --rules FILE` "
                "(または --rules builtin:ecs-operations) でサーバーを起動してください。",
                "id": "ID",
                "type": "種類",
                "severity": "重大度",
                "state": "状態",
                "reason": "理由",
                "error": "エラー",
                "in_alarm": "{n} 件が ALARM",
                "alerts": "アラート",
                "alert_count": "期間内のアラート {n} 件",
                "truncated": "最新の {n} 件のみ集計しています。",
                "history": "重大度別の 1 時間ごとのアラート数",
                "no_alerts": "この期間のアラートはありません。",
                "last_seen": "最終検出",
                "count": "件数",
                "summary": "概要",
                "key": "キー",
                "silence": "サイレンス",
                "silences": "サイレンス",
                "no_notify": "通知チャネルが設定されていないため、アラートは保存のみです: "
                "送信とサイレンスには `--notify notify.yaml` を付けてサーバーを起動してください。",
                "no_silences": "有効なサイレンスはありません。",
                "by": "設定者",
                "why": "理由",
                "until": "期限",
                "end_silence": "解除",
                "from_config": "{source} で定義",
                "silence_rule": "ルール ID またはグロブ",
                "silence_key": "キーのグロブ (カンマ区切り、任意)",
                "minutes": "分",
                "silence_reason": "理由",
                "add_silence": "サイレンス",
                "silenced": "サイレンス {id} を追加しました。",
                "operator_only": "サイレンスには operator ロールが必要です。",
                "test_pattern": "貼り付けたイベントでイベントパターンをテスト",
                "pattern": "イベントパターン (JSON)",
                "event": "イベント (JSON)",
                "test": "テスト",
                "result": "結果",
                "matched_fields": "一致したフィールド",
                "reasons": "一致しない理由",
            },
        },
    ),
)
