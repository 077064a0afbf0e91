"""CloudTrail: trails with their status and event selectors."""

from __future__ import annotations

from typing import Any

from ecsguard.aws.collect import CollectContext, collector
from ecsguard.aws.snapshot import CloudTrailSection


@collector(
    "cloudtrail",
    actions=[
        "cloudtrail:DescribeTrails",
        "cloudtrail:GetTrailStatus",
        "cloudtrail:GetEventSelectors",
    ],
)
def collect_cloudtrail(ctx: CollectContext) -> CloudTrailSection:
    reply = ctx.call("cloudtrail", "DescribeTrails", includeShadowTrails=True)
    trails: list[dict[str, Any]] = reply["trailList"] if reply else []
    return CloudTrailSection(trails=ctx.map(lambda t: _details(ctx, t), trails))


def _details(ctx: CollectContext, trail: dict[str, Any]) -> dict[str, Any]:
    # Status and selectors are asked of the trail's home region, which owns them.
    arn = trail["TrailARN"]
    status = ctx.call("cloudtrail", "GetTrailStatus", Name=arn, ok=["TrailNotFoundException"])
    trail["Status"] = status or {}
    selectors = ctx.call(
        "cloudtrail", "GetEventSelectors", TrailName=arn, ok=["TrailNotFoundException"]
    )
    if selectors:
        trail["EventSelectors"] = selectors.get("EventSelectors", [])
        trail["AdvancedEventSelectors"] = selectors.get("AdvancedEventSelectors", [])
    return trail
