"""In-memory snapshots for check tests: only the fields a check reads."""

from __future__ import annotations

from typing import Any

from ecsguard.aws.snapshot import IamSection, RegionInventory, Snapshot
from ecsguard.core.models import Finding, Status
from ecsguard.posture.engine import run, select

ACCOUNT = "123456789012"
REGION = "ap-northeast-1"


def snapshot(iam: dict[str, Any] | None = None, **sections: dict[str, Any]) -> Snapshot:
    """`snapshot(ecs={"services": [...]}, iam={"roles": [...]})` in ap-northeast-1."""
    inventory = RegionInventory.model_validate(sections)
    return Snapshot(
        account=ACCOUNT,
        regions={REGION: inventory},
        iam=IamSection.model_validate(iam or {}),
    )


def task_definition(family: str = "web", revision: int = 1, **fields: Any) -> dict[str, Any]:
    """A well-configured Fargate task definition; pass fields to override."""
    container = {
        "name": family,
        "image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{family}@sha256:" + "a" * 64,
        "essential": True,
        "user": "1000",
        "readonlyRootFilesystem": True,
        "logConfiguration": {"logDriver": "awslogs", "options": {"mode": "non-blocking"}},
        "healthCheck": {"command": ["CMD-SHELL", "true"]},
    }
    containers = fields.pop("containers", None) or [container | fields.pop("container", {})]
    return {
        "taskDefinitionArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{family}:{revision}",
        "family": family,
        "revision": revision,
        "status": "ACTIVE",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "containerDefinitions": containers,
        "tags": [{"key": "team", "value": "web"}],
        **fields,
    }


def findings(snap: Snapshot, check_id: str, lang: str = "en") -> list[Finding]:
    return run(snap, select(include=[check_id]), lang=lang)


def statuses(snap: Snapshot, check_id: str) -> dict[str, Status]:
    """resource ARN -> status, for one check."""
    return {f.resource_arn: f.status for f in findings(snap, check_id)}
