"""Account IAM hygiene (global): the root user, console users' MFA, the password policy, unused and
old credentials, administrator policies on users and groups, and policies attached to users.

Ages are counted to the snapshot's `collected_at`, never to the wall clock, so a snapshot always
gives the same findings. Root checks read the credential report's `<root_account>` row, or the
account summary when the report has none (moto's has none).

Security Hub controls outside its FSBP standard (IAM.9, IAM.15, IAM.16 and IAM.22 belong to its CIS
standards) are cited as "SecurityHub:", as the other check modules do.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from ecsguard.iam.policy import FULL_ADMIN, Source, Sourced, admin_grant, statements_of
from ecsguard.posture.check import Result, check
from ecsguard.posture.context import CheckContext, Resource

ACCOUNT = "AWS::::Account"
USER = "AWS::IAM::User"
GROUP = "AWS::IAM::Group"
GLOBAL = "global"
ROOT_ROW = "<root_account>"
NEEDS_REPORT = ("iam:GenerateCredentialReport", "iam:GetCredentialReport")
NEEDS_KEYS = ("iam:ListAccessKeys", "iam:GetAccessKeyLastUsed")
NEEDS_DETAILS = ("iam:GetAccountAuthorizationDetails",)

UNUSED_DAYS = 45  # CIS 1.12, Security Hub IAM.22 (FSBP's IAM.8 uses 90 days: not cited)
KEY_MAX_AGE_DAYS = 90  # CIS 1.14, FSBP IAM.3
#: CIS 1.8 and 1.9 (Security Hub IAM.15, IAM.16) and the character classes of FSBP IAM.7
MIN_PASSWORD_LENGTH = 14
PASSWORD_REUSE_PREVENTION = 24
PASSWORD_CHARACTER_CLASSES = (
    "RequireUppercaseCharacters",
    "RequireLowercaseCharacters",
    "RequireNumbers",
    "RequireSymbols",
)


# --- helpers -------------------------------------------------------------------------------------


def _account_arn(ctx: CheckContext) -> str:
    """The account as IAM names it (`arn:aws:iam::123456789012:root`)."""
    caller = ctx.snapshot.caller_arn.split(":")
    partition = caller[1] if len(caller) > 1 and caller[0] == "arn" else "aws"
    return f"arn:{partition}:iam::{ctx.account}:root"


def _now(ctx: CheckContext) -> datetime:
    at = ctx.snapshot.collected_at
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _when(value: object) -> datetime | None:
    """An ISO-8601 time; None for the report's "N/A", "no_information", "not_supported"."""
    if not isinstance(value, str) or not value[:4].isdigit():
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _days(ctx: CheckContext, since: datetime) -> int:
    return max(0, (_now(ctx) - since).days)


def _true(value: object) -> bool:
    return str(value).lower() == "true"


def _root_row(ctx: CheckContext) -> Resource | None:
    return next((r for r in ctx.snapshot.iam.credential_report if r.get("user") == ROOT_ROW), None)


def _users(ctx: CheckContext) -> list[tuple[str, str, Resource]]:
    """(name, ARN, credential report row or {}) for every IAM user, in ARN order."""
    rows = {r.get("user", ""): r for r in ctx.snapshot.iam.credential_report}
    rows.pop(ROOT_ROW, None)
    arns = {u["UserName"]: u["Arn"] for u in ctx.snapshot.iam.users}
    for name, row in rows.items():
        arns.setdefault(name, row.get("arn", ""))
    return sorted(((n, a, rows.get(n, {})) for n, a in arns.items()), key=lambda u: u[1])


@dataclass(frozen=True)
class _Credential:
    label: str  # "password", or the access key id
    created: datetime | None
    last_used: datetime | None


