"""Tiers: which job a principal's effective permissions give it, and where that breaks the model.

The model (issue 4): **IAM administrators** create and remove principals and change their rights;
**service administrators** run ECS end to end and read IAM to take inventory; **service users**
deploy, operate, automate (CI) or run as workloads, each with the minimum for its job. Every
user, role and group gets one tier from what its policies allow (`Facts.allowed`, `can`, decided
at the snapshot's collection time), never from its name. "Holds" an action below means allowed on
some resource, possibly under a condition we cannot decide.

The job ("base") comes first, in this order:

1. **service-user/workload**: a role that AWS runs code under for ECS: trusted by
   ecs-tasks.amazonaws.com (task and execution roles); trusted by ec2.amazonaws.com and used by
   container instances (identity map) or holding the ECS agent's actions (`AGENT_ACTIONS`); trusted
   by events.amazonaws.com and holding ecs:RunTask (scheduled tasks).
2. **iam-admin**: holds IAM administration (`IAM_ADMIN_ACTIONS`: create or delete principals,
   attach, write, detach policies, boundaries, group membership, trust policies) and no write
   access outside the identity services (`IDENTITY_SERVICES`). Holding both is *mixed*: base
   over-privileged.
3. **service-admin**: holds at least `SERVICE_ADMIN_SHARE` of ECS's write actions (ecs:*,
   AmazonECS_FullAccess) and no IAM administration (IAM read, PassRole and service-linked roles
   are the inventory and plumbing a service administrator needs).
4. **service-user/ci** and **service-user/deployer**: can deploy: ecs:RegisterTaskDefinition and
   one of RunTask, StartTask, CreateService, UpdateService (PassRole to ECS is noted: registering
   a task definition with a role needs it). *ci* when automation: a user without a console
   password and with an active access key; a role trusted by a web-identity (OIDC) provider,
   another account or an AWS service; a group whose members are all automation. *deployer*
   otherwise: a person (a console user, a role people assume, a group of people).
5. **service-user/operator**: holds ECS operation (`OPERATE_ACTIONS`: restart, stop, exec, run)
   without deploying.
6. **unrelated**: none of the above: read-only access (auditors), or rights in other services only
   (a role for CloudTrail, an S3 bot).

Then admin-equivalence (`escalation.admin_equivalent`: every action on every resource, an IAM
method on itself, or a certain one-hop path to an admin-equivalent principal) decides the tier:

- **over-privileged**: admin-equivalent and base not iam-admin (admin sprawl: AdministratorAccess
  on a group of developers, a task role with it, a CI user that can pass an administrator role to
  ECS); a full administrator (`*` on `*`) even when it also administers IAM (an IAM administrator
  needs IAM, not everything); or a mixed base.
- otherwise the base. A path to administrator that rests on conditions we cannot decide (MFA, a
  tag) does not change the tier; the reasons say that it may.

`Tier.base` keeps the job for over-privileged principals ("service-user/ci"): what the principal
is for, beside what it can become. Groups are classified by their own policies; users include
their groups' (see `principals`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Literal

from ecsguard.iam import actions
from ecsguard.iam.escalation import (
    ECS_TASKS,
    Facts,
    Path,
    admin_equivalent,
    paths_of,
    short_name,
)
from ecsguard.iam.evaluate import account_of
from ecsguard.iam.principals import Principal

TierName = Literal["iam-admin", "service-admin", "service-user", "unrelated", "over-privileged"]
ServiceUserRole = Literal["deployer", "operator", "ci", "workload"]
TIERS: tuple[TierName, ...] = (
    "over-privileged",
    "iam-admin",
    "service-admin",
    "service-user",
    "unrelated",
)
ROLES: tuple[ServiceUserRole, ...] = ("deployer", "operator", "ci", "workload")

#: services whose write actions an IAM administrator may hold
IDENTITY_SERVICES = frozenset(
    {"iam", "sts", "access-analyzer", "sso", "sso-directory", "identitystore"}
)
#: create or delete principals, change their rights
IAM_ADMIN_ACTIONS = tuple(
    f"iam:{name}"
    for name in (
        "CreateUser",
        "DeleteUser",
        "CreateRole",
        "DeleteRole",
        "CreateGroup",
        "DeleteGroup",
        "AttachUserPolicy",
        "AttachRolePolicy",
        "AttachGroupPolicy",
        "DetachUserPolicy",
        "DetachRolePolicy",
        "DetachGroupPolicy",
        "PutUserPolicy",
        "PutRolePolicy",
        "PutGroupPolicy",
        "DeleteUserPolicy",
        "DeleteRolePolicy",
        "DeleteGroupPolicy",
        "CreatePolicy",
        "CreatePolicyVersion",
        "DeletePolicy",
        "DeletePolicyVersion",
        "SetDefaultPolicyVersion",
        "PutUserPermissionsBoundary",
        "PutRolePermissionsBoundary",
        "DeleteUserPermissionsBoundary",
        "DeleteRolePermissionsBoundary",
        "UpdateAssumeRolePolicy",
        "AddUserToGroup",
        "RemoveUserFromGroup",
    )
)
#: "all or most" of ECS's write actions
SERVICE_ADMIN_SHARE = 0.8
DEPLOY_ACTIONS = ("ecs:RegisterTaskDefinition",)
ROLLOUT_ACTIONS = ("ecs:UpdateService", "ecs:CreateService", "ecs:RunTask", "ecs:StartTask")
OPERATE_ACTIONS = (
    "ecs:UpdateService",
    "ecs:StopTask",
    "ecs:ExecuteCommand",
    "ecs:RunTask",
    "ecs:StartTask",
)
#: what the ECS agent on a container instance calls with the instance role
AGENT_ACTIONS = ("ecs:RegisterContainerInstance", "ecs:Poll", "ecs:DiscoverPollEndpoint")
_WRITE_LEVELS = ("Write", "Permissions management")
#: how many example actions or paths a reason names
_SHOWN = 3


@dataclass(frozen=True)
class Tier:
    tier: TierName
    #: the service-user subtype (None for the other tiers)
    role: ServiceUserRole | None
    reasons: list[str] = field(default_factory=list)
    reasons_ja: list[str] = field(default_factory=list)
    #: the job the rights give without admin-equivalence ("service-user/ci", "service-admin")
    base: str = ""
    admin_equivalent: bool = False
    #: admin-equivalent only if conditions we could not decide hold
    admin_conditional: bool = False

    @property
    def label(self) -> str:
        """`service-user/ci`, or the tier alone."""
        return f"{self.tier}/{self.role}" if self.role else self.tier


@dataclass
class _Reasons:
    en: list[str] = field(default_factory=list)
    ja: list[str] = field(default_factory=list)

    def add(self, en: str, ja: str) -> None:
        self.en.append(en)
        self.ja.append(ja)


def classify(principal: Principal, facts: Facts) -> Tier:
    """The principal's tier with its reasons in English and Japanese (module docstring)."""
    reasons = _Reasons()
    full = facts.full_admin(principal)
    if full.allowed:
        # its job cannot be told from rights it holds all of; a workload's from its trust
        workload = _workload(principal, facts) if principal.type == "role" else None
        if workload is not None:
            reasons.add(*workload)
        evidence = "; ".join(r.removeprefix("allowed by ") for r in full.reasons)
        reasons.add(
            f"allowed every action on every resource ({evidence}): a full administrator "
            "outside the IAM-administrator tier (admin sprawl)",
            f"すべてのリソースに対するすべてのアクションが許可されている（{evidence}）: "
            "IAM 管理者の階層の外にある完全な管理者（管理者の拡散）",
        )
        base = "service-user/workload" if workload is not None else "over-privileged"
        return Tier("over-privileged", None, reasons.en, reasons.ja, base, True)
    base, role = _base(principal, facts, reasons)
    base_label = f"{base}/{role}" if role else base
    admin = admin_equivalent(principal, facts)
    certain = admin is not None and admin.allowed
    admin_paths = [p for p in paths_of(principal, facts) if p.admin]
    tier: TierName = base
    if certain:
        shown = [p for p in admin_paths if not p.conditional]
        if base == "iam-admin":
            reasons.add(
                f"admin-equivalent, as IAM administration is: {_routes(shown, 'en')}",
                f"IAM の管理権限と同じく管理者相当: {_routes(shown, 'ja')}",
            )
        else:
            tier, role = "over-privileged", None
            reasons.add(
                f"admin-equivalent through {_routes(shown, 'en')}",
                f"{_routes(shown, 'ja')} により管理者相当",
            )
    elif admin is not None:
        reasons.add(
            f"may become admin-equivalent through {_routes(admin_paths, 'en')}",
            f"{_routes(admin_paths, 'ja')} により管理者相当になり得る",
        )
    if tier == "over-privileged" and base != "over-privileged":
        reasons.add(
            f"admin-equivalent outside the IAM-administrator tier (admin sprawl); its job: "
            f"{base_label}",
            f"IAM 管理者の階層の外にある管理者相当の権限（管理者の拡散）。本来の役割: {base_label}",
        )
    return Tier(
        tier=tier,
        role=role if tier == "service-user" else None,
        reasons=reasons.en,
        reasons_ja=reasons.ja,
        base=base_label,
        admin_equivalent=certain,
        admin_conditional=admin is not None and not certain,
    )


