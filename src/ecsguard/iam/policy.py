"""IAM policy documents: normalise them, gather a principal's statements, evaluate conservatively.

This is the first room of the IAM policy engine. Today it answers one narrow question well: *does
a principal hold an action unconditionally, on every resource?* The rules are deliberately
conservative, so that a finding built on them is never about a grant that is in fact scoped:

- A statement **counts** only when its `Resource` contains `"*"` (a `NotResource` statement never
  counts) and it has no `Condition`. An Allow on named ARNs or behind a condition does not count as
  granting; a Deny on named ARNs or behind a condition does not count as denying.
- `Action` and `NotAction` are matched with IAM wildcards (`*`, `?`), case-insensitively.
- A counting explicit Deny wins over every Allow.
- Permissions boundaries, service control policies, session policies and resource-based policies
  are not evaluated yet. A boundary only ever narrows identity policies, so ignoring it can
  overstate a principal's rights (a finding may name a right its boundary removes), never hide one.

Vocabulary: a `Statement` is one parsed statement; a `Source` says where it came from (which policy,
inline or managed, directly or through a group); `statements_of` returns `Sourced` pairs of both.
Every query function accepts plain statements or sourced pairs and returns the same kind, so
evidence ("AdministratorAccess (managed), statement 0: *") comes for free.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, NamedTuple, TypeVar

from ecsguard.iam.conditions import glob_regex

#: AWS managed policies whose document is needed when a snapshot lacks it (the collector keeps
#: attached AWS managed policies, so this covers snapshots with gaps). Only what decides the
#: questions this module answers is reproduced; the published documents say the same about them.
KNOWN_AWS_POLICIES: dict[str, dict[str, Any]] = {
    "AdministratorAccess": {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    },
    "IAMFullAccess": {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["iam:*"], "Resource": "*"}],
    },
    "PowerUserAccess": {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "NotAction": ["iam:*", "organizations:*", "account:*"],
                "Resource": "*",
            },
            {
                "Effect": "Allow",
                "Action": [
                    "iam:CreateServiceLinkedRole",
                    "iam:DeleteServiceLinkedRole",
                    "iam:ListRoles",
                ],
                "Resource": "*",
            },
        ],
    },
}

_LISTS = ("Action", "NotAction", "Resource", "NotResource")


# ---------------------------------------------------------------------------------------------
# documents and statements


def normalize_policy(document: Any) -> dict[str, Any]:
    """A copy of a policy document with `Statement` a list of statements and each statement's
    Action/NotAction/Resource/NotResource a list of strings. Anything that is not a JSON object
    (an undecodable document) becomes a document without statements."""
    if not isinstance(document, Mapping):
        return {"Statement": []}
    raw = document.get("Statement", [])
    statements = [raw] if isinstance(raw, Mapping) else list(raw or [])
    out = dict(document)
    out["Statement"] = [_normalize_statement(s) for s in statements if isinstance(s, Mapping)]
    return out


def _normalize_statement(statement: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(statement)
    for key in _LISTS:
        if key in out:
            value = out[key]
            out[key] = [value] if isinstance(value, str) else [str(v) for v in value or []]
    return out


@dataclass(frozen=True)
class Statement:
    """One statement of a normalised document. `actions` holds Action, or NotAction when
    `not_action` is set; `resources` likewise for Resource/NotResource."""

    effect: Literal["Allow", "Deny"]
    actions: tuple[str, ...]
    not_action: bool = False
    resources: tuple[str, ...] = ("*",)
    not_resource: bool = False
    condition: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    sid: str = ""
    index: int = 0

    @property
    def counts(self) -> bool:
        """Unconditional and on every resource: the only statements this module evaluates."""
        return not self.condition and not self.not_resource and "*" in self.resources

    def __str__(self) -> str:
        return f"statement {self.index}" + (f" ({self.sid})" if self.sid else "")


def parse_statements(document: Any) -> list[Statement]:
    """Every statement of a policy document, in order (`index` is the position in the list)."""
    parsed = []
    for index, raw in enumerate(normalize_policy(document)["Statement"]):
        not_action = "NotAction" in raw
        not_resource = "NotResource" in raw
        effect: Literal["Allow", "Deny"] = (
            "Deny" if str(raw.get("Effect", "")).lower() == "deny" else "Allow"
        )
        parsed.append(
            Statement(
                effect=effect,
                actions=tuple(raw.get("NotAction" if not_action else "Action", [])),
                not_action=not_action,
                resources=tuple(raw.get("NotResource" if not_resource else "Resource", [])),
                not_resource=not_resource,
                condition=raw.get("Condition") or {},
                sid=str(raw.get("Sid") or ""),
                index=index,
            )
        )
    return parsed


# ---------------------------------------------------------------------------------------------
# where statements come from


@dataclass(frozen=True)
class Source:
    """Where a statement comes from: a policy, inline or managed, direct or through a group."""

    policy: str
    kind: Literal["inline", "managed"]
    arn: str = ""
    group: str = ""
    #: the managed policy's document was not in the snapshot; its known AWS content was used
    assumed: bool = False

    @property
    def direct(self) -> bool:
        return not self.group

    def __str__(self) -> str:
        if self.kind == "inline":
            text = f"inline policy {self.policy}"
        elif self.assumed:
            text = f"{self.policy} (managed; document not in snapshot, known AWS content assumed)"
        else:
            text = f"{self.policy} (managed)"
        return f"group {self.group}: {text}" if self.group else text


class Sourced(NamedTuple):
    source: Source
    statement: Statement

    def __str__(self) -> str:
        return f"{self.source}, {self.statement}"


StatementLike = Statement | Sourced
S = TypeVar("S", bound=Statement | Sourced)


def statements_of(principal: Mapping[str, Any], iam: Any) -> list[Sourced]:
    """Every identity-policy statement that applies to a user, group or role, with its source.

    `principal` is an entry of `iam.users`, `iam.groups` or `iam.roles` (the shapes of
    GetAccountAuthorizationDetails); `iam` is the snapshot's IamSection. A user's groups
    (GroupList) contribute their inline and attached policies. Managed policies resolve to their
    default version in `iam.policies`; a missing AdministratorAccess, IAMFullAccess or
    PowerUserAccess falls back to its known AWS content (the Source says `assumed`); any other
    missing document contributes nothing and is listed by `missing_policies`.
    Permissions boundaries are ignored (see the module docstring).
    """
    found = list(_own_statements(principal, iam))
    groups = {g.get("GroupName"): g for g in iam.groups}
    for name in principal.get("GroupList", []):
        if name in groups:
            found.extend(_own_statements(groups[name], iam, group=name))
    return found


def missing_policies(principal: Mapping[str, Any], iam: Any) -> list[str]:
    """ARNs of managed policies attached to the principal (or its groups) whose document is
    neither in the snapshot nor known: what `statements_of` could not evaluate."""
    documents = _documents(iam)
    groups = {g.get("GroupName"): g for g in iam.groups}
    holders = [principal, *(groups[n] for n in principal.get("GroupList", []) if n in groups)]
    return [
        p["PolicyArn"]
        for holder in holders
        for p in holder.get("AttachedManagedPolicies", [])
        if p.get("PolicyArn") not in documents and _known_name(p.get("PolicyArn", "")) is None
    ]


def _own_statements(principal: Mapping[str, Any], iam: Any, group: str = "") -> Iterator[Sourced]:
    for listed in ("UserPolicyList", "GroupPolicyList", "RolePolicyList"):
        for policy in principal.get(listed, []):
            source = Source(policy.get("PolicyName", "?"), "inline", group=group)
            for statement in parse_statements(policy.get("PolicyDocument")):
                yield Sourced(source, statement)
    documents = _documents(iam)
    for attached in principal.get("AttachedManagedPolicies", []):
        arn, name = attached.get("PolicyArn", ""), attached.get("PolicyName", "?")
        document, assumed = documents.get(arn), False
        if document is None and (known := _known_name(arn)) is not None:
            document, assumed = KNOWN_AWS_POLICIES[known], True
        source = Source(name, "managed", arn=arn, group=group, assumed=assumed)
        for statement in parse_statements(document):
            yield Sourced(source, statement)


def managed_policy_statements(arn: str, iam: Any) -> list[Sourced] | None:
    """The statements of one managed policy (its default version in `iam.policies`, or the
    known AWS content) with their Source, or None when its document is not available. For
    documents attached in other ways than `statements_of` reads, such as permissions boundaries."""
    document, assumed = _documents(iam).get(arn), False
    if document is None and (known := _known_name(arn)) is not None:
        document, assumed = KNOWN_AWS_POLICIES[known], True
    if document is None:
        return None
    source = Source(arn.rsplit("/", 1)[-1], "managed", arn=arn, assumed=assumed)
    return [Sourced(source, statement) for statement in parse_statements(document)]


def _documents(iam: Any) -> dict[str, Any]:
    """Policy ARN -> the document of its default version, for policies that have one."""
    documents = {}
    for policy in iam.policies:
        for version in policy.get("PolicyVersionList", []):
            if version.get("IsDefaultVersion") and version.get("Document") is not None:
                documents[policy.get("Arn", "")] = version["Document"]
    return documents


def _known_name(arn: str) -> str | None:
    """The known policy's name for arn:<partition>:iam::aws:policy/AdministratorAccess, etc."""
    prefix, _, name = arn.rpartition(":iam::aws:policy/")
    return name if prefix.startswith("arn:") and name in KNOWN_AWS_POLICIES else None


