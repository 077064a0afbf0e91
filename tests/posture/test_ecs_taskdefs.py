"""Task-definition-level checks: host namespaces, ECS.1, EFS encryption, tags, role separation."""

from __future__ import annotations

from typing import Any

import pytest
from tests.posture.builders import ACCOUNT, findings, snapshot, task_definition

from ecsguard.core.models import Finding, Status


def only(check_id: str, td: dict[str, Any], lang: str = "en") -> Finding:
    [finding] = findings(snapshot(ecs={"task_definitions": [td]}), check_id, lang)
    return finding


def none_for(check_id: str, *tds: dict[str, Any]) -> None:
    assert findings(snapshot(ecs={"task_definitions": list(tds)}), check_id) == []


def ec2(**fields: Any) -> dict[str, Any]:
    return task_definition("daemon", requiresCompatibilities=["EC2"], **fields)


@pytest.mark.parametrize(
    ("check_id", "field", "control"),
    [
        ("ecs.taskdef_host_network_mode", "networkMode", ["SecurityHub:ECS.17"]),
        ("ecs.taskdef_host_pid_mode", "pidMode", ["FSBP:ECS.3"]),
        ("ecs.taskdef_host_ipc_mode", "ipcMode", []),
    ],
)
def test_host_namespaces(check_id: str, field: str, control: list[str]) -> None:
    bad = only(check_id, ec2(**{field: "host"}))
    assert (bad.status, bad.message, bad.controls) == (Status.FAIL, f"{field} is host", control)
    assert only(check_id, ec2(**{field: "host"}), lang="ja").message == f"{field} が host"
    assert only(check_id, ec2(**{field: "task"})).message == f"{field} is task"
    assert only(check_id, task_definition()).status == Status.PASS
    none_for(check_id)


def test_ecs1_host_network_with_root_containers() -> None:
    containers = [
        {"name": "agent", "user": "root"},
        {"name": "unset"},
        {"name": "opted-in", "privileged": True},
        {"name": "app", "user": "1000", "privileged": False},
    ]
    finding = only(
        "ecs.taskdef_host_network_root_user", ec2(networkMode="host", containers=containers)
    )
    assert finding.status == Status.FAIL
    assert finding.message == "host network mode with containers running as root: agent, unset"
    assert finding.controls == ["FSBP:ECS.1"]


def test_ecs1_passes_with_non_root_or_privileged_and_skips_other_modes() -> None:
    ok = ec2(
        networkMode="host",
        containers=[{"name": "a", "user": "999"}, {"name": "b", "privileged": True}],
    )
    assert only("ecs.taskdef_host_network_root_user", ok).status == Status.PASS
    none_for("ecs.taskdef_host_network_root_user", task_definition(container={"user": None}))


def efs(name: str, **config: str) -> dict[str, Any]:
    return {"name": name, "efsVolumeConfiguration": {"fileSystemId": f"fs-{name}", **config}}


def test_efs_transit_encryption() -> None:
    volumes = [
        efs("data"),
        efs("cache", transitEncryption="DISABLED"),
        efs("ok", transitEncryption="ENABLED"),
    ]
    finding = only("ecs.taskdef_efs_transit_encryption", task_definition(volumes=volumes))
    assert finding.status == Status.FAIL
    assert (
        finding.message
        == "EFS volumes without encryption in transit: data (fs-data), cache (fs-cache)"
    )
    assert finding.controls == ["SecurityHub:ECS.18"]
    good = task_definition(volumes=[efs("ok", transitEncryption="ENABLED")])
    assert only("ecs.taskdef_efs_transit_encryption", good).status == Status.PASS
    none_for("ecs.taskdef_efs_transit_encryption", task_definition(volumes=[{"name": "scratch"}]))


def test_tags() -> None:
    untagged = task_definition(tags=[])
    system_only = task_definition(tags=[{"key": "aws:cloudformation:stack-name", "value": "x"}])
    for td in (untagged, system_only):
        finding = only("ecs.taskdef_tagged", td)
        assert (finding.status, finding.message) == (Status.FAIL, "the task definition has no tags")
        assert (finding.controls, finding.severity) == (["SecurityHub:ECS.15"], "low")
    assert only("ecs.taskdef_tagged", task_definition()).message == "tagged: team"
    none_for("ecs.taskdef_tagged")


def role(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


def test_task_role_equal_to_execution_role() -> None:
    shared = task_definition(taskRoleArn=role("web"), executionRoleArn=role("web"))
    finding = only("ecs.taskdef_shared_task_execution_role", shared)
    assert finding.status == Status.FAIL
    assert finding.message == "task role and execution role are the same role: web"
    assert finding.pillar == "iam"
    by_name = task_definition(taskRoleArn="web", executionRoleArn=role("web"))
    assert only("ecs.taskdef_shared_task_execution_role", by_name).status == Status.FAIL


def test_separate_roles_pass_and_a_missing_role_is_not_applicable() -> None:
    separate = task_definition(taskRoleArn=role("web-task"), executionRoleArn=role("web-exec"))
    finding = only("ecs.taskdef_shared_task_execution_role", separate)
    assert finding.message == "task role web-task and execution role web-exec differ"
    other_account = task_definition(
        taskRoleArn="arn:aws:iam::999999999999:role/web", executionRoleArn=role("web")
    )
    assert only("ecs.taskdef_shared_task_execution_role", other_account).status == Status.PASS
    none_for("ecs.taskdef_shared_task_execution_role", task_definition(executionRoleArn=role("x")))


TASKDEF_CHECKS = [
    "ecs.taskdef_host_network_mode",
    "ecs.taskdef_host_pid_mode",
    "ecs.taskdef_host_ipc_mode",
    "ecs.taskdef_tagged",
]


@pytest.mark.parametrize("check_id", TASKDEF_CHECKS)
def test_the_builder_task_definition_passes(check_id: str) -> None:
    assert only(check_id, task_definition()).status == Status.PASS