def _credentials(ctx: CheckContext, name: str, row: Resource) -> list[_Credential]:
    """The user's console password (if enabled) and active access keys."""
    found = []
    if _true(row.get("password_enabled")):
        created = _when(row.get("password_last_changed")) or _when(row.get("user_creation_time"))
        found.append(_Credential("password", created, _when(row.get("password_last_used"))))
    for key in sorted(ctx.snapshot.iam.access_keys, key=lambda k: k.get("AccessKeyId", "")):
        if key.get("UserName") == name and key.get("Status") == "Active":
            used = _when((key.get("LastUsed") or {}).get("LastUsedDate"))
            found.append(_Credential(key["AccessKeyId"], _when(key.get("CreateDate")), used))
    return found


def _say(ctx: CheckContext, en: str, ja: str) -> str:
    """Evidence in the report's language."""
    return ja if ctx.lang == "ja" else en


def _unused(ctx: CheckContext, cred: _Credential) -> str | None:
    """Why the credential counts as unused, or None when it was used (or set) recently."""
    since = cred.last_used or cred.created
    if since is None or (days := _days(ctx, since)) < UNUSED_DAYS:
        return None
    if cred.last_used:
        return _say(
            ctx, f"{cred.label} last used {days} days ago", f"{cred.label} 最終使用 {days} 日前"
        )
    return _say(
        ctx,
        f"{cred.label} never used, created {days} days ago",
        f"{cred.label} 未使用（作成から {days} 日）",
    )


def _direct_admin_policies(ctx: CheckContext, principal: Resource) -> list[str]:
    """Evidence for each policy attached to the principal itself that alone grants `*:*`
    (CIS 1.16's full administrator)."""
    by_policy: dict[Source, list[Sourced]] = {}
    for item in statements_of({**principal, "GroupList": []}, ctx.snapshot.iam):
        by_policy.setdefault(item.source, []).append(item)
    grants = (admin_grant(items, actions=FULL_ADMIN) for items in by_policy.values())
    return [f"{grant[1]}: {grant[0]}" for grant in grants if grant]


# --- the root user -------------------------------------------------------------------------------


@check(
    id="iam.root_access_keys",
    severity="critical",
    pillar="iam",
    resource_type=ACCOUNT,
    controls=["CIS:1.4", "FSBP:IAM.4"],
    needs=("iam:GetAccountSummary",),
    title={
        "en": "The root user has no access keys",
        "ja": "root ユーザーにアクセスキーがない",
    },
    description={
        "en": "Root access keys give unrestricted, unrestrictable programmatic access to the "
        "account: no policy, boundary or SCP limits them. A leaked root key is the whole account.",
        "ja": "root のアクセスキーはアカウントへの無制限のプログラムアクセスを与え、ポリシー・"
        "境界・SCP のいずれでも制限できない。漏洩すればアカウント全体を失う。",
    },
    remediation={
        "en": "Sign in as root, open Security credentials and delete the access keys; use IAM "
        "roles (or IAM Identity Center) for programmatic access.",
        "ja": "root でサインインして「セキュリティ認証情報」からアクセスキーを削除し、プログラム"
        "アクセスには IAM ロール（または IAM Identity Center）を使う。",
    },
    fail={
        "en": "the root user has access keys: {keys}",
        "ja": "root ユーザーにアクセスキーがある: {keys}",
    },
    passed={"en": "the root user has no access keys", "ja": "root ユーザーにアクセスキーはない"},
)
def root_access_keys(ctx: CheckContext) -> Iterator[Result]:
    row, summary = _root_row(ctx), ctx.snapshot.iam.account_summary
    if row is not None:
        active = [n for n in (1, 2) if _true(row.get(f"access_key_{n}_active"))]
        keys = [_say(ctx, f"access key {n} active", f"アクセスキー {n} が有効") for n in active]
    elif "AccountAccessKeysPresent" in summary:
        present = summary["AccountAccessKeysPresent"]
        keys = [f"AccountAccessKeysPresent = {present}"] if present else []
    else:
        return
    yield Result(_account_arn(ctx), GLOBAL, not keys, {"keys": ", ".join(keys)})


