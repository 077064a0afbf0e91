"""One module per area; importing this package registers every check."""

from ecsguard.posture.checks import (  # noqa: F401  one registration line per module
    ecr,
    ecs_containers,
    ecs_roles,
    ecs_services,
    ecs_taskdefs,
    iam_hygiene,
    logging,
    monitoring,
    network,
)
