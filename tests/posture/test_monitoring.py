"""Monitoring checks: alarms on each ECS service, and alarms that act when they fire."""

from __future__ import annotations

from typing import Any

import pytest
from tests.posture.builders import ACCOUNT, REGION, findings, snapshot

from ecsguard.aws.snapshot import Snapshot
from ecsguard.core.models import Finding, Status

SERVICE_ALARMS = "cloudwatch.ecs_service_alarms"
ACTIONS = "cloudwatch.alarm_has_action"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:oncall"
CLUSTER_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/prod"


def service(name: str = "web", **fields: Any) -> dict[str, Any]:
    return {
        "serviceArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/prod/{name}",
        "serviceName": name,
        "clusterArn": CLUSTER_ARN,
        "status": "ACTIVE",
        **fields,
    }


def alarm(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "AlarmName": name,
        "AlarmArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}",
        "ActionsEnabled": True,
        "AlarmActions": [TOPIC],
        **fields,
    }


def on(
    namespace: str, metric: str, svc: str = "web", cluster: str = "prod", **fields: Any
) -> dict[str, Any]:
    dims = [{"Name": "ClusterName", "Value": cluster}, {"Name": "ServiceName", "Value": svc}]
    name = f"{svc}-{metric}"
    return alarm(name, Namespace=namespace, MetricName=metric, Dimensions=dims, **fields)


def watched(*alarms: dict[str, Any], services: list[dict[str, Any]] | None = None) -> Snapshot:
    return snapshot(
        ecs={"services": services if services is not None else [service()]},
        cloudwatch={"metric_alarms": list(alarms)},
    )


def by_service(snap: Snapshot, lang: str = "en") -> dict[str, Finding]:
    return {f.resource_arn.rsplit("/", 1)[-1]: f for f in findings(snap, SERVICE_ALARMS, lang)}


# --- ECS service alarms ------------------------------------------------------------------------


def test_service_with_cpu_memory_and_running_alarms_passes() -> None:
    snap = watched(
        on("AWS/ECS", "CPUUtilization"),
        on("ECS/ContainerInsights", "MemoryUtilized"),
        on("ECS/ContainerInsights", "RunningTaskCount"),
    )
    finding = by_service(snap)["web"]
    assert finding.status == Status.PASS
    assert finding.message == (
        "service web in cluster prod has alarms: "
        "web-CPUUtilization, web-MemoryUtilized, web-RunningTaskCount"
    )
    assert finding.pillar == "monitoring" and finding.severity == "medium"


def test_service_alarms_list_what_is_missing() -> None:
    snap = watched(
        on("AWS/ECS", "MemoryUtilization"),
        on("AWS/ECS", "CPUUtilization", svc="api"),  # another service's alarm
        on("AWS/ECS", "CPUUtilization", cluster="staging"),  # same name, other cluster
        on("AWS/EC2", "CPUUtilization"),  # not an ECS namespace
        services=[service("web")],
    )
    finding = by_service(snap)["web"]
    assert finding.status == Status.FAIL
    assert finding.message == "service web in cluster prod has no alarm on: CPU, running task count"
    assert by_service(snap, "ja")["web"].message == (
        "クラスター prod のサービス web にアラームがない項目: CPU, 実行中タスク数"
    )


def test_service_without_any_alarm_lists_all_three() -> None:
    finding = by_service(watched())["web"]
    assert finding.message.endswith("has no alarm on: CPU, memory, running task count")


def test_scaling_only_alarms_do_not_count_but_metric_math_does() -> None:
    policy = f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:scalingPolicy:1:resource/ecs/service/prod/web"
    query = {
        "Id": "m1",
        "MetricStat": {
            "Metric": {
                "Namespace": "ECS/ContainerInsights",
                "MetricName": "RunningTaskCount",
                "Dimensions": [
                    {"Name": "ClusterName", "Value": "prod"},
                    {"Name": "ServiceName", "Value": "web"},
                ],
            }
        },
    }
    snap = watched(
        on("AWS/ECS", "CPUUtilization", AlarmActions=[policy]),
        alarm("web-running-math", Metrics=[query]),
        on("AWS/ECS", "MemoryUtilization"),
    )
    finding = by_service(snap)["web"]
    assert finding.message == "service web in cluster prod has no alarm on: CPU"


def test_service_alarms_skip_inactive_services_and_empty_accounts() -> None:
    assert by_service(watched(services=[service("gone", status="INACTIVE")])) == {}
    assert findings(snapshot(), SERVICE_ALARMS) == []


# --- alarms with actions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, f"alarm a notifies {TOPIC}"),
        ({"AlarmActions": []}, "alarm a has no ALARM action"),
        ({"AlarmActions": None, "OKActions": [TOPIC]}, "alarm a has no ALARM action"),
        ({"ActionsEnabled": False}, "alarm a has its actions disabled"),
    ],
)
def test_alarm_has_action(fields: dict[str, Any], message: str) -> None:
    [finding] = findings(snapshot(cloudwatch={"metric_alarms": [alarm("a", **fields)]}), ACTIONS)
    assert finding.message == message
    assert finding.status == (
        Status.PASS if message.startswith("alarm a notifies") else Status.FAIL
    )
    assert finding.controls == ["SecurityHub:CloudWatch.15", "SecurityHub:CloudWatch.17"]


def test_alarm_has_action_covers_composite_alarms_in_japanese() -> None:
    snap = snapshot(cloudwatch={"composite_alarms": [alarm("combo", AlarmActions=[])]})
    [finding] = findings(snap, ACTIONS, "ja")
    assert finding.status == Status.FAIL
    assert finding.message == "アラーム combo: ALARM 状態のアクションがない"


def test_alarm_has_action_is_empty_without_alarms() -> None:
    assert findings(snapshot(), ACTIONS) == []