@check(
    id="iam.root_mfa",
    severity="critical",
    pillar="iam",
    resource_type=ACCOUNT,
    controls=["CIS:1.5", "SecurityHub:IAM.9"],
    needs=("iam:GetAccountSummary",),
    title={
        "en": "The root user has MFA enabled",
        "ja": "root ユーザーで MFA が有効になっている",
    },
    description={
        "en": "The root user can do anything, including closing the account and removing every "
        "other administrator. Without MFA its password alone (phished, reused, reset through a "
        "compromised mailbox) is enough.",
        "ja": "root ユーザーはアカウントの解約や他の管理者の削除を含め何でもできる。MFA がなければ"
        "パスワードだけ（フィッシング、使い回し、侵害されたメールボックス経由のリセット）で足りる。",
    },
    remediation={
        "en": "Sign in as root and assign an MFA device (a hardware key or passkey is best) under "
        "Security credentials; store it where more than one person can reach it.",
        "ja": "root でサインインし「セキュリティ認証情報」で MFA デバイス（ハードウェアキーや"
        "パスキーが望ましい）を割り当て、複数人がアクセスできる場所に保管する。",
    },
    fail={
        "en": "the root user has no MFA ({evidence})",
        "ja": "root ユーザーに MFA がない（{evidence}）",
    },
    passed={"en": "the root user has MFA", "ja": "root ユーザーに MFA がある"},
)
def root_mfa(ctx: CheckContext) -> Iterator[Result]:
    row, summary = _root_row(ctx), ctx.snapshot.iam.account_summary
    if row is not None:
        ok, evidence = _true(row.get("mfa_active")), "credential report: mfa_active false"
    elif "AccountMFAEnabled" in summary:
        ok, evidence = bool(summary["AccountMFAEnabled"]), "account summary: AccountMFAEnabled 0"
    else:
        return
    yield Result(_account_arn(ctx), GLOBAL, ok, {"evidence": evidence})


# --- users' sign-in -------------------------------------------------------------------------------


@check(
    id="iam.user_console_mfa",
    severity="high",
    pillar="iam",
    resource_type=USER,
    controls=["CIS:1.10", "FSBP:IAM.5"],
    needs=NEEDS_REPORT,
    title={
        "en": "IAM users with a console password have MFA",
        "ja": "コンソールパスワードを持つ IAM ユーザーで MFA が有効になっている",
    },
    description={
        "en": "A console password without MFA can be phished, guessed or reused from another "
        "breach; a second factor stops those attacks.",
        "ja": "MFA のないコンソールパスワードは、フィッシング、推測、他サービスの漏洩からの使い"
        "回しで破られる。第二要素はこれらの攻撃を防ぐ。",
    },
    remediation={
        "en": "Assign an MFA device to the user, and deny actions without "
        "aws:MultiFactorAuthPresent until they do; better, move people to IAM Identity Center.",
        "ja": "ユーザーに MFA デバイスを割り当て、設定されるまで aws:MultiFactorAuthPresent の"
        "ないアクションを拒否する。人の利用は IAM Identity Center へ移すのが望ましい。",
    },
    fail={
        "en": "user {user} has a console password and no MFA (password last used: {last_used})",
        "ja": "ユーザー {user} はコンソールパスワードがあり MFA がない（パスワード最終使用: "
        "{last_used}）",
    },
    passed={
        "en": "user {user} has MFA for the console",
        "ja": "ユーザー {user} はコンソールで MFA を使っている",
    },
)
def user_console_mfa(ctx: CheckContext) -> Iterator[Result]:
    for name, arn, row in _users(ctx):
        if _true(row.get("password_enabled")):
            used = _when(row.get("password_last_used"))
            last = used.date().isoformat() if used else _say(ctx, "never", "なし")
            params = {"user": name, "last_used": last}
            yield Result(arn, GLOBAL, _true(row.get("mfa_active")), params)


