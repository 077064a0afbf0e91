"""The one object every check receives: the snapshot plus indexes checks would otherwise rebuild."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ecsguard.aws.snapshot import RegionInventory, Snapshot

Resource = dict[str, Any]


def family_and_revision(arn: str) -> tuple[str, int]:
    """`arn:...:task-definition/web:3` -> ("web", 3)."""
    name = arn.rsplit("/", 1)[-1]
    family, _, revision = name.rpartition(":")
    return family, int(revision) if revision.isdigit() else 0


def alarm_metrics(alarm: Resource) -> list[Resource]:
    """Every metric an alarm watches: its own, or those of its metric-math queries."""
    if alarm.get("MetricName"):
        return [alarm]
    return [q["MetricStat"]["Metric"] for q in alarm.get("Metrics", []) if q.get("MetricStat")]


@dataclass
class CheckContext:
    snapshot: Snapshot
    lang: str = "en"
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def account(self) -> str:
        return self.snapshot.account

    def regions(self) -> Iterator[tuple[str, RegionInventory]]:
        yield from sorted(self.snapshot.regions.items())

    def services(self) -> Iterator[tuple[str, Resource]]:
        for region, inv in self.regions():
            for service in sorted(inv.ecs.services, key=lambda s: s.get("serviceArn", "")):
                yield region, service

    @cached_property
    def task_definitions_by_arn(self) -> dict[str, tuple[str, Resource]]:
        return {
            td["taskDefinitionArn"]: (region, td)
            for region, inv in self.regions()
            for td in inv.ecs.task_definitions
        }

    def task_definitions(self) -> Iterator[tuple[str, Resource]]:
        """Revisions worth auditing: every ACTIVE revision a service (deployment, task set) or
        task uses, and the latest revision of each family, in ARN order."""
        for arn in sorted(self._in_scope_arns):
            yield self.task_definitions_by_arn[arn]

    @cached_property
    def _in_scope_arns(self) -> set[str]:
        used: set[str] = set()
        latest: dict[tuple[str, str], tuple[int, str]] = {}
        for region, inv in self.regions():
            for service in inv.ecs.services:
                used.add(service.get("taskDefinition", ""))
                for item in service.get("deployments", []) + service.get("taskSets", []):
                    used.add(item.get("taskDefinition", ""))
            for task in inv.ecs.tasks:
                used.add(task.get("taskDefinitionArn", ""))
            for td in inv.ecs.task_definitions:
                family, revision = family_and_revision(td["taskDefinitionArn"])
                key = (region, family)
                if key not in latest or revision > latest[key][0]:
                    latest[key] = (revision, td["taskDefinitionArn"])
        scope = {arn for arn in used if arn in self.task_definitions_by_arn}
        return scope | {arn for _, arn in latest.values()}

    def containers(self) -> Iterator[tuple[str, Resource, Resource]]:
        """(region, task definition, container definition) for every in-scope revision."""
        for region, td in self.task_definitions():
            for container in td.get("containerDefinitions", []):
                yield region, td, container

    @cached_property
    def roles_by_arn(self) -> dict[str, Resource]:
        return {role["Arn"]: role for role in self.snapshot.iam.roles}

    def role(self, arn_or_name: str | None) -> Resource | None:
        """A role by ARN, or by name (task definitions may name a role without its ARN)."""
        if not arn_or_name:
            return None
        if arn_or_name in self.roles_by_arn:
            return self.roles_by_arn[arn_or_name]
        name = arn_or_name.rsplit("/", 1)[-1]
        return next((r for r in self.snapshot.iam.roles if r.get("RoleName") == name), None)

    @cached_property
    def security_groups_by_id(self) -> dict[str, Resource]:
        return {sg["GroupId"]: sg for _, inv in self.regions() for sg in inv.ec2.security_groups}

    @cached_property
    def subnets_by_id(self) -> dict[str, Resource]:
        return {s["SubnetId"]: s for _, inv in self.regions() for s in inv.ec2.subnets}
