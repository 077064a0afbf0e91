"""Privilege-escalation paths: how a principal can gain rights it does not hold, and `who_can`.

A path combines rights from all of a principal's policies (a user's own and its groups') and goes
at most ONE hop: to a role it can assume, a role it can pass to compute that runs code it chooses,
a role whose running tasks it can open a shell in, a user whose credentials it can create, or a
group it can join. Every step is decided by the policy engine (`principals.can`, so a permissions
boundary caps it and date conditions are decided against the snapshot's collection time): a step
that is allowed only under conditions we cannot decide makes the path `conditional`, and a step
that can never be allowed (an expired grant) means there is no path.

Methods (`METHODS`, in report order):

- the IAM methods of `policy.ESCALATION_PATHS`: on itself (attach or write a policy on its own
  user, role or groups; a new version of, or an older default for, a managed policy it holds),
  which give administrator in one call; and on others (access keys or a console password for
  another user, joining a group, rewriting a role's trust policy and assuming it);
- PassRole + compute: run code that AWS runs under a passed role (ECS, Lambda, EC2, Glue,
  CloudFormation, Data Pipeline). The role must trust that service, and PassRole is evaluated
  with `iam:PassedToService`; a PassRole limited to some roles or to some services *narrows* the
  path, and the path says how (`narrowed`);
- the ECS methods: PassRole + RegisterTaskDefinition + RunTask/StartTask/CreateService/
  UpdateService (`ecs-deploy-passrole`); RunTask of an existing task definition with its task
  role overridden (PassRole, no new task definition); RunTask of an existing task definition
  with a command of one's own (its role, no PassRole); ECS Exec into a running task, or
  UpdateService to turn ECS Exec on and then exec. Exec needs the task role to hold the
  ssmmessages actions the ECS Exec agent uses; without them there is no shell, so no path;
- `sts-assume-role`: a role whose trust policy (and, within the account, the identity policy)
  lets the principal assume it.

A path is reported only when it *gains* something: the target holds some action the principal
does not. It gains "admin-equivalent" when the target is admin-equivalent on its own (every
action on every resource, or an IAM method on itself); one hop only, so a role's own paths to
further roles do not count. A full administrator has no paths (nothing to gain), and a principal
that can make itself administrator in one IAM call is reported with those paths only.

`Facts` holds what the rules read about an account (principals, ECS task definitions, services
and running tasks, credentials) and memoises decisions: principals with the same policies (the
members of a group) share the work, which keeps 1,000 principals in seconds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any, Literal

import orjson

from ecsguard.iam import actions
from ecsguard.iam.conditions import glob_regex, parse_condition
from ecsguard.iam.evaluate import (
    Access,
    Decision,
    Grantees,
    Match,
    Request,
    action_set,
    evaluate,
    expand_allowed,
    root_arn,
)
from ecsguard.iam.policy import (
    ESCALATION_PATHS,
    PASS,
    EscalationPath,
    Statement,
    parse_statements,
)
from ecsguard.iam.principals import Principal, assumable_by, can, principals, trust_allows
from ecsguard.posture.context import CheckContext

if TYPE_CHECKING:
    from ecsguard.aws.snapshot import IamSection, Snapshot
    from ecsguard.iam.usage import IdentityMap

ADMIN = "admin-equivalent"
ECS_TASKS = "ecs-tasks.amazonaws.com"
#: what the ECS Exec agent in a task calls with the task role; without it there is no shell
EXEC_AGENT_ACTION = "ssmmessages:CreateControlChannel"

PathKind = Literal["self", "hop"]


@dataclass(frozen=True)
class Method:
    name: str
    summary: str
    summary_ja: str


_SUMMARIES_JA = {
    "ecs-deploy-passrole": "受け渡し可能な任意のロールでタスクを登録・実行してコードを動かす",
    "iam-create-policy-version": "自身に付いた管理ポリシーを書き換える",
    "iam-set-default-policy-version": "ポリシーを権限の広い旧バージョンに切り替える",
    "iam-attach-policy": "任意の管理ポリシー（AdministratorAccess）を自身に付ける",
    "iam-put-inline-policy": "任意の権限を与えるインラインポリシーを書く",
    "iam-create-access-key": "他のユーザーのアクセスキーを作る",
    "iam-login-profile": "他のユーザーのコンソールパスワードを設定する",
    "iam-update-assume-role-policy": "任意のロールの信頼ポリシーを書き換えて引き受ける",
    "iam-add-user-to-group": "管理者のグループに加わる",
    "lambda-passrole-invoke": "受け渡し可能な任意のロールで新しい関数を作り実行する",
    "lambda-passrole-event-source": "受け渡し可能な任意のロールで新しい関数をイベントで起動する",
    "lambda-update-function-code": "ロールを持つ既存の関数のコードを置き換える",
    "ec2-passrole-run-instances": "受け渡し可能な任意のインスタンスロールでインスタンスを起動する",
    "glue-passrole-dev-endpoint": "受け渡し可能な任意のロールで Glue エンドポイントを開く",
    "glue-update-dev-endpoint": "既存の Glue エンドポイントとそのロールを乗っ取る",
    "cloudformation-passrole-create-stack": "受け渡し可能な任意のロールでスタックをデプロイする",
    "cloudformation-passrole-change-set": "受け渡し可能な任意のロールで変更セットを実行する",
    "ec2-user-data-restart": "インスタンスのユーザーデータを書き換えて再起動し、そのロールで動かす",
    "ec2-launch-template-version": "ロール付きの起動テンプレートに新しいバージョンを加える",
    "datapipeline-passrole": "受け渡し可能な任意のロールでパイプラインのコマンドを実行する",
    "ecs-run-task-role-override": "既存のタスク定義を、タスクロールを差し替えて実行する",
    "ecs-run-task-command-override": "既存のタスク定義を、コマンドを差し替えてそのロールで実行する",
    "ecs-execute-command": "実行中のタスクに ECS Exec で入り、そのタスクロールを使う",
    "ecs-enable-execute-command": "サービスの ECS Exec を有効にしてからタスクに入る",
    "sts-assume-role": "ロールを引き受ける",
}

_ECS_METHODS = (
    Method(
        "ecs-run-task-role-override",
        "run an existing task definition with its task role overridden by any passable role",
        _SUMMARIES_JA["ecs-run-task-role-override"],
    ),
    Method(
        "ecs-run-task-command-override",
        "run an existing task definition with a command of its own, as that task's role",
        _SUMMARIES_JA["ecs-run-task-command-override"],
    ),
    Method(
        "ecs-execute-command",
        "open a shell (ECS Exec) in a running task and use its task role",
        _SUMMARIES_JA["ecs-execute-command"],
    ),
    Method(
        "ecs-enable-execute-command",
        "turn ECS Exec on for a service (UpdateService), then open a shell in its tasks",
        _SUMMARIES_JA["ecs-enable-execute-command"],
    ),
    Method("sts-assume-role", "assume a role", _SUMMARIES_JA["sts-assume-role"]),
)

#: every method, in report order: the table's (ECS deploy first), then the other ECS ones
METHODS: dict[str, Method] = {
    **{
        p.name: Method(p.name, p.summary, _SUMMARIES_JA.get(p.name, p.summary))
        for p in ESCALATION_PATHS
    },
    **{m.name: m for m in _ECS_METHODS},
}
_ORDER = {name: index for index, name in enumerate(METHODS)}

#: the principal of the service a method hands a role to, where it is not `<prefix>.amazonaws.com`
_SERVICE_PRINCIPALS = {"ecs": ECS_TASKS}
#: the IAM methods that act on another principal (resolved by name)
_IAM_HOP_METHODS = (
    "iam-create-access-key",
    "iam-login-profile",
    "iam-add-user-to-group",
    "iam-update-assume-role-policy",
)
#: the methods that run a task under a role; per role only the best one is kept
_RUN_FAMILY = ("ecs-deploy-passrole", "ecs-run-task-role-override", "ecs-run-task-command-override")
_EXEC_FAMILY = ("ecs-execute-command", "ecs-enable-execute-command")
_SELF_METHODS = (
    "iam-attach-policy",
    "iam-put-inline-policy",
    "iam-create-policy-version",
    "iam-set-default-policy-version",
)


# ---------------------------------------------------------------------------------------------
# paths


@dataclass(frozen=True)
class Path:
    """One way for a principal to gain rights. `via` names what the path goes through (a policy,
    a task definition, a running task or service, then each role or user whose rights it
    gains); `targets` are those principals' ARNs (empty when the principal escalates itself).
    Targets that one method reaches alike (all administrators, or all the others; certain or
    conditional) share one path: a deploy right over 500 task roles is one path, not 500."""

    method: str
    actions: tuple[str, ...]
    via: tuple[str, ...]
    gains: str  # ADMIN, "role X's rights", or "the rights of N roles"
    conditional: bool = False
    targets: tuple[str, ...] = ()
    #: how resource scoping or conditions narrow a step ("" when nothing does)
    narrowed: str = ""
    #: conditions we could not decide that must hold (or, "not ...", must not) for the path
    requires: tuple[str, ...] = ()
    #: the statements granting each step
    evidence: tuple[str, ...] = ()
    #: the most actions one target holds that the principal does not
    gained_actions: int = 0
    gains_ja: str = ""

    @property
    def admin(self) -> bool:
        return self.gains == ADMIN

    @property
    def kind(self) -> PathKind:
        return "self" if self.method in _SELF_METHODS and not self.targets else "hop"

    def text(self, lang: str = "en") -> str:
        """E.g. `ecs-deploy-passrole via notifications-task: admin-equivalent (conditional)`."""
        names = ", ".join(short_name(v) for v in self.via[:_SHOWN_VIA])
        if len(self.via) > _SHOWN_VIA:
            names += (
                f" ほか {len(self.via) - _SHOWN_VIA} 件"
                if lang == "ja"
                else (f" and {len(self.via) - _SHOWN_VIA} more")
            )
        if lang == "ja":
            suffix = "（条件付き）" if self.conditional else ""
            return f"{self.method}（{names} 経由）: {self.gains_ja or self.gains}{suffix}"
        return f"{self.method} via {names}: {self.gains}" + (
            " (conditional)" if self.conditional else ""
        )

    def __str__(self) -> str:
        return self.text()

    def to_dict(self) -> dict[str, Any]:
        method = METHODS[self.method]
        return {
            "method": self.method,
            "actions": list(self.actions),
            "via": list(self.via),
            "gains": self.gains,
            "gains_ja": self.gains_ja,
            "conditional": self.conditional,
            "targets": list(self.targets),
            "narrowed": self.narrowed,
            "requires": list(self.requires),
            "evidence": list(self.evidence),
            "gained_actions": self.gained_actions,
            "summary": method.summary,
            "summary_ja": method.summary_ja,
        }


_SHOWN_VIA = 4
_KIND_JA = {"role": "ロール", "user": "ユーザー", "group": "グループ"}


def short_name(arn: str) -> str:
    """A readable name: `notifications-task`, `notifications:2`, `prod/notifications`."""
    tail = arn.split(":", 5)[-1]
    for prefix in ("role/", "user/", "group/", "policy/", "task-definition/", "service/", "task/"):
        if tail.startswith(prefix):
            return tail[len(prefix) :].rsplit("/", 1)[-1] if prefix != "service/" else tail[8:]
    return tail


# ---------------------------------------------------------------------------------------------
# what the rules read about an account


@dataclass(frozen=True)
class TaskDefinitionRef:
    arn: str
    region: str
    role: str  # the task role's ARN, "" without one


@dataclass(frozen=True)
class Workload:
    """A running task or an ECS service, with the task role its code runs under."""

    arn: str
    kind: Literal["task", "service"]
    region: str
    cluster: str  # cluster ARN
    task_definition: str
    role: str
    exec_enabled: bool
    tags: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)
    service: str = ""  # a task's service ARN

    def context(self) -> dict[str, Any]:
        keys: dict[str, Any] = {"ecs:cluster": self.cluster}
        keys.update({f"aws:ResourceTag/{k}": v for k, v in self.tags.items()})
        return keys


@dataclass(frozen=True)
class Credentials:
    """What a user signs in with, as far as the snapshot tells (None: not known)."""

    password: bool | None
    active_keys: int


class Facts:
    """Everything the escalation and tier rules read about one account, computed once, with the
    policy decisions memoised (see the module docstring). Build it with `Facts.of(snapshot)`."""

    def __init__(
        self,
        iam: IamSection,
        now: datetime,
        *,
        task_definitions: Sequence[TaskDefinitionRef] = (),
        workloads: Sequence[Workload] = (),
        clusters: Sequence[str] = (),
        instance_roles: Iterable[str] = (),
    ) -> None:
        self.iam = iam
        self.now = now if now.tzinfo else now.replace(tzinfo=UTC)
        self.principals: tuple[Principal, ...] = tuple(principals(iam))
        self.by_arn = {p.arn: p for p in self.principals}
        self.users = tuple(p for p in self.principals if p.type == "user")
        self.roles = tuple(p for p in self.principals if p.type == "role")
        self.groups = tuple(p for p in self.principals if p.type == "group")
        self._roles_by_name = {p.name: p for p in self.roles}
        self._groups_by_name = {p.name: p for p in self.groups}
        self.task_definitions = tuple(task_definitions)
        self.workloads = tuple(workloads)
        self.clusters = tuple(clusters)
        #: roles of EC2 container instances (from the identity map)
        self.instance_roles = frozenset(instance_roles)
        self.credentials = _credentials(iam)
        self._trusting = _trust_index(self.roles)
        self._keys: dict[str, int] = {}  # principal ARN -> id of its policy key
        self._key_ids: dict[Any, int] = {}
        self._allowed: dict[int, dict[str, Access]] = {}
        self._decisions: dict[tuple[Any, ...], Decision] = {}
        self._trust: dict[tuple[str, str], bool] = {}
        self._admin: dict[str, Decision | None] = {}
        self._paths: dict[str, tuple[Path, ...]] = {}
        self._gained: dict[tuple[int, int], int] = {}

    @classmethod
    def of(
        cls,
        snapshot: Snapshot,
        now: datetime | None = None,
        identity_map: IdentityMap | None = None,
    ) -> Facts:
        """The facts of a snapshot; `now` defaults to its collection time. Pass the identity map
        when you have it (it tells which roles EC2 container instances run under)."""
        task_definitions, workloads, clusters = _ecs(snapshot)
        instance_roles = {
            use.principal_arn
            for uses in (identity_map.uses.values() if identity_map is not None else ())
            for use in uses
            if use.kind == "instance_role"
        }
        return cls(
            snapshot.iam,
            now or snapshot.collected_at,
            task_definitions=task_definitions,
            workloads=workloads,
            clusters=clusters,
            instance_roles=instance_roles,
        )

    # -- lookups ----------------------------------------------------------------------------
    def role_named(self, arn_or_name: str) -> Principal | None:
        """A role by ARN or by name (task definitions may name a role without its ARN)."""
        if not arn_or_name:
            return None
        found = self.by_arn.get(arn_or_name)
        if found is not None and found.type == "role":
            return found
        return self._roles_by_name.get(arn_or_name.rsplit("/", 1)[-1])

    def trusting(self, principal: Principal) -> list[Principal]:
        """The roles whose trust policy may let the principal assume them (names it, its
        account, everyone, or uses NotPrincipal): the only ones worth evaluating."""
        names = ("", "*", principal.arn, principal.account, root_arn(principal.arn))
        found = {r.arn: r for name in names for r in self._trusting.get(name, [])}
        return [r for r in self.roles if r.arn in found]

    def groups_of(self, principal: Principal) -> list[Principal]:
        return [self._groups_by_name[n] for n in principal.groups if n in self._groups_by_name]

    def members(self, group: Principal) -> list[Principal]:
        return [u for u in self.users if group.name in u.groups]

    # -- decisions --------------------------------------------------------------------------
    def allowed(self, principal: Principal) -> dict[str, Access]:
        """`expand_allowed` of the principal (with its own condition keys), shared by every
        principal with the same policies."""
        key = self._key(principal)
        if key not in self._allowed:
            self._allowed[key] = expand_allowed(
                principal.statements,
                principal.boundary,
                context=principal.context(),
                now=self.now,
            )
        return self._allowed[key]

    def holds(self, principal: Principal, *names: str) -> bool:
        """Whether any of the actions is allowed on some resource (possibly conditionally)."""
        allowed = self.allowed(principal)
        return any(_canonical(name) in allowed for name in names)

    def decide(
        self,
        principal: Principal,
        action: str,
        resource: str = "*",
        context: Mapping[str, Any] | None = None,
    ) -> Decision:
        """`can(principal, action, resource, context)` at `now`, memoised."""
        frozen = tuple(sorted((k, _hashable(v)) for k, v in (context or {}).items()))
        key = (self._key(principal), action, resource, frozen)
        if key not in self._decisions:
            self._decisions[key] = can(principal, action, resource, context, now=self.now)
        return self._decisions[key]

    def somewhere(
        self,
        principal: Principal,
        action: str,
        resources: Iterable[str] = (),
        context: Mapping[str, Any] | None = None,
    ) -> Decision | None:
        """The decision for `action` on some resource: every resource (`*`), then the given
        ones, then each resource pattern the principal's own Allow statements name for it (an
        Allow on `service/prod/*` allows UpdateService there). The first allow wins, else the
        first conditional; None when nothing is possible."""
        if not self.holds(principal, action):
            return None
        best: Decision | None = None
        for resource in _unique(["*", *resources, *self._patterns(principal, action)]):
            decision = self.decide(principal, action, resource, context)
            if decision.allowed:
                return decision
            if decision.possible and best is None:
                best = decision
        return best

    def trusts(self, role: Principal, service: str) -> bool:
        """Whether the role's trust policy lets the AWS service assume it."""
        key = (role.arn, service)
        if key not in self._trust:
            self._trust[key] = trust_allows(role, service, now=self.now).possible
        return self._trust[key]

    def full_admin(self, principal: Principal) -> Decision:
        """Every action on every resource (`*` on `*`). Decided from `allowed` first: asking
        the engine about `*` matches every pattern of every statement (ReadOnlyAccess has
        ~1,500), which only the few principals that hold every action are worth."""
        allowed = self.allowed(principal)
        if len(allowed) < _everything() or not all(a.all_resources for a in allowed.values()):
            return Decision("implicit_deny", Request("*"), (), ("not every action is allowed",))
        return self.decide(principal, "*", "*")

    def direct_admin(self, principal: Principal) -> Decision | None:
        """How the principal is admin-equivalent on its own, without a hop: a full-admin decision,
        or the decision of its surest IAM method on itself; None when it is not (not even under
        conditions)."""
        if principal.arn not in self._admin:
            full = self.full_admin(principal)
            found: Decision | None = full if full.possible else None
            if found is None or not found.allowed:
                for path in _self_paths(principal, self):
                    if path.admin and (found is None or not path.conditional):
                        found = _path_decision(path)
                        if not path.conditional:
                            break
            self._admin[principal.arn] = found
        return self._admin[principal.arn]

    def gained(self, principal: Principal, target: Principal) -> int:
        """How many actions the target holds that the principal does not."""
        key = (self._key(principal), self._key(target))
        if key not in self._gained:
            own = self.allowed(principal)
            self._gained[key] = sum(1 for action in self.allowed(target) if action not in own)
        return self._gained[key]

    # -- internals --------------------------------------------------------------------------
    def _key(self, principal: Principal) -> int:
        """A small id for the principal's policies: equal for principals whose decisions are
        the same (same statements, same boundary, and, when any statement has a condition or a
        policy variable, the same condition keys)."""
        if principal.arn not in self._keys:
            key = _policy_key(principal)
            self._keys[principal.arn] = self._key_ids.setdefault(key, len(self._key_ids))
        return self._keys[principal.arn]

    def _patterns(self, principal: Principal, action: str) -> list[str]:
        name = _canonical(action)
        found: list[str] = []
        for item in principal.statements:
            statement = item.statement
            if statement.effect != "Allow" or statement.not_resource:
                continue
            if name in action_set(statement.actions, statement.not_action):
                found.extend(r for r in statement.resources if r != "*")
        return found


