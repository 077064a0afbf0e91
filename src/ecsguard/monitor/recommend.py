"""Recommended alarms for every ECS service of a snapshot, as a rule file (metric_alarm and
anomaly_band rules, docs/rules.md) that `ecsguard rules validate` accepts.

Per service (dimensions ClusterName + ServiceName):
- CPU and memory high: AWS/ECS CPUUtilization / MemoryUtilization, Average > 80 % in 3 of 3
  five-minute periods (the ECS console's own suggestion);
- running below desired: ECS/ContainerInsights RunningTaskCount, Minimum below the service's
  desiredCount in the snapshot for 3 of 3 minutes (a task replaced by a deployment dips for less);
  left out for a service scaled to zero. Re-run after changing desiredCount.
Per target group of a service (dimension TargetGroup, the ARN's `targetgroup/name/id`):
- 5xx: HTTPCode_Target_5XX_Count, Sum >= 10 a minute for 3 of 5 minutes; no datapoint means
  no error (the load balancer publishes none), hence notBreaching;
- unhealthy targets: UnHealthyHostCount, Maximum > 0 for 5 of 5 minutes;
- an anomaly band on RequestCountPerTarget (Sum per 5 minutes, 3 deviations, both ways).
Thresholds are starting points: the file is meant to be read and adapted.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from ecsguard.aws.snapshot import Snapshot

HIGH_PERCENT = 80
ERRORS_PER_MINUTE = 10
_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]+")


def _slug(text: str) -> str:
    return _UNSAFE.sub("-", text).strip("-._:") or "x"


def _target_group(arn: str) -> str:
    """`targetgroup/name/id`: the TargetGroup dimension's value."""
    return arn.split(":", 5)[-1] if arn.startswith("arn:") else arn


def _metric_alarm(
    rule_id: str,
    title: str,
    severity: str,
    tags: list[str],
    **settings: Any,
) -> dict[str, Any]:
    return {
        "id": rule_id,
        "title": title,
        "severity": severity,
        "type": "metric_alarm",
        "tags": tags,
        "metric_alarm": settings,
    }