@check(
    id="iam.password_policy",
    severity="medium",
    pillar="iam",
    resource_type=ACCOUNT,
    controls=["CIS:1.8", "CIS:1.9", "FSBP:IAM.7", "SecurityHub:IAM.15", "SecurityHub:IAM.16"],
    needs=("iam:GetAccountPasswordPolicy",),
    title={
        "en": "The account password policy is at least as strong as CIS recommends",
        "ja": "アカウントのパスワードポリシーが CIS の推奨以上に強い",
    },
    description={
        "en": "IAM users' console passwords follow the account password policy. CIS asks for at "
        "least 14 characters and for the last 24 passwords not to be reused; Security Hub (IAM.7) "
        "also asks for uppercase and lowercase letters, numbers and symbols.",
        "ja": "IAM ユーザーのコンソールパスワードはアカウントのパスワードポリシーに従う。CIS は"
        "14 文字以上と直近 24 個のパスワードの再利用禁止を求め、Security Hub（IAM.7）は大文字・"
        "小文字・数字・記号も求める。",
    },
    remediation={
        "en": "In IAM > Account settings (or `aws iam update-account-password-policy`) set a "
        "minimum length of 14, password reuse prevention of 24 and require every character class.",
        "ja": "IAM の「アカウント設定」（または `aws iam update-account-password-policy`）で"
        "最小長 14、再利用禁止 24 を設定し、すべての文字種を必須にする。",
    },
    fail={
        "en": "the password policy falls short: {shortfalls}",
        "ja": "パスワードポリシーが基準を満たさない: {shortfalls}",
    },
    passed={
        "en": "the password policy meets CIS and Security Hub",
        "ja": "パスワードポリシーは CIS と Security Hub の基準を満たす",
    },
)
def password_policy(ctx: CheckContext) -> Iterator[Result]:
    policy = ctx.snapshot.iam.password_policy
    if policy is None:
        shortfalls = [_say(ctx, "no password policy is set", "パスワードポリシーが未設定")]
    else:
        shortfalls = []
        length = policy.get("MinimumPasswordLength", 0)
        if length < MIN_PASSWORD_LENGTH:
            shortfalls.append(f"MinimumPasswordLength {length} < {MIN_PASSWORD_LENGTH}")
        reuse = policy.get("PasswordReusePrevention", 0)
        if reuse < PASSWORD_REUSE_PREVENTION:
            shortfalls.append(f"PasswordReusePrevention {reuse} < {PASSWORD_REUSE_PREVENTION}")
        shortfalls += [f"{key} false" for key in PASSWORD_CHARACTER_CLASSES if not policy.get(key)]
    yield Result(_account_arn(ctx), GLOBAL, not shortfalls, {"shortfalls": "; ".join(shortfalls)})


# --- credentials ---------------------------------------------------------------------------------


@check(
    id="iam.unused_credentials",
    severity="medium",
    pillar="iam",
    resource_type=USER,
    controls=["CIS:1.12", "SecurityHub:IAM.22"],
    needs=NEEDS_REPORT + NEEDS_KEYS,
    title={
        "en": "IAM users have no credentials unused for 45 days or more",
        "ja": "IAM ユーザーに 45 日以上使われていない認証情報がない",
    },
    description={
        "en": "A password or active access key nobody uses is risk without benefit: it belongs "
        "to someone who left or to a retired job, and its misuse would go unnoticed. A credential "
        "never used counts from when it was created.",
        "ja": "誰も使わないパスワードやアクティブなアクセスキーは利点のないリスクである。退職者や"
        "廃止されたジョブのものであり、悪用されても気付かれない。一度も使われていない認証情報は"
        "作成日から数える。",
    },
    remediation={
        "en": "Deactivate (then delete) unused access keys and remove unused console passwords "
        "(`aws iam update-access-key --status Inactive`, `aws iam delete-login-profile`).",
        "ja": "使われていないアクセスキーを無効化（その後削除）し、使われていないコンソール"
        "パスワードを削除する（`aws iam update-access-key --status Inactive`、"
        "`aws iam delete-login-profile`）。",
    },
    fail={
        "en": "user {user} has credentials unused for {days}+ days: {unused}",
        "ja": "ユーザー {user} に {days} 日以上使われていない認証情報がある: {unused}",
    },
    passed={
        "en": "user {user} used every credential within {days} days",
        "ja": "ユーザー {user} の認証情報はすべて {days} 日以内に使われている",
    },
)
def unused_credentials(ctx: CheckContext) -> Iterator[Result]:
    for name, arn, row in _users(ctx):
        credentials = _credentials(ctx, name, row)
        if credentials:
            unused = [u for c in credentials if (u := _unused(ctx, c))]
            params = {"user": name, "days": UNUSED_DAYS, "unused": "; ".join(unused)}
            yield Result(arn, GLOBAL, not unused, params)


