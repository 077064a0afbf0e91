"""AWS's policy evaluation logic for one request: `can P do A on R`, with the deciding statements.

What is evaluated: identity policies, a permissions boundary, and a resource-based policy (a
role's trust policy is one, for sts:AssumeRole). The rules, as AWS documents them:

1. An explicit Deny that applies, in any of them, wins.
2. Otherwise the request needs an Allow: from an identity policy *and* the boundary (when the
   principal has one: the boundary caps identity permissions, it grants nothing), or from a
   resource policy of the same account that names the principal (its ARN, or `"*"`). A resource
   policy that names only the principal's account (`123456789012` or `...:root`) delegates to the
   account: the identity policy must allow. Across accounts both sides must allow. A resource
   policy's grant to a user ARN is not capped by the user's boundary; a grant to a role is.
3. Nothing allows it: implicit deny.

Service control policies, resource control policies and session policies are *not* evaluated:
this module cannot see them, so an "allow" here can still be denied by an SCP (never the other
way round).

Conditions are three-valued (see `conditions`): a request the analysis cannot decide, because
it depends on a condition key we do not know (the caller's IP address, a resource tag), is
**conditional**; the decision names the conditions that must hold (on Allows) or must not hold
(on Denies). Time is decided against `now`.

Matching. Actions (`Action`/`NotAction`) are matched case-insensitively with `*` and `?`;
resources (`Resource`/`NotResource`) case-sensitively and part by part for ARNs, with policy
variables (`${aws:username}`) replaced from the request context. A request's action or resource
may itself hold wildcards (the default resource is `"*"`): it then stands for *every* action or
resource it names. An Allow applies when it covers all of them; a Deny decides when it covers all
of them, while a Deny of only part of them is reported in the reasons and does not flip the
decision (the analysis overstates rather than hides a right, as `policy` does). For a concrete
action and ARN this is exactly AWS's rule.

`expand_allowed` answers the other question, "what can this principal do at all": every known
action allowed on some resource, with its access level, in milliseconds even for `*`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, lru_cache
from typing import Any, Literal

from ecsguard.iam import actions
from ecsguard.iam.conditions import (
    Clause,
    ConditionError,
    Context,
    Truth,
    any_of,
    evaluate_condition,
    glob_regex,
    resolve_variables,
)
from ecsguard.iam.policy import (
    Source,
    Sourced,
    Statement,
    StatementLike,
    normalize_policy,
    parse_statements,
    wildcards_overlap,
)

DecisionKind = Literal["allow", "explicit_deny", "implicit_deny", "conditional"]
PolicyType = Literal["identity", "boundary", "resource"]


# ---------------------------------------------------------------------------------------------
# requests and decisions


@dataclass(frozen=True)
class Request:
    """One API call: an action (`ecs:UpdateService`), a resource ARN (`"*"`: every resource)
    and the condition keys we know (see `conditions.Context` for unknown versus absent keys)."""

    action: str
    resource: str = "*"
    context: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def __str__(self) -> str:
        return f"{self.action} on {self.resource}"


@dataclass(frozen=True)
class Match:
    """A statement that applies to the request, with where it sits and whether its conditions
    hold (`unknown`: the clauses that could not be decided)."""

    policy: PolicyType
    item: StatementLike
    truth: Truth
    unknown: tuple[Clause, ...] = ()

    @property
    def statement(self) -> Statement:
        return _statement(self.item)

    @property
    def source(self) -> Source | None:
        return self.item.source if isinstance(self.item, Sourced) else None

    def __str__(self) -> str:
        """`ecs-operate (managed), statement 1 (Operate)`, `permissions boundary: ...`,
        `resource policy, statement 0`."""
        if self.policy == "resource" and not isinstance(self.item, Sourced):
            return f"resource policy, {self.item}"
        prefix = "permissions boundary: " if self.policy == "boundary" else ""
        return f"{prefix}{self.item}"


@dataclass(frozen=True)
class Decision:
    """The outcome for one request. `deciding` holds the statements that decide it: the Denies
    that apply (explicit_deny); the Allows that grant it (allow); the undecided Allows and Denies
    it hinges on, with the Allows that hold (conditional); the Allows a boundary or a missing
    account grant leaves without effect (implicit_deny, often empty)."""

    decision: DecisionKind
    request: Request
    deciding: tuple[Match, ...] = ()
    reasons: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.decision == "allow"

    @property
    def possible(self) -> bool:
        """Allowed, or allowed under conditions we could not decide."""
        return self.decision in ("allow", "conditional")

    @property
    def statements(self) -> tuple[StatementLike, ...]:
        return tuple(m.item for m in self.deciding)

    @property
    def requires(self) -> tuple[Clause, ...]:
        """Undecided conditions of the Allows that would grant it (any one statement's suffice)."""
        return tuple(c for m in self.deciding if m.statement.effect == "Allow" for c in m.unknown)

    @property
    def unless(self) -> tuple[Clause, ...]:
        """Undecided conditions of Denies: the request is allowed only if these do not hold."""
        return tuple(c for m in self.deciding if m.statement.effect == "Deny" for c in m.unknown)

    def __str__(self) -> str:
        return f"{self.request}: {self.decision.replace('_', ' ')} ({'; '.join(self.reasons)})"


# ---------------------------------------------------------------------------------------------
# resource-based policies


MatchLevel = Literal["principal", "account"]


@dataclass(frozen=True)
class Grantees:
    """The Principal (or NotPrincipal) element of a resource-based or trust policy."""

    anyone: bool = False  # "*"
    aws: tuple[str, ...] = ()  # account ids, account root ARNs, user / role / session ARNs, "*"
    services: tuple[str, ...] = ()
    federated: tuple[str, ...] = ()
    canonical_users: tuple[str, ...] = ()
    negated: bool = False  # NotPrincipal

    @classmethod
    def parse(cls, value: Any, negated: bool = False) -> Grantees:
        if value == "*":
            return cls(anyone=True, negated=negated)
        if isinstance(value, str):  # not valid IAM, but its meaning is plain
            value = {"AWS": value}
        if not isinstance(value, Mapping):
            return cls(negated=negated)

        def listed(name: str) -> tuple[str, ...]:
            raw = value.get(name, [])
            return tuple(str(v) for v in ([raw] if isinstance(raw, str) else raw or []))

        return cls(
            aws=listed("AWS"),
            services=listed("Service"),
            federated=listed("Federated"),
            canonical_users=listed("CanonicalUser"),
            negated=negated,
        )

    def level(self, who: str | None) -> MatchLevel | None:
        """How this element names `who` (an ARN, an account id, or a service principal such as
        `ecs-tasks.amazonaws.com`): the principal itself, only its account, or not at all."""
        if who is None:
            return "principal" if self.anyone and not self.negated else None
        if self.negated:
            return _not_principal_level(self, who)
        return _level(self, who)

    def __str__(self) -> str:
        if self.anyone:
            return "everyone (*)"
        names = [*self.aws, *self.services, *self.federated, *self.canonical_users]
        return ("everyone but " if self.negated else "") + ", ".join(names)


def _level(grantees: Grantees, who: str) -> MatchLevel | None:
    if grantees.anyone:
        return "principal"
    if is_service(who):
        return "principal" if who.lower() in {s.lower() for s in grantees.services} else None
    account = account_of(who)
    best: MatchLevel | None = None
    for named in grantees.aws:
        if named == "*" or named == who or _same_role(named, who):
            return "principal"
        if account and named in (account, root_arn(who)):
            best = "account"
    if best == "account" and who in (account, root_arn(who)):
        return "principal"  # the request is the account's own (its root user)
    return best


def _not_principal_level(grantees: Grantees, who: str) -> MatchLevel | None:
    """NotPrincipal applies unless every identity of the caller is listed: AWS checks the
    principal and its account separately, so excluding a user also needs its account listed."""
    if grantees.anyone:
        return None
    if is_service(who):
        listed = {s.lower() for s in grantees.services}
        return None if who.lower() in listed else "principal"
    names_principal = who in grantees.aws or any(_same_role(n, who) for n in grantees.aws)
    names_account = account_of(who) in grantees.aws or root_arn(who) in grantees.aws
    return None if names_principal and names_account else "principal"


@dataclass(frozen=True)
class ResourceStatement:
    """A statement of a resource-based policy with its Principal element."""

    item: StatementLike
    grantees: Grantees

    @property
    def statement(self) -> Statement:
        return _statement(self.item)


def parse_resource_policy(document: Any) -> tuple[ResourceStatement, ...]:
    """The statements of a resource-based or trust policy, with their Principal elements."""
    raw = normalize_policy(document)["Statement"]
    parsed = parse_statements(document)
    return tuple(
        ResourceStatement(
            statement,
            Grantees.parse(r.get("NotPrincipal", r.get("Principal")), "NotPrincipal" in r),
        )
        for r, statement in zip(raw, parsed, strict=True)
    )


def is_service(who: str) -> bool:
    """`ecs-tasks.amazonaws.com` is a service principal; ARNs and account ids are not."""
    return ":" not in who and "." in who


def account_of(arn: str) -> str:
    """The account of an ARN (`arn:aws:iam::123456789012:user/x`), or an account id itself."""
    if re.fullmatch(r"\d{12}", arn):
        return arn
    parts = arn.split(":", 5)
    return parts[4] if len(parts) == 6 and parts[0] == "arn" else ""


def root_arn(arn: str) -> str:
    partition = arn.split(":")[1] if arn.startswith("arn:") else "aws"
    account = account_of(arn)
    return f"arn:{partition}:iam::{account}:root" if account else ""


def _same_role(named: str, who: str) -> bool:
    """A role session (`arn:aws:sts::1:assumed-role/R/s`) is named by its role's ARN."""
    if ":assumed-role/" not in who or ":role/" not in named:
        return False
    role = who.split(":assumed-role/", 1)[1].split("/", 1)[0]
    return account_of(named) == account_of(who) and named.rsplit("/", 1)[-1] == role


# ---------------------------------------------------------------------------------------------
# evaluation


def evaluate(
    request: Request,
    identity: Iterable[StatementLike],
    boundary: Iterable[StatementLike] | None = None,
    resource_policy: Iterable[ResourceStatement] | Mapping[str, Any] | None = None,
    principal_arn: str | None = None,
    *,
    now: datetime | None = None,
) -> Decision:
    """The decision for `request` by a principal with these identity statements, permissions
    boundary (None: no boundary; an empty one allows nothing) and, for the resource, its
    resource-based policy (a document or parsed statements; None: not considered).
    `principal_arn` is whom the resource policy must name: a user or role ARN, a session ARN,
    an account id, or a service principal. For sts:AssumeRole* and kms: actions the resource
    policy (trust policy, key policy) must itself name the principal or its account, as in AWS.
    `now` decides date conditions on aws:CurrentTime (pass the snapshot's collection time)."""
    ctx = Context(request.context, now)
    found = _Found()
    found.add_all("identity", identity, request, ctx)
    if boundary is not None:
        found.add_all("boundary", boundary, request, ctx)
    if resource_policy is not None:
        found.add_resource_policy(
            _resource_statements(resource_policy), request, ctx, principal_arn
        )
    rules = _Rules(
        boundary=boundary is not None,
        resource_policy=resource_policy is not None,
        required=resource_policy is not None and resource_policy_required(request.action),
        who=principal_arn,
    )
    return _decide(request, found, rules)


def evaluate_resource_policy(
    request: Request,
    resource_policy: Iterable[ResourceStatement] | Mapping[str, Any],
    principal_arn: str,
    *,
    now: datetime | None = None,
) -> Decision:
    """Whether a resource-based policy alone lets `principal_arn` make the request: who can
    assume a role, who may read a bucket. A statement naming only the principal's account
    allows too, and the reasons say that the principal's identity policy must then allow."""
    ctx = Context(request.context, now)
    found = _Found()
    found.add_resource_policy(_resource_statements(resource_policy), request, ctx, principal_arn)
    rules = _Rules(
        boundary=False, resource_policy=True, required=True, who=principal_arn, alone=True
    )
    decision = _decide(request, found, rules)
    delegated = [m for m in decision.deciding if found.level_of(m) == "account"]
    if decision.possible and delegated:
        note = (
            f"{', '.join(str(m) for m in delegated)} names only the account of {principal_arn}: "
            f"its identity policy must allow {request.action} too"
        )
        return Decision(decision.decision, request, decision.deciding, (*decision.reasons, note))
    return decision


def resource_policy_required(action: str) -> bool:
    """Actions whose resource policy must grant (the principal, or its account) even within
    the account: assuming a role needs its trust policy, using a KMS key its key policy."""
    lowered = action.lower()
    return lowered.startswith(("sts:assumerole", "kms:"))


def _resource_statements(
    policy: Iterable[ResourceStatement] | Mapping[str, Any],
) -> tuple[ResourceStatement, ...]:
    if isinstance(policy, Mapping):
        return parse_resource_policy(policy)
    return tuple(policy)


@dataclass(frozen=True)
class _Rules:
    """Which of AWS's combination rules apply to this evaluation."""

    boundary: bool  # the principal has a boundary
    resource_policy: bool  # a resource policy is considered
    required: bool  # ... and it must name the principal or its account
    who: str | None
    alone: bool = False  # judge the resource policy by itself (account naming allows)

    @property
    def service(self) -> bool:
        return self.who is not None and is_service(self.who)


@dataclass
class _Found:
    """The statements that apply to the request (fully; partly applying ones only as text)."""

    matches: list[Match] = field(default_factory=list)
    levels: dict[int, MatchLevel] = field(default_factory=dict)  # id(match) -> how it names us
    partial_denies: list[str] = field(default_factory=list)
    partial_allows: list[str] = field(default_factory=list)

    def add_all(
        self, policy: PolicyType, items: Iterable[StatementLike], request: Request, ctx: Context
    ) -> None:
        for item in items:
            self.add(policy, item, request, ctx)

    def add_resource_policy(
        self,
        statements: Iterable[ResourceStatement],
        request: Request,
        ctx: Context,
        who: str | None,
    ) -> None:
        for rs in statements:
            level = rs.grantees.level(who)
            if level is not None and (match := self.add("resource", rs.item, request, ctx)):
                self.levels[id(match)] = level

    def level_of(self, match: Match) -> MatchLevel | None:
        return self.levels.get(id(match))

    def add(
        self, policy: PolicyType, item: StatementLike, request: Request, ctx: Context
    ) -> Match | None:
        statement = _statement(item)
        scope = _action_scope(statement, request.action)
        if scope == "none":
            return None
        resource_scope: Scope = "full"
        resource_truth = Truth.TRUE
        # a trust policy has no Resource: it is about the role it belongs to
        if policy != "resource" or statement.resources or statement.not_resource:
            resource_scope, resource_truth = _resource_scope(statement, request.resource, ctx)
        scope = "partial" if "partial" in (scope, resource_scope) else resource_scope
        if scope == "none":
            return None
        if scope == "partial":
            partial = self.partial_denies if statement.effect == "Deny" else self.partial_allows
            partial.append(str(Match(policy, item, Truth.TRUE)))
            return None
        try:
            result = evaluate_condition(statement.condition, ctx)
        except ConditionError as error:  # say which statement, not only which operator
            named = str(Match(policy, item, Truth.TRUE))
            raise ConditionError(f"{named}: {error.problem}", error.hint) from error
        truth = result.truth & resource_truth
        if truth is Truth.FALSE:
            return None
        unknown = result.unknown
        if resource_truth is Truth.UNKNOWN:
            unknown = (*unknown, Clause("Resource", "(policy variable)", statement.resources))
        match = Match(policy, item, truth, unknown)
        self.matches.append(match)
        return match


def _bypasses_boundary(who: str) -> bool:
    """AWS: a resource policy's grant to a user or a role session is not capped by a boundary."""
    return ":user/" in who or ":assumed-role/" in who


def _decide(request: Request, found: _Found, rules: _Rules) -> Decision:
    denies = [m for m in found.matches if m.statement.effect == "Deny"]
    deny = any_of(m.truth for m in denies)
    if deny is Truth.TRUE:
        deciding = tuple(m for m in denies if m.truth is Truth.TRUE)
        denial = tuple(f"explicitly denied by {m}" for m in deciding)
        return Decision("explicit_deny", request, deciding, denial)

    layers = _Layers.of(found, rules)
    alternatives = layers.alternatives(request, rules)
    allowed = any_of(truth for truth, _ in alternatives)
    if allowed is Truth.FALSE:
        return _implicit_deny(request, found, layers, rules)
    # the statements that grant: those that hold in a granting layer, else the undecided ones
    if allowed is Truth.TRUE:
        granting = _unique(
            m for truth, ms in alternatives if truth is Truth.TRUE for m in ms if m.truth is truth
        )
    else:
        granting = _unique(m for truth, ms in alternatives if truth is Truth.UNKNOWN for m in ms)
    if allowed is Truth.TRUE and deny is Truth.FALSE:
        reasons: list[str] = [f"allowed by {m}" for m in granting]
        reasons += [
            f"but denied on part of {request.resource} by {d}" for d in found.partial_denies
        ]
        return Decision("allow", request, tuple(granting), tuple(reasons))

    undecided_denies = [m for m in denies if m.truth is Truth.UNKNOWN]
    deciding = (*granting, *undecided_denies)
    reasons = []
    for m in granting:
        if m.truth is Truth.TRUE:
            reasons.append(f"allowed by {m}")
        else:
            reasons.append(f"allowed by {m} only if {_conditions(m)}")
    for m in undecided_denies:
        reasons.append(f"denied by {m} if {_conditions(m)}")
    return Decision("conditional", request, deciding, tuple(reasons))


@dataclass(frozen=True)
class _Layers:
    """The applying Allows of each kind, and whether each kind allows (three-valued)."""

    identity: list[Match]
    boundary: list[Match]
    direct: list[Match]  # resource policy naming the principal, not capped by its boundary
    capped: list[Match]  # resource policy naming the principal (a role), capped by its boundary
    account: list[Match]  # resource policy naming only the principal's account

    @classmethod
    def of(cls, found: _Found, rules: _Rules) -> _Layers:
        resource = [m for m in found.matches if m.policy == "resource" and _allows(m)]
        named = [m for m in resource if found.level_of(m) == "principal"]
        return cls(
            identity=[m for m in found.matches if m.policy == "identity" and _allows(m)],
            boundary=[m for m in found.matches if m.policy == "boundary" and _allows(m)],
            direct=[m for m in named if rules.who and _bypasses_boundary(rules.who)],
            capped=[m for m in named if not (rules.who and _bypasses_boundary(rules.who))],
            account=[m for m in resource if found.level_of(m) == "account"],
        )

    @staticmethod
    def truth(matches: list[Match]) -> Truth:
        return any_of(m.truth for m in matches)

    def boundary_truth(self, rules: _Rules) -> Truth:
        return self.truth(self.boundary) if rules.boundary else Truth.TRUE

    def alternatives(self, request: Request, rules: _Rules) -> list[tuple[Truth, list[Match]]]:
        """The ways the request can be allowed: (whether it is, the statements that make it)."""
        bounded = self.truth(self.identity) & self.boundary_truth(rules)
        identity = self.identity + self.boundary
        named = self.direct + self.capped
        if rules.alone:
            return [(self.truth(named + self.account), named + self.account)]
        if rules.service:  # a service has no identity policy: the resource policy decides
            return [(self.truth(named), named)]
        if rules.resource_policy and rules.who and _cross_account(rules.who, request.resource):
            resource = named + self.account
            return [(bounded & self.truth(resource), identity + resource)]
        via_identity = bounded
        if rules.required:  # the resource policy must at least name the account
            via_identity = bounded & self.truth(named + self.account)
            identity = identity + self.account
        return [
            (via_identity, identity),
            (self.truth(self.direct), self.direct),
            (self.truth(self.capped) & self.boundary_truth(rules), self.capped + self.boundary),
        ]


def _allows(match: Match) -> bool:
    return match.statement.effect == "Allow"


def _cross_account(who: str, resource: str) -> bool:
    mine, theirs = account_of(who), account_of(resource)
    return bool(mine and theirs and mine != theirs)


def _implicit_deny(request: Request, found: _Found, layers: _Layers, rules: _Rules) -> Decision:
    identity_truth = layers.truth(layers.identity)
    boundary_blocks = rules.boundary and layers.boundary_truth(rules) is Truth.FALSE
    if boundary_blocks and identity_truth is not Truth.FALSE:
        reasons = [f"the permissions boundary does not allow {request}"]
        reasons += [f"(identity policy {m} would)" for m in layers.identity]
        return Decision("implicit_deny", request, tuple(layers.identity), tuple(reasons))
    resource_named = layers.direct + layers.capped + layers.account
    if rules.required and not resource_named and not rules.service:
        reason = (
            f"the resource policy of {request.resource} names neither {rules.who} nor its account"
        )
        return Decision("implicit_deny", request, tuple(layers.identity), (reason,))
    if layers.account and identity_truth is Truth.FALSE:
        reason = (
            f"the resource policy names only the principal's account ({layers.account[0]}), "
            f"and no identity policy allows {request}"
        )
        return Decision("implicit_deny", request, tuple(layers.account), (reason,))
    reasons = [f"no statement allows {request}"]
    reasons += [f"(only part of it: {named})" for named in found.partial_allows]
    return Decision("implicit_deny", request, (), tuple(reasons))


def _conditions(match: Match) -> str:
    return " and ".join(str(c) for c in match.unknown) or "its conditions hold"


def _unique(matches: Iterable[Match]) -> list[Match]:
    seen: list[Match] = []
    for m in matches:
        if not any(m is s for s in seen):
            seen.append(m)
    return seen


def _statement(item: StatementLike) -> Statement:
    return item.statement if isinstance(item, Sourced) else item


# ---------------------------------------------------------------------------------------------
# wildcard matching: does a pattern cover everything a (possibly wildcard) name names?


Scope = Literal["full", "partial", "none"]


def _action_scope(statement: Statement, action: str) -> Scope:
    if "*" not in action and "?" not in action and (info := actions.lookup(action)) is not None:
        # a known action: one set lookup in the statement's cached expansion, instead of
        # matching each of its patterns (ReadOnlyAccess has ~1,500) on every request
        named = action_set(statement.actions, statement.not_action)
        return "full" if info.action in named else "none"
    return _scope(statement.actions, statement.not_action, action, ignore_case=True)


def _scope(patterns: Iterable[str], negated: bool, name: str, ignore_case: bool) -> Scope:
    """How much of `name` (which may hold wildcards) a statement's patterns reach."""
    listed = tuple(patterns)
    if negated:  # Not...: applies to what no pattern excludes
        if any(_overlaps(p, name, ignore_case) for p in listed):
            return "none" if any(_covers(p, name, ignore_case) for p in listed) else "partial"
        return "full"
    if any(_covers(p, name, ignore_case) for p in listed):
        return "full"
    return "partial" if any(_overlaps(p, name, ignore_case) for p in listed) else "none"


def _resource_scope(statement: Statement, resource: str, ctx: Context) -> tuple[Scope, Truth]:
    """The scope over `resource`, and UNKNOWN when it rests on a policy variable we do not know
    (the pattern is then tried with the variable as `*`)."""
    truth = Truth.TRUE
    patterns = []
    for pattern in statement.resources:
        resolved = resolve_variables(pattern, ctx) if "${" in pattern else pattern
        if isinstance(resolved, str):
            patterns.append(resolved)
        elif resolved is Truth.UNKNOWN:
            truth = Truth.UNKNOWN
            patterns.append(re.sub(r"\$\{[^}]*\}", "*", pattern))
        # Truth.FALSE: an absent variable without default, the pattern names nothing
    scope = _arn_scope(patterns, statement.not_resource, resource)
    return scope, (truth if scope != "none" else Truth.FALSE)


def _arn_scope(patterns: list[str], negated: bool, resource: str) -> Scope:
    if negated:
        if any(_arn_overlaps(p, resource) for p in patterns):
            return "none" if any(_arn_covers(p, resource) for p in patterns) else "partial"
        return "full"
    if any(_arn_covers(p, resource) for p in patterns):
        return "full"
    return "partial" if any(_arn_overlaps(p, resource) for p in patterns) else "none"


def _arn_covers(pattern: str, resource: str) -> bool:
    if pattern == "*":
        return True
    return _by_part(pattern, resource, _covers)


def _arn_overlaps(pattern: str, resource: str) -> bool:
    if pattern == "*" or resource == "*":
        return True
    return _by_part(pattern, resource, _overlaps)


def _by_part(pattern: str, resource: str, test: Any) -> bool:
    """ARNs are compared part by part (a wildcard stays within its part, except in the resource
    part, which may itself hold colons); anything else as a whole."""
    pattern_parts, resource_parts = pattern.split(":", 5), resource.split(":", 5)
    if len(pattern_parts) == 6 and len(resource_parts) == 6:
        return all(test(p, r, False) for p, r in zip(pattern_parts, resource_parts, strict=True))
    return bool(test(pattern, resource, False))


@lru_cache(maxsize=16384)
def _cover_regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    # `?` must not stand for a `*` of the name: "a?" does not cover every name "a*" names
    body = "".join(".*" if ch == "*" else "[^*]" if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _covers(pattern: str, name: str, ignore_case: bool) -> bool:
    """Every string `name` names (its wildcards read as wildcards) matches `pattern`."""
    if "*" not in name and "?" not in name:
        return _plain_regex(pattern, ignore_case).fullmatch(name) is not None
    return _cover_regex(pattern, ignore_case).fullmatch(name) is not None


@lru_cache(maxsize=16384)
def _plain_regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    return re.compile(glob_regex(pattern), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _overlaps(first: str, second: str, ignore_case: bool) -> bool:
    """Some string matches both wildcard patterns."""
    if "*" not in second and "?" not in second:  # the common case: a plain name, one regex
        return _plain_regex(first, ignore_case).fullmatch(second) is not None
    return wildcards_overlap(first, second, ignore_case)


# ---------------------------------------------------------------------------------------------
# effective permissions over the action database


@dataclass(frozen=True, slots=True)
class Access:
    """How an action is allowed. `conditional`: every grant of it hinges on a condition we could
    not decide (or an undecided Deny may take it away). `all_resources`: some grant covers every
    resource, and no Deny takes part of them away."""

    level: str  # List, Read, Write, Permissions management, Tagging
    conditional: bool = False
    all_resources: bool = True


def expand_allowed(
    identity: Iterable[StatementLike],
    boundary: Iterable[StatementLike] | None = None,
    *,
    context: Context | Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> dict[str, Access]:
    """Every known action (`ecs:RunTask`) allowed on some resource, unconditionally or under
    undecided conditions, in service then name order. A Deny removes an action only when it
    covers every resource and its conditions hold; a Deny on some resources clears
    `all_resources`, an undecided one makes the action `conditional`. Statements whose
    conditions cannot hold (a grant that expired) grant nothing."""
    ctx = context if isinstance(context, Context) else Context(context, now)
    granted = _Granted.of(identity, ctx)
    if boundary is not None:
        granted = granted.capped_by(_Granted.of(boundary, ctx))
    # Plain Access values from a prebuilt table, then the few conditional or scoped ones patched:
    # per-action work in Python is what would make `*` slow (~22,000 actions).
    plain = _plain_access()
    allowed = granted.allowed
    if len(allowed) > len(plain) // 2:
        result = dict(plain)
        for action in plain.keys() - allowed:
            del result[action]
    else:
        position = _positions()
        result = {action: plain[action] for action in sorted(allowed, key=position.__getitem__)}
    for action in (allowed - granted.sure) | (allowed - granted.everywhere):
        level = plain[action].level
        result[action] = _access(level, action not in granted.sure, action in granted.everywhere)
    return result


def levels_by_service(allowed: Mapping[str, Access]) -> dict[str, dict[str, int]]:
    """Service -> access level -> how many actions, for summaries of `expand_allowed`."""
    summary: dict[str, dict[str, int]] = {}
    for action, access in allowed.items():
        levels = summary.setdefault(action.partition(":")[0], {})
        levels[access.level] = levels.get(access.level, 0) + 1
    return summary


@dataclass
class _Granted:
    allowed: set[str]
    sure: set[str]  # allowed by a statement whose conditions hold
    everywhere: set[str]  # allowed by a statement on every resource

    @classmethod
    def of(cls, items: Iterable[StatementLike], ctx: Context) -> _Granted:
        allowed: set[str] = set()
        sure: set[str] = set()
        everywhere: set[str] = set()
        denied: set[str] = set()
        maybe_denied: set[str] = set()
        partly_denied: set[str] = set()
        for item in items:
            statement = _statement(item)
            if not _names_some_resource(statement):
                continue
            truth = evaluate_condition(statement.condition, ctx).truth
            if truth is Truth.FALSE:
                continue
            named = action_set(statement.actions, statement.not_action)
            every_resource = _names_every_resource(statement)
            if statement.effect == "Allow":
                allowed |= named
                if truth is Truth.TRUE:
                    sure |= named
                if every_resource:
                    everywhere |= named
            elif not every_resource:
                partly_denied |= named
            elif truth is Truth.TRUE:
                denied |= named
            else:
                maybe_denied |= named
        allowed -= denied
        return cls(allowed, sure - maybe_denied - denied, everywhere - partly_denied - denied)

    def capped_by(self, boundary: _Granted) -> _Granted:
        return _Granted(
            self.allowed & boundary.allowed,
            self.sure & boundary.sure,
            self.everywhere & boundary.everywhere,
        )


def _names_some_resource(statement: Statement) -> bool:
    if statement.not_resource:
        return "*" not in statement.resources
    return bool(statement.resources)


def _names_every_resource(statement: Statement) -> bool:
    return not statement.not_resource and "*" in statement.resources


@lru_cache(maxsize=16384)
def action_set(patterns: tuple[str, ...], negated: bool = False) -> frozenset[str]:
    """The known actions a statement's Action (or, `negated`, its NotAction) names; computed
    once per distinct list, since the same lists recur across principals."""
    named: set[str] = set()
    wildcards: dict[str, list[str]] = {}  # service -> its name patterns with wildcards
    for pattern in patterns:
        lowered = pattern.lower()
        service, _, name = lowered.partition(":")
        if lowered in ("*", "*:*"):
            named.update(_all_actions())
        elif "*" in service or "?" in service:
            named.update(info.action for info in actions.expand(lowered))
        elif "*" in name or "?" in name:
            wildcards.setdefault(service, []).append(name)
        elif (info := actions.lookup(lowered)) is not None:
            named.add(info.action)
    # one pass over a service's actions for all its patterns: long lists such as ReadOnlyAccess's
    # (~1,500 patterns) would otherwise scan the big services hundreds of times
    for service, names in wildcards.items():
        wanted = re.compile("|".join(glob_regex(n) for n in names), re.DOTALL)
        named.update(
            action for lowered, action in _service_actions(service) if wanted.fullmatch(lowered)
        )
    if negated:
        return _all_actions() - named
    # share the one set of every action rather than keep a copy per statement
    return _all_actions() if len(named) == len(_all_actions()) else frozenset(named)


@cache
def _service_actions(service: str) -> tuple[tuple[str, str], ...]:
    """(lower-case name, action) of every action of a service."""
    return tuple((info.name.lower(), info.action) for info in actions.expand(f"{service}:*"))


@cache
def _all_sorted() -> tuple[str, ...]:
    return tuple(info.action for info in actions.expand("*"))


@cache
def _positions() -> dict[str, int]:
    return {action: index for index, action in enumerate(_all_sorted())}


@cache
def _all_actions() -> frozenset[str]:
    return frozenset(_all_sorted())


@cache
def _plain_access() -> dict[str, Access]:
    """Every known action, in order, allowed unconditionally on every resource."""
    return {info.action: _access(info.access_level, False, True) for info in actions.expand("*")}


@cache
def _access(level: str, conditional: bool, all_resources: bool) -> Access:
    return Access(level, conditional, all_resources)