def service_rules(
    cluster: str, service: dict[str, Any], region: str, taken: set[str]
) -> list[dict[str, Any]]:
    """The recommended rules of one service (as YAML-ready mappings); `taken` holds the rule ids
    already used, so two services whose names slug alike still get distinct ids."""
    name = str(service.get("serviceName") or "")
    if not name:
        return []
    base = _slug(f"{cluster}-{name}")
    if base in taken:
        base = _slug(f"{region}-{cluster}-{name}")
    suffix = 2
    unique = base
    while unique in taken:
        unique, suffix = f"{base}-{suffix}", suffix + 1
    taken.add(unique)
    where = f"service {name} of cluster {cluster}"
    dims = {"ClusterName": cluster, "ServiceName": name}
    tags = ["ecs", "monitoring", f"service:{name}"]
    rules = [
        _metric_alarm(
            f"{unique}-{short}-high",
            f"{label} of {where} above {HIGH_PERCENT}% for 15 minutes",
            severity,
            tags,
            namespace="AWS/ECS",
            metric_name=metric,
            dimensions=dims,
            statistic="Average",
            period="5m",
            evaluation_periods=3,
            datapoints_to_alarm=3,
            threshold=HIGH_PERCENT,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="missing",
        )
        for short, label, metric, severity in (
            ("cpu", "CPU", "CPUUtilization", "medium"),
            ("memory", "Memory", "MemoryUtilization", "high"),
        )
    ]
    desired = service.get("desiredCount")
    if isinstance(desired, int) and desired > 0:
        rules.append(
            _metric_alarm(
                f"{unique}-running-below-desired",
                f"Fewer than {desired} running tasks (its desired count) in {where}",
                "high",
                tags,
                namespace="ECS/ContainerInsights",
                metric_name="RunningTaskCount",
                dimensions=dims,
                statistic="Minimum",
                period="1m",
                evaluation_periods=3,
                datapoints_to_alarm=3,
                threshold=desired,
                comparison_operator="LessThanThreshold",
                treat_missing_data="missing",
            )
        )
    groups = sorted(
        {
            str(lb["targetGroupArn"])
            for lb in service.get("loadBalancers") or []
            if isinstance(lb, dict) and lb.get("targetGroupArn")
        }
    )
    for index, arn in enumerate(groups):
        group = _target_group(arn)
        tg_id = unique if len(groups) == 1 else f"{unique}-tg{index + 1}"
        tg_dims = {"TargetGroup": group}
        tg_name = group.split("/")[1] if group.count("/") >= 2 else group
        tg_tags = [*tags, f"target-group:{tg_name}"]
        rules.append(
            _metric_alarm(
                f"{tg_id}-5xx",
                f"{where}: targets of {tg_name} answer {ERRORS_PER_MINUTE}+ 5xx a minute",
                "high",
                tg_tags,
                namespace="AWS/ApplicationELB",
                metric_name="HTTPCode_Target_5XX_Count",
                dimensions=tg_dims,
                statistic="Sum",
                period="1m",
                evaluation_periods=5,
                datapoints_to_alarm=3,
                threshold=ERRORS_PER_MINUTE,
                comparison_operator="GreaterThanOrEqualToThreshold",
                treat_missing_data="notBreaching",
            )
        )
        rules.append(
            _metric_alarm(
                f"{tg_id}-unhealthy-targets",
                f"{where}: unhealthy targets in {tg_name} for 5 minutes",
                "high",
                tg_tags,
                namespace="AWS/ApplicationELB",
                metric_name="UnHealthyHostCount",
                dimensions=tg_dims,
                statistic="Maximum",
                period="1m",
                evaluation_periods=5,
                datapoints_to_alarm=5,
                threshold=0,
                comparison_operator="GreaterThanThreshold",
                treat_missing_data="missing",
            )
        )
        rules.append(
            {
                "id": f"{tg_id}-request-count-anomaly",
                "title": f"{where}: requests per target of {tg_name} outside their usual band",
                "severity": "low",
                "type": "anomaly_band",
                "tags": tg_tags,
                "anomaly_band": {
                    "namespace": "AWS/ApplicationELB",
                    "metric_name": "RequestCountPerTarget",
                    "dimensions": tg_dims,
                    "statistic": "Sum",
                    "period": "5m",
                    "deviations": 3,
                    "training_days": 14,
                    "direction": "both",
                    "evaluation_periods": 3,
                    "datapoints_to_alarm": 3,
                },
            }
        )
    return rules


def recommend(snapshot: Snapshot) -> list[dict[str, Any]]:
    """Rules for every ECS service in the snapshot, in region, cluster, service order."""
    rules: list[dict[str, Any]] = []
    taken: set[str] = set()
    for region, inventory in sorted(snapshot.regions.items()):
        services = []
        for svc in inventory.ecs.services:
            cluster_arn = str(svc.get("clusterArn") or "")
            cluster = cluster_arn.rsplit("/", 1)[-1] if "/" in cluster_arn else "default"
            services.append((cluster, str(svc.get("serviceName") or ""), svc))
        for cluster, _, svc in sorted(services, key=lambda s: (s[0], s[1])):
            rules.extend(service_rules(cluster, svc, region, taken))
    return rules


def render(snapshot: Snapshot, source: str) -> str:
    """The rule file's text: a header saying where it came from, then `rules:`."""
    rules = recommend(snapshot)
    header = (
        f"# Alarms recommended by `ecsguard alarms recommend` for account {snapshot.account}\n"
        f"# from {source} (collected {snapshot.collected_at:%Y-%m-%d %H:%M} UTC): "
        f"{len(rules)} rules.\n"
        "# Thresholds are starting points; running-below-desired uses each service's\n"
        "# desiredCount at collection time. Check with `ecsguard rules validate FILE`.\n"
    )
    body = yaml.safe_dump({"rules": rules}, sort_keys=False, allow_unicode=True, width=100)
    return header + body
