"""Task and execution roles: admin-equivalent rights and privilege escalation paths."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tests.posture.builders import ACCOUNT, findings, snapshot, statuses, task_definition

from ecsguard.aws.snapshot import Snapshot
from ecsguard.core.models import Status

ADMIN = "ecs.task_role_admin"
ESCALATION = "ecs.task_role_escalation"
EXECUTION = "ecs.execution_role_admin"
ADMIN_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"


def role_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


def role(
    name: str, inline: dict[str, list[dict[str, Any]]] | None = None, managed: Sequence[str] = ()
) -> dict[str, Any]:
    return {
        "RoleName": name,
        "Arn": role_arn(name),
        "RolePolicyList": [
            {"PolicyName": policy, "PolicyDocument": {"Version": "2012-10-17", "Statement": st}}
            for policy, st in (inline or {}).items()
        ],
        "AttachedManagedPolicies": [
            {"PolicyName": arn.rsplit("/", 1)[1], "PolicyArn": arn} for arn in managed
        ],
    }


def allow(*actions: str, resource: str = "*") -> dict[str, Any]:
    return {"Effect": "Allow", "Action": list(actions), "Resource": resource}


def estate(*tds: dict[str, Any], roles: list[dict[str, Any]], **iam: Any) -> Snapshot:
    return snapshot(ecs={"task_definitions": list(tds)}, iam={"roles": roles, **iam})


def by_name(snap: Snapshot, check_id: str, lang: str = "en") -> dict[str, Any]:
    return {f.resource_arn.rsplit("/", 1)[1]: f for f in findings(snap, check_id, lang)}


# --- ecs.task_role_admin ---------------------------------------------------------------------


def test_task_role_admin_names_role_task_definition_and_policy() -> None:
    snap = estate(
        task_definition("web", taskRoleArn=role_arn("web-task")),
        task_definition("ops", 3, taskRoleArn="ops-task"),  # by name, as task definitions allow
        roles=[
            role("web-task", {"app": [allow("s3:GetObject", "sqs:SendMessage")]}),
            role("ops-task", managed=[ADMIN_ARN]),
        ],
        policies=[
            {
                "Arn": ADMIN_ARN,
                "PolicyName": "AdministratorAccess",
                "PolicyVersionList": [
                    {
                        "IsDefaultVersion": True,
                        "Document": {
                            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]
                        },
                    }
                ],
            }
        ],
    )
    result = by_name(snap, ADMIN)
    assert result["web:1"].status == Status.PASS
    assert result["web:1"].message == "task role web-task of web:1 is not admin-equivalent"
    assert result["ops:3"].status == Status.FAIL
    assert result["ops:3"].message == (
        "task role ops-task of ops:3 is admin-equivalent: "
        "AdministratorAccess (managed), statement 0: *"
    )
    assert result["ops:3"].severity == "critical" and result["ops:3"].pillar == "iam"
    ja = by_name(snap, ADMIN, "ja")["ops:3"].message
    assert ja.startswith("ops:3 のタスクロール ops-task は管理者相当: AdministratorAccess")


def test_task_role_admin_through_iam_star_and_assumed_managed_document() -> None:
    snap = estate(
        task_definition("a", taskRoleArn=role_arn("a")),
        task_definition("b", taskRoleArn=role_arn("b")),
        roles=[
            role("a", {"deploy": [allow("s3:*"), allow("iam:*")]}),
            role("b", managed=[ADMIN_ARN]),
        ],  # the document is missing from the snapshot
    )
    result = by_name(snap, ADMIN)
    assert result["a:1"].message.endswith("inline policy deploy, statement 1: iam:*")
    assert (
        "AdministratorAccess (managed; document not in snapshot, known AWS content assumed)"
        in result["b:1"].message
    )


def test_scoped_or_conditional_grants_are_not_admin() -> None:
    snap = estate(
        task_definition("web", taskRoleArn=role_arn("web")),
        roles=[
            role(
                "web",
                {
                    "p": [
                        allow("*", resource="arn:aws:s3:::bucket/*"),
                        {
                            "Effect": "Allow",
                            "Action": "*",
                            "Resource": "*",
                            "Condition": {
                                "StringEquals": {"aws:RequestedRegion": "ap-northeast-1"}
                            },
                        },
                    ]
                },
            )
        ],
    )
    assert statuses(snap, ADMIN) == {task_definition("web")["taskDefinitionArn"]: Status.PASS}


def test_no_task_role_or_unknown_role_is_not_applicable() -> None:
    snap = estate(
        task_definition("plain"),
        task_definition("elsewhere", taskRoleArn="arn:aws:iam::999999999999:role/other"),
        roles=[],
    )
    assert findings(snap, ADMIN) == []
    assert findings(snap, ESCALATION) == []


# --- ecs.task_role_escalation ----------------------------------------------------------------


def test_escalation_path_with_evidence() -> None:
    snap = estate(
        task_definition("deployer", taskRoleArn=role_arn("deployer")),
        task_definition("web", taskRoleArn=role_arn("web")),
        roles=[
            role(
                "deployer",
                {
                    "deploy": [
                        allow("iam:PassRole", "ecs:RegisterTaskDefinition"),
                        allow("ecs:RunTask"),
                    ]
                },
            ),
            role(
                "web",
                {
                    "app": [
                        allow("iam:PassRole", resource=role_arn("web")),
                        allow("ecs:RegisterTaskDefinition", "ecs:RunTask"),
                    ]
                },
            ),
        ],
    )
    result = by_name(snap, ESCALATION)
    assert result["web:1"].status == Status.PASS  # PassRole limited to one named role
    assert result["deployer:1"].status == Status.FAIL
    assert result["deployer:1"].message == (
        "task role deployer of deployer:1 can escalate privileges: ecs-deploy-passrole "
        "(inline policy deploy, statement 0: iam:PassRole, ecs:RegisterTaskDefinition; "
        "inline policy deploy, statement 1: ecs:RunTask)"
    )
    assert result["deployer:1"].severity == "high"


def test_several_paths_are_all_listed() -> None:
    snap = estate(
        task_definition("x", taskRoleArn=role_arn("x")),
        roles=[role("x", {"p": [allow("iam:CreateAccessKey", "iam:AttachRolePolicy")]})],
    )
    message = by_name(snap, ESCALATION)["x:1"].message
    assert "iam-attach-policy (inline policy p, statement 0: iam:AttachRolePolicy)" in message
    assert "iam-create-access-key (inline policy p, statement 0: iam:CreateAccessKey)" in message


def test_admin_roles_are_left_to_the_admin_check() -> None:
    snap = estate(
        task_definition("ops", taskRoleArn=role_arn("ops")),
        roles=[role("ops", {"all": [allow("*")]})],
    )
    assert findings(snap, ESCALATION) == []
    assert [f.status for f in findings(snap, ADMIN)] == [Status.FAIL]


# --- ecs.execution_role_admin ----------------------------------------------------------------


def test_execution_role_admin() -> None:
    execution_policy = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
    snap = estate(
        task_definition("good", executionRoleArn=role_arn("exec")),
        task_definition("bad", executionRoleArn=role_arn("exec-admin")),
        task_definition("none"),
        roles=[
            role("exec", managed=[execution_policy]),
            role("exec-admin", managed=[execution_policy, ADMIN_ARN]),
        ],
    )
    result = by_name(snap, EXECUTION)
    assert set(result) == {"good:1", "bad:1"}
    assert result["good:1"].status == Status.PASS
    assert result["bad:1"].status == Status.FAIL
    assert result["bad:1"].message.startswith(
        "execution role exec-admin of bad:1 is admin-equivalent: AdministratorAccess (managed"
    )
    assert result["bad:1"].severity == "high"