def _policy_key(principal: Principal) -> tuple[Any, ...]:
    items = [*principal.statements, *(principal.boundary or ())]
    statements = tuple((i.source, i.statement, _frozen(i.statement.condition)) for i in items)
    contextual = any(_personal(i.statement) for i in items)
    context = (
        tuple(sorted((k, _hashable(v)) for k, v in principal.context().items()))
        if contextual
        else ()
    )
    boundary = principal.boundary is not None
    return statements, len(principal.statements), boundary, context


#: condition keys whose value depends on who asks (`Principal.context`)
_PERSONAL_KEYS = ("aws:username", "aws:userid", "aws:principal")


def _personal(statement: Statement) -> bool:
    """Whether the statement's effect can differ between two principals holding it: a policy
    variable, or a condition on the caller's own keys (aws:username, aws:PrincipalTag/...)."""
    if any("${" in r for r in statement.resources):
        return True
    if not statement.condition:
        return False
    if b"${" in _frozen(statement.condition):
        return True
    keys = (c.key.lower() for c in parse_condition(statement.condition))
    return any(key.startswith(_PERSONAL_KEYS) for key in keys)


def _frozen(condition: Mapping[str, Any]) -> bytes:
    return orjson.dumps(condition, option=orjson.OPT_SORT_KEYS) if condition else b""


