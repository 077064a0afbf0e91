"""Principals from the snapshot's IAM section; can, trust_allows and assumable_by."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ecsguard.aws.snapshot import IamSection, Snapshot
from ecsguard.iam.policy import Source, Sourced, parse_statements
from ecsguard.iam.principals import (
    Principal,
    assumable_by,
    can,
    principals,
    trust_allows,
)

ACCOUNT = "123456789012"
ADMIN_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"
BOUNDARY_ARN = f"arn:aws:iam::{ACCOUNT}:policy/dev-boundary"
GONE_ARN = f"arn:aws:iam::{ACCOUNT}:policy/deleted-boundary"


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: str | list[str], resource: str | list[str] = "*", **more: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **more}


def arn(kind: str, name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:{kind}/{name}"


def trust(principal: dict[str, Any], **more: Any) -> dict[str, Any]:
    return doc({"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole", **more})


def estate() -> IamSection:
    return IamSection.model_validate(
        {
            "users": [
                {
                    "UserName": "zoe",
                    "UserId": "AIDAZOE",
                    "Arn": arn("user", "zoe"),
                    "GroupList": [],
                    "PermissionsBoundary": {"PermissionsBoundaryArn": GONE_ARN},
                },
                {
                    "UserName": "alice",
                    "UserId": "AIDAALICE",
                    "Arn": arn("user", "dev/alice"),
                    "Path": "/dev/",
                    "CreateDate": "2024-01-02T03:04:05Z",
                    "GroupList": ["devs"],
                    "Tags": [{"Key": "team", "Value": "shop"}],
                    "PermissionsBoundary": {
                        "PermissionsBoundaryType": "Policy",
                        "PermissionsBoundaryArn": BOUNDARY_ARN,
                    },
                    "UserPolicyList": [
                        {
                            "PolicyName": "own-keys",
                            "PolicyDocument": doc(
                                allow("iam:CreateAccessKey", arn("user", "dev/${aws:username}")),
                                allow("sts:AssumeRole", arn("role", "deploy")),
                            ),
                        }
                    ],
                },
            ],
            "groups": [
                {
                    "GroupName": "devs",
                    "GroupId": "AGPADEVS",
                    "Arn": arn("group", "devs"),
                    "AttachedManagedPolicies": [
                        {"PolicyName": "AdministratorAccess", "PolicyArn": ADMIN_ARN}
                    ],
                }
            ],
            "roles": [
                {
                    "RoleName": "web-task",
                    "RoleId": "AROAWEB",
                    "Arn": arn("role", "web-task"),
                    "AssumeRolePolicyDocument": trust(
                        {"Service": "ecs-tasks.amazonaws.com"},
                        Condition={"StringEquals": {"aws:SourceAccount": ACCOUNT}},
                    ),
                    "RoleLastUsed": {"LastUsedDate": "2026-05-30T10:00:00Z", "Region": "eu"},
                    "RolePolicyList": [
                        {"PolicyName": "read", "PolicyDocument": doc(allow("s3:GetObject"))}
                    ],
                },
                {
                    "RoleName": "deploy",
                    "Arn": arn("role", "deploy"),
                    "AssumeRolePolicyDocument": trust({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}),
                },
                {
                    "RoleName": "break-glass",
                    "Arn": arn("role", "break-glass"),
                    "AssumeRolePolicyDocument": trust({"AWS": arn("user", "zoe")}),
                },
                {
                    "RoleName": "chained",
                    "Arn": arn("role", "chained"),
                    "AssumeRolePolicyDocument": trust({"AWS": arn("role", "web-task")}),
                },
            ],
            "policies": [
                {
                    "Arn": BOUNDARY_ARN,
                    "PolicyName": "dev-boundary",
                    "PolicyVersionList": [
                        {
                            "VersionId": "v1",
                            "IsDefaultVersion": True,
                            "Document": doc(allow(["ecs:*", "iam:CreateAccessKey", "sts:*"])),
                        }
                    ],
                }
            ],
            "access_keys": [
                {
                    "UserName": "alice",
                    "AccessKeyId": "AKIA1",
                    "LastUsed": {"LastUsedDate": "2026-04-01T00:00:00Z"},
                }
            ],
            "credential_report": [
                {
                    "user": "alice",
                    "arn": arn("user", "dev/alice"),
                    "password_last_used": "2026-05-01T00:00:00+00:00",
                    "access_key_1_last_used_date": "N/A",
                    "access_key_2_last_used_date": "no_information",
                },
                {"user": "zoe", "arn": arn("user", "zoe"), "password_last_used": "no_information"},
            ],
        }
    )


def by_name() -> dict[str, Principal]:
    return {p.name: p for p in principals(estate())}


def test_principals_in_a_stable_order_with_their_details() -> None:
    found = principals(estate())
    assert [(p.type, p.name) for p in found] == [
        ("user", "alice"),
        ("user", "zoe"),
        ("role", "break-glass"),
        ("role", "chained"),
        ("role", "deploy"),
        ("role", "web-task"),
        ("group", "devs"),
    ]
    alice = found[0]
    assert alice.arn == arn("user", "dev/alice") and alice.account == ACCOUNT
    assert alice.groups == ("devs",) and alice.path == "/dev/" and alice.id == "AIDAALICE"
    assert alice.tags == {"team": "shop"}
    assert alice.created == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert alice.last_used == datetime(2026, 5, 1, tzinfo=UTC)  # the latest of password and key
    assert [s.source.policy for s in alice.statements] == [
        "own-keys",
        "own-keys",
        "AdministratorAccess",
    ]
    assert alice.boundary is not None and alice.boundary_arn == BOUNDARY_ARN
    assert alice.boundary[0].source.policy == "dev-boundary"
    assert alice.missing_policies == () and alice.trust == ()
    assert str(alice) == "user alice"


def test_missing_boundary_is_listed_and_ignored() -> None:
    zoe = by_name()["zoe"]
    assert zoe.boundary is None and zoe.boundary_arn == GONE_ARN
    assert zoe.missing_policies == (GONE_ARN,)
    assert zoe.last_used is None  # "no_information" is no date


def test_roles_and_groups() -> None:
    found = by_name()
    role = found["web-task"]
    assert role.type == "role" and role.groups == () and role.boundary is None
    assert role.last_used == datetime(2026, 5, 30, 10, tzinfo=UTC)
    assert str(role.trust[0].grantees) == "ecs-tasks.amazonaws.com"
    group = found["devs"]
    assert group.type == "group" and group.context() == {}
    assert [s.source.policy for s in group.statements] == ["AdministratorAccess"]
    assert group.statements[0].source.assumed  # the document was not in the section
    assert principals(IamSection()) == []


def test_principal_context() -> None:
    found = by_name()
    alice = found["alice"].context()
    assert alice["aws:username"] == "alice" and alice["aws:userid"] == "AIDAALICE"
    assert alice["aws:PrincipalTag/team"] == "shop" and alice["aws:PrincipalType"] == "User"
    role = found["web-task"].context()
    assert role["aws:username"] is None and role["aws:PrincipalType"] == "AssumedRole"
    assert role["aws:PrincipalArn"] == arn("role", "web-task")


def test_can_with_boundary_and_policy_variables() -> None:
    found = by_name()
    alice = found["alice"]
    # AdministratorAccess through the group, capped by the boundary
    assert can(alice, "ecs:UpdateService").allowed
    capped = can(alice, "iam:CreateUser")
    assert capped.decision == "implicit_deny"
    assert capped.reasons[0] == "the permissions boundary does not allow iam:CreateUser on *"
    # ${aws:username} resolves to the principal's own name (alice's own-keys without her group)
    own_keys = tuple(s for s in alice.statements if s.source.policy == "own-keys")
    alone = Principal(alice.arn, "alice", "user", own_keys, id=alice.id)
    assert can(alone, "iam:CreateAccessKey", arn("user", "dev/alice")).allowed
    other = can(alone, "iam:CreateAccessKey", arn("user", "dev/bob"))
    assert other.decision == "implicit_deny"
    assert can(found["zoe"], "iam:CreateAccessKey").decision == "implicit_deny"
    # the caller can override context keys
    assert can(
        found["web-task"], "s3:GetObject", "arn:aws:s3:::b/k", {"aws:SecureTransport": True}
    ).allowed


def test_can_decides_dates_against_now() -> None:
    until = {"DateLessThan": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}}
    source = Source("until-launch", "inline")
    statements = parse_statements(doc(allow("iam:*", Condition=until)))
    role = Principal(
        arn("role", "temp"), "temp", "role", tuple(Sourced(source, s) for s in statements)
    )
    after = can(role, "iam:CreateUser", now=datetime(2026, 6, 1, tzinfo=UTC))
    assert after.decision == "implicit_deny"
    assert can(role, "iam:CreateUser", now=datetime(2025, 6, 1, tzinfo=UTC)).allowed
    assert can(role, "iam:CreateUser").decision == "conditional"  # no time given


def test_trust_allows() -> None:
    found = by_name()
    web = found["web-task"]
    assert trust_allows(web, "ecs-tasks.amazonaws.com").allowed  # for its own account
    other = trust_allows(web, "ecs-tasks.amazonaws.com", {"aws:SourceAccount": "999999999999"})
    assert other.decision == "implicit_deny"
    assert trust_allows(web, "lambda.amazonaws.com").decision == "implicit_deny"
    assert trust_allows(web, arn("user", "zoe")).decision == "implicit_deny"
    deploy = trust_allows(found["deploy"], arn("user", "zoe"))
    assert deploy.allowed and "identity policy must allow sts:AssumeRole too" in deploy.reasons[-1]
    assert not trust_allows(found["deploy"], "arn:aws:iam::999999999999:user/eve").allowed
    assert trust_allows(found["break-glass"], arn("user", "zoe")).allowed


def test_assumable_by() -> None:
    found = by_name()
    roles = [p for p in found.values() if p.type == "role"]
    # alice: root-trusted "deploy" because her identity policy allows it (and her boundary sts:*)
    assert [a.role.name for a in assumable_by(found["alice"], roles)] == ["deploy"]
    # zoe: named directly by break-glass, which needs no identity policy; not "deploy"
    zoe = assumable_by(found["zoe"], roles)
    assert [a.role.name for a in zoe] == ["break-glass"]
    assert zoe[0].decision.deciding[0].policy == "resource"
    # a role chaining into another that trusts it by ARN
    assert [a.role.name for a in assumable_by(found["web-task"], roles)] == ["chained"]
    assert assumable_by(found["devs"], roles) == []
    assert assumable_by(found["alice"], [found["devs"]]) == []


def test_assumable_by_respects_denies() -> None:
    found = by_name()
    iam = estate()
    iam.users[1]["UserPolicyList"].append(
        {
            "PolicyName": "no-assume",
            "PolicyDocument": doc({"Effect": "Deny", "Action": "sts:*", "Resource": "*"}),
        }
    )
    alice = {p.name: p for p in principals(iam)}["alice"]
    roles = [p for p in found.values() if p.type == "role"]
    assert assumable_by(alice, roles) == []


@pytest.mark.slow
def test_demo_estate(demo_snapshot: Snapshot) -> None:
    found = {p.name: p for p in principals(demo_snapshot.iam)}
    now = demo_snapshot.collected_at
    service = f"arn:aws:ecs:ap-northeast-1:{demo_snapshot.account}:service/prod/web"
    assert can(found["sato.hiroshi"], "iam:CreateUser", now=now).allowed  # developers: admin
    assert can(found["iam-admin"], "iam:AttachUserPolicy", now=now).allowed
    assert can(found["ci-deployer"], "iam:CreateUser", now=now).decision == "implicit_deny"
    assert can(found["ci-deployer"], "ecs:UpdateService", service, now=now).allowed
    operator = can(found["tanaka.yuki"], "ecs:UpdateService", service, now=now)
    assert operator.decision == "conditional"  # the tag condition and the MFA deny
    assert {str(c) for c in operator.unless} == {"BoolIfExists aws:MultiFactorAuthPresent false"}
    assert can(found["notifications-task"], "iam:CreateUser", now=now).allowed  # planted
    assert trust_allows(found["web-frontend-task"], "ecs-tasks.amazonaws.com").allowed
    roles = [p for p in found.values() if p.type == "role"]
    assert assumable_by(found["sato.hiroshi"], roles) == []  # service trust only
