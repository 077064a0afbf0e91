"""EC2: the container instances behind EC2 capacity, and the security groups and subnets that
ECS services, tasks and those instances use (not the whole VPC)."""

from __future__ import annotations

from typing import Any

from ecsguard.aws.collect import CollectContext, chunks, collector
from ecsguard.aws.snapshot import Ec2Section, EcsSection

MAX_IDS = 200  # ids per request we send; keeps request size modest


@collector(
    "ec2",
    needs=["ecs"],
    actions=["ec2:DescribeInstances", "ec2:DescribeSecurityGroups", "ec2:DescribeSubnets"],
)
def collect_ec2(ctx: CollectContext) -> Ec2Section:
    groups, subnets = used_network(ctx.inventory.ecs)
    section = Ec2Section()
    instance_ids = sorted(
        {i["ec2InstanceId"] for i in ctx.inventory.ecs.container_instances if "ec2InstanceId" in i}
    )
    for batch in chunks(instance_ids, MAX_IDS):
        reservations = ctx.pages(
            "ec2", "DescribeInstances", "Reservations", InstanceIds=list(batch)
        )
        for reservation in reservations:
            for instance in reservation.get("Instances", []):
                section.instances.append(instance)
                groups.update(g["GroupId"] for g in instance.get("SecurityGroups", []))
                if instance.get("SubnetId"):
                    subnets.add(instance["SubnetId"])
    for batch in chunks(sorted(groups), MAX_IDS):
        section.security_groups.extend(
            ctx.pages("ec2", "DescribeSecurityGroups", "SecurityGroups", GroupIds=list(batch))
        )
    for batch in chunks(sorted(subnets), MAX_IDS):
        section.subnets.extend(
            ctx.pages("ec2", "DescribeSubnets", "Subnets", SubnetIds=list(batch))
        )
    return section


def used_network(ecs: EcsSection) -> tuple[set[str], set[str]]:
    """Security group and subnet ids named by services, their task sets and tasks."""
    groups: set[str] = set()
    subnets: set[str] = set()

    def add(config: dict[str, Any] | None) -> None:
        vpc = (config or {}).get("awsvpcConfiguration") or {}
        groups.update(vpc.get("securityGroups", []))
        subnets.update(vpc.get("subnets", []))

    for service in ecs.services:
        add(service.get("networkConfiguration"))
        for item in service.get("taskSets", []) + service.get("deployments", []):
            add(item.get("networkConfiguration"))
    for task in ecs.tasks:
        for attachment in task.get("attachments", []):
            for detail in attachment.get("details", []):
                if detail.get("name") == "subnetId":
                    subnets.add(detail["value"])
    return groups, subnets
