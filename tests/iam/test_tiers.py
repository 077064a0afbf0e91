"""Tiers by effective permissions: each tier and service-user role, admin-equivalence and admin
sprawl, conditional paths, groups, and the AWS managed policies."""

from __future__ import annotations

import re
from typing import Any

from tests.iam.test_escalation import (
    ADMIN_ROLE,
    DEPLOY,
    ECS_TASKS,
    account,
    allow,
    arn,
    aws_managed,
    aws_policy,
    deny,
    group,
    role,
    trust,
    user,
)

from ecsguard.aws.snapshot import Snapshot
from ecsguard.iam.escalation import Facts
from ecsguard.iam.tiers import Tier, classify

OPERATE = allow(["ecs:UpdateService", "ecs:StopTask", "ecs:ExecuteCommand", "ecs:Describe*"])


def tier_of(snap: Snapshot, name: str, **facts_args: Any) -> Tier:
    found = Facts.of(snap, **facts_args)
    return classify(next(p for p in found.principals if p.name == name), found)


def report_row(name: str, password: bool, keys: int = 0) -> dict[str, Any]:
    return {
        "user": name,
        "arn": arn("user", name),
        "password_enabled": str(password).lower(),
        "access_key_1_active": str(keys > 0).lower(),
        "access_key_2_active": "false",
    }


# ---------------------------------------------------------------------------------------------
# the tiers


def test_iam_admin_manages_principals_and_writes_nothing_else() -> None:
    snap = account(
        users=[user("iam", allow("iam:*")), user("iam-plus-s3", allow(["iam:*", "s3:*"]))]
    )
    tier = tier_of(snap, "iam")
    assert (tier.tier, tier.role, tier.admin_equivalent) == ("iam-admin", None, True)
    assert "manages IAM principals" in tier.reasons[0]
    assert any("admin-equivalent" in r for r in tier.reasons)
    assert tier.reasons_ja and len(tier.reasons_ja) == len(tier.reasons)
    mixed = tier_of(snap, "iam-plus-s3")
    assert mixed.tier == "over-privileged" and "two tiers in one principal" in mixed.reasons[0]


def test_a_full_administrator_is_over_privileged_even_with_iam() -> None:
    snap = account(users=[user("root-like", allow("*"))])
    tier = tier_of(snap, "root-like")
    assert (tier.tier, tier.admin_equivalent, tier.base) == (
        "over-privileged",
        True,
        "over-privileged",
    )
    assert "full administrator" in tier.reasons[0] and "admin sprawl" in tier.reasons[0]


def test_service_admin_runs_ecs_and_reads_iam() -> None:
    ecs_admin = [
        allow(["ecs:*", "iam:Get*", "iam:List*"]),
        allow("iam:PassRole", Condition={"StringLike": {"iam:PassedToService": ECS_TASKS}}),
    ]
    snap = account(users=[user("ops", *ecs_admin)], roles=[role("app-task", allow("sns:Publish"))])
    tier = tier_of(snap, "ops")
    assert (tier.tier, tier.admin_equivalent) == ("service-admin", False)
    assert re.match(r"write access to (\d+) of \1 ECS write actions", tier.reasons[0])


def test_a_service_admin_that_can_run_an_admin_role_is_over_privileged() -> None:
    snap = account(users=[user("ops", allow(["ecs:*", "iam:PassRole"]))], roles=[ADMIN_ROLE])
    tier = tier_of(snap, "ops")
    assert (tier.tier, tier.base, tier.admin_equivalent) == (
        "over-privileged",
        "service-admin",
        True,
    )
    assert "ecs-deploy-passrole via admin-task" in tier.reasons[1]


def test_deployer_is_a_person_and_ci_is_automation() -> None:
    snap = account(
        users=[
            user("dev", DEPLOY, allow("iam:PassRole", arn("role", "app-task"))),
            user("bot", DEPLOY, allow("iam:PassRole", arn("role", "app-task"))),
        ],
        roles=[role("app-task")],
        credential_report=[report_row("dev", password=True), report_row("bot", False, keys=1)],
    )
    dev, bot = tier_of(snap, "dev"), tier_of(snap, "bot")
    assert (dev.tier, dev.role) == ("service-user", "deployer")
    assert (bot.tier, bot.role, bot.label) == ("service-user", "ci", "service-user/ci")
    assert "no console password" in bot.reasons[0] and "iam:PassRole" in bot.reasons[0]


def test_ci_roles_by_their_trust() -> None:
    oidc = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    snap = account(
        roles=[
            role("gha", DEPLOY, trusted=trust(federated=oidc)),
            role("other-account", DEPLOY, trusted=trust(aws=("arn:aws:iam::999999999999:root",))),
            role("codebuild", DEPLOY, trusted=trust("codebuild.amazonaws.com")),
            role("people", DEPLOY, trusted=trust(aws=("arn:aws:iam::123456789012:root",))),
        ]
    )
    assert tier_of(snap, "gha").role == "ci"
    assert "web-identity provider" in tier_of(snap, "gha").reasons[0]
    assert tier_of(snap, "other-account").role == "ci"
    assert tier_of(snap, "codebuild").role == "ci"
    assert tier_of(snap, "people").role == "deployer"


def test_deploying_without_passrole_is_noted() -> None:
    snap = account(users=[user("dev", DEPLOY)])
    tier = tier_of(snap, "dev")
    assert tier.role == "deployer" and "no iam:PassRole" in tier.reasons[0]


