"""The policy library: normalising, gathering a principal's statements, conservative evaluation."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ecsguard.aws.snapshot import IamSection
from ecsguard.iam.policy import (
    Source,
    Statement,
    allows,
    escalation_paths,
    granted_by,
    is_admin_equivalent,
    missing_policies,
    normalize_policy,
    parse_statements,
    statements_of,
)
from ecsguard.iam.policy import wildcards_overlap as overlaps

ADMIN_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: str | list[str], resource: str | list[str] = "*", **more: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **more}


def deny(action: str | list[str], resource: str | list[str] = "*", **more: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **more}


def managed(arn: str, document: dict[str, Any]) -> dict[str, Any]:
    return {
        "Arn": arn,
        "PolicyName": arn.rsplit("/", 1)[1],
        "PolicyVersionList": [
            {"VersionId": "v1", "IsDefaultVersion": False, "Document": doc(allow("*"))},
            {"VersionId": "v2", "IsDefaultVersion": True, "Document": document},
        ],
    }


def test_normalize_makes_lists_and_keeps_the_rest() -> None:
    statement = {"Effect": "Allow", "Action": "s3:Get*", "Resource": "*", "Sid": "Read"}
    single = {"Version": "2012-10-17", "Statement": statement}
    out = normalize_policy(single)
    assert out == {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:Get*"], "Resource": ["*"], "Sid": "Read"}],
    }
    assert statement["Action"] == "s3:Get*"  # the input is not modified
    assert normalize_policy("not json")["Statement"] == []
    assert normalize_policy(
        {"Statement": [5, {"Effect": "Deny", "NotAction": "iam:*", "NotResource": ["arn:x"]}]}
    )["Statement"] == [{"Effect": "Deny", "NotAction": ["iam:*"], "NotResource": ["arn:x"]}]


def test_parse_statements() -> None:
    first, second = parse_statements(
        doc(
            allow(["ecs:RunTask"], "*", Sid="Run"),
            {
                "Effect": "Deny",
                "NotAction": "s3:*",
                "NotResource": "arn:aws:s3:::b",
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        )
    )
    assert first == Statement("Allow", ("ecs:RunTask",), sid="Run", index=0)
    assert first.counts and str(first) == "statement 0 (Run)"
    assert second.effect == "Deny" and second.not_action and second.not_resource
    assert second.index == 1 and not second.counts


def test_wildcards_are_case_insensitive() -> None:
    statements = parse_statements(doc(allow(["IAM:pass*", "ecs:?unTask"])))
    assert allows(statements, "iam:PassRole")
    assert allows(statements, "ecs:RunTask")
    assert not allows(statements, "ecs:RunTasks")
    assert not allows(statements, "iam:CreateRole")
    assert not allows(statements, "iam:*")  # "iam:pass*" does not grant every IAM action


def test_only_unconditional_grants_on_all_resources_count() -> None:
    scoped = parse_statements(doc(allow("iam:PassRole", "arn:aws:iam::1:role/app")))
    conditional = parse_statements(
        doc(allow("*", Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}))
    )
    not_resource = parse_statements(doc({"Effect": "Allow", "Action": "*", "NotResource": "x"}))
    mixed = parse_statements(doc(allow("s3:*", ["arn:aws:s3:::a", "*"])))
    assert not allows(scoped, "iam:PassRole")
    assert not allows(conditional, "iam:CreateUser")
    assert not allows(not_resource, "iam:CreateUser")
    assert allows(mixed, "s3:GetObject")


def test_explicit_deny_wins_only_when_it_counts() -> None:
    admin = allow("*")
    assert not allows(parse_statements(doc(admin, deny("iam:*"))), "iam:CreateUser")
    assert allows(parse_statements(doc(admin, deny("iam:*"))), "s3:GetObject")
    # a deny on one resource, or behind a condition, does not take the action away everywhere
    assert allows(parse_statements(doc(admin, deny("iam:*", "arn:aws:iam::1:role/x"))), "iam:X")
    mfa = deny("*", Condition={"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}})
    assert allows(parse_statements(doc(admin, mfa)), "iam:CreateUser")
    # a NotAction deny denies everything it does not exclude
    not_action = {"Effect": "Deny", "NotAction": ["s3:*"], "Resource": "*"}
    assert allows(parse_statements(doc(admin, not_action)), "s3:GetObject")
    assert not allows(parse_statements(doc(admin, not_action)), "ec2:RunInstances")


def test_not_action_allow() -> None:
    power = parse_statements(
        doc({"Effect": "Allow", "NotAction": ["iam:*", "organizations:*"], "Resource": "*"})
    )
    assert allows(power, "ec2:RunInstances")
    assert not allows(power, "iam:PassRole")
    assert not allows(power, "*")  # part of "*" is excluded
    assert not is_admin_equivalent(power)
    all_but_s3 = parse_statements(doc({"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}))
    assert allows(all_but_s3, "iam:*") and is_admin_equivalent(all_but_s3)


def test_admin_equivalence() -> None:
    assert is_admin_equivalent(parse_statements(doc(allow("*"))))
    assert is_admin_equivalent(parse_statements(doc(allow("*:*"))))
    assert is_admin_equivalent(parse_statements(doc(allow("iam:*"))))
    assert is_admin_equivalent(parse_statements(doc(allow("*"), deny("s3:DeleteBucket"))))
    assert not is_admin_equivalent(parse_statements(doc(allow("*"), deny("iam:*"))))
    assert not is_admin_equivalent(parse_statements(doc(allow("iam:Get*"))))
    assert not is_admin_equivalent(parse_statements(doc(allow("*", "arn:aws:s3:::b/*"))))
    assert not is_admin_equivalent([])


def test_escalation_paths_name_the_granting_statements() -> None:
    deploy = parse_statements(
        doc(
            allow(["iam:PassRole", "ecs:RegisterTaskDefinition"]),
            allow("ecs:*"),
        )
    )
    found = escalation_paths(deploy)
    assert [e.name for e in found] == ["ecs-deploy-passrole"]
    assert [(a, g.index) for a, g in found[0].grants] == [
        ("iam:PassRole", 0),
        ("ecs:RegisterTaskDefinition", 0),
        ("ecs:RunTask", 1),
    ]
    assert str(found[0]) == (
        "ecs-deploy-passrole (statement 0: iam:PassRole, ecs:RegisterTaskDefinition; "
        "statement 1: ecs:RunTask)"
    )


def test_escalation_paths_need_every_step() -> None:
    def names(*actions: str) -> list[str]:
        return [e.name for e in escalation_paths(parse_statements(doc(allow(list(actions)))))]

    assert names("iam:PassRole", "ecs:RegisterTaskDefinition") == []
    assert names("iam:PassRole", "ecs:RegisterTaskDefinition", "ecs:UpdateService") == [
        "ecs-deploy-passrole"
    ]
    assert names("iam:PassRole", "lambda:CreateFunction", "lambda:InvokeFunction") == [
        "lambda-passrole-invoke"
    ]
    assert names("iam:PassRole", "ec2:RunInstances") == ["ec2-passrole-run-instances"]
    assert names("iam:UpdateAssumeRolePolicy") == []
    assert names("iam:UpdateAssumeRolePolicy", "sts:AssumeRole") == [
        "iam-update-assume-role-policy"
    ]
    assert names("iam:AttachRolePolicy") == ["iam-attach-policy"]
    assert names("iam:PutGroupPolicy") == ["iam-put-inline-policy"]
    assert names("iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion") == [
        "iam-create-policy-version",
        "iam-set-default-policy-version",
    ]
    assert names("iam:CreateAccessKey", "iam:UpdateLoginProfile", "iam:AddUserToGroup") == [
        "iam-create-access-key",
        "iam-login-profile",
        "iam-add-user-to-group",
    ]
    # PassRole limited to one role is not "any passable role"
    scoped = parse_statements(
        doc(allow("iam:PassRole", "arn:aws:iam::1:role/app"), allow(["ec2:RunInstances"]))
    )
    assert escalation_paths(scoped) == []


def iam_estate() -> IamSection:
    return IamSection.model_validate(
        {
            "users": [
                {
                    "UserName": "alice",
                    "Arn": "arn:aws:iam::1:user/alice",
                    "UserPolicyList": [
                        {"PolicyName": "self", "PolicyDocument": doc(allow("iam:Get*"))}
                    ],
                    "AttachedManagedPolicies": [
                        {"PolicyName": "deploy", "PolicyArn": "arn:aws:iam::1:policy/deploy"}
                    ],
                    "GroupList": ["admins", "ghost"],
                }
            ],
            "groups": [
                {
                    "GroupName": "admins",
                    "Arn": "arn:aws:iam::1:group/admins",
                    "GroupPolicyList": [
                        {"PolicyName": "extra", "PolicyDocument": doc(deny("s3:*"))}
                    ],
                    "AttachedManagedPolicies": [
                        {"PolicyName": "AdministratorAccess", "PolicyArn": ADMIN_ARN}
                    ],
                }
            ],
            "roles": [
                {
                    "RoleName": "task",
                    "Arn": "arn:aws:iam::1:role/task",
                    "RolePolicyList": [
                        {"PolicyName": "inline", "PolicyDocument": doc(allow("sqs:*"))}
                    ],
                    "AttachedManagedPolicies": [
                        {"PolicyName": "gone", "PolicyArn": "arn:aws:iam::1:policy/gone"},
                        {
                            "PolicyName": "ReadOnlyAccess",
                            "PolicyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess",
                        },
                    ],
                }
            ],
            "policies": [managed("arn:aws:iam::1:policy/deploy", doc(allow("ecs:*")))],
        }
    )


def test_statements_of_a_user_include_groups_and_resolve_default_versions() -> None:
    iam = iam_estate()
    found = statements_of(iam.users[0], iam)
    assert [str(s) for s in found] == [
        "inline policy self, statement 0",
        "deploy (managed), statement 0",
        "group admins: inline policy extra, statement 0",
        "group admins: AdministratorAccess (managed; document not in snapshot, "
        "known AWS content assumed), statement 0",
    ]
    assert found[1].statement.actions == ("ecs:*",)  # the default version, not v1
    assert found[3].source == Source("AdministratorAccess", "managed", ADMIN_ARN, "admins", True)
    assert not found[3].source.direct and found[0].source.direct
    grant = granted_by(found, "iam:CreateUser")
    assert grant is not None and grant.source.policy == "AdministratorAccess"
    assert not allows(found, "s3:GetObject")  # the group's deny
    assert missing_policies(iam.users[0], iam) == []


def test_statements_of_a_role_and_what_is_missing() -> None:
    iam = iam_estate()
    role = iam.roles[0]
    assert [str(s) for s in statements_of(role, iam)] == ["inline policy inline, statement 0"]
    assert missing_policies(role, iam) == [
        "arn:aws:iam::1:policy/gone",
        "arn:aws:iam::aws:policy/ReadOnlyAccess",
    ]
    # a customer policy that happens to be called AdministratorAccess is not assumed to be admin
    role["AttachedManagedPolicies"] = [
        {
            "PolicyName": "AdministratorAccess",
            "PolicyArn": "arn:aws:iam::1:policy/AdministratorAccess",
        }
    ]
    assert not is_admin_equivalent(statements_of(role, iam))


def test_an_attached_document_in_the_snapshot_wins_over_the_known_one() -> None:
    iam = iam_estate()
    iam.policies.append(managed(ADMIN_ARN, doc(allow("s3:GetObject"))))
    found = statements_of(iam.groups[0], iam)
    assert not any(s.source.assumed for s in found)
    assert not is_admin_equivalent(found)


# --- the wildcard intersection, against brute force over a small alphabet -----------------------

PATTERN = st.text(alphabet="ab*?", max_size=3)  # witnesses need at most 6 letters


def _brute_overlap(a: str, b: str) -> bool:
    from ecsguard.iam.policy import _covers as covers

    words = ("".join(w) for n in range(7) for w in itertools.product("abc", repeat=n))
    return any(covers(a, w) and covers(b, w) for w in words)


@given(PATTERN, PATTERN)
def test_overlap_agrees_with_brute_force(a: str, b: str) -> None:
    assert overlaps(a, b) == _brute_overlap(a, b) == overlaps(b, a)
