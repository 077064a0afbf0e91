"""The Snapshot: one account's ECS estate as collected, typed at the seams, AWS-shaped inside.

Sections keep each resource exactly as the AWS API returns it (documented, stable field names), with
timestamps normalised to ISO-8601 UTC strings so a live snapshot and a loaded one are identical. The
typing is at the level checks rely on: which sections exist, which lists they hold and each list's
identity key (used by `diff`). See docs/decisions.md for why we do not remodel every AWS shape.
"""

from __future__ import annotations

import contextlib
import gzip
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ecsguard import __version__
from ecsguard.core.errors import SnapshotError
from ecsguard.core.files import first_error, is_gzip

SNAPSHOT_FORMAT = "ecsguard-snapshot"
SNAPSHOT_VERSION = 1

Resource = dict[str, Any]


class Section(BaseModel):
    """A service's resources in one region (or globally for IAM)."""

    model_config = ConfigDict(extra="forbid")
    #: list field -> the field (or "a|b" fallback chain) that identifies an item, for diff
    keys: ClassVar[dict[str, str]] = {}
    #: fields that change on their own (counters, event feeds): ignored by diff
    volatile: ClassVar[frozenset[str]] = frozenset()
    #: list fields that are state, not configuration: left out of diff unless asked
    ephemeral: ClassVar[frozenset[str]] = frozenset()

    def count(self) -> int:
        return sum(len(getattr(self, name)) for name in self.keys)


class EcsSection(Section):
    clusters: list[Resource] = Field(default_factory=list)
    capacity_providers: list[Resource] = Field(default_factory=list)
    container_instances: list[Resource] = Field(default_factory=list)
    services: list[Resource] = Field(default_factory=list)
    task_definitions: list[Resource] = Field(default_factory=list)
    tasks: list[Resource] = Field(default_factory=list)
    account_settings: list[Resource] = Field(default_factory=list)
    keys: ClassVar[dict[str, str]] = {
        "clusters": "clusterArn",
        "capacity_providers": "capacityProviderArn|name",
        "container_instances": "containerInstanceArn",
        "services": "serviceArn",
        "task_definitions": "taskDefinitionArn",
        "tasks": "taskArn",
        "account_settings": "name|principalArn",
    }
    volatile: ClassVar[frozenset[str]] = frozenset(
        {
            "events",
            "runningCount",
            "pendingCount",
            "runningTasksCount",
            "pendingTasksCount",
            "activeServicesCount",
            "statistics",
            "registeredContainerInstancesCount",
            "remainingResources",
            "agentConnected",
            "version",
            "updatedAt",
        }
    )
    ephemeral: ClassVar[frozenset[str]] = frozenset({"tasks"})


class IamSection(Section):
    """IAM is global: GetAccountAuthorizationDetails plus keys, credential report and account."""

    users: list[Resource] = Field(default_factory=list)
    groups: list[Resource] = Field(default_factory=list)
    roles: list[Resource] = Field(default_factory=list)
    policies: list[Resource] = Field(default_factory=list)
    access_keys: list[Resource] = Field(default_factory=list)
    credential_report: list[Resource] = Field(default_factory=list)
    password_policy: Resource | None = None
    account_summary: Resource = Field(default_factory=dict)
    keys: ClassVar[dict[str, str]] = {
        "users": "Arn",
        "groups": "Arn",
        "roles": "Arn",
        "policies": "Arn",
        "access_keys": "AccessKeyId",
        "credential_report": "arn",
    }
    volatile: ClassVar[frozenset[str]] = frozenset(
        {
            "RoleLastUsed",
            "LastUsed",
            "password_last_used",
            "access_key_1_last_used_date",
            "access_key_2_last_used_date",
            "access_key_1_last_used_region",
            "access_key_2_last_used_region",
            "access_key_1_last_used_service",
            "access_key_2_last_used_service",
        }
    )


