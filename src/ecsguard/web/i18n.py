"""The console's own words in English and Japanese, and the choice between them.

Pages bring their words (`Page.words`); these are the frame around them: navigation, login,
buttons. The language is the `ecsguard_lang` cookie set by the switch, else the first of
Accept-Language we speak, else English.
"""

from __future__ import annotations

from collections.abc import Callable

LANGS = ("en", "ja")

COMMON: dict[str, dict[str, str]] = {
    "en": {
        "app": "ecsguard",
        "login": "Log in",
        "logout": "Log out",
        "user": "User name",
        "password": "Password",
        "login_failed": "The user name or password is not right.",
        "login_throttled": "Too many failed logins. Try again in {seconds} s.",
        "login_expired": "The login form expired. Please try again.",
        "once_title": "One-time login",
        "once_continue": "Continue to the console",
        "once_invalid": "This login link is unknown, used or expired. Ask for a new one "
        "(ecsguard users login-link NAME).",
        "signed_in_as": "Signed in as {user} ({role})",
        "language": "日本語",
        "json_twin": "JSON",
        "no_snapshot": "No audit snapshot yet: run `ecsguard inventory` or `ecsguard audit`.",
        "forbidden": "Your role may not do this.",
        "loading": "Loading…",
        "error": "Error",
        "none": "Nothing to show.",
        "apply": "Apply",
        "cancel": "Cancel",
    },
    "ja": {
        "app": "ecsguard",
        "login": "ログイン",
        "logout": "ログアウト",
        "user": "ユーザー名",
        "password": "パスワード",
        "login_failed": "ユーザー名またはパスワードが正しくありません。",
        "login_throttled": "ログインの失敗が多すぎます。{seconds} 秒後に再試行してください。",
        "login_expired": "ログインフォームの有効期限が切れました。もう一度お試しください。",
        "once_title": "ワンタイムログイン",
        "once_continue": "コンソールへ進む",
        "once_invalid": "このログインリンクは無効、使用済み、または期限切れです。新しいリンクを"
        "発行してください (ecsguard users login-link NAME)。",
        "signed_in_as": "{user} ({role}) としてログイン中",
        "language": "English",
        "json_twin": "JSON",
        "no_snapshot": "監査スナップショットがまだありません: `ecsguard inventory` または "
        "`ecsguard audit` を実行してください。",
        "forbidden": "このロールでは実行できません。",
        "loading": "読み込み中…",
        "error": "エラー",
        "none": "表示する項目はありません。",
        "apply": "適用",
        "cancel": "キャンセル",
    },
}


def negotiate(cookie: str | None, accept_language: str | None) -> str:
    if cookie in LANGS:
        return cookie
    ranked = []
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((quality, tag.strip().lower()[:2]))
    for _, tag in sorted(ranked, key=lambda item: -item[0]):
        if tag in LANGS:
            return tag
    return "en"


def translator(lang: str, *extra: dict[str, dict[str, str]]) -> Callable[..., str]:
    """`t(key, **values)`: the text in `lang` (English when a page lacks the key in `lang`)."""
    table = {**COMMON["en"], **COMMON.get(lang, {})}
    for words in extra:
        table.update(words.get("en", {}))
        table.update(words.get(lang, {}))

    def t(key: str, **values: object) -> str:
        text = table.get(key, key)
        return text.format(**values) if values else text

    return t
