"""Settings: the server's settings, the notification channels (targets with their secrets
masked, a test send) and the console's users.

Every role sees the settings; admins test-send and manage users. No secret is ever shown: the
token is a yes/no, a channel is its `describe()` line (built to leave secrets out: URL paths,
queries and passwords masked), and a failed test send's error is scrubbed by the dispatcher.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from ecsguard.core.errors import UserError
from ecsguard.web.auth import ApiError
from ecsguard.web.console import Action
from ecsguard.web.page import PAGES, Page, PageContext
from ecsguard.web.pages.alarms import body_of
from ecsguard.web.users import ROLES


def _server(ctx: PageContext) -> dict[str, Any]:
    settings = ctx.app_state.settings
    detection = ctx.app_state.detection
    return {
        "host": settings.host,
        # port 0 asks for any free port: the one this request came in on is the real one
        "port": settings.port or ctx.request.url.port,
        "tls": settings.tls_cert is not None,
        "token": settings.token is not None,
        "forward_port": settings.forward_port or None,
        "max_body": settings.max_body,
        "data_dir": str(ctx.app_state.service.data_dir),
        "rules": len(detection.rules) if detection is not None else 0,
        "notify": ctx.app_state.dispatcher is not None,
    }


def _channels(ctx: PageContext) -> list[dict[str, Any]] | None:
    dispatcher = ctx.app_state.dispatcher
    if dispatcher is None:
        return None
    config = dispatcher.config
    return [
        {
            "name": name,
            "type": info["type"],
            "target": info["description"],
            "lang": config.channel_lang(name),
            "max_per_minute": config.channels[name].max_per_minute,
            "failing": info["failing"],
            "messages": {k: v for k, v in info.items() if isinstance(v, int) and k != "failing"},
        }
        for name, info in sorted(dispatcher.stats().items())
    ]


def data(ctx: PageContext) -> dict[str, Any]:
    users = ctx.console.users
    return {
        "server": _server(ctx),
        "channels": _channels(ctx),
        "users": [{"name": u.name, "role": u.role} for u in users.users()]
        if ctx.user.may("admin")
        else None,
        "roles": list(ROLES),
    }


# -- actions (admin) ---------------------------------------------------------------------------

router = APIRouter()


def _text(body: dict[str, Any], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value:
        raise ApiError(400, f"`{field}` is required")
    return value


@router.post("/settings/test-send")
async def send_test(ctx: Action) -> dict[str, Any]:
    ctx.require("admin")
    dispatcher = ctx.app_state.dispatcher
    if dispatcher is None:
        raise ApiError(
            409, "no notification channels are configured: start serve with --notify FILE"
        )
    channel = _text(await body_of(ctx), "channel")
    try:
        result = await run_in_threadpool(dispatcher.test_send, channel)
    except UserError as err:
        raise ApiError(400, str(err)) from None
    return {
        "channel": result.channel,
        "ok": result.ok,
        "error": result.error,
        "seconds": round(result.seconds, 3),
        "target": result.description,
    }


@router.post("/settings/users/add")
async def add_user(ctx: Action) -> dict[str, Any]:
    ctx.require("admin")
    body = await body_of(ctx)
    name, role, password = _text(body, "name"), _text(body, "role"), _text(body, "password")
    try:
        user = await run_in_threadpool(ctx.console.users.add, name, password, role)
    except UserError as err:
        raise ApiError(400, str(err)) from None
    return {"user": {"name": user.name, "role": user.role}}


@router.post("/settings/users/role")
async def set_role(ctx: Action) -> dict[str, Any]:
    ctx.require("admin")
    body = await body_of(ctx)
    name, role = _text(body, "name"), _text(body, "role")
    if role not in ROLES:
        raise ApiError(400, f"unknown role {role!r}; choose one of: {', '.join(ROLES)}")
    try:
        await run_in_threadpool(ctx.console.users.set_role, name, role, keep_an_admin=True)
    except UserError as err:
        raise ApiError(400, str(err)) from None
    return {"user": {"name": name, "role": role}}


@router.post("/settings/users/remove")
async def remove_user(ctx: Action) -> dict[str, Any]:
    ctx.require("admin")
    name = _text(await body_of(ctx), "name")
    try:
        await run_in_threadpool(ctx.console.users.remove, name, keep_an_admin=True)
    except UserError as err:
        raise ApiError(400, str(err)) from None
    return {"removed": name}


PAGES.add(
    "settings",
    Page(
        name="settings",
        order=90,
        data=data,
        router=router,
        script=True,
        words={
            "en": {
                "title": "Settings",
                "server": "Server",
                "host": "Listening on",
                "tls": "TLS",
                "token": "Token required",
                "forward": "Forward protocol port",
                "max_body": "Largest request body (bytes)",
                "data_dir": "Data directory",
                "rules": "Detection rules",
                "yes": "yes",
                "no": "no",
                "off": "off",
                "channels": "Notification channels",
                "no_channels": "No notification channels: start the server with "
                "`--notify notify.yaml` (see docs/notify.md).",
                "name": "Name",
                "type": "Type",
                "target": "Target",
                "lang": "Language",
                "rate": "Per minute",
                "failing": "Failing sends",
                "messages": "Messages",
                "test_send": "Test send",
                "sent": "Sent in {seconds} s",
                "users": "Console users",
                "role": "Role",
                "password": "Password (10+ characters)",
                "add_user": "Add user",
                "set_role": "Set role",
                "remove": "Remove",
                "admin_only": "Only admins test channels and manage users.",
            },
            "ja": {
                "title": "設定",
                "server": "サーバー",
                "host": "待ち受けアドレス",
                "tls": "TLS",
                "token": "トークン必須",
                "forward": "forward プロトコルのポート",
                "max_body": "リクエスト本文の上限 (バイト)",
                "data_dir": "データディレクトリ",
                "rules": "検知ルール",
                "yes": "はい",
                "no": "いいえ",
                "off": "無効",
                "channels": "通知チャネル",
                "no_channels": "通知チャネルがありません: `--notify notify.yaml` を付けて"
                "サーバーを起動してください (docs/notify.md 参照)。",
                "name": "名前",
                "type": "種類",
                "target": "送信先",
                "lang": "言語",
                "rate": "毎分上限",
                "failing": "連続失敗",
                "messages": "メッセージ",
                "test_send": "テスト送信",
                "sent": "{seconds} 秒で送信しました",
                "users": "コンソールユーザー",
                "role": "ロール",
                "password": "パスワード (10 文字以上)",
                "add_user": "ユーザーを追加",
                "set_role": "ロールを変更",
                "remove": "削除",
                "admin_only": "チャネルのテストとユーザー管理は admin のみが行えます。",
            },
        },
    ),
)
