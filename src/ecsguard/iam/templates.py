"""Least-privilege policy templates for the three tiers, scoped to named clusters and services.

A template is data: statements whose resources are ARN patterns with placeholders, filled from
the options (and, when a snapshot is given, from the services' own task definitions: their task
and execution roles, log groups, repositories, secrets). Rules every template keeps, checked by
`resource_star_violations`: `Resource: "*"` only for actions that support no resource-level
permission or under a condition that scopes them (ecs:cluster), and `iam:PassRole` only on the
named roles and only to ECS tasks (`iam:PassedToService`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ecsguard.core.errors import UserError
from ecsguard.iam import actions

TIERS = ("deployer", "ci", "operator", "workload", "service-admin", "iam-admin")
ECS_TASKS = "ecs-tasks.amazonaws.com"


@dataclass
class Scope:
    """What a policy is for; ARNs are built from these."""

    account: str
    region: str = "*"
    partition: str = "aws"
    clusters: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)  # role ARNs the tier may pass
    repositories: list[str] = field(default_factory=list)  # ECR repository names
    log_groups: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)  # Secrets Manager / SSM parameter ARNs
    families: list[str] = field(default_factory=list)  # task definition families

    def arn(self, service: str, resource: str, region: str | None = None) -> str:
        where = self.region if region is None else region
        return f"arn:{self.partition}:{service}:{where}:{self.account}:{resource}"

    def each_cluster(self) -> list[str]:
        return self.clusters or ["*"]

    def cluster_arns(self) -> list[str]:
        return [self.arn("ecs", f"cluster/{c}") for c in self.each_cluster()]

    def service_arns(self) -> list[str]:
        names = self.services or ["*"]
        return [self.arn("ecs", f"service/{c}/{s}") for c in self.each_cluster() for s in names]

    def task_arns(self) -> list[str]:
        return [self.arn("ecs", f"task/{c}/*") for c in self.each_cluster()]

    def family_arns(self) -> list[str]:
        return [self.arn("ecs", f"task-definition/{f}:*") for f in self.families or ["*"]]

    def repository_arns(self) -> list[str]:
        return [self.arn("ecr", f"repository/{r}") for r in self.repositories or ["*"]]

    def log_group_arns(self) -> list[str]:
        groups = self.log_groups or ["/ecs/*"]
        return [self.arn("logs", f"log-group:{g}:*") for g in groups]


def _stmt(sid: str, acts: Iterable[str], resources: list[str], **condition: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Sid": sid,
        "Effect": "Allow",
        "Action": sorted(acts),
        "Resource": resources[0] if len(resources) == 1 else sorted(set(resources)),
    }
    if condition:
        statement["Condition"] = condition
    return statement


def _pass_role(scope: Scope) -> dict[str, Any]:
    if not scope.roles:
        raise UserError(
            "this tier passes the service's roles to ECS, but no role is known",
            "give --role ARN (repeatable) or --snapshot FILE so the roles are read from the "
            "services' task definitions",
        )
    return _stmt(
        "PassOnlyTheServiceRolesToEcsTasks",
        ["iam:PassRole"],
        scope.roles,
        StringEquals={"iam:PassedToService": ECS_TASKS},
    )


def _cluster_condition(scope: Scope) -> dict[str, Any]:
    return {"ArnEquals": {"ecs:cluster": scope.cluster_arns()}}


def _read(scope: Scope) -> list[dict[str, Any]]:
    return [
        _stmt("ReadTheService", ["ecs:DescribeServices"], scope.service_arns()),
        _stmt("ReadTheClusters", ["ecs:DescribeClusters"], scope.cluster_arns()),
        _stmt(
            "ListWithinTheClusters",
            ["ecs:ListServices", "ecs:ListTasks", "ecs:DescribeTasks"],
            ["*"],
            **_cluster_condition(scope),
        ),
        _stmt(
            "ListAccountWide",  # these take no resource: "*" is the only form AWS accepts
            ["ecs:ListClusters", "ecs:ListTaskDefinitions", "ecs:DescribeTaskDefinition"],
            ["*"],
        ),
    ]


def _deploy(scope: Scope) -> list[dict[str, Any]]:
    return [
        _stmt(
            "RegisterTheServiceTaskDefinitions", ["ecs:RegisterTaskDefinition"], scope.family_arns()
        ),
        _stmt("DeployTheService", ["ecs:UpdateService"], scope.service_arns()),
        _pass_role(scope),
    ]


def _push(scope: Scope) -> list[dict[str, Any]]:
    return [
        _stmt("EcrLogin", ["ecr:GetAuthorizationToken"], ["*"]),  # no resource-level support
        _stmt(
            "PushTheServiceImages",
            [
                "ecr:BatchCheckLayerAvailability",
                "ecr:BatchGetImage",
                "ecr:CompleteLayerUpload",
                "ecr:InitiateLayerUpload",
                "ecr:PutImage",
                "ecr:UploadLayerPart",
            ],
            scope.repository_arns(),
        ),
    ]


def _operate(scope: Scope) -> list[dict[str, Any]]:
    return [
        _stmt("RestartTheService", ["ecs:UpdateService"], scope.service_arns()),
        _stmt("StopTasksInTheClusters", ["ecs:StopTask"], scope.task_arns()),
        _stmt(
            "ExecIntoTasksOfTheClusters",
            ["ecs:ExecuteCommand"],
            [*scope.cluster_arns(), *scope.task_arns()],
        ),
        _stmt(
            "ReadTheServiceLogs",
            ["logs:FilterLogEvents", "logs:GetLogEvents", "logs:StartLiveTail"],
            scope.log_group_arns(),
        ),
    ]


def _workload_execution(scope: Scope) -> list[dict[str, Any]]:
    statements = [
        _stmt("EcrLogin", ["ecr:GetAuthorizationToken"], ["*"]),
        _stmt(
            "PullTheServiceImages",
            ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            scope.repository_arns(),
        ),
        _stmt(
            "WriteTheServiceLogs",
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            scope.log_group_arns(),
        ),
    ]
    secrets = [s for s in scope.secrets if ":secretsmanager:" in s]
    parameters = [s for s in scope.secrets if ":ssm:" in s]
    if secrets:
        statements.append(
            _stmt("ReadTheServiceSecrets", ["secretsmanager:GetSecretValue"], secrets)
        )
    if parameters:
        statements.append(_stmt("ReadTheServiceParameters", ["ssm:GetParameters"], parameters))
    return statements


def _service_admin(scope: Scope) -> list[dict[str, Any]]:
    return [
        _stmt(
            "AdministerEcsInTheClusters",
            ["ecs:*"],
            [
                *scope.cluster_arns(),
                *scope.service_arns(),
                *scope.task_arns(),
                *scope.family_arns(),
                *[scope.arn("ecs", f"container-instance/{c}/*") for c in scope.each_cluster()],
                *[scope.arn("ecs", f"task-set/{c}/*") for c in scope.each_cluster()],
            ],
        ),
        _stmt(
            "EcsAccountWide",
            [
                "ecs:ListClusters",
                "ecs:ListTaskDefinitions",
                "ecs:DescribeTaskDefinition",
                "ecs:DeregisterTaskDefinition",
                "ecs:ListAccountSettings",
            ],
            ["*"],
        ),
        _stmt(
            "InventoryOfIdentities",
            [
                "iam:GetAccountAuthorizationDetails",
                "iam:GenerateCredentialReport",
                "iam:GetCredentialReport",
                "iam:ListRoles",
                "iam:ListUsers",
                "iam:ListPolicies",
            ],
            ["*"],
        ),
        _stmt(
            "ReadRolesAndPolicies",
            [
                "iam:GetRole",
                "iam:GetPolicy",
                "iam:GetPolicyVersion",
                "iam:ListRolePolicies",
                "iam:ListAttachedRolePolicies",
                "iam:GetRolePolicy",
            ],
            [scope.arn("iam", "role/*", region=""), scope.arn("iam", "policy/*", region="")],
        ),
        _pass_role(scope),
        *_push(scope),
    ]


def _iam_admin(scope: Scope) -> list[dict[str, Any]]:
    statement = _stmt(
        "ManageIdentitiesWithMfa", ["iam:*"], ["*"], Bool={"aws:MultiFactorAuthPresent": "true"}
    )
    return [statement]


BUILDERS = {
    "deployer": lambda s: [*_read(s), *_deploy(s)],
    "ci": lambda s: [*_read(s), *_deploy(s), *_push(s)],
    "operator": lambda s: [*_read(s), *_operate(s)],
    "workload": _workload_execution,
    "service-admin": _service_admin,
    "iam-admin": _iam_admin,
}


def template(tier: str, scope: Scope) -> dict[str, Any]:
    """The policy document for `tier` within `scope`."""
    if tier not in BUILDERS:
        raise UserError(f"unknown tier {tier!r}", f"use one of {', '.join(TIERS)}")
    return {"Version": "2012-10-17", "Statement": BUILDERS[tier](scope)}


def trust_policy_for_tasks(scope: Scope) -> dict[str, Any]:
    """The trust policy of a task or execution role: ECS tasks of this account only."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ECS_TASKS},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": scope.account},
                    "ArnLike": {"aws:SourceArn": scope.arn("ecs", "*")},
                },
            }
        ],
    }


