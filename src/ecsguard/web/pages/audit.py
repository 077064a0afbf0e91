"""Audit trail: who did what, when, from the CloudTrail records the server received.

Filters (query string): `principal` (text in the identity ARN or the whole userIdentity, so a
role name finds its sessions), `action` (an event name prefix such as `Stop`, a glob such as
`*Policy*`, either after `service:` as in `iam:Create*`), `resource` (text in the record's
resources or request parameters), the window (`since`, or `start`/`end`, as `ecsguard logs
query` takes them; default the last day) and `errors` (only failed calls). Rows come newest
first, at most `limit`. Each names the principal's IAM tier in the latest snapshot: ARNs match
exactly, an assumed-role session matches its role; `unknown` when the snapshot does not know it
(or there is no snapshot).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import orjson

from ecsguard.iam.render import tier_and_role
from ecsguard.logs.query.timerange import TimeRange
from ecsguard.web import estate
from ecsguard.web.auth import ApiError
from ecsguard.web.page import PAGES, Page, PageContext

DEFAULT_SINCE = "1d"
DEFAULT_LIMIT = 200
MAX_LIMIT = 2000
TOP = 10
UNKNOWN = "unknown"
#: longer windows are charted per day: a chart of a year in hours says nothing
HOURLY_UP_TO_DAYS = 14
_GLOB = set("*?[")

Filter = tuple[str, list[Any]]


def _action(text: str) -> list[Filter]:
    """`Stop`, `*Policy*`, `iam:Create*` as predicates on event_source / event_name."""
    service, _, name = text.rpartition(":")
    found: list[Filter] = []
    if service:
        found.append(("starts_with(event_source, ?)", [f"{service.lower()}."]))
    if name:
        if _GLOB & set(name):
            found.append(("event_name GLOB ?", [name]))
        else:
            found.append(("starts_with(lower(event_name), ?)", [name.lower()]))
    return found


def _where(params: dict[str, str], window: TimeRange) -> tuple[str, list[Any]]:
    parts: list[Filter] = [(window.sql("time"), [])]
    if principal := params.get("principal", "").strip().lower():
        parts.append(
            (
                "(contains(lower(coalesce(identity_arn, '')), ?)"
                " OR contains(lower(coalesce(user_identity, '')), ?))",
                [principal, principal],
            )
        )
    if action := params.get("action", "").strip():
        parts.extend(_action(action))
    if resource := params.get("resource", "").strip().lower():
        parts.append(
            (
                "contains(lower(coalesce(resources, '') || ' ' ||"
                " coalesce(request_parameters, '')), ?)",
                [resource],
            )
        )
    if params.get("errors") in ("1", "true", "on", "yes"):
        parts.append(("error_code IS NOT NULL", []))
    return " AND ".join(sql for sql, _ in parts), [v for _, values in parts for v in values]


def tier_lookup(analysis: dict[str, Any] | None) -> Callable[[str | None], str]:
    """ARN -> `tier (role)` of the snapshot's principal, or UNKNOWN (module docstring)."""
    exact: dict[str, str] = {}
    roles: dict[tuple[str, str], str] = {}
    for principal in (analysis or {}).get("principals", []):
        arn = str(principal.get("arn", ""))
        exact[arn] = tier_and_role(principal)
        parts = arn.split(":", 5)
        if principal.get("type") == "role" and len(parts) == 6:
            # a session ARN drops the role's path: match by account and name
            roles[(parts[4], parts[5].rsplit("/", 1)[-1])] = exact[arn]

    def lookup(arn: str | None) -> str:
        if not arn:
            return UNKNOWN
        if arn in exact:
            return exact[arn]
        parts = arn.split(":", 5)
        if len(parts) == 6 and parts[5].startswith("assumed-role/"):
            return roles.get((parts[4], parts[5].split("/")[1]), UNKNOWN)
        return UNKNOWN

    return lookup


def _resource(resources: str | None, request: str | None) -> str:
    """The ARNs the record names, else its request parameters (shortened)."""
    if resources:
        try:
            listed = orjson.loads(resources)
        except orjson.JSONDecodeError:
            listed = None
        if isinstance(listed, list):
            arns = [str(r.get("ARN") or r.get("arn")) for r in listed if isinstance(r, dict)]
            if any(arns):
                return ", ".join(a for a in arns if a and a != "None")
    text = request or ""
    return text if len(text) <= 300 else text[:299] + "…"


def _issuer(user_identity: str | None) -> str | None:
    """The role behind an assumed-role session (its full ARN, with the path)."""
    try:
        identity = orjson.loads(user_identity) if user_identity else None
    except orjson.JSONDecodeError:
        return None
    context = identity.get("sessionContext") if isinstance(identity, dict) else None
    issuer = context.get("sessionIssuer") if isinstance(context, dict) else None
    arn = issuer.get("arn") if isinstance(issuer, dict) else None
    return arn if isinstance(arn, str) else None


