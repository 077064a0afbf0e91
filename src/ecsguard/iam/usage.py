"""Who uses which IAM principal: the service-to-identity map.

`identity_map(snapshot)` answers, for every user, group and role, *what uses it* (a `Use`: an ECS
service's task role, a container instance's instance role, an access key pasted into a container's
environment, ...) and, per ECS service, *which identities it runs under and who can deploy it*.

Two kinds of evidence, kept apart because they mean different things:
- **configuration** (`derived=False`): a resource names the principal: a task definition's
  `taskRoleArn`, an EventBridge target's `RoleArn`, an EC2 instance's instance profile, an access
  key id found in an environment value. These are facts.
- **permissions** (`derived=True`, kind "deployer"): the principal's identity policies allow it to
  roll out the service (see `DEPLOY_ACTIONS`). This says who *can*, not who does. A deployer right
  that only comes with a blanket grant (`"*"`, a NotAction statement) is marked `incidental`: it
  says what an administrator can do, not what the principal is for.

Task definitions in scope are the ones the posture checks audit (`CheckContext.task_definitions`):
every revision a service or task uses, plus the latest revision of each family. Environment values
are only searched, never kept: a `Use` names the container and the variable, not the value.

Besides ECS, the map records the few role references a snapshot holds elsewhere (CloudTrail's
CloudWatch Logs role, a service's legacy load-balancer role), so that those roles are not taken for
unused. `ecsguard.iam.graph` draws the map.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from functools import lru_cache
from typing import Any, Literal

from ecsguard.aws.snapshot import Snapshot
from ecsguard.iam.policy import Sourced, Statement, statements_of
from ecsguard.posture.context import CheckContext, Resource, family_and_revision

UseKind = Literal[
    "task_role",
    "execution_role",
    "instance_role",
    "access_key_in_env",
    "service_linked",
    "service_role",
    "events_target_role",
    "trail_logs_role",
    "deployer",
]
PrincipalType = Literal["user", "group", "role"]

#: the actions that roll out a service: (any one of these) together with PassRole to its roles
DEPLOY_ACTIONS = ("ecs:UpdateService", "ecs:RegisterTaskDefinition")
PASS_ROLE = "iam:PassRole"
ECS_TASKS = "ecs-tasks.amazonaws.com"
#: capacity that is not an EC2 instance of the account (no instance role involved)
_FARGATE_PROVIDERS = frozenset({"FARGATE", "FARGATE_SPOT"})
SERVICE_LINKED_PATH = "/aws-service-role/"

#: what each kind of use is called, in English (the drawings) and Japanese
KIND_LABELS: dict[str, str] = {
    "task_role": "task role",
    "execution_role": "execution role",
    "instance_role": "instance role",
    "access_key_in_env": "access key in environment",
    "service_linked": "service-linked role",
    "service_role": "service role",
    "events_target_role": "EventBridge target role",
    "trail_logs_role": "CloudTrail logs role",
    "deployer": "can deploy",
}
KIND_LABELS_JA: dict[str, str] = {
    "task_role": "タスクロール",
    "execution_role": "タスク実行ロール",
    "instance_role": "インスタンスロール",
    "access_key_in_env": "環境変数内のアクセスキー",
    "service_linked": "サービスにリンクされたロール",
    "service_role": "サービスロール",
    "events_target_role": "EventBridge ターゲットのロール",
    "trail_logs_role": "CloudTrail のログ配信ロール",
    "deployer": "デプロイ可能",
}
_WORDS_EN = {
    "cluster": "cluster",
    "service": "service",
    "task_definition": "task definition",
    "container": "container",
    "variable": "variable",
    "rule": "rule",
}
_WORDS_JA = {
    "cluster": "クラスター",
    "service": "サービス",
    "task_definition": "タスク定義",
    "container": "コンテナ",
    "variable": "環境変数",
    "rule": "ルール",
}


# ---------------------------------------------------------------------------------------------
# the model


@dataclass(frozen=True, order=True)
class Use:
    """One thing that uses a principal. Empty strings where a field does not apply."""

    principal_arn: str
    kind: UseKind
    region: str = ""
    cluster: str = ""
    service: str = ""
    task_definition: str = ""
    container: str = ""
    #: the environment variable's NAME (access_key_in_env); its value is never kept
    variable: str = ""
    #: the access key id found (access_key_in_env)
    access_key_id: str = ""
    #: an EventBridge rule ARN (events_target_role, or the rule that schedules a task definition)
    rule: str = ""
    #: the AWS service of a service-linked role, e.g. "ecs.amazonaws.com"
    aws_service: str = ""
    #: from permissions (who can), not from configuration (who does)
    derived: bool = False
    #: a derived right that only comes with a blanket grant ("*", NotAction)
    incidental: bool = False
    #: a deciding statement has a Condition this map could not decide
    conditional: bool = False
    evidence: tuple[str, ...] = field(default=(), compare=False)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["evidence"] = list(self.evidence)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Use:
        """A Use back from `to_dict()` (keys this class does not know are ignored)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["evidence"] = tuple(values.get("evidence", ()))
        return cls(**values)

    def __str__(self) -> str:
        return self.text()

    def text(self, lang: str = "en") -> str:
        """E.g. `task role (cluster prod, service api, task definition api:4)`."""
        words = _WORDS_JA if lang == "ja" else _WORDS_EN
        where = []
        for name, value in (
            ("cluster", self.cluster),
            ("service", self.service),
            ("task_definition", td_name(self.task_definition) if self.task_definition else ""),
            ("container", self.container),
            ("variable", self.variable),
            ("rule", self.rule.rsplit("/", 1)[-1]),
        ):
            if value:
                where.append(f"{words[name]} {value}")
        where += [self.aws_service] if self.aws_service else []
        label = (KIND_LABELS_JA if lang == "ja" else KIND_LABELS)[self.kind]
        return label + (f" ({', '.join(where)})" if where else "")

    def place(self) -> str:
        """Where, in one word: `prod/api`, else the task definition, rule, cluster or service."""
        if self.service:
            return f"{self.cluster}/{self.service}" if self.cluster else self.service
        if self.task_definition:
            return td_name(self.task_definition)
        return self.rule.rsplit("/", 1)[-1] or self.cluster or self.aws_service

    def short(self, lang: str = "en") -> str:
        """E.g. `task role prod/api`, for a table cell."""
        label = (KIND_LABELS_JA if lang == "ja" else KIND_LABELS)[self.kind]
        place = self.place()
        return f"{label} {place}" if place else label