class CloudTrailSection(Section):
    trails: list[Resource] = Field(default_factory=list)
    keys: ClassVar[dict[str, str]] = {"trails": "TrailARN"}
    volatile: ClassVar[frozenset[str]] = frozenset(
        {
            "LatestDeliveryTime",
            "LatestDeliveryAttemptTime",
            "LatestDeliveryAttemptSucceeded",
            "TimeLoggingStarted",
            "LatestDigestDeliveryTime",
            "LatestDigestDeliveryAttemptTime",
            "LatestDigestDeliveryAttemptSucceeded",
            "LatestCloudWatchLogsDeliveryTime",
        }
    )


class CloudWatchSection(Section):
    metric_alarms: list[Resource] = Field(default_factory=list)
    composite_alarms: list[Resource] = Field(default_factory=list)
    keys: ClassVar[dict[str, str]] = {"metric_alarms": "AlarmArn", "composite_alarms": "AlarmArn"}
    volatile: ClassVar[frozenset[str]] = frozenset(
        {
            "StateValue",
            "StateReason",
            "StateReasonData",
            "StateUpdatedTimestamp",
            "StateTransitionedTimestamp",
        }
    )


class LogsSection(Section):
    log_groups: list[Resource] = Field(default_factory=list)
    metric_filters: list[Resource] = Field(default_factory=list)
    subscription_filters: list[Resource] = Field(default_factory=list)
    keys: ClassVar[dict[str, str]] = {
        "log_groups": "logGroupArn|arn|logGroupName",
        "metric_filters": "logGroupName+filterName",
        "subscription_filters": "logGroupName+filterName",
    }
    volatile: ClassVar[frozenset[str]] = frozenset({"storedBytes"})


class EventsSection(Section):
    buses: list[Resource] = Field(default_factory=list)
    rules: list[Resource] = Field(default_factory=list)
    keys: ClassVar[dict[str, str]] = {"buses": "Arn", "rules": "Arn"}


class EcrSection(Section):
    repositories: list[Resource] = Field(default_factory=list)
    registry_scanning: Resource = Field(default_factory=dict)
    keys: ClassVar[dict[str, str]] = {"repositories": "repositoryArn"}


class Ec2Section(Section):
    instances: list[Resource] = Field(default_factory=list)
    security_groups: list[Resource] = Field(default_factory=list)
    subnets: list[Resource] = Field(default_factory=list)
    keys: ClassVar[dict[str, str]] = {
        "instances": "InstanceId",
        "security_groups": "GroupId",
        "subnets": "SubnetId",
    }
    volatile: ClassVar[frozenset[str]] = frozenset({"State", "StateTransitionReason"})


class SecretsManagerSection(Section):
    secrets: list[Resource] = Field(default_factory=list)
    keys: ClassVar[dict[str, str]] = {"secrets": "ARN"}
    volatile: ClassVar[frozenset[str]] = frozenset({"LastAccessedDate"})


class SsmSection(Section):
    parameters: list[Resource] = Field(default_factory=list)
    keys: ClassVar[dict[str, str]] = {"parameters": "ARN|Name"}


class RegionInventory(BaseModel):
    """Every regional section; a field name here is the name of the collector that fills it."""

    model_config = ConfigDict(extra="forbid")
    ecs: EcsSection = Field(default_factory=EcsSection)
    ecr: EcrSection = Field(default_factory=EcrSection)
    cloudtrail: CloudTrailSection = Field(default_factory=CloudTrailSection)
    cloudwatch: CloudWatchSection = Field(default_factory=CloudWatchSection)
    logs: LogsSection = Field(default_factory=LogsSection)
    events: EventsSection = Field(default_factory=EventsSection)
    ec2: Ec2Section = Field(default_factory=Ec2Section)
    secretsmanager: SecretsManagerSection = Field(default_factory=SecretsManagerSection)
    ssm: SsmSection = Field(default_factory=SsmSection)

    def sections(self) -> dict[str, Section]:
        return {name: getattr(self, name) for name in type(self).model_fields}


class Gap(BaseModel):
    """Something that could not be collected, and why; checks report NOT_ASSESSED from these."""

    service: str
    action: str
    region: str
    error_code: str
    message: str = ""

    def __str__(self) -> str:
        return f"not collected: {self.error_code} on {self.service}:{self.action} in {self.region}"