@check(
    id="iam.access_key_rotation",
    severity="medium",
    pillar="iam",
    resource_type=USER,
    controls=["CIS:1.14", "FSBP:IAM.3"],
    needs=NEEDS_KEYS,
    title={
        "en": "Active access keys are rotated every 90 days or less",
        "ja": "アクティブなアクセスキーは 90 日以内にローテーションされている",
    },
    description={
        "en": "Long-lived access keys end up in laptops, CI variables and old images; rotating "
        "them bounds how long a copy stays useful.",
        "ja": "長期間のアクセスキーはノート PC、CI の変数、古いイメージに残る。ローテーションは"
        "漏れたコピーが使える期間を限定する。",
    },
    remediation={
        "en": "Create a second key, move every client to it, deactivate and then delete the old "
        "one; prefer roles (or IAM Roles Anywhere) over access keys.",
        "ja": "新しいキーを作成してすべてのクライアントを移行し、古いキーを無効化してから削除する。"
        "アクセスキーよりロール（または IAM Roles Anywhere）を使う。",
    },
    fail={
        "en": "user {user} has active access keys older than {days} days: {keys}",
        "ja": "ユーザー {user} に {days} 日を超えたアクティブなアクセスキーがある: {keys}",
    },
    passed={
        "en": "user {user}'s active access keys are younger than {days} days",
        "ja": "ユーザー {user} のアクティブなアクセスキーはすべて {days} 日以内",
    },
)
def access_key_rotation(ctx: CheckContext) -> Iterator[Result]:
    for name, arn, _ in _users(ctx):
        ages = [(k.label, _days(ctx, k.created)) for k in _credentials(ctx, name, {}) if k.created]
        if ages:
            old = [
                _say(ctx, f"{label} ({age} days old)", f"{label}（{age} 日経過）")
                for label, age in ages
                if age > KEY_MAX_AGE_DAYS
            ]
            params = {"user": name, "days": KEY_MAX_AGE_DAYS, "keys": ", ".join(old)}
            yield Result(arn, GLOBAL, not old, params)


# --- policies on users and groups ----------------------------------------------------------------

_ADMIN_TEXTS = {
    "description": {
        "en": "A policy granting every action on every resource (`*:*`) makes whoever holds it a "
        "full administrator. CIS asks that no such policy be attached; administration belongs "
        "in roles assumed for the task, with MFA. IAM-only rights (`iam:*`) are the IAM "
        "administrators' tier and are judged by the IAM analysis, not by this check.",
        "ja": "全リソースに全アクション（`*:*`）を許可するポリシーは、保持者を完全な管理者にする。"
        "CIS はこのようなポリシーをアタッチしないよう求めている。管理作業は MFA 付きで引き受ける"
        "ロールで行う。IAM のみの権限（`iam:*`）は IAM 管理者の層であり、このチェックではなく IAM "
        "分析で評価する。",
    },
    "remediation": {
        "en": "Detach the policy; grant administrators a role they assume (with MFA) or an IAM "
        "Identity Center permission set, and give everyone else least-privilege policies.",
        "ja": "ポリシーをデタッチし、管理者には MFA 付きで引き受けるロールか IAM Identity "
        "Center の権限セットを与え、それ以外には最小権限のポリシーを与える。",
    },
}