_DEPLOYS = {
    "en": ("can deploy {services}", "can deploy {count} {noun} through a blanket grant"),
    "ja": ("デプロイ可能: {services}", "包括的な権限でサービス {count} 件をデプロイ可能"),
}


def describe_uses(uses: Iterable[Use], lang: str = "en", short: bool = False) -> list[str]:
    """Lines for people: each use by configuration (`Use.text`, or `Use.short`), then one line
    naming the services the principal can deploy, and one counting those it can deploy only
    through a blanket grant (an administrator's incidental right to everything would otherwise
    drown what the principal is used for)."""
    lines: list[str] = []
    scoped: list[str] = []
    blanket: set[str] = set()
    for use in sorted(uses):
        if use.kind == "deployer":
            if use.incidental:
                blanket.add(use.place())
            else:
                scoped.append(use.place())
        else:
            lines.append(use.short(lang) if short else use.text(lang))
    can_deploy, can_deploy_all = _DEPLOYS.get(lang, _DEPLOYS["en"])
    if scoped:
        lines.append(can_deploy.format(services=", ".join(dict.fromkeys(scoped))))
    if blanket:
        noun = "service" if len(blanket) == 1 else "services"
        lines.append(can_deploy_all.format(count=len(blanket), noun=noun))
    return list(dict.fromkeys(lines))