class ApiStats(BaseModel):
    calls: dict[str, int] = Field(default_factory=dict)
    total_calls: int = 0
    http_requests: int = 0
    retries: int = 0


class Snapshot(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Literal["ecsguard-snapshot"] = "ecsguard-snapshot"
    version: int = SNAPSHOT_VERSION
    ecsguard_version: str = __version__
    account: str
    caller_arn: str = ""
    collected_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    duration_seconds: float = 0.0
    endpoint_url: str | None = None
    regions: dict[str, RegionInventory] = Field(default_factory=dict)
    iam: IamSection = Field(default_factory=IamSection)
    gaps: list[Gap] = Field(default_factory=list)
    api: ApiStats = Field(default_factory=ApiStats)

    def sections(self) -> list[tuple[str, str, Section]]:
        """(region, name, section) for every section; IAM appears as region 'global'."""
        out: list[tuple[str, str, Section]] = [("global", "iam", self.iam)]
        for region, inventory in sorted(self.regions.items()):
            out.extend((region, name, section) for name, section in inventory.sections().items())
        return out

    def counts(self) -> dict[str, int]:
        """Resources per `section.list` over all regions, for summaries."""
        totals: dict[str, int] = {}
        for _, name, section in self.sections():
            for field in section.keys:
                key = f"{name}.{field}"
                totals[key] = totals.get(key, 0) + len(getattr(section, field))
        return totals

    def resource_total(self) -> int:
        return sum(self.counts().values())


def save(snapshot: Snapshot, path: Path | str) -> Path:
    """Write JSON, gzip-compressed when the name ends in .gz; atomic (temp file, then rename)."""
    target = Path(path)
    data = orjson.dumps(snapshot.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    if target.suffix == ".gz":
        data = gzip.compress(data, compresslevel=6)
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        tmp.replace(target)
    except OSError as err:
        with contextlib.suppress(OSError):  # a partial file must not stay behind
            tmp.unlink()
        raise SnapshotError(
            f"cannot write snapshot {target}: {err.strerror or err}",
            "check that the folder can be written and the disk has room",
        ) from None
    return target


def dumps(snapshot: Snapshot) -> bytes:
    return orjson.dumps(snapshot.model_dump(mode="json"), option=orjson.OPT_INDENT_2)


def load(path: Path | str) -> Snapshot:
    """Read a snapshot file (plain or gzip JSON), with one clear error for every way it can fail."""
    source = Path(path)
    try:
        raw = source.read_bytes()
    except FileNotFoundError:
        raise SnapshotError(f"snapshot file {source} does not exist", "check the path") from None
    except OSError as err:
        raise SnapshotError(
            f"cannot read snapshot {source}: {err.strerror}", "check the path"
        ) from None
    if is_gzip(raw):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise SnapshotError(
                f"snapshot {source} is a damaged gzip file ({err})",
                "collect a new one with `ecsguard inventory`",
            ) from None
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise SnapshotError(
            f"snapshot {source} is not valid JSON ({err})",
            "collect a new one with `ecsguard inventory`",
        ) from None
    if not isinstance(doc, dict) or doc.get("format") != SNAPSHOT_FORMAT:
        raise SnapshotError(
            f'{source} is not an ecsguard snapshot (no "format": "{SNAPSHOT_FORMAT}")',
            "pass a file written by `ecsguard inventory -o FILE`",
        )
    version = doc.get("version")
    if not isinstance(version, int) or version > SNAPSHOT_VERSION:
        raise SnapshotError(
            f"snapshot {source} has format version {version}, newer than this ecsguard reads"
            f" ({SNAPSHOT_VERSION})",
            "upgrade ecsguard (pip install -U ecsguard) or collect the snapshot again",
        )
    try:
        return Snapshot.model_validate(doc)
    except ValidationError as err:
        raise SnapshotError(
            f"snapshot {source} is corrupt at {first_error(err)}",
            "collect a new one with `ecsguard inventory`",
        ) from None
