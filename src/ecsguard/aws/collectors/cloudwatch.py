"""CloudWatch: metric and composite alarms."""

from __future__ import annotations

from ecsguard.aws.collect import CollectContext, collector
from ecsguard.aws.snapshot import CloudWatchSection


@collector("cloudwatch", actions=["cloudwatch:DescribeAlarms"])
def collect_cloudwatch(ctx: CollectContext) -> CloudWatchSection:
    alarms = ctx.pages_by(
        "cloudwatch",
        "DescribeAlarms",
        ("MetricAlarms", "CompositeAlarms"),
        AlarmTypes=["MetricAlarm", "CompositeAlarm"],
    )
    return CloudWatchSection(
        metric_alarms=alarms["MetricAlarms"], composite_alarms=alarms["CompositeAlarms"]
    )