def _base(
    principal: Principal, facts: Facts, reasons: _Reasons
) -> tuple[TierName, ServiceUserRole | None]:
    """The job the principal's rights give it (steps 1-6 of the module docstring)."""
    if principal.type == "role" and (why := _workload(principal, facts)) is not None:
        reasons.add(*why)
        return "service-user", "workload"
    iam_admin = _held(facts, principal, IAM_ADMIN_ACTIONS)
    elsewhere = _writes_elsewhere(facts, principal)
    if iam_admin and elsewhere:
        reasons.add(
            f"holds IAM administration ({_some(iam_admin)}) and write access outside IAM "
            f"({_some(elsewhere)}): two tiers in one principal",
            f"IAM の管理（{_some(iam_admin)}）と IAM 以外の書き込み（{_some(elsewhere)}）の"
            "両方を持つ: 一つのプリンシパルに二つの階層",
        )
        return "over-privileged", None
    if iam_admin:
        reasons.add(
            f"manages IAM principals and their rights ({_some(iam_admin)}); "
            "no write access outside IAM",
            f"IAM のプリンシパルとその権限を管理する（{_some(iam_admin)}）。"
            "IAM 以外への書き込みはない",
        )
        return "iam-admin", None
    held, total = _ecs_writes(facts, principal)
    if total and held / total >= SERVICE_ADMIN_SHARE:
        reasons.add(
            f"write access to {held} of {total} ECS write actions; in IAM at most read, "
            "PassRole and service-linked roles",
            f"ECS の書き込みアクション {total} 個中 {held} 個を持つ。IAM は読み取り、PassRole、"
            "サービスにリンクされたロールのみ",
        )
        return "service-admin", None
    deploy = _deploy(facts, principal)
    if deploy:
        automated = _automation(principal, facts)
        passing = facts.holds(principal, "iam:PassRole")
        note = (
            " + iam:PassRole"
            if passing
            else " (no iam:PassRole: only task definitions without roles)"
        )
        note_ja = (
            " + iam:PassRole" if passing else "（iam:PassRole なし: ロールのないタスク定義のみ）"
        )
        if automated is not None:
            reasons.add(
                f"can deploy ({', '.join(deploy)}{note}); automation: {automated[0]}",
                f"デプロイできる（{', '.join(deploy)}{note_ja}）。自動化: {automated[1]}",
            )
            return "service-user", "ci"
        reasons.add(
            f"can deploy ({', '.join(deploy)}{note}); a person",
            f"デプロイできる（{', '.join(deploy)}{note_ja}）。人が使う",
        )
        return "service-user", "deployer"
    operate = _held(facts, principal, OPERATE_ACTIONS)
    if operate:
        reasons.add(
            f"operates ECS ({', '.join(operate)}) without registering task definitions",
            f"タスク定義を登録せずに ECS を運用する（{', '.join(operate)}）",
        )
        return "service-user", "operator"
    reasons.add(
        "no ECS write access (read-only, or rights in other services only)",
        "ECS への書き込み権限がない（読み取りのみ、または他サービスの権限のみ）",
    )
    return "unrelated", None


