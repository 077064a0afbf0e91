"""ECS: clusters, capacity providers, container instances, services (with task sets), every
ACTIVE task definition revision, running and recently stopped tasks, account settings.

Calls are batched at each API's maximum (describe_clusters 100, describe_services 10,
describe_tasks 100); describe_task_definition takes one revision per call, so those fan out.
"""

from __future__ import annotations

from typing import Any

from ecsguard.aws.collect import CollectContext, chunks, collector
from ecsguard.aws.snapshot import EcsSection

CLUSTER_INCLUDE = ["ATTACHMENTS", "CONFIGURATIONS", "SETTINGS", "STATISTICS", "TAGS"]
BUILTIN_PROVIDERS = frozenset({"FARGATE", "FARGATE_SPOT"})


@collector(
    "ecs",
    actions=[
        "ecs:ListClusters",
        "ecs:DescribeClusters",
        "ecs:DescribeCapacityProviders",
        "ecs:ListServices",
        "ecs:DescribeServices",
        "ecs:ListTaskDefinitions",
        "ecs:DescribeTaskDefinition",
        "ecs:ListTasks",
        "ecs:DescribeTasks",
        "ecs:ListAccountSettings",
        "ecs:ListContainerInstances",
        "ecs:DescribeContainerInstances",
    ],
)
def collect_ecs(ctx: CollectContext) -> EcsSection:
    section = EcsSection()
    cluster_arns = ctx.pages("ecs", "ListClusters", "clusterArns")
    for batch in chunks(cluster_arns, 100):
        reply = ctx.call("ecs", "DescribeClusters", clusters=list(batch), include=CLUSTER_INCLUDE)
        section.clusters.extend(reply["clusters"] if reply else [])
    section.capacity_providers = _capacity_providers(ctx, section.clusters)

    per_cluster = ctx.map(lambda arn: _cluster_workload(ctx, arn), cluster_arns)
    for services, tasks, instances in per_cluster:
        section.services.extend(services)
        section.tasks.extend(tasks)
        section.container_instances.extend(instances)

    family_arns = ctx.pages("ecs", "ListTaskDefinitions", "taskDefinitionArns", status="ACTIVE")
    section.task_definitions = [
        td for td in ctx.map(lambda a: _task_definition(ctx, a), family_arns) if td
    ]
    section.account_settings = ctx.pages(
        "ecs", "ListAccountSettings", "settings", effectiveSettings=True
    )
    return section


def _capacity_providers(
    ctx: CollectContext, clusters: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    # Named explicitly: the built-in Fargate providers cannot be described, and asking by name
    # keeps the call count to the providers the estate uses.
    names = sorted(
        {p for c in clusters for p in c.get("capacityProviders", [])} - BUILTIN_PROVIDERS
    )
    found: list[dict[str, Any]] = []
    for batch in chunks(names, 100):
        reply = ctx.call(
            "ecs", "DescribeCapacityProviders", capacityProviders=list(batch), include=["TAGS"]
        )
        found.extend(reply["capacityProviders"] if reply else [])
    return found


def _cluster_workload(
    ctx: CollectContext, cluster_arn: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    services: list[dict[str, Any]] = []
    arns = ctx.pages("ecs", "ListServices", "serviceArns", cluster=cluster_arn)
    for batch in chunks(arns, 10):
        reply = ctx.call(
            "ecs", "DescribeServices", cluster=cluster_arn, services=list(batch), include=["TAGS"]
        )
        services.extend(reply["services"] if reply else [])
    tasks: list[dict[str, Any]] = []
    for status in ("RUNNING", "STOPPED"):
        task_arns = ctx.pages(
            "ecs", "ListTasks", "taskArns", cluster=cluster_arn, desiredStatus=status
        )
        for batch in chunks(task_arns, 100):
            reply = ctx.call(
                "ecs", "DescribeTasks", cluster=cluster_arn, tasks=list(batch), include=["TAGS"]
            )
            tasks.extend(reply["tasks"] if reply else [])
    # EC2 capacity: the instances' security groups guard bridge- and host-mode tasks.
    instances: list[dict[str, Any]] = []
    instance_arns = ctx.pages(
        "ecs", "ListContainerInstances", "containerInstanceArns", cluster=cluster_arn
    )
    for batch in chunks(instance_arns, 100):
        reply = ctx.call(
            "ecs",
            "DescribeContainerInstances",
            cluster=cluster_arn,
            containerInstances=list(batch),
            include=["TAGS"],
        )
        for instance in reply["containerInstances"] if reply else []:
            instance["clusterArn"] = cluster_arn
            instances.append(instance)
    return services, tasks, instances


def _task_definition(ctx: CollectContext, arn: str) -> dict[str, Any] | None:
    reply = ctx.call("ecs", "DescribeTaskDefinition", taskDefinition=arn, include=["TAGS"])
    if not reply:
        return None
    definition: dict[str, Any] = reply["taskDefinition"]
    if reply.get("tags"):
        definition["tags"] = reply["tags"]
    return definition
