"""AWS's evaluation logic: Allow/Deny, NotAction/NotResource, boundaries, conditions, resource
policies; the AWS managed policies; effective permissions over the action database."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecsguard.iam import actions
from ecsguard.iam.conditions import ConditionError, Truth
from ecsguard.iam.evaluate import (
    Access,
    Decision,
    Grantees,
    Request,
    evaluate,
    evaluate_resource_policy,
    expand_allowed,
    levels_by_service,
    parse_resource_policy,
    resource_policy_required,
)
from ecsguard.iam.policy import Source, Sourced, Statement, parse_statements

ACCOUNT = "123456789012"
OTHER = "999999999999"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
APP_ROLE = f"arn:aws:iam::{ACCOUNT}:role/app"
BUCKET = "arn:aws:s3:::reports"
NOW = datetime(2026, 6, 1, tzinfo=UTC)
MANAGED = (
    Path(__file__).parents[2].parent
    / "shared"
    / "testdata"
    / "iam"
    / "aws-managed-policies"
    / "aws-managed-policies.json"
)


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: str | list[str], resource: str | list[str] = "*", **more: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **more}


def deny(action: str | list[str], resource: str | list[str] = "*", **more: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **more}


def policy(*statements: dict[str, Any]) -> list[Statement]:
    return parse_statements(doc(*statements))


def decide(
    action: str,
    identity: list[Statement] | list[Sourced],
    resource: str = "*",
    context: dict[str, Any] | None = None,
    **kw: Any,
) -> Decision:
    return evaluate(Request(action, resource, context or {}), identity, **kw)


# ---------------------------------------------------------------------------------------------
# identity policies


def test_allow_implicit_and_explicit_deny() -> None:
    statements = policy(allow(["ecs:Describe*", "ecs:UpdateService"]), deny("ecs:UpdateService"))
    assert decide("ecs:DescribeServices", statements).decision == "allow"
    assert decide("ecs:RunTask", statements).decision == "implicit_deny"
    denied = decide("ecs:UpdateService", statements)
    assert denied.decision == "explicit_deny"
    assert [m.statement.index for m in denied.deciding] == [1]
    assert denied.reasons == ("explicitly denied by statement 1",)
    assert decide("ecs:RunTask", []).reasons == ("no statement allows ecs:RunTask on *",)


def test_actions_match_case_insensitively_with_wildcards() -> None:
    statements = policy(allow(["IAM:Get*", "ecs:?unTask"]))
    assert decide("iam:GetRole", statements).allowed
    assert decide("ECS:RUNTASK", statements).allowed
    assert not decide("ecs:RunTasks", statements).allowed
    assert not decide("iam:ListRoles", statements).allowed
    # a wildcard request is every action it names: "iam:Get*" covers "iam:GetRole*", not "iam:*"
    assert decide("iam:GetRole*", statements).allowed
    assert decide("iam:*", statements).decision == "implicit_deny"


def test_not_action() -> None:
    power = policy({"Effect": "Allow", "NotAction": ["iam:*", "organizations:*"], "Resource": "*"})
    assert decide("ec2:RunInstances", power).allowed
    assert decide("iam:PassRole", power).decision == "implicit_deny"
    assert decide("*", power).decision == "implicit_deny"  # part of "*" is excluded
    all_but_s3 = policy(allow("*"), {"Effect": "Deny", "NotAction": "s3:*", "Resource": "*"})
    assert decide("s3:GetObject", all_but_s3).allowed
    assert decide("ec2:RunInstances", all_but_s3).decision == "explicit_deny"


def test_resources_by_arn_part_with_wildcards() -> None:
    statements = policy(allow("s3:GetObject", f"{BUCKET}/public/*"))
    assert decide("s3:GetObject", statements, f"{BUCKET}/public/a.csv").allowed
    assert not decide("s3:GetObject", statements, f"{BUCKET}/private/a.csv").allowed
    roles = policy(allow("iam:PassRole", "arn:aws:iam::*:role/app-?"))
    assert decide("iam:PassRole", roles, f"arn:aws:iam::{ACCOUNT}:role/app-1").allowed
    assert not decide("iam:PassRole", roles, f"arn:aws:iam::{ACCOUNT}:role/app-12").allowed
    assert not decide("iam:PassRole", roles, f"arn:aws:iam::{ACCOUNT}:role/App-1").allowed
    # the request "*" is every resource: a grant on some roles does not cover it
    everything = decide("iam:PassRole", roles)
    assert everything.decision == "implicit_deny"
    assert "only part of it: statement 0" in everything.reasons[1]


def test_not_resource() -> None:
    statements = policy({"Effect": "Allow", "Action": "s3:*", "NotResource": f"{BUCKET}/secret/*"})
    assert decide("s3:GetObject", statements, f"{BUCKET}/open/x").allowed
    assert decide("s3:GetObject", statements, f"{BUCKET}/secret/x").decision == "implicit_deny"
    assert decide("s3:GetObject", statements).decision == "implicit_deny"  # not on every one
    guard = policy(allow("s3:*"), {"Effect": "Deny", "Action": "s3:*", "NotResource": BUCKET})
    assert decide("s3:ListBucket", guard, BUCKET).allowed
    assert decide("s3:ListBucket", guard, "arn:aws:s3:::other").decision == "explicit_deny"


def test_a_deny_on_part_of_the_resources_is_reported_not_decisive() -> None:
    statements = policy(allow("s3:*"), deny("s3:*", f"{BUCKET}/*"))
    everywhere = decide("s3:GetObject", statements)
    assert everywhere.allowed
    assert everywhere.reasons[-1] == "but denied on part of * by statement 1"
    assert decide("s3:GetObject", statements, f"{BUCKET}/x").decision == "explicit_deny"


def test_policy_variables_in_resources() -> None:
    own = policy(allow("iam:CreateAccessKey", f"arn:aws:iam::{ACCOUNT}:user/${{aws:username}}"))
    assert decide("iam:CreateAccessKey", own, ALICE, {"aws:username": "alice"}).allowed
    other = decide("iam:CreateAccessKey", own, ALICE, {"aws:username": "bob"})
    assert other.decision == "implicit_deny"
    unknown = decide("iam:CreateAccessKey", own, ALICE)
    assert unknown.decision == "conditional"
    assert "Resource (policy variable)" in unknown.reasons[0]
    role = decide("iam:CreateAccessKey", own, ALICE, {"aws:username": None})
    assert role.decision == "implicit_deny"  # no user name: the pattern names nothing


def test_sourced_statements_are_named_in_the_decision() -> None:
    source = Source("deploy", "managed", arn=f"arn:aws:iam::{ACCOUNT}:policy/deploy", group="ci")
    statements = [Sourced(source, s) for s in policy(allow("ecs:UpdateService", Sid="Roll"))]
    decision = decide("ecs:UpdateService", statements)
    assert decision.statements == (statements[0],)
    assert decision.deciding[0].source == source
    assert decision.reasons == ("allowed by group ci: deploy (managed), statement 0 (Roll)",)
    assert str(decision) == (
        "ecs:UpdateService on *: allow (allowed by group ci: deploy (managed), statement 0 (Roll))"
    )


# ---------------------------------------------------------------------------------------------
# conditions


def test_conditional_allow_names_its_conditions() -> None:
    statements = policy(
        allow("ecs:UpdateService", Condition={"StringEquals": {"aws:ResourceTag/team": "shop"}})
    )
    unknown = decide("ecs:UpdateService", statements)
    assert unknown.decision == "conditional" and unknown.possible and not unknown.allowed
    assert [str(c) for c in unknown.requires] == ["StringEquals aws:ResourceTag/team shop"]
    assert unknown.reasons == (
        "allowed by statement 0 only if StringEquals aws:ResourceTag/team shop",
    )
    tagged = {"aws:ResourceTag/team": "shop"}
    assert decide("ecs:UpdateService", statements, context=tagged).allowed
    other = {"aws:ResourceTag/team": "ops"}
    assert decide("ecs:UpdateService", statements, context=other).decision == "implicit_deny"


def test_conditional_deny_makes_an_allow_conditional() -> None:
    mfa = {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}
    statements = policy(allow("ecs:*"), deny("ecs:UpdateService", Condition=mfa))
    unless = decide("ecs:UpdateService", statements)
    assert unless.decision == "conditional"
    assert [str(c) for c in unless.unless] == ["BoolIfExists aws:MultiFactorAuthPresent false"]
    assert unless.reasons[-1].startswith("denied by statement 1 if BoolIfExists")
    with_mfa = {"aws:MultiFactorAuthPresent": True}
    assert decide("ecs:UpdateService", statements, context=with_mfa).allowed
    assert decide("ecs:UpdateService", statements, context={}).decision == "conditional"
    no_mfa = {"aws:MultiFactorAuthPresent": None}
    assert decide("ecs:UpdateService", statements, context=no_mfa).decision == "explicit_deny"
    # an undecided deny does not matter when nothing allows
    assert decide("ecs:UpdateService", statements[1:]).decision == "implicit_deny"


def test_an_expired_grant_is_no_grant() -> None:
    until = {"DateLessThan": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}}
    statements = policy(allow("iam:*", Condition=until))
    assert decide("iam:CreateUser", statements, now=NOW).decision == "implicit_deny"
    assert decide("iam:CreateUser", statements, now=datetime(2025, 1, 1)).allowed
    assert decide("iam:CreateUser", statements).decision == "conditional"  # time unknown


def test_unknown_operator_names_the_statement() -> None:
    statements = policy(allow("s3:*", Condition={"StringEqualz": {"aws:username": "a"}}, Sid="S"))
    with pytest.raises(ConditionError, match=r"statement 0 \(S\): unknown condition operator"):
        decide("s3:GetObject", statements)


# ---------------------------------------------------------------------------------------------
# permissions boundaries


def test_boundary_caps_identity_permissions() -> None:
    identity = policy(allow(["iam:*", "ecs:*"]))
    boundary = policy(allow("ecs:*"))
    assert decide("ecs:RunTask", identity, boundary=boundary).allowed
    capped = decide("iam:CreateUser", identity, boundary=boundary)
    assert capped.decision == "implicit_deny"
    assert capped.reasons[0] == "the permissions boundary does not allow iam:CreateUser on *"
    assert [m.policy for m in capped.deciding] == ["identity"]
    # a boundary grants nothing by itself; an empty one allows nothing
    assert decide("ecs:RunTask", [], boundary=boundary).decision == "implicit_deny"
    assert decide("ecs:RunTask", identity, boundary=[]).decision == "implicit_deny"
    # a Deny in the boundary wins, and the boundary's statements are named as such
    guarded = policy(allow("*"), deny("ecs:DeleteCluster"))
    denied = decide("ecs:DeleteCluster", identity, boundary=guarded)
    assert denied.decision == "explicit_deny"
    assert denied.reasons == ("explicitly denied by permissions boundary: statement 1",)
    both = decide("ecs:RunTask", identity, boundary=boundary)
    assert [m.policy for m in both.deciding] == ["identity", "boundary"]


def test_boundary_with_conditions() -> None:
    identity = policy(allow("ecs:*"))
    boundary = policy(allow("ecs:*", Condition={"StringEquals": {"aws:RequestedRegion": "eu"}}))
    assert decide("ecs:RunTask", identity, boundary=boundary).decision == "conditional"
    eu = {"aws:RequestedRegion": "eu"}
    assert decide("ecs:RunTask", identity, context=eu, boundary=boundary).allowed


# ---------------------------------------------------------------------------------------------
# resource-based policies


def bucket_policy(principal: Any, effect: str = "Allow", **more: Any) -> dict[str, Any]:
    statement = {"Effect": effect, "Principal": principal, "Action": "s3:GetObject"}
    return doc({**statement, "Resource": f"{BUCKET}/*", **more})


def test_resource_policy_naming_the_principal_grants_on_its_own() -> None:
    request = Request("s3:GetObject", f"{BUCKET}/a")
    for principal in ({"AWS": ALICE}, "*", {"AWS": "*"}, {"AWS": [OTHER, ALICE]}):
        decision = evaluate(
            request, [], resource_policy=bucket_policy(principal), principal_arn=ALICE
        )
        assert decision.allowed, principal
        assert decision.deciding[0].policy == "resource"
        assert decision.reasons == ("allowed by resource policy, statement 0",)
    other = evaluate(
        request,
        [],
        resource_policy=bucket_policy({"AWS": f"arn:aws:iam::{ACCOUNT}:user/bob"}),
        principal_arn=ALICE,
    )
    assert other.decision == "implicit_deny"


def test_resource_policy_naming_the_account_leaves_it_to_the_identity_policy() -> None:
    request = Request("s3:GetObject", f"{BUCKET}/a")
    for principal in ({"AWS": ACCOUNT}, {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}):
        resource_policy = bucket_policy(principal)
        without = evaluate(request, [], resource_policy=resource_policy, principal_arn=ALICE)
        assert without.decision == "implicit_deny"
        assert "names only the principal's account" in without.reasons[0]
        identity = policy(allow("s3:GetObject"))
        assert evaluate(
            request, identity, resource_policy=resource_policy, principal_arn=ALICE
        ).allowed
    # the account itself (its root user) is the principal named
    root = evaluate(
        request, [], resource_policy=bucket_policy({"AWS": ACCOUNT}), principal_arn=ACCOUNT
    )
    assert root.allowed


def test_resource_policy_service_principals() -> None:
    request = Request("s3:GetObject", f"{BUCKET}/a")
    logs = bucket_policy({"Service": ["logging.s3.amazonaws.com", "delivery.logs.amazonaws.com"]})
    assert evaluate(
        request, [], resource_policy=logs, principal_arn="delivery.logs.amazonaws.com"
    ).allowed
    assert not evaluate(
        request, [], resource_policy=logs, principal_arn="ecs.amazonaws.com"
    ).allowed
    anyone = bucket_policy("*")
    assert evaluate(request, [], resource_policy=anyone, principal_arn="ecs.amazonaws.com").allowed
    # identity statements play no part for a service
    assert not evaluate(request, policy(allow("*")), principal_arn="ecs.amazonaws.com").allowed


def test_resource_policy_deny_wins_and_named_account_deny_applies() -> None:
    request = Request("s3:GetObject", f"{BUCKET}/a")
    identity = policy(allow("s3:*"))
    denied = evaluate(
        request,
        identity,
        resource_policy=bucket_policy({"AWS": ACCOUNT}, effect="Deny"),
        principal_arn=ALICE,
    )
    assert denied.decision == "explicit_deny" and denied.deciding[0].policy == "resource"
    not_me = evaluate(
        request,
        identity,
        resource_policy=bucket_policy({"AWS": OTHER}, effect="Deny"),
        principal_arn=ALICE,
    )
    assert not_me.allowed


def test_not_principal() -> None:
    everyone_but = doc(
        {
            "Effect": "Deny",
            "NotPrincipal": {"AWS": [ALICE, ACCOUNT]},
            "Action": "s3:*",
            "Resource": f"{BUCKET}/*",
        }
    )
    request = Request("s3:GetObject", f"{BUCKET}/a")
    identity = policy(allow("s3:*"))
    bob = f"arn:aws:iam::{ACCOUNT}:user/bob"
    assert evaluate(request, identity, resource_policy=everyone_but, principal_arn=ALICE).allowed
    refused = evaluate(request, identity, resource_policy=everyone_but, principal_arn=bob)
    assert refused.decision == "explicit_deny"
    # excluding the user without its account does not exclude it (AWS checks both)
    user_only = Grantees(aws=(ALICE,), negated=True)
    assert user_only.level(ALICE) == "principal"
    assert Grantees(anyone=True, negated=True).level(ALICE) is None


def test_cross_account_needs_both_sides() -> None:
    request = Request("s3:GetObject", "arn:aws:s3:::reports/a")
    outsider = f"arn:aws:iam::{OTHER}:user/eve"
    role_request = Request("sts:AssumeRole", APP_ROLE)
    trust = doc({"Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": "sts:AssumeRole"})
    identity = policy(allow("sts:AssumeRole"))
    assert evaluate(role_request, identity, resource_policy=trust, principal_arn=outsider).allowed
    assert not evaluate(role_request, [], resource_policy=trust, principal_arn=outsider).allowed
    named = doc({"Effect": "Allow", "Principal": {"AWS": outsider}, "Action": "sts:AssumeRole"})
    assert not evaluate(role_request, [], resource_policy=named, principal_arn=outsider).allowed
    # S3 ARNs carry no account: judged as within the account
    assert evaluate(
        request, [], resource_policy=bucket_policy({"AWS": outsider}), principal_arn=outsider
    ).allowed


def test_boundary_caps_resource_grants_to_roles_not_to_users() -> None:
    request = Request("s3:GetObject", f"{BUCKET}/a")
    boundary = policy(allow("ecs:*"))
    to_user = evaluate(
        request, [], boundary, resource_policy=bucket_policy({"AWS": ALICE}), principal_arn=ALICE
    )
    assert to_user.allowed
    to_role = evaluate(
        request,
        [],
        boundary,
        resource_policy=bucket_policy({"AWS": APP_ROLE}),
        principal_arn=APP_ROLE,
    )
    assert to_role.decision == "implicit_deny"
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/app/build-42"
    to_session = evaluate(
        request,
        [],
        boundary,
        resource_policy=bucket_policy({"AWS": APP_ROLE}),
        principal_arn=session,
    )
    assert to_session.allowed  # the session is named through its role, and is not capped


def test_trust_policy_is_required_for_assume_role() -> None:
    assert resource_policy_required("sts:AssumeRole") and resource_policy_required("KMS:Decrypt")
    assert not resource_policy_required("s3:GetObject")
    request = Request("sts:AssumeRole", APP_ROLE)
    identity = policy(allow("sts:AssumeRole"))
    services = doc(
        {
            "Effect": "Allow",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    )
    refused = evaluate(request, identity, resource_policy=services, principal_arn=ALICE)
    assert refused.decision == "implicit_deny"
    assert "names neither" in refused.reasons[0]
    # without a trust policy only the caller's side is judged
    assert evaluate(request, identity).allowed
    root = doc({"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"})
    assert evaluate(request, identity, resource_policy=root, principal_arn=ALICE).allowed
    assert not evaluate(request, [], resource_policy=root, principal_arn=ALICE).allowed
    direct = doc({"Effect": "Allow", "Principal": {"AWS": ALICE}, "Action": "sts:AssumeRole"})
    assert evaluate(request, [], resource_policy=direct, principal_arn=ALICE).allowed


def test_evaluate_resource_policy_alone() -> None:
    trust = parse_resource_policy(
        doc(
            {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"},
            {
                "Effect": "Allow",
                "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
            },
        )
    )
    request = Request("sts:AssumeRole", APP_ROLE)
    by_account = evaluate_resource_policy(request, trust, ALICE)
    assert by_account.allowed
    assert "its identity policy must allow sts:AssumeRole too" in by_account.reasons[-1]
    assert evaluate_resource_policy(request, trust, "ecs-tasks.amazonaws.com").decision == (
        "conditional"
    )
    mine = Request("sts:AssumeRole", APP_ROLE, {"aws:SourceAccount": ACCOUNT})
    assert evaluate_resource_policy(mine, trust, "ecs-tasks.amazonaws.com").allowed
    assert not evaluate_resource_policy(request, trust, f"arn:aws:iam::{OTHER}:root").allowed
    assert str(trust[0].grantees) == ACCOUNT and str(Grantees(anyone=True)) == "everyone (*)"


# ---------------------------------------------------------------------------------------------
# the rule that always holds: an explicit Deny wins


ACTIONS = ["ecs:RunTask", "ecs:UpdateService", "iam:PassRole", "s3:GetObject", "sts:AssumeRole"]
PATTERNS = ["*", "ecs:*", "iam:*", "s3:Get*", "*:*", "ecs:?unTask", *ACTIONS]
RESOURCES = ["*", APP_ROLE, f"{BUCKET}/*", "arn:aws:ecs:*:*:service/*"]


@st.composite
def allow_statements(draw: st.DrawFn) -> dict[str, Any]:
    key = draw(st.sampled_from(["Action", "NotAction"]))
    where = draw(st.sampled_from(["Resource", "NotResource"]))
    statement: dict[str, Any] = {
        "Effect": "Allow",
        key: draw(st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=3)),
        where: draw(st.lists(st.sampled_from(RESOURCES), min_size=1, max_size=2)),
    }
    if draw(st.booleans()):
        statement["Condition"] = {"Bool": {"aws:SecureTransport": "true"}}
    return statement


@settings(max_examples=200, deadline=None)
@given(
    action=st.sampled_from(ACTIONS),
    resource=st.sampled_from([APP_ROLE, f"{BUCKET}/x", "*"]),
    allows=st.lists(allow_statements(), max_size=4),
    deny_with=st.sampled_from(["exact", "service", "star"]),
    place=st.sampled_from(["identity", "boundary", "resource"]),
    position=st.integers(min_value=0, max_value=4),
)
def test_an_explicit_deny_always_wins(
    action: str,
    resource: str,
    allows: list[dict[str, Any]],
    deny_with: str,
    place: str,
    position: int,
) -> None:
    pattern = {"exact": action, "service": action.split(":")[0] + ":*", "star": "*"}[deny_with]
    denial = deny(pattern)
    everything = [allow("*"), *allows]
    identity = [*everything]
    boundary = list(everything)
    resource_policy = [{**s, "Principal": "*"} for s in everything]
    target = {"identity": identity, "boundary": boundary, "resource": resource_policy}[place]
    target.insert(
        min(position, len(target)), denial if place != "resource" else {**denial, "Principal": "*"}
    )
    decision = evaluate(
        Request(action, resource, {"aws:SecureTransport": True}),
        parse_statements(doc(*identity)),
        parse_statements(doc(*boundary)),
        resource_policy=doc(*resource_policy),
        principal_arn=ALICE,
    )
    assert decision.decision == "explicit_deny"
    assert all(m.statement.effect == "Deny" for m in decision.deciding)


# ---------------------------------------------------------------------------------------------
# the AWS managed policies


@cache
def managed() -> dict[str, list[Statement]]:
    if not MANAGED.exists():
        pytest.skip(
            f"AWS managed policies not found at {MANAGED} (see ../shared/testdata/README.md)"
        )
    data = json.loads(MANAGED.read_text())
    return {p["PolicyName"]: parse_statements(p["Document"]) for p in data["policies"]}


def managed_policy(name: str) -> list[Statement]:
    return managed()[name]


def test_administrator_access() -> None:
    admin = managed_policy("AdministratorAccess")
    assert decide("iam:CreateUser", admin).allowed
    assert decide(
        "ecs:UpdateService", admin, f"arn:aws:ecs:eu-west-1:{ACCOUNT}:service/a/b"
    ).allowed


def test_read_only_access() -> None:
    read_only = managed_policy("ReadOnlyAccess")
    assert decide("ecs:DescribeServices", read_only).allowed
    assert decide("ecs:UpdateService", read_only).decision == "implicit_deny"
    assert decide("iam:CreateUser", read_only).decision == "implicit_deny"


def test_iam_full_access() -> None:
    iam_full = managed_policy("IAMFullAccess")
    assert decide("iam:AttachUserPolicy", iam_full).allowed
    assert decide("iam:PassRole", iam_full, APP_ROLE).allowed
    assert decide("ecs:RunTask", iam_full).decision == "implicit_deny"


def test_ecs_full_access_passes_roles_only_under_its_conditions() -> None:
    ecs_full = managed_policy("AmazonECS_FullAccess")
    assert decide("ecs:UpdateService", ecs_full).allowed
    unknown = decide("iam:PassRole", ecs_full, APP_ROLE)
    assert unknown.decision == "conditional"
    assert [str(c) for c in unknown.requires] == [
        "StringLike iam:PassedToService ecs-tasks.amazonaws.com"
    ]
    to_tasks = {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    assert decide("iam:PassRole", ecs_full, APP_ROLE, to_tasks).allowed
    to_lambda = {"iam:PassedToService": "lambda.amazonaws.com"}
    assert decide("iam:PassRole", ecs_full, APP_ROLE, to_lambda).decision == "implicit_deny"
    instance = f"arn:aws:iam::{ACCOUNT}:role/ecsInstanceRole"
    assert decide(
        "iam:PassRole", ecs_full, instance, {"iam:PassedToService": "ec2.amazonaws.com"}
    ).allowed


def test_power_user_access() -> None:
    power = managed_policy("PowerUserAccess")
    assert decide("ec2:RunInstances", power).allowed
    assert decide("iam:CreateUser", power).decision == "implicit_deny"
    assert decide("iam:CreateServiceLinkedRole", power).allowed


# ---------------------------------------------------------------------------------------------
# effective permissions


def test_expand_allowed_administrator_access_covers_every_known_action() -> None:
    allowed = expand_allowed(managed_policy("AdministratorAccess"))
    assert set(allowed) == {info.action for info in actions.expand("*")}
    assert allowed["iam:CreateUser"] == Access("Write")
    assert allowed["iam:PutRolePolicy"].level == "Permissions management"
    assert not any(a.conditional or not a.all_resources for a in allowed.values())
    assert list(allowed)[:2] == sorted(list(allowed)[:2])  # service then name order


def test_expand_allowed_actions_not_action_and_deny() -> None:
    allowed = expand_allowed(policy(allow(["ecs:Describe*", "ecs:UpdateService"])))
    assert "ecs:DescribeServices" in allowed and "ecs:UpdateService" in allowed
    assert "ecs:RunTask" not in allowed
    power = expand_allowed(
        policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}, deny("s3:*"))
    )
    assert "ec2:RunInstances" in power
    assert not any(a.startswith(("iam:", "s3:")) for a in power)
    assert expand_allowed([]) == {}


def test_expand_allowed_marks_conditional_and_scoped_grants() -> None:
    mfa = {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}
    statements = policy(
        allow("ecs:UpdateService", Condition={"StringEquals": {"aws:ResourceTag/t": "x"}}),
        allow("iam:PassRole", "arn:aws:iam::*:role/app-*"),
        allow("ecs:StopTask"),
        deny("ecs:StopTask", Condition=mfa),
        allow("s3:GetObject"),
        deny("s3:GetObject", f"{BUCKET}/*"),
        allow("ecs:RunTask", NotResource="x"),
    )
    allowed = expand_allowed(statements)
    assert allowed["ecs:UpdateService"] == Access("Write", conditional=True, all_resources=True)
    assert allowed["iam:PassRole"] == Access("Write", conditional=False, all_resources=False)
    assert allowed["ecs:StopTask"].conditional  # only with MFA
    assert not allowed["s3:GetObject"].all_resources and not allowed["s3:GetObject"].conditional
    assert set(allowed) == {
        "ecs:UpdateService",
        "iam:PassRole",
        "ecs:StopTask",
        "s3:GetObject",
        "ecs:RunTask",
    }
    # with the MFA context known, the deny is decided
    with_mfa = expand_allowed(statements, context={"aws:MultiFactorAuthPresent": True})
    assert not with_mfa["ecs:StopTask"].conditional
    without = expand_allowed(statements, context={"aws:MultiFactorAuthPresent": None})
    assert "ecs:StopTask" not in without


def test_expand_allowed_drops_expired_grants_and_resources_naming_nothing() -> None:
    until = {"DateLessThan": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}}
    statements = policy(
        allow("iam:*", Condition=until),
        allow("ecs:ListClusters", []),
        {"Effect": "Allow", "Action": "ecs:RunTask", "NotResource": "*"},
    )
    assert expand_allowed(statements, now=NOW) == {}
    assert "iam:CreateUser" in expand_allowed(statements, now=datetime(2025, 1, 1))


def test_expand_allowed_with_boundary() -> None:
    identity = policy(allow(["ecs:*", "iam:*"]))
    boundary = policy(allow(["ecs:Describe*", "ecs:List*", "iam:Get*"], "arn:aws:iam::*:role/*"))
    allowed = expand_allowed(identity, boundary)
    assert "ecs:DescribeServices" in allowed and "iam:GetRole" in allowed
    assert "ecs:RunTask" not in allowed and "iam:CreateUser" not in allowed
    assert not allowed["iam:GetRole"].all_resources
    assert expand_allowed(identity, []) == {}


def test_levels_by_service() -> None:
    allowed = expand_allowed(
        policy(allow(["ecs:DescribeServices", "ecs:ListClusters", "ecs:RunTask"]))
    )
    assert levels_by_service(allowed) == {"ecs": {"Read": 1, "List": 1, "Write": 1}}


def test_conditional_and_unknown_truth_in_matches() -> None:
    statements = policy(allow("ecs:*", Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}))
    decision = decide("ecs:RunTask", statements)
    assert decision.deciding[0].truth is Truth.UNKNOWN
    assert (
        decide("ecs:RunTask", statements, context={"aws:SourceIp": "10.1.2.3"}).deciding[0].truth
        is Truth.TRUE
    )