def _limit(params: dict[str, str]) -> int:
    try:
        limit = int(params.get("limit") or DEFAULT_LIMIT)
    except ValueError:
        raise ApiError(400, "limit must be a whole number") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def data(ctx: PageContext) -> dict[str, Any]:
    params = ctx.params
    window, limit = ctx.time_window(DEFAULT_SINCE), _limit(params)
    where, values = _where(params, window)
    found = estate.latest(ctx.console.data_dir)
    tier = tier_lookup(estate.iam_analysis(found) if found else None)
    bucket = "hour" if window.end - window.start <= timedelta(days=HOURLY_UP_TO_DAYS) else "day"
    con = ctx.app_state.service.connect()
    try:
        rows = con.execute(
            "SELECT time, identity_arn, identity_type, user_identity, event_source, event_name,"
            " aws_region, source_ip, user_agent, error_code, error_message, resources,"
            f" request_parameters FROM cloudtrail WHERE {where} ORDER BY time DESC LIMIT ?",
            [*values, limit],
        ).fetchall()
        total, errors = con.execute(
            f"SELECT count(*), count(error_code) FROM cloudtrail WHERE {where}", values
        ).fetchone() or (0, 0)
        buckets = con.execute(
            f"SELECT epoch(date_trunc('{bucket}', time)) AS b, count(*), count(error_code)"
            f" FROM cloudtrail WHERE {where} GROUP BY b ORDER BY b",
            values,
        ).fetchall()
        principals = con.execute(
            f"SELECT identity_arn, any_value(user_identity), count(*) AS n FROM cloudtrail"
            f" WHERE {where} GROUP BY identity_arn ORDER BY n DESC, identity_arn LIMIT {TOP}",
            values,
        ).fetchall()
        actions = con.execute(
            f"SELECT event_source, event_name, count(*) AS n FROM cloudtrail WHERE {where}"
            f" GROUP BY event_source, event_name ORDER BY n DESC, event_name LIMIT {TOP}",
            values,
        ).fetchall()
    finally:
        con.close()
    return {
        "filters": {
            key: params.get(key, "")
            for key in ("principal", "action", "resource", "since", "start", "end", "errors")
        }
        | {"limit": limit},
        "window": {"start": _iso(window.start), "end": _iso(window.end), "bucket": bucket},
        "snapshot": found.path.name if found else None,
        "total": total,
        "errors": errors,
        "events": [
            {
                "time": _iso(r[0]),
                "principal": r[1],
                "identity_type": r[2],
                "tier": tier(_issuer(r[3]) or r[1]),
                "event_source": r[4],
                "event_name": r[5],
                "region": r[6],
                "source_ip": r[7],
                "user_agent": r[8],
                "error_code": r[9],
                "error_message": r[10],
                "resource": _resource(r[11], r[12]),
            }
            for r in rows
        ],
        "chart": {
            "x": [int(b[0]) for b in buckets],
            "events": [b[1] for b in buckets],
            "errors": [b[2] for b in buckets],
        },
        "top_principals": [
            {"principal": arn, "tier": tier(_issuer(identity) or arn), "count": n}
            for arn, identity, n in principals
        ],
        "top_actions": [
            {"event_source": source, "event_name": name, "count": n} for source, name, n in actions
        ],
    }


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


PAGES.add(
    "audit",
    Page(
        name="audit",
        order=35,
        data=data,
        script=True,
        words={
            "en": {
                "title": "Audit trail",
                "principal": "Principal",
                "action": "Action",
                "action_hint": "StopLogging, Delete*, iam:Create*",
                "resource": "Resource",
                "since": "Last",
                "start": "From",
                "end": "To",
                "errors_only": "errors only",
                "limit": "Rows",
                "time": "Time",
                "tier": "IAM tier",
                "source_ip": "Source IP",
                "error": "Error",
                "summary": "{total} events in the window ({errors} failed); newest {shown} shown",
                "window": "{start} to {end}",
                "per_hour": "Events per hour",
                "per_day": "Events per day",
                "chart_hint": "Drag across the chart to narrow the window.",
                "top_principals": "Top principals",
                "top_actions": "Top actions",
                "count": "Events",
                "no_snapshot_tier": "No audit snapshot: IAM tiers show as unknown. "
                "Run `ecsguard inventory` or `ecsguard audit`.",
            },
            "ja": {
                "title": "監査証跡",
                "principal": "プリンシパル",
                "action": "アクション",
                "action_hint": "StopLogging, Delete*, iam:Create*",
                "resource": "リソース",
                "since": "直近",
                "start": "開始",
                "end": "終了",
                "errors_only": "エラーのみ",
                "limit": "行数",
                "time": "時刻",
                "tier": "IAM 層",
                "source_ip": "送信元 IP",
                "error": "エラー",
                "summary": "期間内のイベント {total} 件 (失敗 {errors} 件)。"
                "新しい順に {shown} 件を表示",
                "window": "{start} から {end}",
                "per_hour": "1 時間あたりのイベント数",
                "per_day": "1 日あたりのイベント数",
                "chart_hint": "グラフをドラッグすると期間を絞り込めます。",
                "top_principals": "上位のプリンシパル",
                "top_actions": "上位のアクション",
                "count": "件数",
                "no_snapshot_tier": "監査スナップショットがないため IAM 層は unknown と"
                "表示されます。"
                "`ecsguard inventory` または `ecsguard audit` を実行してください。",
            },
        },
    ),
)