def _hashable(value: Any) -> Any:
    if isinstance(value, list | tuple | set | frozenset):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, Mapping):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


@cache
def _everything() -> int:
    """How many actions AWS has (what a path to administrator gains, at most)."""
    return len(actions.expand("*"))


def _canonical(action: str) -> str:
    info = actions.lookup(action)
    return info.action if info else action


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _credentials(iam: IamSection) -> dict[str, Credentials]:
    """User name -> password and active keys, from the credential report and the key list."""
    keys: dict[str, int] = {}
    for key in iam.access_keys:
        if str(key.get("Status", "Active")) == "Active":
            name = str(key.get("UserName", ""))
            keys[name] = keys.get(name, 0) + 1
    found: dict[str, Credentials] = {}
    for row in iam.credential_report:
        name = str(row.get("user", ""))
        enabled = str(row.get("password_enabled", "")).lower()
        report_keys = sum(
            1 for n in (1, 2) if str(row.get(f"access_key_{n}_active", "")).lower() == "true"
        )
        found[name] = Credentials(
            enabled == "true" if enabled in ("true", "false") else None,
            max(report_keys, keys.get(name, 0)),
        )
    for user in iam.users:
        name = str(user.get("UserName", ""))
        if name not in found:
            found[name] = Credentials(
                True if user.get("PasswordLastUsed") else None, keys.get(name, 0)
            )
    return found


