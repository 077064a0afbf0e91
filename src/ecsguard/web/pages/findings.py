"""Findings: the audit of the latest snapshot, filtered, with mutes.

Filters come from the query string: severity, pillar, status (default FAIL; `all` for every
status), check (id or glob), resource (text in the ARN), region. Counts by severity cover the
findings every other filter keeps, so they tell what choosing a severity would show.

Mutes are stored by the console (`ecsguard.web.mutes`) and applied through the CLI's
`Mutelist`, so a finding the console shows as MUTED is one `ecsguard audit --mutelist` with the
exported file (`GET /findings/mutelist.yaml`) mutes too.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from fnmatch import fnmatchcase
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ecsguard.core.models import Finding, Pillar, Severity, Status
from ecsguard.web import estate
from ecsguard.web.auth import ApiError
from ecsguard.web.console import Action, Reader
from ecsguard.web.mutes import MAX_REASON, MuteStore, mutelist_yaml
from ecsguard.web.page import PAGES, Page, PageContext

#: rows the page lists at most (the counts cover them all)
DEFAULT_LIMIT = 500
STATUSES = [s.value for s in Status]


def _matches(finding: Finding, params: dict[str, str], *, severity: bool = True) -> bool:
    status = params.get("status") or Status.FAIL.value
    if status != "all" and finding.status.value != status:
        return False
    if severity and params.get("severity") and finding.severity.value != params["severity"]:
        return False
    if params.get("pillar") and finding.pillar.value != params["pillar"]:
        return False
    if params.get("region") and finding.region != params["region"]:
        return False
    check = params.get("check", "").strip()
    if check and not (check in finding.check_id or fnmatchcase(finding.check_id, check)):
        return False
    resource = params.get("resource", "").strip().lower()
    return not resource or resource in finding.resource_arn.lower()


def _row(finding: Finding, mute: dict[str, Any] | None) -> dict[str, Any]:
    row = finding.model_dump(mode="json")
    row["mute"] = mute if finding.status is Status.MUTED else None
    return row


def data(ctx: PageContext) -> dict[str, Any]:
    params = ctx.params
    found = estate.latest(ctx.console.data_dir)
    status = params.get("status") or Status.FAIL.value
    filters = {
        key: params.get(key, "") for key in ("severity", "pillar", "check", "resource", "region")
    }
    filters["status"] = status
    if found is None:
        return {"snapshot": None, "filters": filters, "findings": [], "counts": {}}
    if status != "all" and status not in STATUSES:
        raise ApiError(400, f"unknown status {status!r}; choose all or one of {STATUSES}")
    try:
        limit = int(params.get("limit") or DEFAULT_LIMIT)
    except ValueError:
        raise ApiError(400, "limit must be a whole number") from None
    mutes = MuteStore(ctx.console.data_dir).all()
    findings = estate.findings_with_mutes(found, mutes, ctx.lang)
    by_key = {(m.check_id, m.resource_arn): m.to_dict() for m in mutes}
    kept = [f for f in findings if _matches(f, params, severity=False)]
    counts = Counter(f.severity.value for f in kept)
    shown = [f for f in kept if _matches(f, params)]
    shown.sort(key=lambda f: (f.severity.rank, f.check_id, f.resource_arn))
    return {
        "snapshot": found.summary(),
        "filters": filters,
        "options": {
            "severity": [s.value for s in Severity],
            "pillar": [p.value for p in Pillar],
            "status": ["all", *STATUSES],
            "region": sorted({f.region for f in findings}),
        },
        "counts": {s.value: counts.get(s.value, 0) for s in Severity},
        "total": len(shown),
        "findings": [
            _row(f, by_key.get((f.check_id, f.resource_arn))) for f in shown[: max(limit, 0)]
        ],
        "mutes": len(mutes),
    }


# -- actions ---------------------------------------------------------------------------------------

router = APIRouter()


async def _body(request: Request) -> tuple[dict[str, str], bool]:
    """The request's fields, and whether it came from the page's form (answered with a
    redirect back) rather than as JSON (answered with JSON)."""
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        form = await request.form()
        return {k: str(v) for k, v in form.items()}, True
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(400, "send a JSON object: {check_id, resource_arn, reason}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "send a JSON object: {check_id, resource_arn, reason}")
    return {k: "" if v is None else str(v) for k, v in body.items()}, False


def _key(fields: dict[str, str]) -> tuple[str, str]:
    """(check_id, resource_arn): the finding a mute is about."""
    key = (fields.get("check_id", "").strip(), fields.get("resource_arn", "").strip())
    for name, value in zip(("check_id", "resource_arn"), key, strict=True):
        if not value or len(value) > 2048:
            raise ApiError(400, f"{name} is missing or too long: name the finding to mute")
    return key


def _back(fields: dict[str, str]) -> str:
    target = fields.get("next", "")
    # only this page: the form's `next` must not send the browser elsewhere
    return target if target.startswith("/findings") and not target.startswith("//") else "/findings"


@router.post("/findings/mute")
async def mute(request: Request, ctx: Action) -> Response:
    ctx.require("operator")
    fields, from_form = await _body(request)
    key = _key(fields)
    reason = fields.get("reason", "").strip()
    if not reason:
        raise ApiError(400, "a reason is required: say why this finding is accepted")
    if len(reason) > MAX_REASON:
        raise ApiError(400, f"the reason is longer than {MAX_REASON} characters")
    expires: dt.date | None = None
    if fields.get("expires", "").strip():
        try:
            expires = dt.date.fromisoformat(fields["expires"].strip())
        except ValueError:
            raise ApiError(400, "expires must be a date, YYYY-MM-DD") from None
        if expires < dt.datetime.now(dt.UTC).date():
            raise ApiError(400, f"expires {expires} is in the past")
    store = MuteStore(ctx.console.data_dir)
    saved = await run_in_threadpool(store.mute, *key, reason, expires, ctx.user.name)
    if from_form:
        return RedirectResponse(_back(fields), status_code=303)
    return JSONResponse({"muted": saved.to_dict()})


@router.post("/findings/unmute")
async def unmute(request: Request, ctx: Action) -> Response:
    ctx.require("operator")
    fields, from_form = await _body(request)
    key = _key(fields)
    removed = await run_in_threadpool(MuteStore(ctx.console.data_dir).unmute, *key)
    if not removed:
        raise ApiError(404, f"no console mute of {key[0]} on {key[1]}")
    if from_form:
        return RedirectResponse(_back(fields), status_code=303)
    return JSONResponse({"unmuted": {"check_id": key[0], "resource_arn": key[1]}})


@router.get("/findings/mutelist.yaml")
async def export(ctx: Reader) -> Response:
    mutes = await run_in_threadpool(MuteStore(ctx.console.data_dir).all)
    return Response(
        mutelist_yaml(mutes),
        media_type="application/yaml; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="mutelist.yaml"',
            "Cache-Control": "no-store",
        },
    )


PAGES.add(
    "findings",
    Page(
        name="findings",
        order=30,
        data=data,
        router=router,
        words={
            "en": {
                "title": "Findings",
                "snapshot": "Snapshot {name} of account {account}, collected {at}",
                "severity": "Severity",
                "pillar": "Pillar",
                "status": "Status",
                "check": "Check",
                "resource": "Resource",
                "region": "Region",
                "any": "any",
                "shown": "{shown} of {total} findings shown",
                "evidence": "Evidence",
                "remediation": "Remediation",
                "controls": "Controls",
                "mute": "Mute",
                "mute_reason": "Reason (required)",
                "mute_expires": "Expires (optional)",
                "mute_save": "Mute this finding",
                "unmute": "Unmute",
                "muted_by": "Muted by {user} at {at}: {reason}",
                "until": "until {date}",
                "download": "Download mutes as mutelist YAML",
                "download_hint": "for ecsguard audit --mutelist FILE",
            },
            "ja": {
                "title": "検出事項",
                "snapshot": "スナップショット {name} (アカウント {account}、{at} に収集)",
                "severity": "重大度",
                "pillar": "柱",
                "status": "状態",
                "check": "チェック",
                "resource": "リソース",
                "region": "リージョン",
                "any": "すべて",
                "shown": "{total} 件中 {shown} 件を表示",
                "evidence": "根拠",
                "remediation": "修正方法",
                "controls": "対応する管理策",
                "mute": "ミュート",
                "mute_reason": "理由 (必須)",
                "mute_expires": "有効期限 (任意)",
                "mute_save": "この検出事項をミュート",
                "unmute": "ミュート解除",
                "muted_by": "{user} が {at} にミュート: {reason}",
                "until": "{date} まで",
                "download": "ミュートを mutelist YAML としてダウンロード",
                "download_hint": "ecsguard audit --mutelist FILE で使用",
            },
        },
    ),
)
