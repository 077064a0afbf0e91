"""ECR: repositories with scanning, tag mutability, repository and lifecycle policies, and the
registry's scanning configuration (basic or enhanced)."""

from __future__ import annotations

from typing import Any

import orjson

from ecsguard.aws.collect import CollectContext, collector
from ecsguard.aws.snapshot import EcrSection


@collector(
    "ecr",
    actions=[
        "ecr:DescribeRepositories",
        "ecr:GetRepositoryPolicy",
        "ecr:GetLifecyclePolicy",
        "ecr:GetRegistryScanningConfiguration",
    ],
)
def collect_ecr(ctx: CollectContext) -> EcrSection:
    repositories = ctx.pages("ecr", "DescribeRepositories", "repositories")
    scanning = ctx.call("ecr", "GetRegistryScanningConfiguration") or {}
    return EcrSection(
        repositories=ctx.map(lambda r: _policies(ctx, r), repositories),
        registry_scanning=scanning.get("scanningConfiguration", {}),
    )


def _policies(ctx: CollectContext, repo: dict[str, Any]) -> dict[str, Any]:
    name, registry = repo["repositoryName"], repo["registryId"]
    policy = ctx.call(
        "ecr",
        "GetRepositoryPolicy",
        repositoryName=name,
        registryId=registry,
        ok=["RepositoryPolicyNotFoundException"],
    )
    repo["policy"] = orjson.loads(policy["policyText"]) if policy else None
    lifecycle = ctx.call(
        "ecr",
        "GetLifecyclePolicy",
        repositoryName=name,
        registryId=registry,
        ok=["LifecyclePolicyNotFoundException"],
    )
    repo["lifecyclePolicy"] = orjson.loads(lifecycle["lifecyclePolicyText"]) if lifecycle else None
    return repo