# ---------------------------------------------------------------------------------------------
# evaluation


def granted_by(statements: Iterable[S], action: str) -> S | None:
    """The first counting Allow that grants `action` (which may itself hold wildcards: "iam:*"
    asks for every IAM action), or None when nothing grants it or a counting Deny covers any part
    of it. See the module docstring for what "counting" means."""
    items = list(statements)
    if any(_denies(_statement(item), action) for item in items):
        return None
    return next((item for item in items if _grants(_statement(item), action)), None)


def allows(statements: Iterable[StatementLike], action: str) -> bool:
    """Whether `action` is allowed unconditionally on all resources (module docstring)."""
    return granted_by(list(statements), action) is not None


#: full access, or full control of IAM (which grants itself anything in one call)
ADMIN_ACTIONS = ("*", "iam:*")
#: CIS 1.16's "full administrative privileges": every action on every resource
FULL_ADMIN = ("*",)


def admin_grant(
    statements: Iterable[S], actions: tuple[str, ...] = ADMIN_ACTIONS
) -> tuple[str, S] | None:
    """(action, statement) for the first of `actions` (default `*`, then `iam:*`) the
    statements grant, or None."""
    items = list(statements)
    for action in actions:
        if (grant := granted_by(items, action)) is not None:
            return action, grant
    return None


