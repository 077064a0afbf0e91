"""SSM Parameter Store: parameter metadata (type, KMS key, tier). Never values."""

from __future__ import annotations

from ecsguard.aws.collect import CollectContext, collector
from ecsguard.aws.snapshot import SsmSection


@collector("ssm", actions=["ssm:DescribeParameters"])
def collect_ssm(ctx: CollectContext) -> SsmSection:
    return SsmSection(parameters=ctx.pages("ssm", "DescribeParameters", "Parameters"))
