"""CloudWatch alarms: ECS services watched on CPU, memory and running tasks; alarms that act."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from ecsguard.posture.check import Result, check
from ecsguard.posture.context import CheckContext, Resource, alarm_metrics

NEEDS_ALARMS = ("cloudwatch:DescribeAlarms",)

#: what each ECS service should have an alarm on: metric names per namespace that measure it
#: at the service level (dimensions ClusterName and ServiceName)
SERVICE_METRICS: dict[str, frozenset[tuple[str, str]]] = {
    "cpu": frozenset({("AWS/ECS", "CPUUtilization"), ("ECS/ContainerInsights", "CpuUtilized")}),
    "memory": frozenset(
        {("AWS/ECS", "MemoryUtilization"), ("ECS/ContainerInsights", "MemoryUtilized")}
    ),
    "running": frozenset({("ECS/ContainerInsights", "RunningTaskCount")}),
}
LABELS = {
    "cpu": {"en": "CPU", "ja": "CPU"},
    "memory": {"en": "memory", "ja": "メモリ"},
    "running": {"en": "running task count", "ja": "実行中タスク数"},
}


def _only_scales(alarm: Resource) -> bool:
    """Target-tracking and step-scaling alarms act on capacity, and tell nobody."""
    actions = alarm.get("AlarmActions") or []
    return bool(actions) and all(a.startswith("arn:aws:autoscaling:") for a in actions)


def _service_alarms(ctx: CheckContext) -> dict[tuple[str, str, str], dict[str, list[str]]]:
    """(region, cluster name, service name) -> {"cpu"|"memory"|"running": alarm names}."""
    found: dict[tuple[str, str, str], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for region, inv in ctx.regions():
        for alarm in sorted(inv.cloudwatch.metric_alarms, key=lambda a: a.get("AlarmName", "")):
            if _only_scales(alarm):
                continue
            for metric in alarm_metrics(alarm):
                dims = {d.get("Name"): d.get("Value") for d in metric.get("Dimensions", [])}
                where = (region, str(dims.get("ClusterName")), str(dims.get("ServiceName")))
                measured = (metric.get("Namespace"), metric.get("MetricName"))
                for kind, metrics in SERVICE_METRICS.items():
                    if measured in metrics:
                        found[where][kind].append(alarm.get("AlarmName", ""))
    return found


@check(
    id="cloudwatch.ecs_service_alarms",
    severity="medium",
    pillar="monitoring",
    resource_type="AWS::ECS::Service",
    needs=("ecs:DescribeServices", *NEEDS_ALARMS),
    title={
        "en": "ECS services have alarms on CPU, memory and running tasks",
        "ja": "ECS サービスに CPU、メモリ、実行中タスク数のアラームがある",
    },
    description={
        "en": "A service that runs out of CPU or memory slows down or has its tasks killed, and "
        "one whose running task count drops below the desired count is partly or wholly down. "
        "Without alarms on these service metrics, users notice before the team does.",
        "ja": "CPU やメモリが不足したサービスは遅くなるかタスクが強制終了され、"
        "実行中タスク数が必要数を下回ったサービスは一部または全体が停止している。"
        "これらのメトリクスにアラームがないと、チームより先に利用者が気づくことになる。",
    },
    remediation={
        "en": "Create CloudWatch alarms with dimensions ClusterName and ServiceName on "
        "AWS/ECS CPUUtilization and MemoryUtilization, and (with Container Insights enabled "
        "on the cluster) on ECS/ContainerInsights RunningTaskCount, notifying an SNS topic.",
        "ja": "ディメンション ClusterName と ServiceName で AWS/ECS の CPUUtilization と "
        "MemoryUtilization、（クラスターで Container Insights を有効にして）ECS/ContainerInsights "
        "の RunningTaskCount に、SNS トピックへ通知する CloudWatch アラームを作成する。",
    },
    fail={
        "en": "service {service} in cluster {cluster} has no alarm on: {missing}",
        "ja": "クラスター {cluster} のサービス {service} にアラームがない項目: {missing}",
    },
    passed={
        "en": "service {service} in cluster {cluster} has alarms: {alarms}",
        "ja": "クラスター {cluster} のサービス {service} のアラーム: {alarms}",
    },
)
def ecs_service_alarms(ctx: CheckContext) -> Iterator[Result]:
    alarms = _service_alarms(ctx)
    for region, service in ctx.services():
        if service.get("status") == "INACTIVE":
            continue
        cluster = service.get("clusterArn", "").rsplit("/", 1)[-1]
        have = alarms.get((region, cluster, service.get("serviceName", "")), {})
        missing = [LABELS[k][ctx.lang] for k in SERVICE_METRICS if not have.get(k)]
        params = {
            "service": service.get("serviceName", ""),
            "cluster": cluster,
            "missing": ", ".join(missing),
            "alarms": ", ".join(sorted({name for names in have.values() for name in names})),
        }
        yield Result(service["serviceArn"], region, not missing, params)


@check(
    id="cloudwatch.alarm_has_action",
    severity="low",
    pillar="monitoring",
    resource_type="AWS::CloudWatch::Alarm",
    controls=["SecurityHub:CloudWatch.15", "SecurityHub:CloudWatch.17"],
    needs=NEEDS_ALARMS,
    title={
        "en": "CloudWatch alarms act when they fire",
        "ja": "CloudWatch アラームは発報時にアクションを実行する",
    },
    description={
        "en": "An alarm with no ALARM action, or with its actions disabled, changes colour in "
        "the console and tells nobody: the problem it was built to catch goes unnoticed.",
        "ja": "ALARM 状態のアクションがない、またはアクションが無効なアラームは、"
        "コンソール上で状態が変わるだけで誰にも知らせない。検知するはずだった問題が見過ごされる。",
    },
    remediation={
        "en": "Add an ALARM action (an SNS topic with subscribers, or an automated response) "
        "and make sure actions are enabled (EnableAlarmActions); delete alarms nobody needs.",
        "ja": "ALARM 状態のアクション（購読者のいる SNS トピックや自動対応）を追加し、"
        "アクションが有効であること（EnableAlarmActions）を確認する。不要なアラームは削除する。",
    },
    fail={"en": "alarm {alarm} {problem}", "ja": "アラーム {alarm}: {problem}"},
    passed={
        "en": "alarm {alarm} notifies {actions}",
        "ja": "アラーム {alarm} は {actions} に通知する",
    },
)
def alarm_has_action(ctx: CheckContext) -> Iterator[Result]:
    problems = {
        "none": {"en": "has no ALARM action", "ja": "ALARM 状態のアクションがない"},
        "disabled": {"en": "has its actions disabled", "ja": "アクションが無効"},
    }
    for region, inv in ctx.regions():
        alarms = inv.cloudwatch.metric_alarms + inv.cloudwatch.composite_alarms
        for alarm in sorted(alarms, key=lambda a: a.get("AlarmArn", "")):
            actions = alarm.get("AlarmActions") or []
            enabled = alarm.get("ActionsEnabled") is not False
            kind = "" if actions and enabled else "disabled" if actions else "none"
            params = {
                "alarm": alarm.get("AlarmName", ""),
                "actions": ", ".join(actions),
                "problem": problems[kind][ctx.lang] if kind else "",
            }
            yield Result(alarm["AlarmArn"], region, not kind, params)