def is_admin_equivalent(statements: Iterable[StatementLike]) -> bool:
    """Admin-equivalent means: every action (`*:*`), or every IAM action (`iam:*`), on every
    resource without condition. Indirect routes to admin are `escalation_paths`, kept apart so
    a caller can rank "is admin" above "can become admin"."""
    return admin_grant(list(statements)) is not None


def _statement(item: StatementLike) -> Statement:
    return item.statement if isinstance(item, Sourced) else item


def _grants(statement: Statement, action: str) -> bool:
    if statement.effect != "Allow" or not statement.counts:
        return False
    if statement.not_action:  # allowed unless some excluded pattern touches the action
        return not any(wildcards_overlap(p, action) for p in statement.actions)
    return any(_covers(p, action) for p in statement.actions)


def _denies(statement: Statement, action: str) -> bool:
    if statement.effect != "Deny" or not statement.counts:
        return False
    if statement.not_action:  # denied unless the exclusions cover the whole action
        return not any(_covers(p, action) for p in statement.actions)
    return any(wildcards_overlap(p, action) for p in statement.actions)


@lru_cache(maxsize=8192)
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(glob_regex(pattern), re.IGNORECASE | re.DOTALL)


def _covers(pattern: str, action: str) -> bool:
    """Every action `action` names matches `pattern` (wildcards in `action` taken literally,
    which is exact for a plain action and for a trailing `*` such as "iam:*")."""
    return _pattern(pattern).fullmatch(action) is not None


@lru_cache(maxsize=65536)
def wildcards_overlap(first: str, second: str, ignore_case: bool = True) -> bool:
    """Whether some string matches both IAM wildcard patterns (`*`, `?`): a walk over pairs of
    positions. Shared by the conservative helpers here and the evaluation engine."""
    a, b = (first.lower(), second.lower()) if ignore_case else (first, second)
    seen: set[tuple[int, int]] = set()
    todo = [(0, 0)]
    while todo:
        i, j = todo.pop()
        if (i, j) in seen:
            continue
        seen.add((i, j))
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i] == "*":  # a star may match nothing
            todo.append((i + 1, j))
        if j < len(b) and b[j] == "*":
            todo.append((i, j + 1))
        if i < len(a) and j < len(b) and (a[i] in "*?" or b[j] in "*?" or a[i] == b[j]):
            todo.append((i if a[i] == "*" else i + 1, j if b[j] == "*" else j + 1))
    return False


# ---------------------------------------------------------------------------------------------
# privilege escalation


@dataclass(frozen=True)
class EscalationPath:
    """A combination of rights that leads to more rights. Each step is satisfied by any one of
    its actions."""

    name: str
    steps: tuple[tuple[str, ...], ...]
    summary: str


def _path(name: str, summary: str, *steps: str | tuple[str, ...]) -> EscalationPath:
    return EscalationPath(name, tuple((s,) if isinstance(s, str) else s for s in steps), summary)


