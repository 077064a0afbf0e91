"""CloudWatch Logs: log groups (retention, KMS), metric filters, subscription filters."""

from __future__ import annotations

from ecsguard.aws.collect import CollectContext, collector
from ecsguard.aws.snapshot import LogsSection


@collector(
    "logs",
    actions=[
        "logs:DescribeLogGroups",
        "logs:DescribeMetricFilters",
        "logs:DescribeSubscriptionFilters",
    ],
)
def collect_logs(ctx: CollectContext) -> LogsSection:
    groups = ctx.pages("logs", "DescribeLogGroups", "logGroups")
    metric_filters = ctx.pages("logs", "DescribeMetricFilters", "metricFilters")
    # Subscription filters can only be listed per log group (at most two per group).
    per_group = ctx.map(
        lambda g: ctx.pages(
            "logs",
            "DescribeSubscriptionFilters",
            "subscriptionFilters",
            logGroupName=g["logGroupName"],
        ),
        groups,
    )
    return LogsSection(
        log_groups=groups,
        metric_filters=metric_filters,
        subscription_filters=[f for filters in per_group for f in filters],
    )