@dataclass(frozen=True)
class Principal:
    arn: str
    name: str
    type: PrincipalType
    path: str = "/"
    #: names of the attached managed policies (a user's own and its groups')
    managed_policies: tuple[str, ...] = ()
    #: inline policies as "holder/policy": the principal's own, and a user's groups'
    inline_policies: tuple[str, ...] = ()

    @property
    def policies(self) -> tuple[str, ...]:
        """Every policy, for display: managed names, then "holder/policy (inline)"."""
        return self.managed_policies + tuple(f"{p} (inline)" for p in self.inline_policies)

    @property
    def service_linked(self) -> bool:
        return self.type == "role" and self.path.startswith(SERVICE_LINKED_PATH)


@dataclass(frozen=True)
class ServiceIdentities:
    """One ECS service and the identities it runs under and is deployed by (principal ARNs)."""

    region: str
    cluster: str
    service: str
    arn: str
    task_definition: str
    launch: Literal["EC2", "FARGATE", "EXTERNAL"]
    task_roles: tuple[str, ...] = ()
    execution_roles: tuple[str, ...] = ()
    #: roles of the cluster's container instances, for services that run on EC2
    instance_roles: tuple[str, ...] = ()
    #: users whose access key id sits in the environment of the service's containers
    env_key_users: tuple[str, ...] = ()
    #: users and roles that can roll the service out (groups are not listed: their members are)
    deployers: tuple[str, ...] = ()
    #: principals that can deploy only through a blanket grant (administrators)
    incidental_deployers: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class IdentityMap:
    #: every user, group and role of the snapshot
    principals: Mapping[str, Principal]
    #: principal ARN -> its uses; every principal has an entry (possibly empty), and so does every
    #: ARN a resource names that is not in the snapshot (another account's role, a deleted one)
    uses: Mapping[str, tuple[Use, ...]]
    services: tuple[ServiceIdentities, ...]
    #: the in-scope task definition ARNs
    task_definitions: tuple[str, ...]
    #: container instances whose instance role the snapshot does not tell (the EC2 instance or
    #: its instance profile is missing): an instance role may be in use without a Use
    unresolved_instances: tuple[str, ...] = ()

    def uses_of(self, arn: str) -> tuple[Use, ...]:
        return self.uses.get(arn, ())

    def service(self, arn: str) -> ServiceIdentities | None:
        return next((s for s in self.services if s.arn == arn), None)

    @property
    def unknown_principals(self) -> list[str]:
        """ARNs that resources name but the snapshot's IAM section does not hold."""
        return sorted(arn for arn in self.uses if arn not in self.principals)

    def to_dict(self) -> dict[str, Any]:
        return {
            "principals": {
                arn: {
                    "name": p.name,
                    "type": p.type,
                    "path": p.path,
                    "managed_policies": list(p.managed_policies),
                    "inline_policies": list(p.inline_policies),
                }
                for arn, p in sorted(self.principals.items())
            },
            "uses": {arn: [u.to_dict() for u in uses] for arn, uses in sorted(self.uses.items())},
            "services": [s.to_dict() for s in self.services],
            "task_definitions": list(self.task_definitions),
            "unresolved_instances": list(self.unresolved_instances),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IdentityMap:
        """The map back from `to_dict()`: a report carries it as data and draws it later."""
        return cls(
            principals={
                arn: Principal(
                    arn=arn,
                    name=p["name"],
                    type=p["type"],
                    path=p.get("path", "/"),
                    managed_policies=tuple(p.get("managed_policies", ())),
                    inline_policies=tuple(p.get("inline_policies", ())),
                )
                for arn, p in data.get("principals", {}).items()
            },
            uses={
                arn: tuple(Use.from_dict(u) for u in uses)
                for arn, uses in data.get("uses", {}).items()
            },
            services=tuple(
                ServiceIdentities(**_tuples(service)) for service in data.get("services", ())
            ),
            task_definitions=tuple(data.get("task_definitions", ())),
            unresolved_instances=tuple(data.get("unresolved_instances", ())),
        )


def _tuples(data: Mapping[str, Any]) -> dict[str, Any]:
    """JSON lists back to the tuples the frozen dataclasses hold."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}


# ---------------------------------------------------------------------------------------------
# building the map


def identity_map(snapshot: Snapshot) -> IdentityMap:
    """The service-to-identity map of a snapshot (module docstring)."""
    ctx = CheckContext(snapshot)
    principals = _principals(snapshot)
    uses: dict[str, set[Use]] = {arn: set() for arn in principals}

    def add(use: Use) -> None:
        uses.setdefault(use.principal_arn, set()).add(use)

    key_users = _key_owner_arns(ctx)
    in_scope = list(ctx.task_definitions())
    runners = _runners(ctx)
    for region, td in in_scope:
        arn = td["taskDefinitionArn"]
        for cluster, service, rule in runners.get(arn, [("", "", "")]):
            # where the task definition runs; each use below fills in principal and kind
            run = Use("", "task_role", region, cluster, service, arn, rule=rule)
            for use in _task_definition_uses(ctx, td, key_users, run):
                add(use)

    instance_roles, unresolved = _instance_roles(ctx)
    for (region, cluster), found in sorted(instance_roles.items()):
        for role_arn, evidence in sorted(found.items()):
            add(Use(role_arn, "instance_role", region, cluster, evidence=tuple(sorted(evidence))))

    for use in _other_uses(ctx, principals):
        add(use)

    services = _services(ctx, instance_roles)
    deployers = _deployers(snapshot, principals, services)
    for use in deployers:
        add(use)
    services = _with_deployers(services, deployers)

    return IdentityMap(
        principals=principals,
        uses={arn: tuple(sorted(found)) for arn, found in sorted(uses.items())},
        services=tuple(services),
        task_definitions=tuple(td["taskDefinitionArn"] for _, td in in_scope),
        unresolved_instances=tuple(sorted(unresolved)),
    )


def _principals(snapshot: Snapshot) -> dict[str, Principal]:
    iam = snapshot.iam
    groups = {g.get("GroupName"): g for g in iam.groups}
    found: dict[str, Principal] = {}
    kinds: tuple[tuple[PrincipalType, list[Resource], str], ...] = (
        ("user", iam.users, "UserName"),
        ("group", iam.groups, "GroupName"),
        ("role", iam.roles, "RoleName"),
    )
    for kind, items, name_key in kinds:
        for item in items:
            name = item.get(name_key, item["Arn"].rsplit("/", 1)[-1])
            holders = [(name, item)]
            holders += [(g, groups[g]) for g in item.get("GroupList", []) if g in groups]
            found[item["Arn"]] = Principal(
                arn=item["Arn"],
                name=name,
                type=kind,
                path=item.get("Path", "/") or "/",
                managed_policies=tuple(
                    dict.fromkeys(
                        a.get("PolicyName") or a.get("PolicyArn", "?").rsplit("/", 1)[-1]
                        for _, holder in holders
                        for a in holder.get("AttachedManagedPolicies", [])
                    )
                ),
                inline_policies=tuple(
                    f"{holder_name}/{policy.get('PolicyName', '?')}"
                    for holder_name, holder in holders
                    for listed in ("UserPolicyList", "GroupPolicyList", "RolePolicyList")
                    for policy in holder.get(listed, [])
                ),
            )
    return found


def _runners(ctx: CheckContext) -> dict[str, list[tuple[str, str, str]]]:
    """Task definition ARN -> (cluster, service, rule) that run it: services (their deployments,
    task sets and tasks), standalone tasks, and EventBridge rules that schedule it."""
    found: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
    for region, inv in ctx.regions():
        latest = _latest_per_family(ctx, region)
        for service in inv.ecs.services:
            cluster = _name(service.get("clusterArn", ""))
            for arn in _service_task_definitions(service, inv.ecs.tasks):
                found[arn].add((cluster, service.get("serviceName", ""), ""))
        for task in inv.ecs.tasks:
            if not str(task.get("group", "")).startswith("service:"):
                cluster = _name(task.get("clusterArn", ""))
                found[task.get("taskDefinitionArn", "")].add((cluster, "", ""))
        for rule in inv.events.rules:
            for target in rule.get("Targets", []):
                named = (target.get("EcsParameters") or {}).get("TaskDefinitionArn", "")
                # a target may name the family only: it runs the latest ACTIVE revision
                arn = latest.get(named, named)
                if arn:
                    found[arn].add((_name(target.get("Arn", "")), "", rule.get("Arn", "")))
    # a standalone task started by a rule is the same run as the rule's: keep the rule's entry
    return {arn: sorted(_merge_rule_runs(runs)) for arn, runs in found.items()}


def _merge_rule_runs(runs: set[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
    ruled = {cluster for cluster, _, rule in runs if rule}
    return {(c, s, r) for c, s, r in runs if r or s or c not in ruled}


def _latest_per_family(ctx: CheckContext, region: str) -> dict[str, str]:
    """Family name -> ARN of its latest revision, in one region."""
    best: dict[str, tuple[int, str]] = {}
    for arn, (td_region, _) in ctx.task_definitions_by_arn.items():
        if td_region == region:
            family, revision = family_and_revision(arn)
            if family not in best or revision > best[family][0]:
                best[family] = (revision, arn)
    return {family: arn for family, (_, arn) in best.items()}


def _service_task_definitions(service: Resource, tasks: list[Resource]) -> list[str]:
    arns = [service.get("taskDefinition", "")]
    arns += [d.get("taskDefinition", "") for d in service.get("deployments", [])]
    arns += [d.get("taskDefinition", "") for d in service.get("taskSets", [])]
    group = "service:" + service.get("serviceName", "")
    arns += [
        t.get("taskDefinitionArn", "")
        for t in tasks
        if t.get("group") == group and t.get("clusterArn") == service.get("clusterArn")
    ]
    return sorted({a for a in arns if a})


def _task_definition_uses(
    ctx: CheckContext, td: Resource, key_users: Mapping[str, str], run: Use
) -> Iterator[Use]:
    """The uses of one task definition in one run (`run` holds where: region, cluster, ...)."""
    if named := td.get("taskRoleArn"):
        yield replace(run, principal_arn=_role_arn(ctx, named), kind="task_role")
    if named := td.get("executionRoleArn"):
        yield replace(run, principal_arn=_role_arn(ctx, named), kind="execution_role")
    for container in td.get("containerDefinitions", []):
        for variable in container.get("environment", []):
            value = str(variable.get("value", ""))
            for key_id in _key_ids(value):
                if key_id in key_users:
                    yield replace(
                        run,
                        principal_arn=key_users[key_id],
                        kind="access_key_in_env",
                        container=container.get("name", ""),
                        variable=str(variable.get("name", "")),
                        access_key_id=key_id,
                    )


_KEY_ID = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")


def _key_ids(value: str) -> list[str]:
    return _KEY_ID.findall(value)


def _role_arn(ctx: CheckContext, named: str) -> str:
    """A task definition may name a role by name; resolve it to the snapshot's ARN if it can."""
    role = ctx.role(named)
    return role["Arn"] if role is not None else named


def _instance_roles(
    ctx: CheckContext,
) -> tuple[dict[tuple[str, str], dict[str, set[str]]], list[str]]:
    """(region, cluster) -> role ARN -> evidence, for the clusters' container instances; and the
    container instances whose role could not be found."""
    by_profile: dict[str, str] = {}
    for role in ctx.snapshot.iam.roles:
        for profile in role.get("InstanceProfileList", []):
            if profile.get("Arn"):
                by_profile[profile["Arn"]] = role["Arn"]
    found: dict[tuple[str, str], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    unresolved = []
    for region, inv in ctx.regions():
        instances = {i.get("InstanceId"): i for i in inv.ec2.instances}
        for ci in inv.ecs.container_instances:
            instance = instances.get(ci.get("ec2InstanceId"))
            profile = ((instance or {}).get("IamInstanceProfile") or {}).get("Arn", "")
            role_arn = by_profile.get(profile)
            if not role_arn:
                unresolved.append(ci.get("containerInstanceArn", ""))
            else:
                cluster = _name(ci.get("clusterArn", ""))
                profile_name = profile.rsplit("/", 1)[-1]
                evidence = f"instance {ci.get('ec2InstanceId')} (instance profile {profile_name})"
                found[(region, cluster)][role_arn].add(evidence)
    return found, unresolved


def _other_uses(ctx: CheckContext, principals: Mapping[str, Principal]) -> Iterator[Use]:
    """EventBridge target roles, service-linked and service roles, CloudTrail's logs role."""
    for region, inv in ctx.regions():
        latest = _latest_per_family(ctx, region)
        for rule in inv.events.rules:
            for target in rule.get("Targets", []):
                if role := target.get("RoleArn"):
                    named = (target.get("EcsParameters") or {}).get("TaskDefinitionArn", "")
                    named = latest.get(named, named)
                    cluster = _name(target["Arn"]) if ":cluster/" in target.get("Arn", "") else ""
                    yield Use(
                        _role_arn(ctx, role),
                        "events_target_role",
                        region,
                        cluster,
                        task_definition=named,
                        rule=rule.get("Arn", ""),
                    )
        for service in inv.ecs.services:
            if role := service.get("roleArn"):
                role_arn = _role_arn(ctx, role)
                principal = principals.get(role_arn)
                linked = principal is not None and principal.service_linked
                yield Use(
                    role_arn,
                    "service_linked" if linked else "service_role",
                    region,
                    _name(service.get("clusterArn", "")),
                    service.get("serviceName", ""),
                    aws_service=_linked_service(principal) if principal else "",
                )
        for trail in inv.cloudtrail.trails:
            if role := trail.get("CloudWatchLogsRoleArn"):
                yield Use(_role_arn(ctx, role), "trail_logs_role", region, rule=trail["TrailARN"])
    for principal in principals.values():
        if principal.service_linked:
            yield Use(principal.arn, "service_linked", aws_service=_linked_service(principal))


def _linked_service(principal: Principal) -> str:
    """`/aws-service-role/ecs.amazonaws.com/` -> "ecs.amazonaws.com"."""
    if not principal.service_linked:
        return ""
    return principal.path[len(SERVICE_LINKED_PATH) :].strip("/")


def _services(
    ctx: CheckContext, instance_roles: Mapping[tuple[str, str], Mapping[str, set[str]]]
) -> list[ServiceIdentities]:
    clusters = {c.get("clusterArn"): c for _, inv in ctx.regions() for c in inv.ecs.clusters if c}
    key_owner_arns = _key_owner_arns(ctx)
    found = []
    for region, service in ctx.services():
        inv = ctx.snapshot.regions[region]
        cluster = _name(service.get("clusterArn", ""))
        tds = [
            ctx.task_definitions_by_arn[a][1]
            for a in _service_task_definitions(service, inv.ecs.tasks)
            if a in ctx.task_definitions_by_arn
        ]
        launch = _launch(service, clusters.get(service.get("clusterArn"), {}))
        env_users = {
            key_owner_arns[k]
            for td in tds
            for c in td.get("containerDefinitions", [])
            for v in c.get("environment", [])
            for k in _key_ids(str(v.get("value", "")))
            if k in key_owner_arns
        }
        found.append(
            ServiceIdentities(
                region=region,
                cluster=cluster,
                service=service.get("serviceName", ""),
                arn=service.get("serviceArn", ""),
                task_definition=service.get("taskDefinition", ""),
                launch=launch,
                task_roles=_roles_of(ctx, tds, "taskRoleArn"),
                execution_roles=_roles_of(ctx, tds, "executionRoleArn"),
                instance_roles=tuple(sorted(instance_roles.get((region, cluster), {})))
                if launch == "EC2"
                else (),
                env_key_users=tuple(sorted(env_users)),
            )
        )
    return found


def _key_owner_arns(ctx: CheckContext) -> dict[str, str]:
    users = {u.get("UserName"): u["Arn"] for u in ctx.snapshot.iam.users}
    return {
        k["AccessKeyId"]: users[k.get("UserName")]
        for k in ctx.snapshot.iam.access_keys
        if k.get("AccessKeyId") and k.get("UserName") in users
    }


def _roles_of(ctx: CheckContext, tds: Iterable[Resource], field_name: str) -> tuple[str, ...]:
    return tuple(sorted({_role_arn(ctx, td[field_name]) for td in tds if td.get(field_name)}))


def _launch(service: Resource, cluster: Resource) -> Literal["EC2", "FARGATE", "EXTERNAL"]:
    """How the service's tasks run: its launch type, else its (or the cluster's default)
    capacity provider strategy; a provider other than FARGATE(_SPOT) is EC2 capacity."""
    launch = service.get("launchType")
    if launch == "EC2" or launch == "FARGATE" or launch == "EXTERNAL":
        return launch
    strategy = service.get("capacityProviderStrategy") or cluster.get(
        "defaultCapacityProviderStrategy", []
    )
    providers = {item.get("capacityProvider") for item in strategy}
    return "EC2" if providers - _FARGATE_PROVIDERS else "FARGATE"


def _name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1] if arn else ""


def td_name(arn: str) -> str:
    """A task definition ARN as people write it: `family:revision`."""
    family, revision = family_and_revision(arn)
    return f"{family}:{revision}" if revision else family


# ---------------------------------------------------------------------------------------------
# deployers: who can roll out a service, from identity policies


def _deployers(
    snapshot: Snapshot, principals: Mapping[str, Principal], services: list[ServiceIdentities]
) -> list[Use]:
    """A principal deploys a service when its identity policies allow ecs:UpdateService on the
    service (or ecs:RegisterTaskDefinition) *and* iam:PassRole on every role the service runs
    under (no roles: no PassRole needed).

    The matching errs towards "can": an Allow counts whatever its resources name (matched with IAM
    wildcards) and whatever its Condition says (the Use is then marked `conditional`), except that
    an `iam:PassedToService` condition is decided for ecs-tasks.amazonaws.com. A Deny counts only
    without a Condition. Permissions boundaries, SCPs and resource policies are not applied."""
    iam = snapshot.iam
    raw = {item["Arn"]: item for item in (*iam.users, *iam.groups, *iam.roles)}
    found = []
    for arn, principal in principals.items():
        if principal.service_linked:
            continue
        # match actions once per principal (policies such as ReadOnlyAccess list thousands)
        statements = statements_of(raw[arn], iam)
        by_action = {
            action: [item for item in statements if _action_matches(item, action)]
            for action in (*DEPLOY_ACTIONS, PASS_ROLE)
        }
        if not any(i.statement.effect == "Allow" for a in DEPLOY_ACTIONS for i in by_action[a]):
            continue
        for service in services:
            use = _deploy_use(arn, by_action, service)
            if use is not None:
                found.append(use)
    return found


def _deploy_use(
    arn: str, by_action: Mapping[str, list[Sourced]], service: ServiceIdentities
) -> Use | None:
    update = _allowing(by_action["ecs:UpdateService"], service.arn)
    register = _allowing(by_action["ecs:RegisterTaskDefinition"], "*")
    ecs_grants = update or register
    if not ecs_grants:
        return None
    roles = sorted({*service.task_roles, *service.execution_roles})
    pass_grants: list[Sourced] = []
    for role in roles:
        grants = _allowing(by_action[PASS_ROLE], role, passing=True)
        if not grants:
            return None
        pass_grants.extend(grants)
    chosen = [ecs_grants[0], *dict.fromkeys(pass_grants)]
    return Use(
        arn,
        "deployer",
        service.region,
        service.cluster,
        service.service,
        service.task_definition,
        derived=True,
        incidental=all(_blanket(item) for item in ecs_grants),
        conditional=any(_undecided(item) for item in chosen),
        evidence=tuple(dict.fromkeys(str(item) for item in chosen)),
    )


def _allowing(matching: list[Sourced], resource: str, passing: bool = False) -> list[Sourced]:
    """Of the statements whose actions match, the Allows that apply to `resource`, or [] when an
    unconditional Deny covers it. `passing`: decide iam:PassedToService for ECS tasks."""
    for item in matching:
        s = item.statement
        if s.effect == "Deny" and not s.condition and _resource_matches(s, resource):
            return []
    return [
        item
        for item in matching
        if item.statement.effect == "Allow"
        and _resource_matches(item.statement, resource)
        and (not passing or _passes_to_ecs_tasks(item.statement.condition) is not False)
    ]


def _blanket(item: Sourced) -> bool:
    """The statement grants by NotAction, or by an action pattern whose service is a wildcard."""
    statement = item.statement
    return statement.not_action or all(a.split(":", 1)[0] in ("*", "") for a in statement.actions)


def _undecided(item: Sourced) -> bool:
    condition = item.statement.condition
    return bool(condition) and _passes_to_ecs_tasks(condition) is None


def _passes_to_ecs_tasks(condition: Mapping[str, Any]) -> bool | None:
    """For a PassRole statement's Condition: True/False when it only tests iam:PassedToService
    with a positive string operator and so decides passing to ecs-tasks.amazonaws.com; None when
    it tests anything else (undecided). No condition: True."""
    verdicts = []
    for operator, tests in condition.items():
        if not isinstance(tests, Mapping):
            return None
        for key, values in tests.items():
            op = operator.split(":")[-1].removesuffix("IfExists")
            if key.lower() != "iam:passedtoservice" or op not in (
                "StringEquals",
                "StringLike",
                "StringEqualsIgnoreCase",
            ):
                return None
            listed = [values] if isinstance(values, str) else [str(v) for v in values]
            verdicts.append(any(_wildcard(v, ECS_TASKS, fold=True) for v in listed))
    return all(verdicts)


def _action_matches(item: Sourced, action: str) -> bool:
    statement = item.statement
    hit = any(_wildcard(p, action, fold=True) for p in statement.actions)
    return not hit if statement.not_action else hit


def _resource_matches(statement: Statement, resource: str) -> bool:
    if resource == "*":  # an action without resource-level permissions: any Resource applies
        return not statement.not_resource or "*" not in statement.resources
    hit = any(_wildcard(p, resource) for p in statement.resources)
    return not hit if statement.not_resource else hit


@lru_cache(maxsize=4096)
def _pattern(pattern: str, fold: bool) -> re.Pattern[str]:
    # policy variables (${aws:username}) could be anything: match them like "*"
    parts = re.split(r"(\$\{[^}]*\}|\*|\?)", pattern)
    body = "".join(
        ".*" if p == "*" or p.startswith("${") else "." if p == "?" else re.escape(p) for p in parts
    )
    return re.compile(body, (re.IGNORECASE if fold else 0) | re.DOTALL)


def _wildcard(pattern: str, value: str, fold: bool = False) -> bool:
    return _pattern(pattern, fold).fullmatch(value) is not None


def _with_deployers(
    services: list[ServiceIdentities], deployers: list[Use]
) -> list[ServiceIdentities]:
    scoped: dict[str, set[str]] = defaultdict(set)
    incidental: dict[str, set[str]] = defaultdict(set)
    by_key = {(s.region, s.cluster, s.service): s.arn for s in services}
    for use in deployers:
        if ":group/" in use.principal_arn:  # a group cannot act; its members are listed
            continue
        target = incidental if use.incidental else scoped
        target[by_key[(use.region, use.cluster, use.service)]].add(use.principal_arn)
    return [
        ServiceIdentities(
            **{
                **asdict(s),
                "deployers": tuple(sorted(scoped[s.arn])),
                "incidental_deployers": tuple(sorted(incidental[s.arn])),
            }
        )
        for s in services
    ]