@check(
    id="iam.user_admin_policy",
    severity="high",
    pillar="iam",
    resource_type=USER,
    controls=["CIS:1.16", "FSBP:IAM.1"],
    needs=NEEDS_DETAILS,
    title={
        "en": "No administrator policy is attached directly to an IAM user",
        "ja": "IAM ユーザーに管理者ポリシーが直接アタッチされていない",
    },
    fail={
        "en": "user {user} has full administrator policies: {policies}",
        "ja": "ユーザー {user} に完全な管理者ポリシー（*:*）がある: {policies}",
    },
    passed={
        "en": "user {user} has no full administrator policy of its own",
        "ja": "ユーザー {user} 自身に完全な管理者ポリシーはない",
    },
    **_ADMIN_TEXTS,
)
def user_admin_policy(ctx: CheckContext) -> Iterator[Result]:
    for user in sorted(ctx.snapshot.iam.users, key=lambda u: u["Arn"]):
        found = _direct_admin_policies(ctx, user)
        params = {"user": user["UserName"], "policies": "; ".join(found)}
        yield Result(user["Arn"], GLOBAL, not found, params)


@check(
    id="iam.group_admin_policy",
    severity="high",
    pillar="iam",
    resource_type=GROUP,
    controls=["CIS:1.16", "FSBP:IAM.1"],
    needs=NEEDS_DETAILS,
    title={
        "en": "No administrator policy is attached to an IAM group",
        "ja": "IAM グループに管理者ポリシーがアタッチされていない",
    },
    fail={
        "en": "group {group} (members: {members}) has full administrator policies: {policies}",
        "ja": "グループ {group}（メンバー: {members}）に完全な管理者ポリシー（*:*）がある: "
        "{policies}",
    },
    passed={
        "en": "group {group} has no full administrator policy",
        "ja": "グループ {group} に完全な管理者ポリシーはない",
    },
    **_ADMIN_TEXTS,
)
def group_admin_policy(ctx: CheckContext) -> Iterator[Result]:
    for group in sorted(ctx.snapshot.iam.groups, key=lambda g: g["Arn"]):
        found = _direct_admin_policies(ctx, group)
        name = group["GroupName"]
        members = [u["UserName"] for u in ctx.snapshot.iam.users if name in u.get("GroupList", [])]
        params = {
            "group": name,
            "members": ", ".join(sorted(members)) or "-",
            "policies": "; ".join(found),
        }
        yield Result(group["Arn"], GLOBAL, not found, params)


@check(
    id="iam.user_direct_policies",
    severity="low",
    pillar="iam",
    resource_type=USER,
    controls=["CIS:1.15", "FSBP:IAM.2"],
    needs=NEEDS_DETAILS,
    title={
        "en": "IAM users receive permissions only through groups",
        "ja": "IAM ユーザーの権限はグループ経由でのみ付与されている",
    },
    description={
        "en": "Policies attached to individual users drift: nobody reviews them together, and "
        "they stay when the person changes job. Groups (or roles) keep access in a few places.",
        "ja": "個々のユーザーにアタッチしたポリシーは管理が行き届かず、まとめて見直されることも"
        "なく、担当が変わっても残る。グループ（またはロール）にすれば権限の置き場所が少数に保たれる。",
    },
    remediation={
        "en": "Create groups for the job functions, attach the policies there, add the users and "
        "remove the user policies (inline and managed).",
        "ja": "職務ごとにグループを作ってポリシーをアタッチし、ユーザーを追加してから、ユーザーの"
        "ポリシー（インラインとマネージド）を外す。",
    },
    fail={
        "en": "user {user} has policies of its own: {policies}",
        "ja": "ユーザー {user} に直接のポリシーがある: {policies}",
    },
    passed={
        "en": "user {user} has no policy of its own",
        "ja": "ユーザー {user} に直接のポリシーはない",
    },
)
def user_direct_policies(ctx: CheckContext) -> Iterator[Result]:
    for user in sorted(ctx.snapshot.iam.users, key=lambda u: u["Arn"]):
        inline = [f"inline policy {p.get('PolicyName')}" for p in user.get("UserPolicyList", [])]
        managed = [
            f"{p.get('PolicyName')} (managed)" for p in user.get("AttachedManagedPolicies", [])
        ]
        policies = ", ".join(inline + managed)
        yield Result(
            user["Arn"], GLOBAL, not policies, {"user": user["UserName"], "policies": policies}
        )
