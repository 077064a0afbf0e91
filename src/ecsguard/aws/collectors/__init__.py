"""One module per AWS service; importing this package registers every collector."""

from ecsguard.aws.collectors import (  # noqa: F401  one registration line per collector
    cloudtrail,
    cloudwatch,
    ec2,
    ecr,
    ecs,
    events,
    iam,
    logs,
    secretsmanager,
    ssm,
)
