"""Which CloudWatch metrics to poll for an estate: built from a Snapshot's ECS services.

Per service: AWS/ECS CPUUtilization and MemoryUtilization and the Container Insights service
metrics (ClusterName + ServiceName); per target group of a service: the AWS/ApplicationELB target
metrics with the dimensions CloudWatch publishes them under (TargetGroup + LoadBalancer, each the
ARN's resource part: `targetgroup/name/id`, `app/name/id`). A target group's load balancer is not
in the service, so the caller resolves it (DescribeTargetGroups) and passes the map in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ecsguard.aws.snapshot import Snapshot


@dataclass(frozen=True)
class MetricQuery:
    """One series to fetch: a metric, its dimensions, the statistic and the unit it is stored in."""

    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    stat: str
    unit: str | None

    @property
    def dimensions_json(self) -> str:
        """The `dimensions` column: a JSON object with sorted keys (one spelling per series)."""
        return orjson.dumps(dict(self.dimensions), option=orjson.OPT_SORT_KEYS).decode()

    @property
    def key(self) -> str:
        """Identifies the series in the poll state file."""
        return f"{self.namespace}|{self.name}|{self.stat}|{self.dimensions_json}"

    def metric_stat(self, period: int) -> dict[str, Any]:
        return {
            "Metric": {
                "Namespace": self.namespace,
                "MetricName": self.name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in self.dimensions],
            },
            "Period": period,
            "Stat": self.stat,
        }


# (name, statistic, unit): the statistic CloudWatch's own console shows for each metric
ECS_METRICS = (
    ("CPUUtilization", "Average", "Percent"),
    ("MemoryUtilization", "Average", "Percent"),
)
CONTAINER_INSIGHTS_METRICS = (
    ("CpuUtilized", "Average", "None"),  # CPU units
    ("MemoryUtilized", "Average", "Megabytes"),
    ("RunningTaskCount", "Average", "Count"),
    ("DesiredTaskCount", "Average", "Count"),
    ("PendingTaskCount", "Average", "Count"),
)
TARGET_GROUP_METRICS = (
    ("HealthyHostCount", "Minimum", "Count"),
    ("UnHealthyHostCount", "Maximum", "Count"),
    ("HTTPCode_Target_5XX_Count", "Sum", "Count"),
    ("TargetResponseTime", "Average", "Seconds"),
)


def arn_resource(arn: str, marker: str) -> str:
    """`targetgroup/name/id` or `app/name/id`: the part of an ELB ARN CloudWatch uses as the
    dimension value (everything after `:loadbalancer/` for load balancers)."""
    resource = arn.split(":", 5)[-1] if arn.startswith("arn:") else arn
    if marker == "loadbalancer" and resource.startswith("loadbalancer/"):
        return resource.removeprefix("loadbalancer/")
    return resource


def cluster_name(cluster_arn: str) -> str:
    return cluster_arn.rsplit("/", 1)[-1]


def target_group_arns(snapshot: Snapshot, region: str) -> list[str]:
    """Every target group a service of the region sends traffic to, once."""
    arns: dict[str, None] = {}
    for service in snapshot.regions[region].ecs.services:
        for balancer in service.get("loadBalancers") or []:
            if balancer.get("targetGroupArn"):
                arns[balancer["targetGroupArn"]] = None
    return list(arns)


def service_queries(snapshot: Snapshot, region: str) -> list[MetricQuery]:
    """The AWS/ECS and Container Insights queries of every service in `region`."""
    out: list[MetricQuery] = []
    for service in snapshot.regions[region].ecs.services:
        name = service.get("serviceName")
        cluster = service.get("clusterArn")
        if not name or not cluster:
            continue
        dims = (("ClusterName", cluster_name(cluster)), ("ServiceName", name))
        out.extend(MetricQuery("AWS/ECS", m, dims, s, u) for m, s, u in ECS_METRICS)
        out.extend(
            MetricQuery("ECS/ContainerInsights", m, dims, s, u)
            for m, s, u in CONTAINER_INSIGHTS_METRICS
        )
    return out


def target_group_queries(balancers: Mapping[str, Sequence[str]]) -> list[MetricQuery]:
    """AWS/ApplicationELB queries for target group ARN -> its load balancer ARNs."""
    out: list[MetricQuery] = []
    for group_arn, balancer_arns in balancers.items():
        group = arn_resource(group_arn, "targetgroup")
        for balancer_arn in balancer_arns:
            dims = (
                ("LoadBalancer", arn_resource(balancer_arn, "loadbalancer")),
                ("TargetGroup", group),
            )
            out.extend(
                MetricQuery("AWS/ApplicationELB", m, dims, s, u) for m, s, u in TARGET_GROUP_METRICS
            )
    return out
