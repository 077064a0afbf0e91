"""EventBridge: event buses, and the rules on each with their targets."""

from __future__ import annotations

from typing import Any

from ecsguard.aws.collect import CollectContext, collector
from ecsguard.aws.snapshot import EventsSection


@collector(
    "events",
    actions=["events:ListEventBuses", "events:ListRules", "events:ListTargetsByRule"],
)
def collect_events(ctx: CollectContext) -> EventsSection:
    reply = ctx.call("events", "ListEventBuses")
    buses: list[dict[str, Any]] = reply["EventBuses"] if reply else []
    names = [b["Name"] for b in buses] or ["default"]
    rules = [
        r for bus in names for r in ctx.pages("events", "ListRules", "Rules", EventBusName=bus)
    ]

    def with_targets(rule: dict[str, Any]) -> dict[str, Any]:
        rule["Targets"] = ctx.pages(
            "events",
            "ListTargetsByRule",
            "Targets",
            Rule=rule["Name"],
            EventBusName=rule.get("EventBusName", "default"),
        )
        return rule

    return EventsSection(buses=buses, rules=ctx.map(with_targets, rules))