def test_operator_operates_but_does_not_register_task_definitions() -> None:
    snap = account(users=[user("sre", OPERATE)])
    tier = tier_of(snap, "sre")
    assert (tier.tier, tier.role) == ("service-user", "operator")
    assert "ecs:UpdateService, ecs:StopTask, ecs:ExecuteCommand" in tier.reasons[0]


def test_workloads_by_trust() -> None:
    instance = role("instance", trusted=trust("ec2.amazonaws.com"))
    agent = role(
        "agent",
        allow(["ecs:Poll", "ecs:RegisterContainerInstance"]),
        trusted=trust("ec2.amazonaws.com"),
    )
    events = role("events", allow(["ecs:RunTask"]), trusted=trust("events.amazonaws.com"))
    plain_ec2 = role("web-server", allow("s3:GetObject"), trusted=trust("ec2.amazonaws.com"))
    snap = account(
        roles=[role("app-task", allow("sns:Publish")), instance, agent, events, plain_ec2]
    )
    assert tier_of(snap, "app-task").label == "service-user/workload"
    assert tier_of(snap, "agent").label == "service-user/workload"
    assert tier_of(snap, "events").label == "service-user/workload"
    assert "EventBridge" in tier_of(snap, "events").reasons[0]
    assert tier_of(snap, "web-server").tier == "unrelated"
    # an instance role without the agent's rights is a workload when container instances use it
    assert tier_of(snap, "instance").tier == "unrelated"
    found = Facts(snap.iam, snap.collected_at, instance_roles=[arn("role", "instance")])
    principal = next(p for p in found.principals if p.name == "instance")
    assert classify(principal, found).label == "service-user/workload"


def test_a_task_role_with_administrator_access_is_over_privileged() -> None:
    snap = account(roles=[ADMIN_ROLE])
    tier = tier_of(snap, "admin-task")
    assert (tier.tier, tier.base, tier.role) == ("over-privileged", "service-user/workload", None)
    assert tier.reasons[0].startswith("an ECS task or execution role")


def test_unrelated_has_no_ecs_write() -> None:
    snap = account(users=[user("auditor", allow(["ecs:Describe*", "ecs:List*", "s3:*"]))])
    tier = tier_of(snap, "auditor")
    assert (tier.tier, tier.role, tier.admin_equivalent) == ("unrelated", None, False)


def test_a_conditional_path_to_admin_keeps_the_tier_and_says_so() -> None:
    mfa = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    snap = account(
        users=[user("ci", DEPLOY, allow("iam:PassRole", Condition=mfa))],
        roles=[ADMIN_ROLE],
        credential_report=[report_row("ci", False, keys=1)],
    )
    tier = tier_of(snap, "ci")
    assert (tier.tier, tier.role, tier.admin_equivalent, tier.admin_conditional) == (
        "service-user",
        "ci",
        False,
        True,
    )
    assert "may become admin-equivalent" in tier.reasons[1]
    assert "aws:MultiFactorAuthPresent" in tier.reasons[1]


def test_a_denied_escalation_keeps_the_tier() -> None:
    snap = account(
        users=[
            user("ci", DEPLOY, allow("iam:PassRole"), deny("iam:PassRole", arn("role", "admin-*")))
        ],
        roles=[ADMIN_ROLE, role("app-task", allow("sns:Publish"))],
    )
    tier = tier_of(snap, "ci")
    assert tier.tier == "service-user" and not tier.admin_equivalent


def test_groups_by_their_own_policies_and_their_members() -> None:
    snap = account(
        users=[
            user("bot", groups=("deployers",)),
            user("dev", groups=("people",)),
        ],
        groups=[
            group("deployers", DEPLOY, allow("iam:PassRole", arn("role", "app-task"))),
            group("people", DEPLOY),
            group("empty", OPERATE),
        ],
        roles=[role("app-task")],
        credential_report=[report_row("bot", False, keys=1), report_row("dev", True)],
    )
    assert tier_of(snap, "deployers").label == "service-user/ci"
    assert tier_of(snap, "bot").label == "service-user/ci", "users inherit their groups' policies"
    assert tier_of(snap, "people").label == "service-user/deployer"
    assert tier_of(snap, "empty").label == "service-user/operator"


# ---------------------------------------------------------------------------------------------
# AWS managed policies


def test_managed_policies() -> None:
    snap = account(
        users=[
            user("admin", managed=(aws_policy("AdministratorAccess"),)),
            user("reader", managed=(aws_policy("ReadOnlyAccess"),)),
            user("iam", managed=(aws_policy("IAMFullAccess"),)),
            user("ecs", managed=(aws_policy("AmazonECS_FullAccess"),)),
        ],
        roles=[role("app-task", allow("sns:Publish"))],
        policies=[
            aws_managed(name)
            for name in (
                "AdministratorAccess",
                "ReadOnlyAccess",
                "IAMFullAccess",
                "AmazonECS_FullAccess",
            )
        ],
    )
    admin, reader, iam, ecs = (tier_of(snap, n) for n in ("admin", "reader", "iam", "ecs"))
    assert (admin.tier, admin.admin_equivalent) == ("over-privileged", True)
    assert (reader.tier, reader.admin_equivalent) == ("unrelated", False)
    assert (iam.tier, iam.admin_equivalent) == ("iam-admin", True)
    assert (ecs.tier, ecs.admin_equivalent) == ("service-admin", False)