def _ecs(
    snapshot: Snapshot,
) -> tuple[list[TaskDefinitionRef], list[Workload], list[str]]:
    """In-scope task definitions (those the posture checks audit), ACTIVE services and RUNNING
    tasks with their task roles, and the clusters."""
    ctx = CheckContext(snapshot)
    roles = {r.get("RoleName"): r.get("Arn", "") for r in snapshot.iam.roles}

    def role_arn(named: Any) -> str:
        if not named:
            return ""
        text = str(named)
        return text if text.startswith("arn:") else str(roles.get(text.rsplit("/", 1)[-1], ""))

    by_arn = ctx.task_definitions_by_arn
    tds = [
        TaskDefinitionRef(td["taskDefinitionArn"], region, role_arn(td.get("taskRoleArn")))
        for region, td in ctx.task_definitions()
        if td.get("status", "ACTIVE") != "INACTIVE"
    ]
    workloads: list[Workload] = []
    clusters: list[str] = []
    for region, inventory in sorted(snapshot.regions.items()):
        ecs = inventory.ecs
        clusters.extend(c["clusterArn"] for c in ecs.clusters if c.get("clusterArn"))
        services: dict[tuple[str, str], Workload] = {}
        for service in ecs.services:
            if service.get("status", "ACTIVE") != "ACTIVE" or not service.get("serviceArn"):
                continue
            td_arn = str(service.get("taskDefinition", ""))
            td = by_arn.get(td_arn, (region, {}))[1]
            found = Workload(
                service["serviceArn"],
                "service",
                region,
                str(service.get("clusterArn", "")),
                td_arn,
                role_arn(td.get("taskRoleArn")),
                bool(service.get("enableExecuteCommand")),
                _tags(service.get("tags")),
            )
            services[(found.cluster, str(service.get("serviceName", "")))] = found
            workloads.append(found)
        for task in ecs.tasks:
            if task.get("lastStatus") != "RUNNING" or not task.get("taskArn"):
                continue
            cluster = str(task.get("clusterArn", ""))
            group = str(task.get("group", ""))
            owner = services.get((cluster, group[8:])) if group.startswith("service:") else None
            td_arn = str(task.get("taskDefinitionArn", ""))
            td = by_arn.get(td_arn, (region, {}))[1]
            override = (task.get("overrides") or {}).get("taskRoleArn")
            exec_enabled = task.get("enableExecuteCommand")
            if exec_enabled is None:  # not reported for the task: its service's setting
                exec_enabled = owner.exec_enabled if owner else False
            workloads.append(
                Workload(
                    task["taskArn"],
                    "task",
                    region,
                    cluster,
                    td_arn,
                    role_arn(override or td.get("taskRoleArn")),
                    bool(exec_enabled),
                    _tags(task.get("tags")),
                    owner.arn if owner else "",
                )
            )
    return tds, workloads, sorted(set(clusters))


def _tags(raw: Any) -> dict[str, str]:
    tags: dict[str, str] = {}
    for tag in raw or []:
        key = tag.get("key", tag.get("Key"))
        if key is not None:
            tags[str(key)] = str(tag.get("value", tag.get("Value", "")))
    return tags


# ---------------------------------------------------------------------------------------------
# finding the paths


def paths_of(principal: Principal, facts: Facts) -> tuple[Path, ...]:
    """Every escalation path of the principal (module docstring), administrator paths first,
    then certain before conditional, then by method and route."""
    if principal.arn not in facts._paths:
        facts._paths[principal.arn] = tuple(_find(principal, facts))
    return facts._paths[principal.arn]


def _find(principal: Principal, facts: Facts) -> list[Path]:
    if facts.full_admin(principal).allowed:
        return []  # nothing to gain
    found = _self_paths(principal, facts)
    if not any(p.admin and not p.conditional for p in found):
        found += _hop_paths(principal, facts)
    return _merged(sorted(_best_per_target(found), key=_rank))


def _rank(path: Path) -> tuple[Any, ...]:
    return (not path.admin, path.conditional, _ORDER[path.method], path.via)


def _best_per_target(found: list[Path]) -> list[Path]:
    """Among methods that give the same thing (running a task as a role; a shell in a role's
    task), each target stays only in its best path: certain before conditional, then the first
    in method order. Paths left without targets go."""
    kept: list[Path] = []
    covered: set[tuple[str, str]] = set()
    for path in sorted(found, key=lambda p: (p.conditional, _ORDER[p.method])):
        family = next((f for f in (_RUN_FAMILY, _EXEC_FAMILY) if path.method in f), None)
        if family is None or not path.targets:
            kept.append(path)
            continue
        gone = {t for t in path.targets if (family[0], t) in covered}
        covered.update((family[0], t) for t in path.targets)
        if gone == set(path.targets):
            continue
        if gone:
            targets = tuple(t for t in path.targets if t not in gone)
            gains, gains_ja = (path.gains, path.gains_ja) if path.admin else _rights_of(targets)
            path = replace(
                path,
                targets=targets,
                via=tuple(v for v in path.via if v not in gone),
                gains=gains,
                gains_ja=gains_ja,
            )
        kept.append(path)
    return kept