def resource_star_violations(policy: dict[str, Any]) -> list[str]:
    """Actions granted on `"*"` although they support resource-level permissions, in statements
    with no condition to scope them. Templates must return none; also a lint for any policy."""
    problems: list[str] = []
    for statement in policy.get("Statement", []):
        resources = statement.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else resources
        if "*" not in resources or statement.get("Condition"):
            continue
        acts = statement.get("Action", [])
        for action in [acts] if isinstance(acts, str) else acts:
            for info in actions.expand(action):
                if info.resource_types:
                    problems.append(f"{info.action} supports resource-level permissions")
    return problems


def scope_from_snapshot(
    snapshot: Any, clusters: list[str], services: list[str], region: str | None = None
) -> Scope:
    """A scope filled from what the named services really use: their task definitions' roles,
    log groups, ECR repositories, secrets and families."""
    from ecsguard.posture.context import CheckContext  # the one place that resolves revisions

    ctx = CheckContext(snapshot)
    scope = Scope(
        account=snapshot.account,
        region=region or "*",
        clusters=list(clusters),
        services=list(services),
    )
    found = False
    for svc_region, service in ctx.services():
        cluster = service.get("clusterArn", "").rsplit("/", 1)[-1]
        if (clusters and cluster not in clusters) or (
            services and service.get("serviceName") not in services
        ):
            continue
        found = True
        entry = ctx.task_definitions_by_arn.get(service.get("taskDefinition", ""))
        if entry is None:
            continue
        _, td = entry
        scope.families.append(td["family"])
        scope.roles += [r for r in (td.get("taskRoleArn"), td.get("executionRoleArn")) if r]
        for container in td.get("containerDefinitions", []):
            image = container.get("image", "")
            if ".dkr.ecr." in image:
                scope.repositories.append(image.split("/", 1)[1].split("@")[0].split(":")[0])
            options = (container.get("logConfiguration") or {}).get("options", {})
            if options.get("awslogs-group"):
                scope.log_groups.append(options["awslogs-group"])
            scope.secrets += [_secret_arn(s["valueFrom"]) for s in container.get("secrets", [])]
        scope.region = region or svc_region
    if not found:
        raise UserError(
            f"no service {'/'.join(services) or '*'} in cluster {'/'.join(clusters) or '*'} "
            "in the snapshot",
            "check --cluster and --service against `ecsguard inventory`",
        )
    for name in ("families", "roles", "repositories", "log_groups", "secrets"):
        setattr(scope, name, sorted(set(getattr(scope, name))))
    return scope


def _secret_arn(value_from: str) -> str:
    """`arn:...:secret:name-AbCdEf:password::` (a JSON key of a secret) -> the secret's ARN."""
    parts = value_from.split(":")
    return ":".join(parts[:7]) if len(parts) > 7 and parts[2] == "secretsmanager" else value_from
