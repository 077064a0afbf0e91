"""Load the demo estate (YAML) and create it in an emulated AWS account.

`load_estate()` reads and checks the file; `seed(session, estate)` creates every resource through
an `AwsSession`'s clients, in dependency order, resolving `${kind:name}` references as it goes,
and returns how many resources of each kind it made. The conventions of the file (references,
task definition revisions, simulation hints) are described at the top of `estate.yaml`.

Seeding refuses any endpoint that is not on this machine: the estate holds administrators, a
leaked access key and an open security group, and belongs in an emulator only.

What moto 5.2.5 does differently, and how the seeder copes (verified against the server):
- CreateService drops deploymentConfiguration, enableExecuteCommand, healthCheckGracePeriodSeconds,
  enableECSManagedTags and placement settings; UpdateService stores them, so the seeder sends
  them again there. UpdateService with desiredCount also makes runningCount equal desiredCount.
- Services never start tasks: the seeder runs them with RunTask (startedBy = the deployment id,
  group = "service:NAME") and stops some with a reason. Fargate RunTask needs `memory` on every
  container, so the estate sets it.
- Each DescribeTasks moves a RUNNING task one step towards STOPPED; the seeder freezes that
  through moto's state manager (`set_transition`), so running tasks stay running.
- RunTask in awsvpc mode fails (HTTP 500) in a VPC without DNS hostnames, and CreateService with
  an awsvpcConfiguration without securityGroups fails (HTTP 500): the estate provides both.
- ListTasks without desiredStatus returns stopped tasks too (AWS returns RUNNING ones only).
- A cluster created without settings reports containerInsights "disabled", like an explicit one.
- Secrets Manager rotation is accepted without a rotation function; ECR images are fake
  manifests (no layers to scan, no scan findings).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from ecsguard.core.errors import UserError
from ecsguard.core.files import parse_yaml
from ecsguard.demo.emulator import set_transition

if TYPE_CHECKING:
    from ecsguard.aws.session import AwsSession

ESTATE_FORMAT = "ecsguard-estate"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_REF = re.compile(r"\$\{([a-z_]+)(?::([^}]*))?\}")
_FIX_HINT = "fix the estate file; its conventions are described at its top"


# ------------------------------------------------------------------------------------------------
# loading and reading the estate (pure; no AWS)


def load_estate(path: str | Path | None = None) -> dict[str, Any]:
    """The estate as a dict: the packaged `estate.yaml`, or the file at `path`."""
    if path is None:
        source = resources.files("ecsguard.demo").joinpath("estate.yaml")
        name = "ecsguard/demo/estate.yaml"
        text = source.read_text(encoding="utf-8")
    else:
        name = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as err:
            raise UserError(f"cannot read estate file {name}: {err.strerror or err}") from None
    data = parse_yaml(text, name, "", _FIX_HINT)
    if not isinstance(data, dict) or data.get("format") != ESTATE_FORMAT:
        raise UserError(f"{name}: not an estate file (expected `format: {ESTATE_FORMAT}`)")
    return data


def task_definition_revisions(estate: dict[str, Any], family: str) -> list[dict[str, Any]]:
    """Every revision of `family` as a whole RegisterTaskDefinition request (notes removed)."""
    families = estate.get("ecs", {}).get("task_definitions", {})
    if family not in families:
        raise UserError(f"estate: no task definition family {family!r}", _FIX_HINT)
    out: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    for patch in families[family]:
        patch = {k: v for k, v in patch.items() if k != "note"}
        current = _merge(current, patch)
        out.append(current)
    return out


def expand_alarms(estate: dict[str, Any]) -> list[dict[str, Any]]:
    """All PutMetricAlarm requests: per-service templates expanded, then the listed alarms."""
    cloudwatch = estate.get("cloudwatch", {})
    per_service = cloudwatch.get("per_service_alarms") or {}
    alarms: list[dict[str, Any]] = []
    clusters = set(per_service.get("clusters", []))
    for service in estate.get("ecs", {}).get("services", []):
        if service["cluster"] not in clusters:
            continue
        names = {"cluster": service["cluster"], "service": service["serviceName"]}
        for template in per_service.get("templates", []):
            alarms.append(_fill(template, names))
    alarms.extend(copy.deepcopy(a) for a in cloudwatch.get("alarms", []))
    return alarms


def locate(estate: dict[str, Any], where: str) -> dict[str, Any]:
    """The estate item a `planted` / `good_practice` entry points at (`kind:name`)."""
    kind, _, name = where.partition(":")
    finders: dict[str, Callable[[], Iterator[tuple[str, dict[str, Any]]]]] = {
        "iam_user": lambda: _named(estate, ("iam", "users"), "name"),
        "iam_group": lambda: _named(estate, ("iam", "groups"), "name"),
        "iam_role": lambda: _named(estate, ("iam", "roles"), "name"),
        "iam_policy": lambda: _named(estate, ("iam", "policies"), "name"),
        "cluster": lambda: _named(estate, ("ecs", "clusters"), "clusterName"),
        "capacity_provider": lambda: _named(estate, ("ecs", "capacity_providers"), "name"),
        "service": lambda: (
            (f"{s['cluster']}/{s['serviceName']}", s)
            for s in estate.get("ecs", {}).get("services", [])
        ),
        "ecr_repository": lambda: _named(estate, ("ecr", "repositories"), "repositoryName"),
        # one registry per account and region, and one root user per account
        "ecr_registry": lambda: iter([("default", estate.get("ecr", {}).get("registry_scanning"))]),
        "account": lambda: iter([("root", estate.get("iam", {}).get("root"))]),
        "log_group": lambda: _named(estate, ("logs", "log_groups"), "logGroupName"),
        "trail": lambda: _named(estate, ("cloudtrail", "trails"), "Name"),
        "security_group": lambda: _named(estate, ("ec2", "security_groups"), "name"),
        "event_rule": lambda: _named(estate, ("events", "rules"), "Name"),
        "secret": lambda: _named(estate, ("secretsmanager", "secrets"), "Name"),
        "parameter": lambda: _named(estate, ("ssm", "parameters"), "Name"),
        "topic": lambda: _named(estate, ("sns", "topics"), "Name"),
        "queue": lambda: _named(estate, ("sqs", "queues"), "QueueName"),
        "kms_key": lambda: _named(estate, ("kms", "keys"), "name"),
        "alarm": lambda: ((a["AlarmName"], a) for a in expand_alarms(estate)),
    }
    if kind == "task_definition":
        return task_definition_revisions(estate, name)[-1]
    if kind not in finders:
        known = ", ".join(sorted([*finders, "task_definition"]))
        raise UserError(
            f"estate: unknown locator kind {kind!r} in {where!r}", f"use one of {known}"
        )
    for key, item in finders[kind]():
        if key == name and item is not None:
            return item
    raise UserError(f"estate: nothing at {where!r}", _FIX_HINT)


def container(task_definition: dict[str, Any], name: str) -> dict[str, Any]:
    """One container definition of a (merged) task definition, by name."""
    for definition in task_definition.get("containerDefinitions", []):
        if definition.get("name") == name:
            return definition
    raise UserError(f"estate: no container {name!r} in task definition", _FIX_HINT)


def _named(
    estate: dict[str, Any], path: tuple[str, str], key: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    for item in estate.get(path[0], {}).get(path[1], []):
        yield str(item[key]), item


def _merge(base: Any, patch: Any) -> Any:
    """Mappings merge, lists replace, None removes; containerDefinitions merge by name."""
    if not isinstance(base, dict) or not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif key == "containerDefinitions" and isinstance(value, list):
            out[key] = _merge_by_name(out.get(key, []), value)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _merge_by_name(base: list[dict[str, Any]], patch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = [copy.deepcopy(item) for item in base]
    for item in patch:
        index = next((i for i, old in enumerate(out) if old.get("name") == item.get("name")), None)
        if item.get("remove"):
            if index is not None:
                del out[index]
        elif index is None:
            out.append(_merge({}, item))
        else:
            out[index] = _merge(out[index], item)
    return out


def _fill(value: Any, names: dict[str, str]) -> Any:
    """Fill template variables (`${cluster}`) without touching other references."""
    if isinstance(value, str):
        return _REF.sub(
            lambda m: names[m.group(1)] if m.group(2) is None and m.group(1) in names else m[0],
            value,
        )
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, names) for v in value]
    return value


# ------------------------------------------------------------------------------------------------
# seeding


def seed(session: AwsSession, estate: dict[str, Any]) -> dict[str, int]:
    """Create the estate in the emulated account behind `session`; counts per resource kind."""
    return _Seeder(session, estate).run()


class _Refs:
    """Values that `${kind:name}` references resolve to, filled in as resources are created."""

    def __init__(self, builtins: dict[str, str]) -> None:
        self.builtins = builtins
        self.values: dict[tuple[str, str], Any] = {}

    def add(self, kind: str, name: str, value: Any) -> None:
        self.values[(kind, name)] = value

    def get(self, kind: str, name: str | None, where: str) -> Any:
        if name is None:
            if kind in self.builtins:
                return self.builtins[kind]
        elif (kind, name) in self.values:
            return self.values[(kind, name)]
        ref = f"${{{kind}:{name}}}" if name is not None else f"${{{kind}}}"
        raise UserError(f"estate: unknown reference {ref} in {where}", _FIX_HINT)

    def resolve(self, value: Any, where: str) -> Any:
        if isinstance(value, str):
            whole = _REF.fullmatch(value)
            if whole:
                return self.get(whole.group(1), whole.group(2), where)

            def text(match: re.Match[str]) -> str:
                got = self.get(match.group(1), match.group(2), where)
                if not isinstance(got, str):
                    raise UserError(
                        f"estate: {match[0]} is a list and cannot sit inside text ({where})",
                        _FIX_HINT,
                    )
                return got

            return _REF.sub(text, value)
        if isinstance(value, dict):
            return {k: self.resolve(v, where) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v, where) for v in value]
        return value


class _Seeder:
    def __init__(self, session: AwsSession, estate: dict[str, Any]) -> None:
        self.session = session
        self.estate = estate
        self.region: str = estate.get("region") or session.default_region
        self.endpoint = _local_endpoint(session)
        self.count: Counter[str] = Counter()
        self.default_tags: dict[str, str] = dict(estate.get("default_tags") or {})
        self.asg_instances: dict[str, list[dict[str, Any]]] = {}
        self.deployments: dict[tuple[str, str], str] = {}
        self.account = ""  # known once the emulator has been asked (run)
        self.refs = _Refs({})

    # -- plumbing ---------------------------------------------------------------------------
    def call(self, service: str, operation: str, what: str, /, **params: Any) -> Any:
        client = self.session.client(service, self.region)
        try:
            return getattr(client, operation)(**params)
        except Exception as err:
            # botocore's ClientError / ParamValidationError: the estate asked for something the
            # emulator refuses; anything else is a bug and keeps its traceback
            if not type(err).__module__.startswith("botocore"):
                raise
            raise UserError(
                f"seeding {what} failed ({service}:{operation}): {_one_line(err)}", _FIX_HINT
            ) from err

    def tags(self, item: dict[str, Any], key: str = "Key", value: str = "Value") -> list[Any]:
        merged = {**self.default_tags, **(item.get("tags") or {})}
        return [{key: k, value: str(v)} for k, v in merged.items()]

    def tag_map(self, item: dict[str, Any]) -> dict[str, str]:
        return {k: str(v) for k, v in {**self.default_tags, **(item.get("tags") or {})}.items()}

    def arn(self, service: str, resource: str, region: bool = True) -> str:
        where = self.region if region else ""
        return f"arn:aws:{service}:{where}:{self.account}:{resource}"

    # -- the run ----------------------------------------------------------------------------
    def run(self) -> dict[str, int]:
        self.account = self.session.identity()["account"]
        self.refs = _Refs(
            {
                "account": self.account,
                "region": self.region,
                "ecr": f"{self.account}.dkr.ecr.{self.region}.amazonaws.com",
            }
        )
        self._predeclare()
        # moto moves a RUNNING task one step towards STOPPED each time it is described; keep
        # running tasks running, as they would be in a healthy account
        set_transition(self.endpoint, "ecs::task", {"progression": "manual", "times": 10**9})
        for step in (
            self.kms,
            self.s3,
            self.sns,
            self.sqs,
            self.logs,
            self.secrets,
            self.ssm,
            self.ec2,
            self.iam,
            self.ecr,
            self.ecs_capacity,
            self.ecs_clusters,
            self.ecs_task_definitions,
            self.ecs_services,
            self.ecs_tasks,
            self.cloudtrail,
            self.cloudwatch,
            self.events,
        ):
            step()
        return dict(sorted(self.count.items()))

    def _predeclare(self) -> None:
        """References whose values follow from names alone, so order never matters for them."""
        e = self.estate
        add = self.refs.add
        iam = e.get("iam", {})
        for role in iam.get("roles", []):
            add("role", role["name"], self.arn("iam", f"role/{role['name']}", region=False))
        for user in iam.get("users", []):
            add("user", user["name"], self.arn("iam", f"user/{user['name']}", region=False))
        for policy in iam.get("policies", []):
            add("policy", policy["name"], self.arn("iam", f"policy/{policy['name']}", region=False))
        for topic in e.get("sns", {}).get("topics", []):
            add("topic", topic["Name"], self.arn("sns", topic["Name"]))
        for queue in e.get("sqs", {}).get("queues", []):
            add("queue", queue["QueueName"], self.arn("sqs", queue["QueueName"]))
        for group in e.get("logs", {}).get("log_groups", []):
            name = group["logGroupName"]
            add("log_group", name, self.arn("logs", f"log-group:{name}"))
        for parameter in e.get("ssm", {}).get("parameters", []):
            name = parameter["Name"]
            add("parameter", name, self.arn("ssm", f"parameter/{name.lstrip('/')}"))
        for cluster in e.get("ecs", {}).get("clusters", []):
            name = cluster["clusterName"]
            add("cluster", name, self.arn("ecs", f"cluster/{name}"))

    # -- foundations --------------------------------------------------------------------------
    def kms(self) -> None:
        for key in self.estate.get("kms", {}).get("keys", []):
            what = f"KMS key {key['name']}"
            params: dict[str, Any] = {"Description": key.get("Description", key["name"])}
            if key.get("Policy"):
                params["Policy"] = json.dumps(self.refs.resolve(key["Policy"], what))
            meta = self.call(
                "kms", "create_key", what, Tags=self.tags(key, "TagKey", "TagValue"), **params
            )["KeyMetadata"]
            self.call(
                "kms",
                "create_alias",
                what,
                AliasName=f"alias/{key['name']}",
                TargetKeyId=meta["KeyId"],
            )
            if key.get("rotation"):
                self.call("kms", "enable_key_rotation", what, KeyId=meta["KeyId"])
            self.refs.add("kms", key["name"], meta["Arn"])
            self.count["kms_keys"] += 1

    def s3(self) -> None:
        for bucket in self.estate.get("s3", {}).get("buckets", []):
            name = self.refs.resolve(bucket["Bucket"], "s3")
            what = f"bucket {name}"
            self.call(
                "s3",
                "create_bucket",
                what,
                Bucket=name,
                CreateBucketConfiguration={"LocationConstraint": self.region},
            )
            if bucket.get("versioning"):
                self.call(
                    "s3",
                    "put_bucket_versioning",
                    what,
                    Bucket=name,
                    VersioningConfiguration={"Status": "Enabled"},
                )
            if bucket.get("block_public_access"):
                self.call(
                    "s3",
                    "put_public_access_block",
                    what,
                    Bucket=name,
                    PublicAccessBlockConfiguration={
                        "BlockPublicAcls": True,
                        "IgnorePublicAcls": True,
                        "BlockPublicPolicy": True,
                        "RestrictPublicBuckets": True,
                    },
                )
            if bucket.get("encryption"):
                self.call(
                    "s3",
                    "put_bucket_encryption",
                    what,
                    Bucket=name,
                    ServerSideEncryptionConfiguration={
                        "Rules": [
                            {
                                "ApplyServerSideEncryptionByDefault": {
                                    "SSEAlgorithm": bucket["encryption"]
                                }
                            }
                        ]
                    },
                )
            self.refs.add("bucket", name, name)
            self.count["s3_buckets"] += 1

    def sns(self) -> None:
        for topic in self.estate.get("sns", {}).get("topics", []):
            what = f"SNS topic {topic['Name']}"
            arn = self.call(
                "sns",
                "create_topic",
                what,
                Name=topic["Name"],
                Attributes=self.refs.resolve(topic.get("Attributes", {}), what),
                Tags=self.tags(topic),
            )["TopicArn"]
            self.refs.add("topic", topic["Name"], arn)
            for sub in topic.get("subscriptions", []):
                self.call("sns", "subscribe", what, TopicArn=arn, **sub)
                self.count["sns_subscriptions"] += 1
            self.count["sns_topics"] += 1

    def sqs(self) -> None:
        for queue in self.estate.get("sqs", {}).get("queues", []):
            what = f"SQS queue {queue['QueueName']}"
            self.call(
                "sqs",
                "create_queue",
                what,
                QueueName=queue["QueueName"],
                Attributes=self.refs.resolve(queue.get("Attributes", {}), what),
                tags=self.tag_map(queue),
            )
            self.count["sqs_queues"] += 1

    def logs(self) -> None:
        section = self.estate.get("logs", {})
        for group in section.get("log_groups", []):
            name = group["logGroupName"]
            what = f"log group {name}"
            params: dict[str, Any] = {"logGroupName": name, "tags": self.tag_map(group)}
            if group.get("kmsKeyId"):
                params["kmsKeyId"] = self.refs.resolve(group["kmsKeyId"], what)
            self.call("logs", "create_log_group", what, **params)
            if group.get("retentionInDays"):
                self.call(
                    "logs",
                    "put_retention_policy",
                    what,
                    logGroupName=name,
                    retentionInDays=group["retentionInDays"],
                )
            self.count["log_groups"] += 1
        for policy in section.get("resource_policies", []):
            what = f"logs resource policy {policy['policyName']}"
            document = self.refs.resolve(policy["policyDocument"], what)
            self.call(
                "logs",
                "put_resource_policy",
                what,
                policyName=policy["policyName"],
                policyDocument=json.dumps(document),
            )
            self.count["log_resource_policies"] += 1
        for metric_filter in section.get("metric_filters", []):
            what = f"metric filter {metric_filter['filterName']}"
            self.call("logs", "put_metric_filter", what, **self.refs.resolve(metric_filter, what))
            self.count["metric_filters"] += 1

    def secrets(self) -> None:
        for secret in self.estate.get("secretsmanager", {}).get("secrets", []):
            what = f"secret {secret['Name']}"
            params = {k: v for k, v in secret.items() if k not in ("rotation_days", "tags")}
            params = self.refs.resolve(params, what)
            arn = self.call(
                "secretsmanager", "create_secret", what, Tags=self.tags(secret), **params
            )["ARN"]
            if secret.get("rotation_days"):
                # moto rotates without a rotation function; real accounts name one
                self.call(
                    "secretsmanager",
                    "rotate_secret",
                    what,
                    SecretId=arn,
                    RotationRules={"AutomaticallyAfterDays": secret["rotation_days"]},
                    RotateImmediately=False,
                )
            self.refs.add("secret", secret["Name"], arn)
            self.count["secrets"] += 1

    def ssm(self) -> None:
        for parameter in self.estate.get("ssm", {}).get("parameters", []):
            what = f"SSM parameter {parameter['Name']}"
            params = self.refs.resolve({k: v for k, v in parameter.items() if k != "tags"}, what)
            self.call("ssm", "put_parameter", what, Tags=self.tags(parameter), **params)
            self.count["ssm_parameters"] += 1

    def ec2(self) -> None:
        section = self.estate.get("ec2", {})
        subnets_by_tier: dict[str, list[str]] = {}
        for vpc in section.get("vpcs", []):
            what = f"VPC {vpc['name']}"
            vpc_id = self.call(
                "ec2",
                "create_vpc",
                what,
                CidrBlock=vpc["CidrBlock"],
                TagSpecifications=self._ec2_tags("vpc", vpc),
            )["Vpc"]["VpcId"]
            for attribute in ("EnableDnsSupport", "EnableDnsHostnames"):
                if attribute in vpc:
                    self.call(
                        "ec2",
                        "modify_vpc_attribute",
                        what,
                        VpcId=vpc_id,
                        **{attribute: {"Value": bool(vpc[attribute])}},
                    )
            self.refs.add("vpc", vpc["name"], vpc_id)
            self.count["vpcs"] += 1
        for subnet in section.get("subnets", []):
            what = f"subnet {subnet['name']}"
            subnet_id = self.call(
                "ec2",
                "create_subnet",
                what,
                VpcId=self.refs.get("vpc", subnet["vpc"], what),
                CidrBlock=subnet["CidrBlock"],
                AvailabilityZone=subnet["AvailabilityZone"],
                TagSpecifications=self._ec2_tags("subnet", subnet, tier=subnet["tier"]),
            )["Subnet"]["SubnetId"]
            self.refs.add("subnet", subnet["name"], subnet_id)
            subnets_by_tier.setdefault(subnet["tier"], []).append(subnet_id)
            self.count["subnets"] += 1
        for tier, ids in subnets_by_tier.items():
            self.refs.add("subnets", tier, ids)
        groups = section.get("security_groups", [])
        for group in groups:  # all groups first: rules may name each other
            what = f"security group {group['name']}"
            group_id = self.call(
                "ec2",
                "create_security_group",
                what,
                GroupName=group["name"],
                Description=group.get("Description", group["name"]),
                VpcId=self.refs.get("vpc", group["vpc"], what),
                TagSpecifications=self._ec2_tags("security-group", group),
            )["GroupId"]
            self.refs.add("sg", group["name"], group_id)
            self.count["security_groups"] += 1
        for group in groups:
            if group.get("ingress"):
                what = f"security group {group['name']}"
                self.call(
                    "ec2",
                    "authorize_security_group_ingress",
                    what,
                    GroupId=self.refs.get("sg", group["name"], what),
                    IpPermissions=self.refs.resolve(group["ingress"], what),
                )

    def _ec2_tags(self, kind: str, item: dict[str, Any], **extra: str) -> list[dict[str, Any]]:
        tags = [*self.tags(item), {"Key": "Name", "Value": item["name"]}]
        tags += [{"Key": k, "Value": v} for k, v in extra.items()]
        return [{"ResourceType": kind, "Tags": tags}]

    # -- IAM ----------------------------------------------------------------------------------
    def iam(self) -> None:
        section = self.estate.get("iam", {})
        if section.get("password_policy"):
            self.call(
                "iam",
                "update_account_password_policy",
                "password policy",
                **section["password_policy"],
            )
        for policy in section.get("policies", []):
            what = f"IAM policy {policy['name']}"
            self.call(
                "iam",
                "create_policy",
                what,
                PolicyName=policy["name"],
                Description=policy.get("Description", ""),
                PolicyDocument=json.dumps(self.refs.resolve(policy["PolicyDocument"], what)),
                Tags=self.tags(policy),
            )
            self.count["iam_policies"] += 1
        for role in section.get("roles", []):
            self._role(role)
        for user in section.get("users", []):
            self._user(user)
        for group in section.get("groups", []):
            what = f"IAM group {group['name']}"
            self.call("iam", "create_group", what, GroupName=group["name"])
            for name in group.get("attach", []):
                self.call(
                    "iam",
                    "attach_group_policy",
                    what,
                    GroupName=group["name"],
                    PolicyArn=self._policy_arn(name),
                )
            for name, document in (group.get("inline") or {}).items():
                self.call(
                    "iam",
                    "put_group_policy",
                    what,
                    GroupName=group["name"],
                    PolicyName=name,
                    PolicyDocument=json.dumps(self.refs.resolve(document, what)),
                )
            for member in group.get("members", []):
                self.call(
                    "iam", "add_user_to_group", what, GroupName=group["name"], UserName=member
                )
            self.count["iam_groups"] += 1

    def _policy_arn(self, name: str) -> str:
        if name.startswith("aws:"):
            return f"arn:aws:iam::aws:policy/{name[4:]}"
        return str(self.refs.get("policy", name, f"attach {name}"))

    def _trust(self, services: list[str]) -> dict[str, Any]:
        statement: dict[str, Any] = {
            "Effect": "Allow",
            "Principal": {"Service": services[0] if len(services) == 1 else services},
            "Action": "sts:AssumeRole",
        }
        if "ec2.amazonaws.com" not in services:  # confused-deputy guard for service principals
            statement["Condition"] = {"StringEquals": {"aws:SourceAccount": self.account}}
        return {"Version": "2012-10-17", "Statement": [statement]}

    def _role(self, role: dict[str, Any]) -> None:
        name = role["name"]
        what = f"IAM role {name}"
        trust = role.get("AssumeRolePolicyDocument") or self._trust(role.get("trust", []))
        params: dict[str, Any] = {
            "RoleName": name,
            "AssumeRolePolicyDocument": json.dumps(self.refs.resolve(trust, what)),
            "Tags": self.tags(role),
        }
        if role.get("Description"):
            params["Description"] = role["Description"]
        self.call("iam", "create_role", what, **params)
        for policy in role.get("attach", []):
            self.call(
                "iam", "attach_role_policy", what, RoleName=name, PolicyArn=self._policy_arn(policy)
            )
        for policy_name, document in (role.get("inline") or {}).items():
            self.call(
                "iam",
                "put_role_policy",
                what,
                RoleName=name,
                PolicyName=policy_name,
                PolicyDocument=json.dumps(self.refs.resolve(document, what)),
            )
        if role.get("instance_profile"):
            self.call("iam", "create_instance_profile", what, InstanceProfileName=name)
            self.call(
                "iam", "add_role_to_instance_profile", what, InstanceProfileName=name, RoleName=name
            )
            self.count["iam_instance_profiles"] += 1
        self.count["iam_roles"] += 1

    def _user(self, user: dict[str, Any]) -> None:
        name = user["name"]
        what = f"IAM user {name}"
        self.call("iam", "create_user", what, UserName=name, Tags=self.tags(user))
        for policy in user.get("attach", []):
            self.call(
                "iam", "attach_user_policy", what, UserName=name, PolicyArn=self._policy_arn(policy)
            )
        for policy_name, document in (user.get("inline") or {}).items():
            self.call(
                "iam",
                "put_user_policy",
                what,
                UserName=name,
                PolicyName=policy_name,
                PolicyDocument=json.dumps(self.refs.resolve(document, what)),
            )
        if user.get("console"):
            self.call(
                "iam",
                "create_login_profile",
                what,
                UserName=name,
                Password=_demo_password(name),
                PasswordResetRequired=False,
            )
        if user.get("mfa"):
            serial = self.call("iam", "create_virtual_mfa_device", what, VirtualMFADeviceName=name)[
                "VirtualMFADevice"
            ]["SerialNumber"]
            self.call(
                "iam",
                "enable_mfa_device",
                what,
                UserName=name,
                SerialNumber=serial,
                AuthenticationCode1="123456",
                AuthenticationCode2="654321",
            )
            self.count["iam_mfa_devices"] += 1
        for index in range(int(user.get("access_keys", 0))):
            key = self.call("iam", "create_access_key", what, UserName=name)["AccessKey"]
            if index == 0:
                self.refs.add("access_key", name, key["AccessKeyId"])
                self.refs.add("secret_key", name, key["SecretAccessKey"])
            self.count["iam_access_keys"] += 1
        self.count["iam_users"] += 1

    # -- ECR ----------------------------------------------------------------------------------
    def ecr(self) -> None:
        registry = self.refs.builtins["ecr"]
        wanted: dict[str, set[str]] = {}
        for family in self.estate.get("ecs", {}).get("task_definitions", {}):
            for revision in task_definition_revisions(self.estate, family):
                for definition in revision.get("containerDefinitions", []):
                    image = str(definition.get("image", "")).replace("${ecr}", registry)
                    if image.startswith(registry + "/") and ":" in image:
                        repo, _, tag = image[len(registry) + 1 :].rpartition(":")
                        wanted.setdefault(repo, set()).add(tag)
        scanning = self.estate.get("ecr", {}).get("registry_scanning")
        if scanning is not None:
            self.call(
                "ecr", "put_registry_scanning_configuration", "ECR registry scanning", **scanning
            )
        for repo in self.estate.get("ecr", {}).get("repositories", []):
            name = repo["repositoryName"]
            what = f"ECR repository {name}"
            params = {k: v for k, v in repo.items() if k not in ("lifecycle", "tags")}
            self.call(
                "ecr",
                "create_repository",
                what,
                tags=self.tags(repo),
                **self.refs.resolve(params, what),
            )
            if repo.get("lifecycle"):
                self.call(
                    "ecr",
                    "put_lifecycle_policy",
                    what,
                    repositoryName=name,
                    lifecyclePolicyText=json.dumps(repo["lifecycle"]),
                )
                self.count["ecr_lifecycle_policies"] += 1
            for tag in sorted(wanted.get(name, ())):
                self.call(
                    "ecr",
                    "put_image",
                    what,
                    repositoryName=name,
                    imageTag=tag,
                    imageManifest=_fake_manifest(f"{name}:{tag}"),
                    imageManifestMediaType=_MANIFEST_TYPE,
                )
                self.count["ecr_images"] += 1
            self.count["ecr_repositories"] += 1

    # -- ECS ----------------------------------------------------------------------------------
    def ecs_capacity(self) -> None:
        section = self.estate.get("ecs", {})
        for setting in section.get("account_settings", []):
            self.call(
                "ecs", "put_account_setting", f"ECS account setting {setting['name']}", **setting
            )
            self.count["ecs_account_settings"] += 1
        for provider in section.get("capacity_providers", []):
            name = provider["name"]
            what = f"capacity provider {name}"
            asg = self.refs.resolve(provider["autoscaling"], what)
            template = f"{name}-lt"
            cluster = provider["cluster"]
            user_data = f"#!/bin/bash\necho ECS_CLUSTER={cluster} >> /etc/ecs/ecs.config\n"
            data: dict[str, Any] = {
                "ImageId": asg["image"],
                "InstanceType": asg["InstanceType"],
                "SecurityGroupIds": [self.refs.get("sg", g, what) for g in asg["security_groups"]],
                "UserData": base64.b64encode(user_data.encode()).decode(),
            }
            if asg.get("instance_profile"):
                data["IamInstanceProfile"] = {"Name": asg["instance_profile"]}
            if asg.get("imdsv2"):
                data["MetadataOptions"] = {"HttpTokens": "required", "HttpPutResponseHopLimit": 2}
            self.call(
                "ec2",
                "create_launch_template",
                what,
                LaunchTemplateName=template,
                LaunchTemplateData=data,
            )
            group_name = f"{name}-asg"
            protect = provider.get("managedTerminationProtection") == "ENABLED"
            self.call(
                "autoscaling",
                "create_auto_scaling_group",
                what,
                AutoScalingGroupName=group_name,
                LaunchTemplate={"LaunchTemplateName": template, "Version": "$Latest"},
                MinSize=asg["MinSize"],
                MaxSize=asg["MaxSize"],
                DesiredCapacity=asg["DesiredCapacity"],
                VPCZoneIdentifier=",".join(self.refs.get("subnets", asg["subnets"], what)),
                NewInstancesProtectedFromScaleIn=protect,
                Tags=[{"Key": "AmazonECSManaged", "Value": "true", "PropagateAtLaunch": True}],
            )
            group = self.call(
                "autoscaling",
                "describe_auto_scaling_groups",
                what,
                AutoScalingGroupNames=[group_name],
            )["AutoScalingGroups"][0]
            self.asg_instances[provider["cluster"]] = [
                {**i, "InstanceType": asg["InstanceType"], "ImageId": asg["image"]}
                for i in group.get("Instances", [])
            ]
            auto: dict[str, Any] = {"autoScalingGroupArn": group["AutoScalingGroupARN"]}
            for key in ("managedScaling", "managedTerminationProtection", "managedDraining"):
                if key in provider:
                    auto[key] = provider[key]
            self.call(
                "ecs",
                "create_capacity_provider",
                what,
                name=name,
                autoScalingGroupProvider=auto,
                tags=self.tags(provider, "key", "value"),
            )
            self.count["autoscaling_groups"] += 1
            self.count["capacity_providers"] += 1

    def ecs_clusters(self) -> None:
        for cluster in self.estate.get("ecs", {}).get("clusters", []):
            name = cluster["clusterName"]
            what = f"cluster {name}"
            params = self.refs.resolve({k: v for k, v in cluster.items() if k != "tags"}, what)
            arn = self.call(
                "ecs", "create_cluster", what, tags=self.tags(cluster, "key", "value"), **params
            )["cluster"]["clusterArn"]
            self.refs.add("cluster", name, arn)
            for instance in self.asg_instances.get(name, []):
                document = {
                    "instanceId": instance["InstanceId"],
                    "availabilityZone": instance.get("AvailabilityZone", f"{self.region}a"),
                    "region": self.region,
                    "accountId": self.account,
                    "instanceType": instance["InstanceType"],
                    "imageId": instance["ImageId"],
                }
                self.call(
                    "ecs",
                    "register_container_instance",
                    what,
                    cluster=name,
                    instanceIdentityDocument=json.dumps(document),
                )
                self.count["container_instances"] += 1
            self.count["clusters"] += 1

    def ecs_task_definitions(self) -> None:
        for family in self.estate.get("ecs", {}).get("task_definitions", {}):
            for number, revision in enumerate(task_definition_revisions(self.estate, family), 1):
                what = f"task definition {family}:{number}"
                params = self.refs.resolve(revision, what)
                params["tags"] = self.tags(revision, "key", "value")
                arn = self.call("ecs", "register_task_definition", what, family=family, **params)[
                    "taskDefinition"
                ]["taskDefinitionArn"]
                self.refs.add("task_definition", f"{family}:{number}", arn)
                self.refs.add("task_definition", family, arn)
                self.count["task_definitions"] += 1

    # CreateService in moto 5.2.5 drops these; UpdateService stores them (and, given
    # desiredCount, reports the service's tasks as running)
    _AFTER_CREATE = (
        "deploymentConfiguration",
        "enableExecuteCommand",
        "healthCheckGracePeriodSeconds",
        "enableECSManagedTags",
        "placementStrategy",
        "placementConstraints",
    )

    def ecs_services(self) -> None:
        for service in self.estate.get("ecs", {}).get("services", []):
            name, cluster = service["serviceName"], service["cluster"]
            what = f"service {cluster}/{name}"
            params = {k: v for k, v in service.items() if k not in ("tasks", "tags")}
            params = self.refs.resolve(params, what)
            params["taskDefinition"] = self.refs.get(
                "task_definition", service["taskDefinition"], what
            )
            reply = self.call(
                "ecs", "create_service", what, tags=self.tags(service, "key", "value"), **params
            )["service"]
            deployments = reply.get("deployments") or [{}]
            self.deployments[(cluster, name)] = deployments[0].get("id", "ecs-svc/0")
            update = {k: params[k] for k in self._AFTER_CREATE if k in params}
            self.call(
                "ecs",
                "update_service",
                what,
                cluster=cluster,
                service=name,
                desiredCount=params.get("desiredCount", 0),
                **update,
            )
            self.count["services"] += 1

    def ecs_tasks(self) -> None:
        section = self.estate.get("ecs", {})
        for service in section.get("services", []):
            name, cluster = service["serviceName"], service["cluster"]
            what = f"tasks of {cluster}/{name}"
            hints = service.get("tasks") or {}
            base: dict[str, Any] = {
                "cluster": cluster,
                "startedBy": self.deployments[(cluster, name)],
                "group": f"service:{name}",
                "launchType": service.get("launchType", "FARGATE"),
            }
            if service.get("networkConfiguration"):
                base["networkConfiguration"] = self.refs.resolve(
                    service["networkConfiguration"], what
                )
            if service.get("propagateTags") == "SERVICE":
                base["tags"] = self.tags(service, "key", "value")
            running = int(hints.get("running", service.get("desiredCount", 0)))
            latest = self.refs.get("task_definition", service["taskDefinition"], what)
            if running:
                self._run(what, base, latest, running)
            for stopped in hints.get("stopped", []):
                definition = self.refs.get(
                    "task_definition",
                    stopped.get("taskDefinition", service["taskDefinition"]),
                    what,
                )
                self._run(what, base, definition, 1, stop_reason=stopped["reason"])
        for task in section.get("tasks", []):
            what = f"task {task['taskDefinition']} in {task['cluster']}"
            params = self.refs.resolve(
                {k: v for k, v in task.items() if k not in ("stopped", "taskDefinition")}, what
            )
            definition = self.refs.get("task_definition", task["taskDefinition"], what)
            self._run(
                what, params, definition, int(task.get("count", 1)), stop_reason=task.get("stopped")
            )

    def _run(
        self,
        what: str,
        params: dict[str, Any],
        definition: str,
        count: int,
        stop_reason: str | None = None,
    ) -> None:
        reply = self.call("ecs", "run_task", what, taskDefinition=definition, count=count, **params)
        tasks = reply.get("tasks", [])
        if len(tasks) < count:
            raise UserError(
                f"seeding {what} failed: the emulator started {len(tasks)} of {count} tasks "
                f"({reply.get('failures')})",
                _FIX_HINT,
            )
        for task in tasks:
            if stop_reason:
                self.call(
                    "ecs",
                    "stop_task",
                    what,
                    cluster=params["cluster"],
                    task=task["taskArn"],
                    reason=stop_reason,
                )
                self.count["tasks_stopped"] += 1
            else:
                self.count["tasks_running"] += 1

    # -- audit trail, alarms, events -----------------------------------------------------------
    def cloudtrail(self) -> None:
        for trail in self.estate.get("cloudtrail", {}).get("trails", []):
            what = f"trail {trail['Name']}"
            params = {
                k: v for k, v in trail.items() if k not in ("logging", "event_selectors", "tags")
            }
            self.call(
                "cloudtrail",
                "create_trail",
                what,
                TagsList=self.tags(trail),
                **self.refs.resolve(params, what),
            )
            if trail.get("event_selectors"):
                self.call(
                    "cloudtrail",
                    "put_event_selectors",
                    what,
                    TrailName=trail["Name"],
                    EventSelectors=trail["event_selectors"],
                )
            if trail.get("logging"):
                self.call("cloudtrail", "start_logging", what, Name=trail["Name"])
            self.count["trails"] += 1

    def cloudwatch(self) -> None:
        for alarm in expand_alarms(self.estate):
            what = f"alarm {alarm['AlarmName']}"
            self.call("cloudwatch", "put_metric_alarm", what, **self.refs.resolve(alarm, what))
            self.count["alarms"] += 1
        for state in self.estate.get("cloudwatch", {}).get("states", []):
            self.call("cloudwatch", "set_alarm_state", f"alarm {state['AlarmName']}", **state)

    def events(self) -> None:
        for rule in self.estate.get("events", {}).get("rules", []):
            what = f"event rule {rule['Name']}"
            params = self.refs.resolve(
                {k: v for k, v in rule.items() if k not in ("Targets", "tags")}, what
            )
            if isinstance(params.get("EventPattern"), dict):
                params["EventPattern"] = json.dumps(params["EventPattern"])
            self.call("events", "put_rule", what, Tags=self.tags(rule), **params)
            targets = self.refs.resolve(rule.get("Targets", []), what)
            if targets:
                reply = self.call("events", "put_targets", what, Rule=rule["Name"], Targets=targets)
                if reply.get("FailedEntryCount"):
                    raise UserError(f"seeding {what} failed: {reply.get('FailedEntries')}")
                self.count["event_targets"] += len(targets)
            self.count["event_rules"] += 1


# ------------------------------------------------------------------------------------------------
# helpers

_MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


def _fake_manifest(seed_text: str) -> str:
    """A well-formed image manifest whose digests are derived from `seed_text` (no real layers)."""
    digest = "sha256:" + hashlib.sha256(seed_text.encode()).hexdigest()
    layer = "sha256:" + hashlib.sha256(b"layer:" + seed_text.encode()).hexdigest()
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": _MANIFEST_TYPE,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 1469,
                "digest": digest,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": 31_457_280,
                    "digest": layer,
                }
            ],
        }
    )


def _demo_password(user: str) -> str:
    """A password that satisfies the estate's password policy (the emulator stores it only)."""
    return "Demo-" + hashlib.sha256(user.encode()).hexdigest()[:12] + "-pw!9"


def _local_endpoint(session: AwsSession) -> str:
    endpoint = session.options.effective_endpoint
    host = urlparse(endpoint).hostname if endpoint else None
    if not endpoint or host not in LOCAL_HOSTS:
        raise UserError(
            f"refusing to seed the demo estate into {endpoint or 'real AWS'}",
            "the estate is full of planted mistakes; seed only an emulator on 127.0.0.1 "
            "(`ecsguard demo` starts one)",
        )
    return endpoint


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())[:400]