def _merged(paths: list[Path]) -> list[Path]:
    """One path per method, administrator or not, certain or not (see `Path`), in rank order."""
    groups: dict[tuple[str, bool, bool], list[Path]] = {}
    for path in paths:
        key = (path.method, path.admin, path.conditional)
        groups.setdefault(key, []).append(path)
    return [_merge(group) for group in groups.values()]


def _rights_of(targets: tuple[str, ...]) -> tuple[str, str]:
    """`role app-task's rights`, or `the rights of 3 roles` (English, Japanese)."""
    kinds = {t.split(":", 5)[-1].split("/", 1)[0] for t in targets}
    kind = kinds.pop() if len(kinds) == 1 else "principal"
    if len(targets) == 1:
        name = targets[0].rsplit("/", 1)[-1]
        return f"{kind} {name}'s rights", f"{_KIND_JA.get(kind, kind)} {name} の権限"
    ja = f"{len(targets)} 個の{_KIND_JA.get(kind, 'プリンシパル')}の権限"
    return f"the rights of {len(targets)} {kind}s", ja


def _merge(group: list[Path]) -> Path:
    first = group[0]
    if len(group) == 1:
        return first
    targets = tuple(_unique(t for p in group for t in p.targets))
    gains, gains_ja = (first.gains, first.gains_ja) if first.admin else _rights_of(targets)
    return replace(
        first,
        via=tuple(_unique(v for p in group for v in p.via)),
        gains=gains,
        gains_ja=gains_ja,
        targets=targets,
        narrowed="; ".join(_unique(n for p in group if p.narrowed for n in p.narrowed.split("; "))),
        requires=tuple(_unique(r for p in group for r in p.requires)),
        evidence=tuple(_unique(e for p in group for e in p.evidence)),
        gained_actions=max(p.gained_actions for p in group),
    )


@dataclass(frozen=True)
class _Step:
    action: str
    decision: Decision


def _build(
    method: str,
    steps: Sequence[_Step],
    via: Sequence[str],
    gains: Gain,
    target: str = "",
    requires: Sequence[str] = (),
) -> Path:
    text, text_ja, gained, uncertain = gains
    conditional = uncertain or bool(requires) or any(not s.decision.allowed for s in steps)
    texts = [_step_text(s.action, s.decision) for s in steps]
    return Path(
        method=method,
        actions=tuple(s.action for s in steps),
        via=tuple(via),
        gains=text,
        gains_ja=text_ja,
        conditional=conditional,
        targets=(target,) if target else (),
        narrowed="; ".join(narrowed for narrowed, _, _ in texts if narrowed),
        requires=tuple(_unique([*requires, *(r for _, _, needed in texts for r in needed)])),
        evidence=tuple(_unique(e for _, evidence, _ in texts for e in evidence)),
        gained_actions=gained,
    )


@lru_cache(maxsize=65536)
def _step_text(action: str, decision: Decision) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """(narrowing, evidence, undecided conditions) of one step; the same decision recurs for
    every role a grant reaches, so the text is made once."""
    evidence = tuple(f"{action}: {m}" for m in _granting(decision))
    needed = (*(str(c) for c in decision.requires), *(f"not {c}" for c in decision.unless))
    return _narrowing(_Step(action, decision)), evidence, needed


def _granting(decision: Decision) -> list[Match]:
    return [m for m in decision.deciding if m.statement.effect == "Allow"]


def _narrowing(step: _Step) -> str:
    """`iam:PassRole only on ...; if StringEquals iam:PassedToService ecs-tasks.amazonaws.com`:
    what limits the Allows that grant a step (nothing when one of them is unscoped)."""
    grants = [m for m in _granting(step.decision) if m.policy != "boundary"]
    if not grants:
        return ""
    if any(not m.statement.condition and "*" in m.statement.resources for m in grants):
        return ""
    parts = []
    resources = _unique(r for m in grants for r in m.statement.resources if r != "*")
    if resources and not any("*" in m.statement.resources for m in grants):
        parts.append("only on " + ", ".join(resources))
    clauses = _unique(str(c) for m in grants for c in parse_condition(m.statement.condition))
    if clauses:
        parts.append("if " + " and ".join(clauses))
    return f"{step.action} " + ", ".join(parts) if parts else ""


def _path_decision(path: Path) -> Decision:
    """A stand-in decision for "admin-equivalent through this path"."""
    kind: Literal["allow", "conditional"] = "conditional" if path.conditional else "allow"
    return Decision(kind, Request("*"), (), (str(path),))


#: what a path gains (en, ja), how many actions, and whether it is admin only under conditions
Gain = tuple[str, str, int, bool]
ADMIN_JA = "管理者相当"


def _gain(principal: Principal, target: Principal, facts: Facts) -> Gain | None:
    """What the path to `target` gains, or None when the target holds nothing the principal
    lacks."""
    gained = facts.gained(principal, target)
    admin = facts.direct_admin(target)
    if admin is not None:
        return ADMIN, ADMIN_JA, gained, not admin.allowed
    if gained == 0:
        return None
    ja = f"{_KIND_JA.get(target.type, target.type)} {target.name} の権限"
    return f"{target.type} {target.name}'s rights", ja, gained, False


def _first(
    principal: Principal,
    facts: Facts,
    names: Sequence[str],
    resources: Iterable[str] = (),
    context: Mapping[str, Any] | None = None,
    *,
    anywhere: bool = True,
) -> _Step | None:
    """The best of alternative actions, allowed before conditional. `anywhere`: on some
    resource (see `Facts.somewhere`); otherwise on one of the given resources exactly."""
    best: _Step | None = None
    listed = list(resources)
    for name in names:
        if anywhere:
            decision = facts.somewhere(principal, name, listed, context)
        elif facts.holds(principal, name):
            decision = _best_on(principal, facts, name, listed, context)
        else:
            decision = None
        if decision is None:
            continue
        if decision.allowed:
            return _Step(name, decision)
        best = best or _Step(name, decision)
    return best


def _best_on(
    principal: Principal,
    facts: Facts,
    action: str,
    resources: Iterable[str],
    context: Mapping[str, Any] | None = None,
) -> Decision | None:
    best: Decision | None = None
    for resource in resources:
        decision = facts.decide(principal, action, resource, context)
        if decision.allowed:
            return decision
        if decision.possible and best is None:
            best = decision
    return best


# -- on itself ---------------------------------------------------------------------------------


def _self_paths(principal: Principal, facts: Facts) -> list[Path]:
    """The IAM methods that make the principal administrator in one call on itself (or a group
    it is in, or a managed policy attached to it)."""
    found = []
    partition = principal.arn.split(":")[1] if principal.arn.startswith("arn:") else "aws"
    admin_policy = f"arn:{partition}:iam::aws:policy/AdministratorAccess"
    for method, by_kind in (
        (
            "iam-attach-policy",
            {"user": "iam:AttachUserPolicy", "role": "iam:AttachRolePolicy"},
        ),
        ("iam-put-inline-policy", {"user": "iam:PutUserPolicy", "role": "iam:PutRolePolicy"}),
    ):
        group_action = (
            "iam:AttachGroupPolicy" if method == "iam-attach-policy" else ("iam:PutGroupPolicy")
        )
        targets = [(by_kind.get(principal.type, group_action), principal.arn)]
        targets += [(group_action, g.arn) for g in facts.groups_of(principal)]
        context = {"iam:PolicyARN": admin_policy} if method == "iam-attach-policy" else None
        for action, arn in targets:
            if not facts.holds(principal, action):
                continue
            decision = facts.decide(principal, action, arn, context)
            if decision.possible:
                gained = _everything() - len(facts.allowed(principal))
                via = (arn,) if arn != principal.arn else (principal.arn,)
                found.append(
                    _build(method, [_Step(action, decision)], via, (ADMIN, ADMIN_JA, gained, False))
                )
                break
    found += _policy_version_paths(principal, facts)
    return found