def _workload(principal: Principal, facts: Facts) -> tuple[str, str] | None:
    if facts.trusts(principal, ECS_TASKS):
        return (
            "an ECS task or execution role (trusted by ecs-tasks.amazonaws.com)",
            "ECS のタスクロールまたはタスク実行ロール（ecs-tasks.amazonaws.com が信頼先）",
        )
    if facts.trusts(principal, "ec2.amazonaws.com") and (
        principal.arn in facts.instance_roles or _held(facts, principal, AGENT_ACTIONS)
    ):
        return (
            "the role of EC2 container instances (trusted by ec2.amazonaws.com)",
            "EC2 コンテナインスタンスのロール（ec2.amazonaws.com が信頼先）",
        )
    if facts.trusts(principal, "events.amazonaws.com") and facts.holds(principal, "ecs:RunTask"):
        return (
            "an EventBridge role that runs tasks (trusted by events.amazonaws.com, ecs:RunTask)",
            "タスクを実行する EventBridge のロール（events.amazonaws.com が信頼先、ecs:RunTask）",
        )
    return None


def _held(facts: Facts, principal: Principal, names: Iterable[str]) -> list[str]:
    return [name for name in names if facts.holds(principal, name)]


def _writes_elsewhere(facts: Facts, principal: Principal) -> list[str]:
    return [
        action
        for action, access in facts.allowed(principal).items()
        if access.level in _WRITE_LEVELS and action.partition(":")[0] not in IDENTITY_SERVICES
    ]


