"""The principals of an account (users, roles, groups) as the policy engine sees them.

`principals(iam)` turns the snapshot's IAM section (GetAccountAuthorizationDetails shapes) into
`Principal`s: each with every identity statement that applies to it (a user's include its
groups'), its permissions boundary, a role's trust policy, last use, tags. On top of them:
`can` (does P get A on R, and which statements decide it), `trust_allows` (does a role's trust
policy let X assume it) and `assumable_by` (which roles can P assume).

A permissions boundary whose document is not in the snapshot is left out (`boundary` None) and
listed in `missing_policies`: ignoring a boundary can only overstate a principal's rights.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from ecsguard.iam.conditions import parse_date
from ecsguard.iam.evaluate import (
    Decision,
    Request,
    ResourceStatement,
    account_of,
    evaluate,
    evaluate_resource_policy,
    is_service,
    parse_resource_policy,
)
from ecsguard.iam.policy import (
    Sourced,
    managed_policy_statements,
    missing_policies,
    statements_of,
)

if TYPE_CHECKING:
    from ecsguard.aws.snapshot import IamSection

PrincipalType = Literal["user", "role", "group"]
ASSUME_ROLE = "sts:AssumeRole"


@dataclass(frozen=True)
class Principal:
    """A user, role or group with everything policy evaluation needs about it."""

    arn: str
    name: str
    type: PrincipalType
    statements: tuple[Sourced, ...] = ()
    #: the permissions boundary's statements; None when there is none (or it was not readable)
    boundary: tuple[Sourced, ...] | None = None
    boundary_arn: str = ""
    #: a role's trust policy (who may assume it); empty for users and groups
    trust: tuple[ResourceStatement, ...] = ()
    #: a user's groups
    groups: tuple[str, ...] = ()
    #: a role's RoleLastUsed; a user's latest console login or access-key use
    last_used: datetime | None = None
    tags: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)
    path: str = "/"
    created: datetime | None = None
    id: str = ""
    #: managed policies (and a boundary) attached but whose documents are not in the snapshot
    missing_policies: tuple[str, ...] = ()

    @property
    def account(self) -> str:
        return account_of(self.arn)

    def context(self) -> dict[str, Any]:
        """The condition keys a request by this principal carries, as far as IAM knows them
        (`aws:username` is absent for roles; a role's aws:userid depends on its session)."""
        if self.type == "group":  # a group never signs a request
            return {}
        keys: dict[str, Any] = {
            "aws:PrincipalArn": self.arn,
            "aws:PrincipalAccount": self.account,
            "aws:PrincipalType": "User" if self.type == "user" else "AssumedRole",
            "aws:PrincipalIsAWSService": False,
            "aws:username": self.name if self.type == "user" else None,
        }
        if self.type == "user" and self.id:
            keys["aws:userid"] = self.id
        keys.update({f"aws:PrincipalTag/{k}": v for k, v in self.tags.items()})
        return keys

    def __str__(self) -> str:
        return f"{self.type} {self.name}"


def principals(iam: IamSection) -> list[Principal]:
    """Every user, role and group of the IAM section: users, then roles, then groups, each by
    name (a stable order for reports and diffs)."""
    last_use = _user_last_use(iam)
    users = [_principal(u, "user", iam, last_use) for u in iam.users]
    roles = [_principal(r, "role", iam, last_use) for r in iam.roles]
    groups = [_principal(g, "group", iam, last_use) for g in iam.groups]
    return [p for kind in (users, roles, groups) for p in sorted(kind, key=lambda p: p.name)]


_NAME_KEYS = {"user": "UserName", "role": "RoleName", "group": "GroupName"}
_ID_KEYS = {"user": "UserId", "role": "RoleId", "group": "GroupId"}


def _principal(
    item: Mapping[str, Any],
    kind: PrincipalType,
    iam: IamSection,
    user_last_use: Mapping[str, datetime],
) -> Principal:
    name = str(item.get(_NAME_KEYS[kind], ""))
    boundary_arn = (item.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn", "")
    boundary = managed_policy_statements(boundary_arn, iam) if boundary_arn else None
    missing = missing_policies(item, iam)
    if boundary_arn and boundary is None:
        missing.append(boundary_arn)
    if kind == "role":
        last_used = _when((item.get("RoleLastUsed") or {}).get("LastUsedDate"))
    else:
        last_used = user_last_use.get(name) if kind == "user" else None
    return Principal(
        arn=str(item.get("Arn", "")),
        name=name,
        type=kind,
        statements=tuple(statements_of(item, iam)),
        boundary=None if boundary is None else tuple(boundary),
        boundary_arn=boundary_arn,
        trust=parse_resource_policy(item.get("AssumeRolePolicyDocument")) if kind == "role" else (),
        groups=tuple(item.get("GroupList", [])) if kind == "user" else (),
        last_used=last_used,
        tags={str(t.get("Key")): str(t.get("Value", "")) for t in item.get("Tags") or []},
        path=str(item.get("Path", "/")),
        created=_when(item.get("CreateDate")),
        id=str(item.get(_ID_KEYS[kind], "")),
        missing_policies=tuple(missing),
    )


_REPORT_USE_COLUMNS = (
    "password_last_used",
    "access_key_1_last_used_date",
    "access_key_2_last_used_date",
)


def _user_last_use(iam: IamSection) -> dict[str, datetime]:
    """User name -> the latest of password use and access-key use (the keys' LastUsed and the
    credential report's columns; whichever the snapshot has)."""
    latest: dict[str, datetime] = {}

    def note(user: str, value: Any) -> None:
        if (moment := _when(value)) is not None and (user not in latest or moment > latest[user]):
            latest[user] = moment

    for user in iam.users:
        note(str(user.get("UserName", "")), user.get("PasswordLastUsed"))
    for key in iam.access_keys:
        note(str(key.get("UserName", "")), (key.get("LastUsed") or {}).get("LastUsedDate"))
    for row in iam.credential_report:
        for column in _REPORT_USE_COLUMNS:
            note(str(row.get("user", "")), row.get(column))
    return latest


def _when(value: Any) -> datetime | None:
    """A timestamp from the snapshot; None for the credential report's "N/A", "no_information"
    and the like."""
    if value is None or value == "":
        return None
    try:
        return parse_date(value)
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
# questions


def can(
    principal: Principal,
    action: str,
    resource: str = "*",
    context: Mapping[str, Any] | None = None,
    *,
    now: datetime | None = None,
) -> Decision:
    """Whether the principal may call `action` on `resource` (default `*`: every resource),
    judged by its identity policies and boundary. The principal's own condition keys
    (aws:username, aws:PrincipalTag/...) are filled in; `context` adds or overrides keys.
    `now` decides date conditions (pass the snapshot's collection time)."""
    request = Request(action, resource, {**principal.context(), **(context or {})})
    return evaluate(request, principal.statements, principal.boundary, now=now)


def trust_allows(
    role: Principal,
    principal_arn_or_service: str,
    context: Mapping[str, Any] | None = None,
    *,
    action: str = ASSUME_ROLE,
    now: datetime | None = None,
) -> Decision:
    """Whether the role's trust policy lets an ARN, account id or service principal
    (`ecs-tasks.amazonaws.com`) assume it. A trust policy naming the caller's account (its
    root) allows, and the reasons say that the caller's identity policy must allow too. A
    service is taken to act for the role's own account (aws:SourceAccount, unless `context`
    says otherwise): the usual confused-deputy condition then holds."""
    keys = dict(context or {})
    if is_service(principal_arn_or_service):
        keys = {"aws:SourceAccount": role.account, **keys}
    request = Request(action, role.arn, keys)
    return evaluate_resource_policy(request, role.trust, principal_arn_or_service, now=now)


class Assumable(NamedTuple):
    role: Principal
    decision: Decision


def assumable_by(
    principal: Principal,
    roles: Iterable[Principal],
    context: Mapping[str, Any] | None = None,
    *,
    now: datetime | None = None,
) -> list[Assumable]:
    """The roles the principal can assume (decision allow) or might (conditional), in the
    order given. As AWS decides sts:AssumeRole: no Deny may apply; a trust policy naming the
    principal itself grants within the account; naming its account (root) leaves the decision
    to the principal's identity policy (capped by its boundary); across accounts both must
    allow. A group assumes nothing."""
    if principal.type == "group":
        return []
    merged = {**principal.context(), **(context or {})}
    found = []
    for role in roles:
        if role.type != "role":
            continue
        decision = evaluate(
            Request(ASSUME_ROLE, role.arn, merged),
            principal.statements,
            principal.boundary,
            resource_policy=role.trust,
            principal_arn=principal.arn,
            now=now,
        )
        if decision.possible:
            found.append(Assumable(role, decision))
    return found