def _policy_version_paths(principal: Principal, facts: Facts) -> list[Path]:
    held = _unique(
        i.source.arn
        for i in principal.statements
        if i.source.kind == "managed" and i.source.arn and ":iam::aws:policy/" not in i.source.arn
    )
    if not held:
        return []
    versions = {p.get("Arn", ""): p.get("PolicyVersionList", []) for p in facts.iam.policies}
    found = []
    for arn in held:
        decision = (
            facts.decide(principal, "iam:CreatePolicyVersion", arn)
            if facts.holds(principal, "iam:CreatePolicyVersion")
            else None
        )
        if decision is not None and decision.possible:
            gained = _everything() - len(facts.allowed(principal))
            step = _Step("iam:CreatePolicyVersion", decision)
            found.append(
                _build("iam-create-policy-version", [step], [arn], (ADMIN, ADMIN_JA, gained, False))
            )
            continue
        if not facts.holds(principal, "iam:SetDefaultPolicyVersion"):
            continue
        decision = facts.decide(principal, "iam:SetDefaultPolicyVersion", arn)
        if not decision.possible:
            continue
        for version in versions.get(arn, []):
            if version.get("IsDefaultVersion"):
                continue
            gains = _version_gain(principal, facts, arn, version)
            if gains is not None:
                step = _Step("iam:SetDefaultPolicyVersion", decision)
                via = [f"{arn} ({version.get('VersionId', '?')})"]
                found.append(_build("iam-set-default-policy-version", [step], via, gains))
    return found


def _version_gain(
    principal: Principal, facts: Facts, arn: str, version: Mapping[str, Any]
) -> Gain | None:
    statements = parse_statements(version.get("Document"))
    granted = expand_allowed(statements, now=facts.now)
    gained = sum(1 for action in granted if action not in facts.allowed(principal))
    full = evaluate(Request("*"), statements, now=facts.now)
    if full.possible:
        return ADMIN, ADMIN_JA, gained, not full.allowed
    if gained == 0:
        return None
    name = f"{arn.rsplit('/', 1)[-1]}@{version.get('VersionId', '?')}"
    return f"policy {name}'s rights", f"ポリシー {name} の権限", gained, False


# -- one hop -----------------------------------------------------------------------------------

#: one way to one target, before paths that go the same way are merged: the steps, what the
#: path goes through before the target, the target, and what it gains
_Route = tuple[list[_Step], list[str], Principal, Gain]


def _hop_paths(principal: Principal, facts: Facts) -> list[Path]:
    routes: dict[str, list[_Route]] = {}
    found: list[Path] = []
    _credential_routes(principal, facts, routes)
    _group_routes(principal, facts, routes)
    _trust_rewrite_routes(principal, facts, routes)
    _assume_routes(principal, facts, routes)
    for path in ESCALATION_PATHS:
        kind = method_kind(path)
        if kind == "pass-role":
            _pass_role_routes(principal, facts, path, routes)
        elif kind == "takeover":
            found += _takeover_paths(principal, facts, path)
    _run_existing_routes(principal, facts, routes)
    _exec_routes(principal, facts, routes)
    for method, listed in routes.items():
        found += _grouped(method, listed)
    return found


def _grouped(method: str, routes: list[_Route]) -> list[Path]:
    """Paths for routes, one per set of routes granted by the same statements in the same way
    (the text of a path is made once, not once per role)."""
    groups: dict[tuple[Any, ...], list[_Route]] = {}
    for route in routes:
        steps, _, _, gain = route
        granted = tuple(
            (s.action, s.decision.decision, tuple(id(m.item) for m in s.decision.deciding))
            for s in steps
        )
        groups.setdefault((granted, gain[0] == ADMIN, gain[3]), []).append(route)
    found = []
    for group in groups.values():
        steps, via, target, gain = group[0]
        first = _build(method, steps, [*via, target.arn], gain, target.arn)
        if len(group) == 1:
            found.append(first)
            continue
        targets = tuple(_unique(t.arn for _, _, t, _ in group))
        gains = (first.gains, first.gains_ja) if first.admin else _rights_of(targets)
        found.append(
            replace(
                first,
                via=tuple(_unique(v for _, more, t, _ in group for v in (*more, t.arn))),
                targets=targets,
                gains=gains[0],
                gains_ja=gains[1],
                gained_actions=max(g[2] for _, _, _, g in group),
            )
        )
    return found


def _wide(
    principal: Principal,
    facts: Facts,
    action: str,
    context: Mapping[str, Any] | None = None,
) -> list[tuple[str, Decision]]:
    """Grants that decide many resources at once: `action` allowed on `*` or on a pattern of
    the principal's own statements (`role/*-task`), with no Deny on part of it, under unknown
    resource keys (so under any: three-valued logic is monotone)."""
    return [
        (pattern, decision)
        for pattern in _unique(["*", *facts._patterns(principal, action)])
        if "${" not in pattern
        and (decision := facts.decide(principal, action, pattern, context)).allowed
        and not any(r.startswith("but denied on part") for r in decision.reasons)
    ]


def _decide_on(
    principal: Principal,
    facts: Facts,
    action: str,
    resource: str,
    wide: list[tuple[str, Decision]],
    context: Mapping[str, Any] | None = None,
) -> Decision:
    shared = next((d for pattern, d in wide if _names(pattern, resource)), None)
    return shared or facts.decide(principal, action, resource, context)


def _credential_routes(principal: Principal, facts: Facts, routes: dict[str, list[_Route]]) -> None:
    for method, names in (
        ("iam-create-access-key", ("iam:CreateAccessKey",)),
        ("iam-login-profile", ("iam:CreateLoginProfile", "iam:UpdateLoginProfile")),
    ):
        if not facts.holds(principal, *names):
            continue
        for user in facts.users:
            if user.arn == principal.arn or (gains := _gain(principal, user, facts)) is None:
                continue
            step = _first(principal, facts, names, [user.arn], anywhere=False)
            if step is not None:
                routes.setdefault(method, []).append(([step], [], user, gains))


def _group_routes(principal: Principal, facts: Facts, routes: dict[str, list[_Route]]) -> None:
    action = "iam:AddUserToGroup"
    if principal.type == "role" or not facts.holds(principal, action):
        return
    own = {principal.name} if principal.type == "group" else set(principal.groups)
    wide = _wide(principal, facts, action)
    for group in facts.groups:
        if group.name in own or (gains := _gain(principal, group, facts)) is None:
            continue
        decision = _decide_on(principal, facts, action, group.arn, wide)
        if decision.possible:
            step = _Step(action, decision)
            routes.setdefault("iam-add-user-to-group", []).append(([step], [], group, gains))