PASS = "iam:PassRole"
#: After Rhino Security Labs' catalogue of AWS IAM privilege escalation methods, plus the ECS route
#: this product cares most about. Single IAM actions escalate on their own: the principal can point
#: them at itself (or a group it is in, or a role it can reach). ECS routes that depend on what
#: runs in the account (exec into a task with a stronger role, RunTask of an existing definition)
#: are judged against the snapshot in iam/escalation.py, not here.
ESCALATION_PATHS: tuple[EscalationPath, ...] = (
    _path(
        "ecs-deploy-passrole",
        "run code in a task under any passable role",
        PASS,
        "ecs:RegisterTaskDefinition",
        ("ecs:RunTask", "ecs:StartTask", "ecs:CreateService", "ecs:UpdateService"),
    ),
    _path(
        "iam-create-policy-version", "rewrite a managed policy it holds", "iam:CreatePolicyVersion"
    ),
    _path(
        "iam-set-default-policy-version",
        "switch a policy to a broader old version",
        "iam:SetDefaultPolicyVersion",
    ),
    _path(
        "iam-attach-policy",
        "attach any managed policy (AdministratorAccess) to itself",
        ("iam:AttachUserPolicy", "iam:AttachGroupPolicy", "iam:AttachRolePolicy"),
    ),
    _path(
        "iam-put-inline-policy",
        "write an inline policy granting anything",
        ("iam:PutUserPolicy", "iam:PutGroupPolicy", "iam:PutRolePolicy"),
    ),
    _path("iam-create-access-key", "create access keys for another user", "iam:CreateAccessKey"),
    _path(
        "iam-login-profile",
        "set another user's console password",
        ("iam:CreateLoginProfile", "iam:UpdateLoginProfile"),
    ),
    _path(
        "iam-update-assume-role-policy",
        "make any role trust it, then assume it",
        "iam:UpdateAssumeRolePolicy",
        "sts:AssumeRole",
    ),
    _path("iam-add-user-to-group", "join an administrators' group", "iam:AddUserToGroup"),
    _path(
        "lambda-passrole-invoke",
        "run code in a new function under any passable role",
        PASS,
        "lambda:CreateFunction",
        "lambda:InvokeFunction",
    ),
    _path(
        "lambda-passrole-event-source",
        "run code in a new function triggered by an event source",
        PASS,
        "lambda:CreateFunction",
        "lambda:CreateEventSourceMapping",
    ),
    _path(
        "lambda-update-function-code",
        "replace the code of a function that has a role",
        "lambda:UpdateFunctionCode",
    ),
    _path(
        "ec2-passrole-run-instances",
        "start an instance with any passable instance role",
        PASS,
        "ec2:RunInstances",
    ),
    _path(
        "glue-passrole-dev-endpoint",
        "open a Glue endpoint under any passable role",
        PASS,
        "glue:CreateDevEndpoint",
    ),
    _path(
        "glue-update-dev-endpoint",
        "take over an existing Glue endpoint and its role",
        "glue:UpdateDevEndpoint",
    ),
    _path(
        "cloudformation-passrole-create-stack",
        "deploy a stack under any passable role",
        PASS,
        "cloudformation:CreateStack",
    ),
    _path(
        "cloudformation-passrole-change-set",
        "execute a change set under any passable role",
        PASS,
        "cloudformation:CreateChangeSet",
        "cloudformation:ExecuteChangeSet",
    ),
    _path(
        "ec2-user-data-restart",
        "rewrite an instance's user data and restart it, as its instance role",
        "ec2:ModifyInstanceAttribute",
        "ec2:StopInstances",
        "ec2:StartInstances",
    ),
    _path(
        "ec2-launch-template-version",
        "add a launch template version whose instances run under its role",
        "ec2:CreateLaunchTemplateVersion",
        "ec2:ModifyLaunchTemplate",
    ),
    _path(
        "datapipeline-passrole",
        "run commands in a pipeline under any passable role",
        PASS,
        "datapipeline:CreatePipeline",
        "datapipeline:PutPipelineDefinition",
    ),
)


@dataclass(frozen=True)
class Escalation:
    """A path found, with the statement granting each step's action."""

    path: EscalationPath
    grants: tuple[tuple[str, StatementLike], ...]

    @property
    def name(self) -> str:
        return self.path.name

    def __str__(self) -> str:
        """E.g. `ecs-deploy-passrole (inline policy deploy, statement 0: iam:PassRole, ...)`."""
        by_statement: dict[str, list[str]] = {}
        for action, item in self.grants:
            by_statement.setdefault(str(item), []).append(action)
        evidence = "; ".join(f"{where}: {', '.join(acts)}" for where, acts in by_statement.items())
        return f"{self.name} ({evidence})"


def escalation_paths(
    statements: Iterable[StatementLike], paths: Iterable[EscalationPath] = ESCALATION_PATHS
) -> list[Escalation]:
    """Every path whose steps the statements all grant (counting statements only, so a PassRole
    limited to named roles does not make a path)."""
    items = list(statements)
    found = []
    for path in paths:
        grants: list[tuple[str, StatementLike]] = []
        for step in path.steps:
            hit = next(((a, g) for a in step if (g := granted_by(items, a)) is not None), None)
            if hit is None:
                break
            grants.append(hit)
        else:
            found.append(Escalation(path, tuple(grants)))
    return found