def _ecs_writes(facts: Facts, principal: Principal) -> tuple[int, int]:
    every = _ecs_write_actions()
    allowed = facts.allowed(principal)
    return sum(1 for a in every if a in allowed), len(every)


@cache
def _ecs_write_actions() -> tuple[str, ...]:
    return tuple(i.action for i in actions.expand("ecs:*") if i.access_level in _WRITE_LEVELS)


def _deploy(facts: Facts, principal: Principal) -> list[str]:
    register = _held(facts, principal, DEPLOY_ACTIONS)
    rollout = _held(facts, principal, ROLLOUT_ACTIONS)
    return [*register, *rollout] if register and rollout else []


def _automation(principal: Principal, facts: Facts) -> tuple[str, str] | None:
    """Why the principal is automation rather than a person (None: a person)."""
    if principal.type == "user":
        credentials = facts.credentials.get(principal.name)
        if credentials and credentials.password is False and credentials.active_keys:
            return (
                "no console password, signs in with an access key",
                "コンソールパスワードがなく、アクセスキーで認証する",
            )
        return None
    if principal.type == "group":
        members = facts.members(principal)
        if members and all(_automation(m, facts) is not None for m in members):
            return "every member is automation", "メンバーがすべて自動化"
        return None
    return _automated_trust(principal)


def _automated_trust(role: Principal) -> tuple[str, str] | None:
    for statement in role.trust:
        if statement.statement.effect != "Allow":
            continue
        grantees = statement.grantees
        web = [f for f in grantees.federated if ":saml-provider/" not in f]
        if web:
            return (
                f"trusted by the web-identity provider {web[0]}",
                f"Web ID プロバイダー {web[0]} が信頼先",
            )
        others = [a for a in grantees.aws if account_of(a) not in ("", role.account)]
        if others:
            return (
                f"trusted by another account ({others[0]})",
                f"別アカウント（{others[0]}）が信頼先",
            )
        if grantees.services:
            service = grantees.services[0]
            return f"trusted by the AWS service {service}", f"AWS サービス {service} が信頼先"
    return None


def _some(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    more = len(names) - _SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def _routes(paths: list[Path], lang: str) -> str:
    """`ecs-deploy-passrole via notifications-task; ...` (conditions named for conditional
    paths)."""
    shown = []
    for path in paths[:_SHOWN]:
        names = ", ".join(short_name(v) for v in path.via)
        text = f"{path.method}（{names} 経由）" if lang == "ja" else f"{path.method} via {names}"
        if path.conditional:
            needs = " and ".join(path.requires) or "its conditions hold"
            text += f"（条件: {needs}）" if lang == "ja" else f" (if {needs})"
        shown.append(text)
    more = len(paths) - _SHOWN
    if more > 0:
        shown.append(f"ほか {more} 件" if lang == "ja" else f"{more} more")
    return "; ".join(shown) if shown else "?"