def _trust_rewrite_routes(
    principal: Principal, facts: Facts, routes: dict[str, list[_Route]]
) -> None:
    rewrite, assume = "iam:UpdateAssumeRolePolicy", "sts:AssumeRole"
    if not facts.holds(principal, rewrite) or not facts.holds(principal, assume):
        return
    wide_rewrite, wide_assume = _wide(principal, facts, rewrite), _wide(principal, facts, assume)
    for role in facts.roles:
        if role.arn == principal.arn or (gains := _gain(principal, role, facts)) is None:
            continue
        rewriting = _decide_on(principal, facts, rewrite, role.arn, wide_rewrite)
        if not rewriting.possible:
            continue
        assuming = _decide_on(principal, facts, assume, role.arn, wide_assume)
        if assuming.possible:
            steps = [_Step(rewrite, rewriting), _Step(assume, assuming)]
            routes.setdefault("iam-update-assume-role-policy", []).append((steps, [], role, gains))


def _assume_routes(principal: Principal, facts: Facts, routes: dict[str, list[_Route]]) -> None:
    candidates = [r for r in facts.trusting(principal) if r.arn != principal.arn]
    for role, decision in assumable_by(principal, candidates, now=facts.now):
        if (gains := _gain(principal, role, facts)) is not None:
            step = _Step("sts:AssumeRole", decision)
            routes.setdefault("sts-assume-role", []).append(([step], [], role, gains))


def _trust_index(roles: Iterable[Principal]) -> dict[str, list[Principal]]:
    """Name in a trust policy's Principal (an ARN, an account, `*`) -> the roles naming it;
    under "" the roles whose trust names anyone or uses NotPrincipal."""
    index: dict[str, list[Principal]] = {}
    for role in roles:
        names: set[str] = set()
        for statement in role.trust:
            grantees: Grantees = statement.grantees
            if grantees.anyone or grantees.negated:
                names.add("")
            names.update(grantees.aws)
        for name in names:
            index.setdefault(name, []).append(role)
    return index


MethodKind = Literal["self", "iam", "pass-role", "takeover", "unknown"]


def method_kind(path: EscalationPath) -> MethodKind:
    """How a method of `policy.ESCALATION_PATHS` is resolved: an IAM method on itself or on
    another principal (by name), PassRole to a service that runs code, or taking over something
    of a service that already runs under a role (a function, an instance)."""
    if path.name in _SELF_METHODS:
        return "self"
    if path.name in _IAM_HOP_METHODS:
        return "iam"
    named = [a for step in path.steps for a in step]
    if PASS in named:
        return "pass-role"
    if named and not any(a.lower().startswith(("iam:", "sts:")) for a in named):
        return "takeover"
    return "unknown"


def method_service(path: EscalationPath) -> str:
    """The service principal a PassRole or takeover method gives the role to, from the first
    action after PassRole: `lambda:CreateFunction` -> lambda.amazonaws.com."""
    action = next(a for step in path.steps for a in step if a != PASS)
    prefix = action.partition(":")[0].lower()
    return _SERVICE_PRINCIPALS.get(prefix, f"{prefix}.amazonaws.com")


def _pass_role_routes(
    principal: Principal, facts: Facts, method: EscalationPath, routes: dict[str, list[_Route]]
) -> None:
    """PassRole to a compute service + the steps that make it run code, to every role that
    trusts the service and gains something."""
    others = [s for s in method.steps if s != (PASS,)]
    if not facts.holds(principal, PASS) or not all(facts.holds(principal, *s) for s in others):
        return
    chosen = []
    for alternatives in others:
        step = _first(principal, facts, alternatives, _ecs_resources(facts, alternatives))
        if step is None:
            return
        chosen.append(step)
    for role, decision, gains in _passable(principal, facts, method_service(method)):
        steps = [_Step(PASS, decision), *chosen]
        routes.setdefault(method.name, []).append((steps, [], role, gains))


def _passable(
    principal: Principal, facts: Facts, service: str
) -> list[tuple[Principal, Decision, Gain]]:
    """The roles the principal can pass to `service` (they trust it) and gain something from."""
    context = {"iam:PassedToService": service}
    wide = _wide(principal, facts, PASS, context)
    found = []
    for role in facts.roles:
        if role.arn == principal.arn or not facts.trusts(role, service):
            continue
        if (gains := _gain(principal, role, facts)) is None:
            continue
        decision = _decide_on(principal, facts, PASS, role.arn, wide, context)
        if decision.possible:
            found.append((role, decision, gains))
    return found


def _names(pattern: str, arn: str) -> bool:
    """Whether a Resource pattern names the ARN (part by part, as IAM matches ARNs)."""
    if pattern == "*":
        return True
    parts = arn.split(":", 5)
    compiled = _arn_regexes(pattern)
    if len(compiled) != len(parts):
        return len(compiled) == 1 and compiled[0].fullmatch(arn) is not None
    return all(regex.fullmatch(part) for regex, part in zip(compiled, parts, strict=True))


@lru_cache(maxsize=4096)
def _arn_regexes(pattern: str) -> tuple[re.Pattern[str], ...]:
    parts = pattern.split(":", 5)
    chosen = parts if len(parts) == 6 else [pattern]
    return tuple(re.compile(glob_regex(p), re.DOTALL) for p in chosen)


def _takeover_paths(principal: Principal, facts: Facts, method: EscalationPath) -> list[Path]:
    """Changing what already runs under a role (a function's code, an instance's user data):
    the snapshot does not list those resources, so every role the service may assume is a
    candidate and the path is conditional on such a resource existing."""
    if not all(facts.holds(principal, *s) for s in method.steps):
        return []
    chosen = []
    for alternatives in method.steps:
        step = _first(principal, facts, alternatives)
        if step is None:
            return []
        chosen.append(step)
    service = method_service(method)
    found = []
    for role in facts.roles:
        if role.arn == principal.arn or not facts.trusts(role, service):
            continue
        if (gains := _gain(principal, role, facts)) is not None:
            needs = f"something of {service} runs under {role.name} (not in the snapshot)"
            found.append(_build(method.name, chosen, [role.arn], gains, role.arn, [needs]))
    return _merged(found)


def _ecs_resources(facts: Facts, names: Iterable[str]) -> list[str]:
    """Concrete resources to try ECS actions on: services (UpdateService), a new service in
    each cluster (CreateService)."""
    found: list[str] = []
    wanted = {n.lower() for n in names}
    if "ecs:updateservice" in wanted:
        found += [w.arn for w in facts.workloads if w.kind == "service"]
    if "ecs:createservice" in wanted:
        found += [c.replace(":cluster/", ":service/", 1) + "/*" for c in facts.clusters]
    return found


_RUN = ("ecs:RunTask", "ecs:StartTask")


