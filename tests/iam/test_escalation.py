"""Escalation paths across a principal's policies and one hop: the IAM methods, PassRole + compute,
the ECS methods (deploy, RunTask overrides, ECS Exec), narrowing and conditions; who-can."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path as FilePath
from typing import Any

import pytest
from tests.posture.builders import ACCOUNT, REGION, snapshot, task_definition

from ecsguard.aws.snapshot import Snapshot
from ecsguard.iam.escalation import (
    ADMIN,
    METHODS,
    Facts,
    Path,
    admin_equivalent,
    method_kind,
    method_service,
    paths_of,
    who_can,
)
from ecsguard.iam.policy import ESCALATION_PATHS, EscalationPath

NOW = datetime(2026, 6, 1, tzinfo=UTC)
ECS_TASKS = "ecs-tasks.amazonaws.com"
ECS = f"arn:aws:ecs:{REGION}:{ACCOUNT}"
MANAGED = (
    FilePath(__file__).parents[2].parent
    / "shared"
    / "testdata"
    / "iam"
    / "aws-managed-policies"
    / "aws-managed-policies.json"
)


# ---------------------------------------------------------------------------------------------
# builders (also used by test_tiers and test_account)


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: str | list[str], resource: str | list[str] = "*", **more: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **more}


def deny(action: str | list[str], resource: str | list[str] = "*", **more: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **more}


def arn(kind: str, name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:{kind}/{name}"


def aws_policy(name: str) -> str:
    return f"arn:aws:iam::aws:policy/{name}"


def trust(*services: str, aws: tuple[str, ...] = (), federated: str = "") -> dict[str, Any]:
    principal: dict[str, Any] = {}
    if services:
        principal["Service"] = list(services)
    if aws:
        principal["AWS"] = list(aws)
    if federated:
        principal["Federated"] = federated
    action = "sts:AssumeRoleWithWebIdentity" if federated else "sts:AssumeRole"
    return doc({"Effect": "Allow", "Principal": principal, "Action": action})


def _inline(kind: str, statements: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    if not statements:
        return {}
    return {f"{kind}PolicyList": [{"PolicyName": "inline", "PolicyDocument": doc(*statements)}]}


def _attached(names: tuple[str, ...]) -> dict[str, Any]:
    return {
        "AttachedManagedPolicies": [
            {
                "PolicyName": n.rsplit("/", 1)[-1],
                "PolicyArn": n if n.startswith("arn:") else arn("policy", n),
            }
            for n in names
        ]
    }


def user(
    name: str,
    *statements: dict[str, Any],
    groups: tuple[str, ...] = (),
    managed: tuple[str, ...] = (),
    **fields: Any,
) -> dict[str, Any]:
    return {
        "UserName": name,
        "UserId": f"AIDA{name.upper()}",
        "Arn": arn("user", name),
        "Path": "/",
        "GroupList": list(groups),
        **_inline("User", statements),
        **_attached(managed),
        **fields,
    }


def role(
    name: str,
    *statements: dict[str, Any],
    trusted: dict[str, Any] | None = None,
    managed: tuple[str, ...] = (),
    **fields: Any,
) -> dict[str, Any]:
    return {
        "RoleName": name,
        "RoleId": f"AROA{name.upper()}",
        "Arn": arn("role", name),
        "Path": "/",
        "AssumeRolePolicyDocument": trusted or trust(ECS_TASKS),
        **_inline("Role", statements),
        **_attached(managed),
        **fields,
    }


def group(name: str, *statements: dict[str, Any], managed: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "GroupName": name,
        "GroupId": f"AGPA{name.upper()}",
        "Arn": arn("group", name),
        "Path": "/",
        **_inline("Group", statements),
        **_attached(managed),
    }


def policy(name: str, *versions: dict[str, Any]) -> dict[str, Any]:
    """A customer managed policy; the first version is the default."""
    return {
        "PolicyName": name,
        "Arn": arn("policy", name),
        "DefaultVersionId": "v1",
        "PolicyVersionList": [
            {"VersionId": f"v{n + 1}", "IsDefaultVersion": n == 0, "Document": document}
            for n, document in enumerate(versions)
        ],
    }


def aws_managed(name: str) -> dict[str, Any]:
    """An AWS managed policy record from the shared test data (skips when it is absent)."""
    if not MANAGED.exists():
        pytest.skip(f"AWS managed policies not found at {MANAGED}")
    records = json.loads(MANAGED.read_text())["policies"]
    record = next(r for r in records if r["PolicyName"] == name)
    return {
        "PolicyName": name,
        "Arn": aws_policy(name),
        "DefaultVersionId": record["VersionId"],
        "PolicyVersionList": [
            {
                "VersionId": record["VersionId"],
                "IsDefaultVersion": True,
                "Document": record["Document"],
            }
        ],
    }


def account(
    users: list[dict[str, Any]] | None = None,
    roles: list[dict[str, Any]] | None = None,
    groups: list[dict[str, Any]] | None = None,
    policies: list[dict[str, Any]] | None = None,
    ecs: dict[str, Any] | None = None,
    **iam: Any,
) -> Snapshot:
    snap = snapshot(
        iam={
            "users": users or [],
            "roles": roles or [],
            "groups": groups or [],
            "policies": policies or [],
            **iam,
        },
        ecs=ecs or {},
    )
    return snap.model_copy(update={"collected_at": NOW})


def facts(snap: Snapshot) -> Facts:
    return Facts.of(snap)


def paths(snap: Snapshot, name: str, method: str | None = None) -> list[Path]:
    found = facts(snap)
    principal = next(p for p in found.principals if p.name == name)
    return [p for p in paths_of(principal, found) if method is None or p.method == method]


def only(found: list[Path]) -> Path:
    assert len(found) == 1, [str(p) for p in found]
    return found[0]


ADMIN_ROLE = role("admin-task", allow("*"))
DEPLOY = allow(["ecs:RegisterTaskDefinition", "ecs:UpdateService"])


def service(name: str, family: str, cluster: str = "prod", **fields: Any) -> dict[str, Any]:
    return {
        "serviceArn": f"{ECS}:service/{cluster}/{name}",
        "serviceName": name,
        "clusterArn": f"{ECS}:cluster/{cluster}",
        "status": "ACTIVE",
        "taskDefinition": f"{ECS}:task-definition/{family}:1",
        "enableExecuteCommand": False,
        "tags": [{"key": "team", "value": "shop"}],
        **fields,
    }


def task(service_name: str, family: str, cluster: str = "prod", **fields: Any) -> dict[str, Any]:
    return {
        "taskArn": f"{ECS}:task/{cluster}/{service_name}0001",
        "clusterArn": f"{ECS}:cluster/{cluster}",
        "taskDefinitionArn": f"{ECS}:task-definition/{family}:1",
        "group": f"service:{service_name}",
        "lastStatus": "RUNNING",
        "tags": [],
        **fields,
    }


def estate_with_admin_task(*, exec_enabled: bool, agent: bool = True) -> dict[str, Any]:
    """An ECS estate: service `mail` runs task definition `mail` under role admin-task."""
    td = task_definition("mail", taskRoleArn=arn("role", "admin-task"))
    return {
        "clusters": [{"clusterArn": f"{ECS}:cluster/prod", "clusterName": "prod"}],
        "task_definitions": [td],
        "services": [service("mail", "mail", enableExecuteCommand=exec_enabled)],
        "tasks": [task("mail", "mail")],
    }


# ---------------------------------------------------------------------------------------------
# ECS: PassRole + RegisterTaskDefinition + run


def test_deploy_with_passrole_runs_code_as_an_admin_task_role() -> None:
    snap = account(users=[user("ci", DEPLOY, allow("iam:PassRole"))], roles=[ADMIN_ROLE])
    path = only(paths(snap, "ci"))
    assert path.method == "ecs-deploy-passrole"
    assert path.actions == ("iam:PassRole", "ecs:RegisterTaskDefinition", "ecs:UpdateService")
    assert path.via == (arn("role", "admin-task"),)
    assert path.gains == ADMIN and path.admin and not path.conditional
    assert path.targets == (arn("role", "admin-task"),)
    assert path.narrowed == ""
    assert path.evidence[0] == "iam:PassRole: inline policy inline, statement 1"


def test_no_path_without_a_rollout_action_or_without_passrole() -> None:
    snap = account(
        users=[
            user("register-only", allow(["ecs:RegisterTaskDefinition", "iam:PassRole"])),
            user("no-pass", DEPLOY),
        ],
        roles=[ADMIN_ROLE],
    )
    assert paths(snap, "register-only") == []
    assert paths(snap, "no-pass") == []


def test_a_role_that_does_not_trust_ecs_tasks_cannot_be_passed_to_a_task() -> None:
    lambda_admin = role("lambda-admin", allow("*"), trusted=trust("lambda.amazonaws.com"))
    snap = account(users=[user("ci", DEPLOY, allow("iam:PassRole"))], roles=[lambda_admin])
    assert paths(snap, "ci") == []


def test_narrowed_passrole_says_how_and_reaches_only_the_named_roles() -> None:
    scoped = allow(
        "iam:PassRole",
        arn("role", "app-*"),
        Condition={"StringEquals": {"iam:PassedToService": ECS_TASKS}},
    )
    snap = account(
        users=[user("ci", DEPLOY, scoped)],
        roles=[ADMIN_ROLE, role("app-task", allow("sns:Publish"))],
    )
    path = only(paths(snap, "ci"))
    assert path.targets == (arn("role", "app-task"),)
    assert path.gains == "role app-task's rights" and path.gained_actions == 1
    assert "only on " + arn("role", "app-*") in path.narrowed
    assert "iam:PassedToService" in path.narrowed
    assert not path.conditional, "iam:PassedToService is decided: the path passes to ECS"


def test_passrole_to_another_service_only_is_no_ecs_path() -> None:
    lambda_only = allow(
        "iam:PassRole", Condition={"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}
    )
    snap = account(users=[user("ci", DEPLOY, lambda_only)], roles=[ADMIN_ROLE])
    assert paths(snap, "ci") == []


def test_a_grant_behind_an_undecided_condition_makes_the_path_conditional() -> None:
    from_office = allow("iam:PassRole", Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})
    snap = account(users=[user("ci", DEPLOY, from_office)], roles=[ADMIN_ROLE])
    path = only(paths(snap, "ci"))
    assert path.conditional and path.admin
    assert path.requires == ("IpAddress aws:SourceIp 10.0.0.0/8",)
    found = facts(snap)
    ci = found.by_arn[arn("user", "ci")]
    assert admin_equivalent(ci, found) is not None
    assert admin_equivalent(ci, found).decision == "conditional"  # type: ignore[union-attr]


def test_an_expired_grant_is_no_path() -> None:
    expired = allow(
        "iam:PassRole", Condition={"DateLessThan": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}}
    )
    still = allow(
        "iam:PassRole", Condition={"DateLessThan": {"aws:CurrentTime": "2027-01-01T00:00:00Z"}}
    )
    snap = account(
        users=[user("expired", DEPLOY, expired), user("valid", DEPLOY, still)],
        roles=[ADMIN_ROLE],
    )
    assert paths(snap, "expired") == []
    assert not only(paths(snap, "valid")).conditional, "decided against the snapshot's time"


def test_an_explicit_deny_or_a_boundary_removes_the_path() -> None:
    boundary = policy("boundary", doc(allow("ecs:*")))
    snap = account(
        users=[
            user("denied", DEPLOY, allow("iam:PassRole"), deny("iam:PassRole", arn("role", "*"))),
            user(
                "bounded",
                DEPLOY,
                allow("iam:PassRole"),
                PermissionsBoundary={"PermissionsBoundaryArn": arn("policy", "boundary")},
            ),
        ],
        roles=[ADMIN_ROLE],
        policies=[boundary],
    )
    assert paths(snap, "denied") == []
    assert paths(snap, "bounded") == []


def test_a_role_that_adds_nothing_is_no_escalation() -> None:
    weak = role("weak-task", allow("ecs:DescribeServices"))
    snap = account(
        users=[user("ci", DEPLOY, allow(["iam:PassRole", "ecs:Describe*"]))], roles=[weak]
    )
    assert paths(snap, "ci") == []


def test_scoped_rollout_is_evaluated_on_the_snapshot_services() -> None:
    scoped = allow("ecs:UpdateService", f"{ECS}:service/prod/*")
    snap = account(
        users=[user("ci", allow("ecs:RegisterTaskDefinition"), scoped, allow("iam:PassRole"))],
        roles=[ADMIN_ROLE],
        ecs=estate_with_admin_task(exec_enabled=False),
    )
    path = next(p for p in paths(snap, "ci") if p.method == "ecs-deploy-passrole")
    assert path.actions[-1] == "ecs:UpdateService"
    assert f"ecs:UpdateService only on {ECS}:service/prod/*" in path.narrowed


# ---------------------------------------------------------------------------------------------
# ECS: existing task definitions and ECS Exec


def test_run_task_with_a_command_override_runs_as_the_task_definition_role() -> None:
    snap = account(
        users=[user("runner", allow("ecs:RunTask"))],
        roles=[ADMIN_ROLE],
        ecs=estate_with_admin_task(exec_enabled=False),
    )
    path = only(paths(snap, "runner"))
    assert path.method == "ecs-run-task-command-override"
    assert path.via == (f"{ECS}:task-definition/mail:1", arn("role", "admin-task"))
    assert path.actions == ("ecs:RunTask",) and path.admin


def test_run_task_with_a_role_override_needs_passrole() -> None:
    plain = role("plain-task")
    ecs = {"task_definitions": [task_definition("web", taskRoleArn=arn("role", "plain-task"))]}
    snap = account(
        users=[
            user("runner", allow(["ecs:RunTask", "iam:PassRole"])),
            user("no-pass", allow("ecs:RunTask")),
        ],
        roles=[ADMIN_ROLE, plain],
        ecs=ecs,
    )
    path = only(paths(snap, "runner"))
    assert path.method == "ecs-run-task-role-override"
    assert path.via == (f"{ECS}:task-definition/web:1", arn("role", "admin-task"))
    assert path.actions == ("iam:PassRole", "ecs:RunTask")
    assert paths(snap, "no-pass") == [], "the web task's own role adds nothing"


def test_deploying_is_preferred_over_a_role_override_for_the_same_role() -> None:
    ecs = {"task_definitions": [task_definition("web", taskRoleArn=arn("role", "admin-task"))]}
    snap = account(
        users=[user("ci", allow(["ecs:RegisterTaskDefinition", "ecs:RunTask", "iam:PassRole"]))],
        roles=[ADMIN_ROLE],
        ecs=ecs,
    )
    assert [p.method for p in paths(snap, "ci")] == ["ecs-deploy-passrole"]


def test_exec_into_a_running_task_whose_role_is_stronger() -> None:
    snap = account(
        users=[user("operator", allow("ecs:ExecuteCommand"))],
        roles=[ADMIN_ROLE],
        ecs=estate_with_admin_task(exec_enabled=True),
    )
    path = only(paths(snap, "operator"))
    assert path.method == "ecs-execute-command"
    assert path.via == (f"{ECS}:task/prod/mail0001", arn("role", "admin-task"))


def test_exec_needs_the_agent_rights_in_the_task_role() -> None:
    no_agent = role("admin-task", allow("*"))
    no_agent["RolePolicyList"][0]["PolicyDocument"] = doc(allow("*"), deny("ssmmessages:*"))
    snap = account(
        users=[user("operator", allow("ecs:ExecuteCommand"))],
        roles=[no_agent],
        ecs=estate_with_admin_task(exec_enabled=True),
    )
    assert paths(snap, "operator") == []


def test_turning_exec_on_then_exec() -> None:
    tagged = allow(
        ["ecs:UpdateService", "ecs:ExecuteCommand"],
        Condition={"StringEquals": {"aws:ResourceTag/team": "shop"}},
    )
    snap = account(
        users=[
            user("operator", allow(["ecs:UpdateService", "ecs:ExecuteCommand"])),
            user("exec-only", allow("ecs:ExecuteCommand")),
            user("tagged", tagged),
        ],
        roles=[ADMIN_ROLE],
        ecs=estate_with_admin_task(exec_enabled=False),
    )
    path = only(paths(snap, "operator"))
    assert path.method == "ecs-enable-execute-command"
    assert path.actions == ("ecs:UpdateService", "ecs:ExecuteCommand")
    assert path.via == (f"{ECS}:service/prod/mail", arn("role", "admin-task"))
    assert paths(snap, "exec-only") == [], "exec is off and it cannot turn it on"
    # the service is tagged team=shop (decided); its task has no tags (unknown): conditional
    tagged_path = only(paths(snap, "tagged"))
    assert tagged_path.conditional


# ---------------------------------------------------------------------------------------------
# IAM methods


def test_attaching_a_policy_to_itself_is_admin_with_one_call() -> None:
    snap = account(users=[user("dev", allow("iam:AttachUserPolicy", arn("user", "dev")))])
    path = only(paths(snap, "dev"))
    assert path.method == "iam-attach-policy" and path.admin and path.kind == "self"
    assert path.via == (arn("user", "dev"),)


def test_attach_limited_by_policy_arn_to_a_harmless_policy_is_no_path() -> None:
    harmless = allow(
        "iam:AttachUserPolicy",
        arn("user", "dev"),
        Condition={"ArnEquals": {"iam:PolicyARN": aws_policy("ReadOnlyAccess")}},
    )
    snap = account(users=[user("dev", harmless)])
    assert paths(snap, "dev") == []


def test_writing_its_own_group_or_role_policy() -> None:
    snap = account(
        users=[user("dev", groups=("devs",))],
        groups=[group("devs", allow("iam:PutGroupPolicy", arn("group", "devs")))],
        roles=[role("app", allow("iam:PutRolePolicy", arn("role", "app")))],
    )
    assert only(paths(snap, "dev")).via == (arn("group", "devs"),)
    assert only(paths(snap, "devs")).method == "iam-put-inline-policy"
    assert only(paths(snap, "app")).actions == ("iam:PutRolePolicy",)


def test_a_new_version_or_an_old_default_of_a_policy_it_holds() -> None:
    writable = policy("ops", doc(allow("iam:CreatePolicyVersion", arn("policy", "ops"))))
    switchable = policy(
        "legacy",
        doc(allow("iam:SetDefaultPolicyVersion", arn("policy", "legacy"))),
        doc(allow("*")),
    )
    snap = account(
        users=[user("a", managed=("ops",)), user("b", managed=("legacy",))],
        policies=[writable, switchable],
    )
    assert only(paths(snap, "a")).method == "iam-create-policy-version"
    path = only(paths(snap, "b"))
    assert path.method == "iam-set-default-policy-version" and path.admin
    assert path.via == (f"{arn('policy', 'legacy')} (v2)",)


def test_credentials_for_another_user_and_joining_a_group() -> None:
    snap = account(
        users=[
            user("admin", allow("*")),
            user("helpdesk", allow(["iam:CreateAccessKey", "iam:UpdateLoginProfile"])),
            user("joiner", allow("iam:AddUserToGroup", arn("group", "admins"))),
        ],
        groups=[group("admins", allow("*"))],
    )
    to_admin = [p for p in paths(snap, "helpdesk") if p.targets == (arn("user", "admin"),)]
    assert [p.method for p in to_admin] == ["iam-create-access-key", "iam-login-profile"]
    assert all(p.admin for p in to_admin)
    assert to_admin[1].actions == ("iam:UpdateLoginProfile",)
    # joiner holds something helpdesk lacks (AddUserToGroup): its keys are a path too
    assert {t for p in paths(snap, "helpdesk") for t in p.targets} == {
        arn("user", "admin"),
        arn("user", "joiner"),
    }
    joined = only(paths(snap, "joiner"))
    assert joined.method == "iam-add-user-to-group" and joined.gains == ADMIN


def test_rewriting_a_trust_policy_then_assuming_the_role() -> None:
    ops = role("ops", allow("*"), trusted=trust("ec2.amazonaws.com"))
    snap = account(
        users=[
            user("rewriter", allow(["iam:UpdateAssumeRolePolicy", "sts:AssumeRole"])),
            user("rewrite-only", allow("iam:UpdateAssumeRolePolicy")),
        ],
        roles=[ops],
    )
    path = only(paths(snap, "rewriter"))
    assert path.method == "iam-update-assume-role-policy"
    assert path.actions == ("iam:UpdateAssumeRolePolicy", "sts:AssumeRole")
    assert paths(snap, "rewrite-only") == []


def test_assuming_a_role_that_trusts_the_principal() -> None:
    ops = role("ops", allow("*"), trusted=trust(aws=(arn("user", "alice"),)))
    via_account = role(
        "deploy", allow("ecs:*"), trusted=trust(aws=(f"arn:aws:iam::{ACCOUNT}:root",))
    )
    snap = account(
        users=[user("alice"), user("bob", allow("sts:AssumeRole", arn("role", "deploy")))],
        roles=[ops, via_account],
    )
    path = only(paths(snap, "alice"))
    assert path.method == "sts-assume-role" and path.admin
    bob = only(paths(snap, "bob"))
    assert bob.targets == (arn("role", "deploy"),) and bob.gains == "role deploy's rights"


def test_passrole_to_lambda_and_taking_over_a_function() -> None:
    fn = role("fn", allow("*"), trusted=trust("lambda.amazonaws.com"))
    snap = account(
        users=[
            user(
                "builder", allow(["iam:PassRole", "lambda:CreateFunction", "lambda:InvokeFunction"])
            ),
            user("patcher", allow("lambda:UpdateFunctionCode")),
        ],
        roles=[fn],
    )
    built = only(paths(snap, "builder"))
    assert built.method == "lambda-passrole-invoke" and not built.conditional
    patched = only(paths(snap, "patcher"))
    assert patched.method == "lambda-update-function-code" and patched.conditional
    assert "not in the snapshot" in patched.requires[0]


def test_ec2_instance_role_through_run_instances() -> None:
    instance = role("instance", allow("*"), trusted=trust("ec2.amazonaws.com"))
    snap = account(
        users=[user("launcher", allow(["iam:PassRole", "ec2:RunInstances"]))], roles=[instance]
    )
    assert only(paths(snap, "launcher")).method == "ec2-passrole-run-instances"


@pytest.mark.parametrize(
    "method",
    [p for p in ESCALATION_PATHS if method_kind(p) in ("pass-role", "takeover")],
    ids=lambda p: p.name,
)
def test_every_compute_method_of_the_table(method: EscalationPath) -> None:
    """A principal holding exactly a method's steps reaches an administrator role that trusts
    the method's service: certainly with PassRole, conditionally when taking over a resource
    the snapshot does not list."""
    held = [step[0] for step in method.steps]
    service = method_service(method)
    target = role("target", allow("*"), trusted=trust(service))
    snap = account(users=[user("p", allow(held))], roles=[target])
    path = only(paths(snap, "p"))
    assert path.method == method.name and path.admin
    assert path.conditional is (method_kind(method) == "takeover")
    assert path.targets == (arn("role", "target"),)
    # without the last step there is no path
    snap = account(users=[user("p", allow(held[:-1]))], roles=[target])
    assert [p for p in paths(snap, "p") if p.method == method.name] == []


def test_roles_reached_alike_share_one_path() -> None:
    snap = account(
        users=[user("ci", DEPLOY, allow("iam:PassRole"))],
        roles=[
            ADMIN_ROLE,
            role("a-task", allow("sns:Publish")),
            role("b-task", allow(["sqs:SendMessage", "sqs:ReceiveMessage"])),
        ],
    )
    admin, others = paths(snap, "ci")
    assert admin.admin and admin.targets == (arn("role", "admin-task"),)
    assert others.targets == (arn("role", "a-task"), arn("role", "b-task"))
    assert others.via == others.targets
    assert (others.gains, others.gains_ja) == ("the rights of 2 roles", "2 個のロールの権限")
    assert others.gained_actions == 2


def test_a_full_administrator_has_nothing_to_gain() -> None:
    snap = account(users=[user("root-like", allow("*"))], roles=[ADMIN_ROLE])
    assert paths(snap, "root-like") == []
    found = facts(snap)
    assert admin_equivalent(found.by_arn[arn("user", "root-like")], found).allowed  # type: ignore[union-attr]


def test_every_table_method_is_resolved() -> None:
    kinds = {p.name: method_kind(p) for p in ESCALATION_PATHS}
    assert "unknown" not in kinds.values(), kinds
    assert method_service(next(p for p in ESCALATION_PATHS if p.name == "ecs-deploy-passrole")) == (
        ECS_TASKS
    )
    assert all(m.summary and m.summary_ja for m in METHODS.values())


def test_path_as_data_and_text() -> None:
    snap = account(users=[user("ci", DEPLOY, allow("iam:PassRole"))], roles=[ADMIN_ROLE])
    path = only(paths(snap, "ci"))
    data = path.to_dict()
    assert {"method", "actions", "via", "gains", "conditional", "narrowed"} <= set(data)
    assert data["summary_ja"]
    assert str(path) == "ecs-deploy-passrole via admin-task: admin-equivalent"
    assert path.text("ja") == "ecs-deploy-passrole（admin-task 経由）: 管理者相当"


# ---------------------------------------------------------------------------------------------
# managed policies


def test_iam_full_access_escalates_and_read_only_access_does_not() -> None:
    snap = account(
        users=[
            user("iam", managed=(aws_policy("IAMFullAccess"),)),
            user("reader", managed=(aws_policy("ReadOnlyAccess"),)),
        ],
        roles=[ADMIN_ROLE],
        policies=[aws_managed("IAMFullAccess"), aws_managed("ReadOnlyAccess")],
    )
    iam = paths(snap, "iam")
    assert {p.method for p in iam} >= {"iam-attach-policy", "iam-put-inline-policy"}
    assert all(p.admin and not p.conditional for p in iam)
    assert paths(snap, "reader") == []


# ---------------------------------------------------------------------------------------------
# who can


def test_who_can_lists_direct_principals_and_hops() -> None:
    snap = account(
        users=[
            user("admin", allow("*")),
            user("ci", DEPLOY, allow("iam:PassRole")),
            user(
                "maybe",
                DEPLOY,
                allow("iam:PassRole", Condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}}),
            ),
            user("reader", allow("ecs:Describe*")),
        ],
        roles=[ADMIN_ROLE],
        groups=[group("admins", allow("*"))],
    )
    found = who_can("iam:CreateUser", None, snap)
    assert [(e["name"], e["decision"], bool(e["path"])) for e in found] == [
        ("admin-task", "allow", False),  # by ARN: roles before users
        ("admin", "allow", False),
        ("ci", "allow", True),
        ("maybe", "conditional", True),
    ]
    assert found[2]["path"][0]["method"] == "ecs-deploy-passrole"


def test_who_can_through_a_role_that_is_not_an_administrator() -> None:
    snap = account(
        users=[user("ci", DEPLOY, allow("iam:PassRole")), user("bystander")],
        roles=[role("app-task", allow("sns:Publish", "arn:aws:sns:*:*:orders"))],
    )
    topic = "arn:aws:sns:ap-northeast-1:123456789012:orders"
    for resource in (topic, None):
        direct, hop = who_can("sns:Publish", resource, snap)
        assert (direct["name"], direct["path"]) == ("app-task", [])
        assert (hop["name"], hop["decision"]) == ("ci", "allow")
        assert hop["path"][0]["targets"] == [arn("role", "app-task")]
    assert who_can("sns:Publish", "arn:aws:sns:ap-northeast-1:123456789012:other", snap) == []


def test_who_can_on_a_resource_and_on_any_resource() -> None:
    scoped = allow("ecs:UpdateService", f"{ECS}:service/prod/*")
    snap = account(users=[user("ci", scoped)])
    assert [e["name"] for e in who_can("ecs:UpdateService", "*", snap)] == ["ci"]
    assert who_can("ecs:UpdateService", f"{ECS}:service/staging/api", snap) == []
    assert who_can("ecs:UpdateService", f"{ECS}:service/prod/api", snap)[0]["decision"] == "allow"
