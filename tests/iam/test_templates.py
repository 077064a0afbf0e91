"""Least-privilege templates: scoped resources, PassRole to ECS only, filled from a snapshot."""

from __future__ import annotations

import pytest

from ecsguard.aws.snapshot import Snapshot
from ecsguard.core.errors import UserError
from ecsguard.iam.templates import (
    TIERS,
    Scope,
    resource_star_violations,
    scope_from_snapshot,
    template,
    trust_policy_for_tasks,
)

ACCOUNT = "123456789012"


def scope() -> Scope:
    return Scope(
        account=ACCOUNT,
        region="ap-northeast-1",
        clusters=["prod"],
        services=["api"],
        roles=[f"arn:aws:iam::{ACCOUNT}:role/api-task"],
        repositories=["shop/api"],
        log_groups=["/ecs/api"],
        families=["api"],
        secrets=[f"arn:aws:secretsmanager:ap-northeast-1:{ACCOUNT}:secret:prod/api/db-AbCdEf"],
    )


@pytest.mark.parametrize("tier", TIERS)
def test_no_star_where_resource_level_permissions_exist(tier: str) -> None:
    assert resource_star_violations(template(tier, scope())) == []


def test_pass_role_is_limited_to_named_roles_and_ecs_tasks() -> None:
    statements = template("deployer", scope())["Statement"]
    passing = [s for s in statements if "iam:PassRole" in s["Action"]]
    assert passing == [
        {
            "Sid": "PassOnlyTheServiceRolesToEcsTasks",
            "Effect": "Allow",
            "Action": ["iam:PassRole"],
            "Resource": f"arn:aws:iam::{ACCOUNT}:role/api-task",
            "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
        }
    ]
    deploy = next(s for s in statements if s["Sid"] == "DeployTheService")
    assert deploy["Resource"] == f"arn:aws:ecs:ap-northeast-1:{ACCOUNT}:service/prod/api"


def test_tiers_differ_in_what_they_may_do() -> None:
    def acts(tier: str) -> set[str]:
        return {a for s in template(tier, scope())["Statement"] for a in s["Action"]}

    assert "ecr:PutImage" in acts("ci") and "ecr:PutImage" not in acts("deployer")
    assert "ecs:ExecuteCommand" in acts("operator") and "iam:PassRole" not in acts("operator")
    assert acts("workload") >= {"logs:PutLogEvents", "secretsmanager:GetSecretValue"}
    assert "ecs:UpdateService" not in acts("workload")
    assert acts("iam-admin") == {"iam:*"}


def test_violations_are_found_in_a_loose_policy() -> None:
    loose = {"Statement": [{"Effect": "Allow", "Action": "ecs:UpdateService", "Resource": "*"}]}
    assert resource_star_violations(loose) == [
        "ecs:UpdateService supports resource-level permissions"
    ]


def test_deploy_tiers_need_roles() -> None:
    with pytest.raises(UserError, match="--role"):
        template("ci", Scope(account=ACCOUNT))
    with pytest.raises(UserError, match="unknown tier"):
        template("god", scope())


def test_trust_policy_pins_the_account() -> None:
    condition = trust_policy_for_tasks(scope())["Statement"][0]["Condition"]
    assert condition["StringEquals"] == {"aws:SourceAccount": ACCOUNT}


def test_scope_from_the_demo_snapshot(demo_snapshot: Snapshot) -> None:
    filled = scope_from_snapshot(demo_snapshot, ["prod"], ["payments"])
    assert filled.roles == [
        f"arn:aws:iam::{ACCOUNT}:role/payments-execution",
        f"arn:aws:iam::{ACCOUNT}:role/payments-task",
    ]
    assert filled.repositories == ["shop/payments"] and filled.log_groups == ["/ecs/payments"]
    assert filled.secrets and all(":secret:prod/payments/" in s for s in filled.secrets)
    assert resource_star_violations(template("ci", filled)) == []
    with pytest.raises(UserError, match="no service nope"):
        scope_from_snapshot(demo_snapshot, ["prod"], ["nope"])