def _run_existing_routes(
    principal: Principal, facts: Facts, routes: dict[str, list[_Route]]
) -> None:
    """Running an existing task definition: as its own role with a command of one's own (no
    PassRole), or with the task role overridden (PassRole)."""
    if not facts.task_definitions or not facts.holds(principal, *_RUN):
        return
    by_role: dict[str, list[TaskDefinitionRef]] = {}
    for td in facts.task_definitions:
        by_role.setdefault(td.role, []).append(td)
    for role_arn, tds in sorted(by_role.items()):
        role = facts.role_named(role_arn)
        if role is None or role.arn == principal.arn:
            continue
        if (gains := _gain(principal, role, facts)) is None:
            continue
        step = _first(principal, facts, _RUN, [td.arn for td in tds], anywhere=False)
        if step is not None:
            routes.setdefault("ecs-run-task-command-override", []).append(
                ([step], [step.decision.request.resource], role, gains)
            )
    if not facts.holds(principal, PASS):
        return
    step = _first(principal, facts, _RUN, [td.arn for td in facts.task_definitions])
    if step is None:
        return
    ran = step.decision.request.resource
    through = ran if ran != "*" else facts.task_definitions[0].arn
    for role, decision, gains in _passable(principal, facts, ECS_TASKS):
        routes.setdefault("ecs-run-task-role-override", []).append(
            ([_Step(PASS, decision), step], [through], role, gains)
        )


def _exec_routes(principal: Principal, facts: Facts, routes: dict[str, list[_Route]]) -> None:
    """A shell in a running task (ECS Exec on), or in a service's tasks after turning it on;
    one route per role, through the first workload that allows it."""
    if not facts.holds(principal, "ecs:ExecuteCommand"):
        return
    shell, update = "ecs:ExecuteCommand", "ecs:UpdateService"
    wide_shell, wide_update = _wide(principal, facts, shell), _wide(principal, facts, update)
    can_update = facts.holds(principal, update)
    done: set[tuple[str, str]] = set()
    for workload in facts.workloads:
        role = facts.role_named(workload.role)
        if role is None or role.arn == principal.arn or not facts.holds(role, EXEC_AGENT_ACTION):
            continue  # no role, or the ECS Exec agent cannot open a channel: no shell
        if workload.kind == "task" and workload.exec_enabled:
            method = "ecs-execute-command"
            if (method, role.arn) in done or (gains := _gain(principal, role, facts)) is None:
                continue
            opening = _decide_on(
                principal, facts, shell, workload.arn, wide_shell, workload.context()
            )
            if opening.possible:
                done.add((method, role.arn))
                route = ([_Step(shell, opening)], [workload.arn], role, gains)
                routes.setdefault(method, []).append(route)
        elif workload.kind == "service" and not workload.exec_enabled and can_update:
            method = "ecs-enable-execute-command"
            if (method, role.arn) in done or (gains := _gain(principal, role, facts)) is None:
                continue
            context = workload.context()
            updating = _decide_on(principal, facts, update, workload.arn, wide_update, context)
            if not updating.possible:
                continue
            tasks = [w for w in facts.workloads if w.service == workload.arn]
            into = tasks[0] if tasks else workload
            resource = into.arn if into.kind == "task" else _any_task(workload)
            opening = _decide_on(principal, facts, shell, resource, wide_shell, into.context())
            if opening.possible:
                done.add((method, role.arn))
                steps = [_Step(update, updating), _Step(shell, opening)]
                routes.setdefault(method, []).append((steps, [workload.arn], role, gains))


def _any_task(service: Workload) -> str:
    """`arn:aws:ecs:r:a:task/<cluster>/*`: the tasks a service will start."""
    prefix, _, cluster = service.cluster.partition(":cluster/")
    return f"{prefix}:task/{cluster}/*"


# ---------------------------------------------------------------------------------------------
# admin-equivalence and who-can


def admin_equivalent(principal: Principal, facts: Facts) -> Decision | None:
    """Allow when the principal is admin-equivalent for sure (every action on every resource, an
    IAM method on itself, or a certain path to an admin-equivalent principal), conditional when
    only under undecided conditions, None when not at all."""
    direct = facts.direct_admin(principal)
    if direct is not None and direct.allowed:
        return direct
    paths = [p for p in paths_of(principal, facts) if p.admin]
    certain = next((p for p in paths if not p.conditional), None)
    if certain is not None:
        return _path_decision(certain)
    return direct or (_path_decision(paths[0]) if paths else None)


def who_can(
    action: str,
    resource: str | None,
    snapshot: Snapshot,
    *,
    now: datetime | None = None,
    facts: Facts | None = None,
) -> list[dict[str, Any]]:
    """Every user and role that can call `action` on `resource` (None or `*`: on some
    resource, so that an Allow scoped to `service/prod/*` answers "who can UpdateService"), either
    directly (`path` empty) or through one hop (`path` holds it), as
    `{"principal", "name", "type", "decision", "path", "reasons"}`: allowed ones first, then
    conditional, direct before hop, each by ARN. Groups are left out: their members are listed."""
    facts = facts or Facts.of(snapshot, now)
    found = []
    for principal in facts.principals:
        if principal.type == "group":
            continue
        direct = _can(principal, action, resource, facts)
        if direct is not None and direct.allowed:
            found.append(_answer(principal, direct, None))
            continue
        hop = _via_hop(principal, action, resource, facts)
        if hop is not None and (direct is None or hop[1].allowed):
            found.append(_answer(principal, hop[1], hop[0]))
        elif direct is not None:
            found.append(_answer(principal, direct, None))
    order = {"allow": 0, "conditional": 1}
    return sorted(found, key=lambda e: (order[e["decision"]], bool(e["path"]), e["principal"]))


def _can(principal: Principal, action: str, resource: str | None, facts: Facts) -> Decision | None:
    if resource in (None, "*"):
        return facts.somewhere(principal, action)
    decision = facts.decide(principal, action, resource)
    return decision if decision.possible else None


def _via_hop(
    principal: Principal, action: str, resource: str | None, facts: Facts
) -> tuple[Path, Decision] | None:
    """The best path whose target can make the request (or that makes the principal itself an
    administrator), with the combined decision."""
    best: tuple[Path, Decision] | None = None
    for path in paths_of(principal, facts):
        decision: Decision | None = None
        if path.admin:
            decision = _path_decision(path)
        for arn in path.targets if decision is None else ():
            if (target := facts.by_arn.get(arn)) is not None:
                decision = _can(target, action, resource, facts)
                if decision is not None:
                    break
        if decision is None:
            continue
        kind: Literal["allow", "conditional"] = (
            "allow" if decision.allowed and not path.conditional else "conditional"
        )
        combined = Decision(kind, decision.request, decision.deciding, decision.reasons)
        if best is None or (combined.allowed and not best[1].allowed):
            best = (path, combined)
        if best[1].allowed:
            break
    return best


def _answer(principal: Principal, decision: Decision, path: Path | None) -> dict[str, Any]:
    return {
        "principal": principal.arn,
        "name": principal.name,
        "type": principal.type,
        "decision": decision.decision,
        "path": [path.to_dict()] if path is not None else [],
        "reasons": list(decision.reasons),
    }
