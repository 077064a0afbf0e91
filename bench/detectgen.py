"""Seeded data for bench/detect.py: 500 mixed detection rules as YAML files, and a stream of ECS
events, CloudTrail records and log lines in which a small fraction matches them.

    .venv/bin/python bench/detectgen.py --rules DIR [--seed 11] [--total 500]   # writes the rules

Rules (`write_rules`), one YAML file per type and kind under DIR:
- every SigmaHQ CloudTrail rule in ../shared/testdata/sigma that ecsguard loads (56 at the time
  of writing), as `sigma: {path: ...}`;
- `log_filter` (LOG_FILTERS of them): CloudWatch filter patterns, terms, phrases, ?OR,
  exclusions, %regex% and JSON selectors, some limited to a service, some counted as metrics;
- `metric_alarm` (METRIC_ALARMS): CloudWatch alarms over those log metrics;
- `event_pattern` for the rest: EventBridge patterns over ECS events (task, service, deployment
  and container instance changes) and over CloudTrail records in EventBridge's shape, in six
  kinds of equal share (exact, prefix, numeric, anything-but, wildcard, `$or`), with suffix,
  exists, equals-ignore-case and cidr riding along;
- three marker rules (ids `bench-marker-*`, counted among the above), one per stream, each
  grouped by a value only marker records carry, so every marker is a new alert.

Stream (`Stream`): ECS events as EventBridge delivers them (a JSON list, for /ingest/ecs-events),
CloudTrail records (`{"Records": [...]}`, for /ingest/cloudtrail) and app log lines (JSON and
Java-style text, for /ingest/lines). Values are drawn from skewed vocabularies: the common
values (reads, RUNNING tasks, INFO lines) fill most of the stream and the rules mostly name the
rare ones, so only a small fraction of records matches anything. bench/detect.py measures that
fraction rather than assuming it.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import yaml

BENCH = Path(__file__).resolve().parent
SIGMA_DIR = BENCH.parent.parent / "shared" / "testdata" / "sigma" / "aws"

LOG_FILTERS = 40
METRIC_ALARMS = 8
MARKER_ECS = "bench-marker-ecs"
MARKER_CLOUDTRAIL = "bench-marker-cloudtrail"
MARKER_LINES = "bench-marker-lines"
MARKER_RULES = (MARKER_ECS, MARKER_CLOUDTRAIL, MARKER_LINES)
MARKER_TEXT = "BENCH_MARKER"
MARKER_CALL = "BenchMarkerCall"
#: in every record's id (ECS event id, CloudTrail eventID, a log line's request id): the load
#: generator replaces it in each body it posts (`unique`), so a body sent again is new records
#: rather than duplicates the server drops
UNIQUE = "UQ00000000"

# --- vocabulary ------------------------------------------------------------------------------

ACCOUNTS = ["111122223333", "444455556666", "777788889999"]
REGIONS = ["ap-northeast-1", "us-east-1", "eu-west-1"]
CLUSTERS = ["prod", "staging", "batch", "payments", "search"]
SERVICES = ["api", "web", "worker", "cron", "gateway", "billing", "indexer", "auth"]
CONTAINERS = ["app", "log_router", "envoy", "xray"]
STOP_CODES = ["EssentialContainerExited", "TaskFailedToStart", "SpotInterruption"]  # the rarer ones
SERVICE_EVENTS = [  # (eventType, eventName, weight)
    ("INFO", "SERVICE_STEADY_STATE", 70),
    ("INFO", "CAPACITY_PROVIDER_STEADY_STATE", 20),
    ("WARN", "SERVICE_TASK_START_IMPAIRED", 3),
    ("ERROR", "SERVICE_TASK_PLACEMENT_FAILURE", 2),
    ("ERROR", "SERVICE_DISCOVERY_INSTANCE_UNHEALTHY", 2),
    ("WARN", "SERVICE_TASK_CONFIGURATION_FAILURE", 1),
    ("ERROR", "SERVICE_DAEMON_PLACEMENT_CONSTRAINT_VIOLATED", 1),
]
DEPLOYMENT_EVENTS = [
    ("INFO", "SERVICE_DEPLOYMENT_IN_PROGRESS", 50),
    ("INFO", "SERVICE_DEPLOYMENT_COMPLETED", 45),
    ("ERROR", "SERVICE_DEPLOYMENT_FAILED", 5),
]
#: service -> (common reads, rarer writes, rare sensitive calls)
API_CALLS: dict[str, tuple[list[str], list[str], list[str]]] = {
    "ecs": (
        ["DescribeTasks", "DescribeServices", "ListTasks", "DescribeTaskDefinition"],
        ["RunTask", "StopTask", "UpdateService", "RegisterTaskDefinition", "TagResource"],
        ["ExecuteCommand", "DeleteService", "DeleteCluster", "DeregisterTaskDefinition"],
    ),
    "iam": (
        ["GetRole", "ListRoles", "GetPolicy", "ListAttachedRolePolicies"],
        ["TagRole", "UpdateRole", "CreateServiceLinkedRole"],
        [
            "CreateUser",
            "CreateAccessKey",
            "AttachRolePolicy",
            "PutRolePolicy",
            "UpdateAssumeRolePolicy",
            "DeleteRolePolicy",
            "CreateLoginProfile",
            "UpdateLoginProfile",
            "AddUserToGroup",
        ],
    ),
    "sts": (
        ["AssumeRole", "GetCallerIdentity"],
        ["AssumeRoleWithWebIdentity"],
        ["GetFederationToken", "GetSessionToken"],
    ),
    "s3": (
        ["GetObject", "HeadObject", "ListObjects"],
        ["PutObject", "DeleteObject"],
        [
            "PutBucketPolicy",
            "DeleteBucketPolicy",
            "PutBucketVersioning",
            "PutBucketPublicAccessBlock",
        ],
    ),
    "ec2": (
        ["DescribeInstances", "DescribeSecurityGroups", "DescribeSubnets"],
        ["RunInstances", "CreateTags", "ModifyInstanceAttribute"],
        [
            "AuthorizeSecurityGroupIngress",
            "CreateSnapshot",
            "ImportKeyPair",
            "DisableEbsEncryptionByDefault",
            "CreateRoute",
            "ModifySnapshotAttribute",
        ],
    ),
    "kms": (
        ["Decrypt", "GenerateDataKey", "Encrypt"],
        ["CreateGrant"],
        ["ScheduleKeyDeletion", "DisableKey", "ImportKeyMaterial"],
    ),
    "logs": (
        ["DescribeLogStreams", "GetLogEvents"],
        ["CreateLogStream", "PutRetentionPolicy"],
        ["DeleteLogGroup"],
    ),
    "ecr": (
        ["GetAuthorizationToken", "BatchGetImage", "GetDownloadUrlForLayer"],
        ["PutImage", "InitiateLayerUpload"],
        ["DeleteRepository", "SetRepositoryPolicy"],
    ),
    "secretsmanager": (
        ["GetSecretValue", "DescribeSecret"],
        ["PutSecretValue"],
        ["DeleteSecret", "BatchGetSecretValue"],
    ),
    "cloudtrail": (
        ["DescribeTrails", "GetTrailStatus", "LookupEvents"],
        ["PutEventSelectors"],
        ["StopLogging", "DeleteTrail", "UpdateTrail"],
    ),
    "guardduty": (
        ["ListDetectors", "GetDetector"],
        ["UpdateDetector"],
        ["DeleteDetector", "CreateIPSet"],
    ),
    "signin": (["ConsoleLogin"], ["CheckMfa"], ["SwitchRole"]),
}
SERVICE_WEIGHTS = {
    "ecs": 14,
    "iam": 6,
    "sts": 22,
    "s3": 16,
    "ec2": 8,
    "kms": 16,
    "logs": 6,
    "ecr": 7,
    "secretsmanager": 5,
    "cloudtrail": 1,
    "guardduty": 1,
    "signin": 1,
}
IDENTITY_TYPES = ["AssumedRole"] * 6 + ["IAMUser", "IAMUser", "AWSService"]
USER_AGENTS = [
    "aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5 md/GOOS#linux api/ecs#1.44.1",
    "Boto3/1.35.10 md/Botocore#1.35.10 ua/2.0 os/linux#6.1 lang/python#3.12.5",
    "aws-cli/2.17.40 md/awscrt#0.21.2 ua/2.0 os/linux#6.1 exec-env/CloudShell",
    "ecs.amazonaws.com",
    "AWS Internal",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/128.0",
    "terraform-provider-aws/5.64.0 (+https://registry.terraform.io) aws-sdk-go-v2/1.30.4",
]
RARE_AGENTS = ["TruffleHog", "kali-linux aws-cli/2.13.0", "S3 Browser 11.5.7 https://s3browser.com"]
ERRORS = ["AccessDenied", "ThrottlingException", "ValidationException", "NoSuchEntityException"]
PATHS = ["/api/orders", "/api/users", "/api/pay", "/api/search", "/healthz", "/api/cart"]
JAVA_CLASSES = ["c.e.orders.OrderController", "c.e.pay.PaymentClient", "c.e.db.Pool", "c.e.Main"]
RARE_LOG_TEXTS = [
    "java.lang.OutOfMemoryError: Java heap space",
    "Connection refused: db-primary:5432",
    "panic: runtime error: invalid memory address or nil pointer dereference",
    "FATAL could not allocate shared memory segment",
    "upstream timed out after 30000ms while reading response header",
    "SSL handshake failed: certificate has expired",
    "Too many open files",
    "deadlock detected while waiting for ShareLock",
]


def _weighted(rng: random.Random, pairs: Sequence[tuple[Any, int]]) -> Any:
    return rng.choices([v for v, _ in pairs], weights=[w for _, w in pairs])[0]


def _arn(account: str, region: str, kind: str, name: str, service: str = "ecs") -> str:
    return f"arn:aws:{service}:{region}:{account}:{kind}/{name}"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the stream ------------------------------------------------------------------------------


@dataclass
class Stream:
    """Seeded records; `start` is the time of the first one, later ones are 1 ms apart."""

    seed: int = 11
    start: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))
    rng: random.Random = field(init=False)
    count: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.principals = [
            (kind, self._principal(kind, i)) for i, kind in enumerate(IDENTITY_TYPES * 4)
        ]
        self.root = self._principal("Root", 0)

    def _principal(self, kind: str, i: int) -> str:
        account = ACCOUNTS[i % len(ACCOUNTS)]
        if kind == "Root":
            return f"arn:aws:iam::{account}:root"
        if kind == "IAMUser":
            return f"arn:aws:iam::{account}:user/{['dev', 'ops', 'ci'][i % 3]}-{i}"
        if kind == "AWSService":
            return ""
        role = ["deploy", "ecsTaskRole-api", "ecsTaskRole-worker", "admin", "readonly"][i % 5]
        return f"arn:aws:sts::{account}:assumed-role/{role}/session-{i}"

    def _now(self) -> datetime:
        self.count += 1
        return self.start + timedelta(milliseconds=self.count)

    # ECS events -------------------------------------------------------------------------------

    def ecs_event(self) -> dict[str, Any]:
        rng = self.rng
        when = self._now()
        account, region = rng.choice(ACCOUNTS), rng.choice(REGIONS)
        cluster, service = rng.choice(CLUSTERS), rng.choice(SERVICES)
        cluster_arn = _arn(account, region, "cluster", cluster)
        base: dict[str, Any] = {
            "version": "0",
            "id": f"{UNIQUE}-{self.seed:02x}{self.count:012x}-ecs",
            "source": "aws.ecs",
            "account": account,
            "time": _iso(when),
            "region": region,
        }
        roll = rng.random()
        if roll < 0.62:
            return {**base, **self._task_change(account, region, cluster, service, cluster_arn)}
        if roll < 0.84:
            event_type, name = _weighted(rng, [((t, n), w) for t, n, w in SERVICE_EVENTS])
            detail: dict[str, Any] = {
                "eventType": event_type,
                "eventName": name,
                "clusterArn": cluster_arn,
                "createdAt": _iso(when),
            }
            if event_type != "INFO":
                detail["reasons"] = [f"RESOURCE:{rng.choice(['CPU', 'MEMORY', 'ENI'])}"]
            return {
                **base,
                "detail-type": "ECS Service Action",
                "resources": [_arn(account, region, "service", f"{cluster}/{service}")],
                "detail": detail,
            }
        if roll < 0.94:
            event_type, name = _weighted(rng, [((t, n), w) for t, n, w in DEPLOYMENT_EVENTS])
            failed = name == "SERVICE_DEPLOYMENT_FAILED"
            return {
                **base,
                "detail-type": "ECS Deployment State Change",
                "resources": [_arn(account, region, "service", f"{cluster}/{service}")],
                "detail": {
                    "eventType": event_type,
                    "eventName": name,
                    "deploymentId": f"ecs-svc/{rng.randint(10**15, 10**16)}",
                    "updatedAt": _iso(when),
                    "reason": "ECS deployment circuit breaker: task failed to start."
                    if failed
                    else "",
                },
            }
        return {
            **base,
            "detail-type": "ECS Container Instance State Change",
            "resources": [_arn(account, region, "container-instance", f"{cluster}/{self.count}")],
            "detail": {
                "agentConnected": rng.random() < 0.97,
                "clusterArn": cluster_arn,
                "status": _weighted(rng, [("ACTIVE", 90), ("DRAINING", 8), ("INACTIVE", 2)]),
                "version": rng.randint(1, 5000),
                "remainingResources": [
                    {"name": "CPU", "type": "INTEGER", "integerValue": rng.randint(0, 4096)},
                    {"name": "MEMORY", "type": "INTEGER", "integerValue": rng.randint(0, 15000)},
                ],
            },
        }

    def _task_change(
        self, account: str, region: str, cluster: str, service: str, cluster_arn: str
    ) -> dict[str, Any]:
        rng = self.rng
        status = _weighted(
            rng,
            [
                ("RUNNING", 55),
                ("PENDING", 15),
                ("PROVISIONING", 10),
                ("DEACTIVATING", 8),
                ("STOPPED", 12),
            ],
        )
        revision = rng.randint(1, 40)
        task_id = f"{rng.getrandbits(128):032x}"
        containers = []
        for name in rng.sample(CONTAINERS, rng.randint(1, 3)):
            container: dict[str, Any] = {"name": name, "lastStatus": status}
            if status == "STOPPED":
                code = _weighted(rng, [(0, 80), (1, 10), (143, 6), (137, 2), (139, 1), (255, 1)])
                container["exitCode"] = code
                if code == 137:
                    container["reason"] = "OutOfMemoryError: Container killed due to memory usage"
            containers.append(container)
        detail: dict[str, Any] = {
            "clusterArn": cluster_arn,
            "taskArn": _arn(account, region, "task", f"{cluster}/{task_id}"),
            "taskDefinitionArn": _arn(account, region, "task-definition", f"{service}:{revision}"),
            "group": f"service:{service}",
            "lastStatus": status,
            "desiredStatus": "STOPPED" if status in ("STOPPED", "DEACTIVATING") else "RUNNING",
            "launchType": _weighted(rng, [("FARGATE", 80), ("EC2", 20)]),
            "cpu": rng.choice(["256", "512", "1024", "2048"]),
            "memory": rng.choice(["512", "1024", "2048", "4096"]),
            "version": rng.randint(1, 9),
            "availabilityZone": f"{region}{rng.choice('abc')}",
            "containers": containers,
        }
        if status == "STOPPED":
            detail["stopCode"] = _weighted(
                rng,
                [
                    ("UserInitiated", 60),
                    ("ServiceSchedulerInitiated", 25),
                    ("EssentialContainerExited", 10),
                    ("TaskFailedToStart", 4),
                    ("SpotInterruption", 1),
                ],
            )
            detail["stoppedReason"] = rng.choice(
                [
                    "Scaling activity initiated by (deployment ecs-svc/1)",
                    "Essential container in task exited",
                    "Task failed ELB health checks in (target-group tg-api)",
                    "CannotPullContainerError: pull image manifest has been retried 5 time(s)",
                ]
            )
        return {
            "detail-type": "ECS Task State Change",
            "resources": [detail["taskArn"]],
            "detail": detail,
        }

    # CloudTrail records -----------------------------------------------------------------------

    def cloudtrail_record(self) -> dict[str, Any]:
        rng = self.rng
        when = self._now()
        service = _weighted(rng, list(SERVICE_WEIGHTS.items()))
        reads, writes, rare = API_CALLS[service]
        roll = rng.random()
        name = rng.choice(reads if roll < 0.9 else writes if roll < 0.995 else rare)
        kind, arn = ("Root", self.root) if rng.random() < 0.0005 else rng.choice(self.principals)
        account = arn.split(":")[4] if arn else rng.choice(ACCOUNTS)
        region = rng.choice(REGIONS)
        identity: dict[str, Any] = {"type": kind, "accountId": account}
        if arn:
            identity["arn"] = arn
            identity["principalId"] = f"AROA{abs(hash(arn)) % 10**12:012d}:session"
            identity["accessKeyId"] = f"ASIA{rng.getrandbits(48):012X}"
        else:
            identity["invokedBy"] = f"{rng.choice(['ecs', 'ecr', 'lambda'])}.amazonaws.com"
        agent = rng.choice(RARE_AGENTS) if rng.random() < 0.0005 else rng.choice(USER_AGENTS)
        record: dict[str, Any] = {
            "eventVersion": "1.09",
            "userIdentity": identity,
            "eventTime": _iso(when),
            "eventSource": f"{service}.amazonaws.com",
            "eventName": name,
            "awsRegion": region,
            "sourceIPAddress": rng.choice(
                [
                    f"10.{rng.randint(0, 3)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                    f"10.{rng.randint(0, 3)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                    f"{rng.choice(['ecs', 'ecr', 'lambda'])}.amazonaws.com",
                    f"203.0.113.{rng.randint(1, 254)}",
                    f"198.51.100.{rng.randint(1, 254)}",
                ]
            ),
            "userAgent": agent,
            "requestParameters": self._parameters(service, name),
            "responseElements": None,
            "requestID": f"{rng.getrandbits(64):016x}",
            "eventID": f"{UNIQUE}-{self.seed:02x}{self.count:012x}-ct",
            "readOnly": name in reads,
            "eventType": "AwsConsoleSignIn" if service == "signin" else "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": account,
        }
        if service == "signin":
            record["additionalEventData"] = {
                "MFAUsed": "Yes" if rng.random() < 0.98 else "No",
                "LoginTo": "https://console.aws.amazon.com/",
            }
            record["responseElements"] = {
                "ConsoleLogin": "Success" if rng.random() < 0.99 else "Failure"
            }
        if rng.random() < 0.03:
            record["errorCode"] = rng.choice(ERRORS)
            record["errorMessage"] = "User is not authorized to perform this operation"
        return record

    def _parameters(self, service: str, name: str) -> dict[str, Any] | None:
        rng = self.rng
        if service == "ecs":
            params: dict[str, Any] = {"cluster": rng.choice(CLUSTERS)}
            if name == "UpdateService":
                params["service"] = rng.choice(SERVICES)
                params["desiredCount"] = _weighted(rng, [(2, 50), (4, 30), (10, 15), (50, 5)])
            if name == "RunTask":
                params["count"] = rng.randint(1, 10)
            return params
        if service == "s3":
            return {"bucketName": f"bucket-{rng.randint(0, 40)}", "key": f"k/{rng.randint(0, 999)}"}
        if service == "ec2" and name == "AuthorizeSecurityGroupIngress":
            return {
                "groupId": f"sg-{rng.getrandbits(32):08x}",
                "ipPermissions": {
                    "items": [
                        {
                            "fromPort": rng.choice([22, 443, 3389]),
                            "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]},
                        }
                    ]
                },
            }
        if service == "ec2" and name == "RunInstances":
            return {
                "instanceType": rng.choice(["t3.micro", "m7g.large", "p4d.24xlarge"]),
                "maxCount": rng.randint(1, 20),
            }
        if service in ("iam", "secretsmanager", "kms", "logs"):
            return {"name": f"res-{rng.randint(0, 60)}"}
        return None

    # log lines --------------------------------------------------------------------------------

    def log_line(self) -> str:
        rng = self.rng
        when = self._now()
        stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        rare = rng.random() < 0.004
        level = _weighted(rng, [("INFO", 90), ("DEBUG", 4), ("WARN", 4), ("ERROR", 2)])
        if rare:
            level = rng.choice(["ERROR", "FATAL", "WARN"])
        request = f"{UNIQUE}{self.count:08x}"
        if rng.random() < 0.6:
            status = _weighted(rng, [(200, 90), (201, 4), (404, 3), (500, 2), (503, 1)])
            latency = int(rng.expovariate(1 / 40)) + 1
            line: dict[str, Any] = {
                "time": stamp,
                "level": level,
                "msg": f"{rng.choice(RARE_LOG_TEXTS) if rare else 'request handled'} ({request})",
                "request_id": request,
                "path": rng.choice(PATHS),
                "status": status,
                "latency_ms": latency,
                "user": f"u{rng.randint(1, 5000)}",
            }
            return orjson.dumps(line).decode()
        text = (
            rng.choice(RARE_LOG_TEXTS)
            if rare
            else f"{rng.choice(['GET', 'POST'])} {rng.choice(PATHS)}/{rng.randint(1, 9999)} "
            f"{_weighted(rng, [(200, 95), (404, 3), (500, 2)])} {int(rng.expovariate(1 / 40))}ms"
        )
        thread = f"http-nio-8080-exec-{rng.randint(1, 20)}"
        return f"{stamp} {level} [{thread}] {rng.choice(JAVA_CLASSES)} - {text} req={request}"

    # bodies as the receivers get them ---------------------------------------------------------

    def ecs_body(self, n: int, marker: str | None = None) -> bytes:
        events = [self.ecs_event() for _ in range(n)]
        if marker is not None:
            events[-1] = marker_ecs_event(marker, self._now())
        return orjson.dumps(events)

    def cloudtrail_body(self, n: int, marker: str | None = None) -> bytes:
        records = [self.cloudtrail_record() for _ in range(n)]
        if marker is not None:
            records[-1] = marker_cloudtrail_record(marker, self._now())
        return orjson.dumps({"Records": records})

    def lines_body(self, n: int, marker: str | None = None) -> bytes:
        lines = [self.log_line() for _ in range(n)]
        if marker is not None:
            lines[-1] = f"{_iso(self._now())} ERROR {MARKER_TEXT} {marker}"
        return ("\n".join(lines) + "\n").encode()


def unique(data: bytes, number: int) -> bytes:
    """The body with its records' ids made unique to post `number`."""
    return data.replace(UNIQUE.encode(), b"UQ%08x" % number)


def lines_params(rng: random.Random, marker: str | None = None) -> dict[str, str]:
    """The query of a /ingest/lines post: the lines' cluster and service (a marker body names
    its own service, which its rule groups by)."""
    service = f"marker-{marker}" if marker is not None else rng.choice(SERVICES)
    return {"cluster": rng.choice(CLUSTERS), "service": service, "container": "app"}


def marker_ecs_event(marker: str, when: datetime) -> dict[str, Any]:
    return {
        "version": "0",
        "id": marker,
        "detail-type": "ECS Task State Change",
        "source": "aws.ecs",
        "account": ACCOUNTS[0],
        "time": _iso(when),
        "region": REGIONS[0],
        "resources": [],
        "detail": {"group": "service:bench-marker", "lastStatus": "STOPPED", "marker": marker},
    }


def marker_cloudtrail_record(marker: str, when: datetime) -> dict[str, Any]:
    return {
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNTS[0]}:user/bench"},
        "eventTime": _iso(when),
        "eventSource": "sts.amazonaws.com",
        "eventName": MARKER_CALL,
        "awsRegion": REGIONS[0],
        "sourceIPAddress": "192.0.2.1",
        "userAgent": "bench",
        "requestParameters": None,
        "responseElements": None,
        "eventID": marker,
        "readOnly": True,
        "eventType": "AwsApiCall",
        "recipientAccountId": ACCOUNTS[0],
    }


# --- rules -----------------------------------------------------------------------------------


def _pick_call(rng: random.Random, tier: int) -> tuple[str, str]:
    """A (service, eventName); tier 1 = writes, 2 = rare calls."""
    service = rng.choice(list(API_CALLS))
    names = API_CALLS[service][tier]
    return service, rng.choice(names)


def _ecs_exact(rng: random.Random) -> dict[str, Any]:
    roll = rng.random()
    if roll < 0.5:
        return {
            "source": ["aws.ecs"],
            "detail-type": ["ECS Task State Change"],
            "detail": {
                "lastStatus": ["STOPPED"],
                "stopCode": [rng.choice(STOP_CODES)],
                "group": [f"service:{rng.choice(SERVICES)}"],
            },
        }
    if roll < 0.8:
        _, name, _ = rng.choice(SERVICE_EVENTS[2:])
        return {
            "source": ["aws.ecs"],
            "detail-type": ["ECS Service Action"],
            "detail": {"eventName": [name]},
            "region": [rng.choice(REGIONS)],
            "account": [rng.choice(ACCOUNTS)],
        }
    return {
        "source": ["aws.ecs"],
        "detail-type": ["ECS Deployment State Change"],
        "detail": {"eventName": ["SERVICE_DEPLOYMENT_FAILED"]},
        "resources": [
            _arn(
                rng.choice(ACCOUNTS),
                rng.choice(REGIONS),
                "service",
                f"{rng.choice(CLUSTERS)}/{rng.choice(SERVICES)}",
            )
        ],
    }


def _trail_exact(rng: random.Random) -> dict[str, Any]:
    service, name = _pick_call(rng, 2)
    detail: dict[str, Any] = {"eventSource": [f"{service}.amazonaws.com"], "eventName": [name]}
    if rng.random() < 0.5:
        detail["userIdentity"] = {"type": [rng.choice(["IAMUser", "AssumedRole", "Root"])]}
    return {
        "source": [f"aws.{service}"],
        "detail-type": ["AWS API Call via CloudTrail"],
        "detail": detail,
    }


def _ecs_prefix(rng: random.Random) -> dict[str, Any]:
    account, region = rng.choice(ACCOUNTS), rng.choice(REGIONS)
    if rng.random() < 0.5:
        return {
            "source": ["aws.ecs"],
            "detail-type": ["ECS Task State Change"],
            "detail": {
                "lastStatus": ["STOPPED"],
                "stoppedReason": [
                    {"prefix": rng.choice(["CannotPullContainerError", "Task failed ELB"])}
                ],
                "taskDefinitionArn": [
                    {"prefix": _arn(account, region, "task-definition", rng.choice(SERVICES) + ":")}
                ],
            },
        }
    return {
        "source": ["aws.ecs"],
        "detail-type": ["ECS Service Action"],
        "detail": {
            "eventType": ["ERROR", "WARN"],
            "clusterArn": [{"prefix": f"arn:aws:ecs:{region}:{account}:cluster/"}],
            "eventName": [{"suffix": rng.choice(["_FAILURE", "_UNHEALTHY", "_IMPAIRED"])}],
        },
    }


def _trail_prefix(rng: random.Random) -> dict[str, Any]:
    service, _ = _pick_call(rng, 2)
    verb = rng.choice(["Delete", "Put", "Create", "Update", "Disable", "Stop", "Import"])
    account = rng.choice(ACCOUNTS)
    return {
        "source": [f"aws.{service}"],
        "detail": {
            "eventName": [{"prefix": verb}],
            "userIdentity": {"arn": [{"prefix": f"arn:aws:iam::{account}:user/"}]},
        },
    }


def _ecs_numeric(rng: random.Random) -> dict[str, Any]:
    roll = rng.random()
    if roll < 0.5:
        low = rng.choice([1, 2, 100, 126, 128, 137, 139, 143, 200, 255])
        return {
            "source": ["aws.ecs"],
            "detail-type": ["ECS Task State Change"],
            "detail": {
                "group": [f"service:{rng.choice(SERVICES)}"],
                "containers": {
                    "exitCode": [{"numeric": [">=", low, "<=", low + rng.randint(1, 3)]}]
                },
            },
        }
    if roll < 0.75:
        return {
            "source": ["aws.ecs"],
            "detail-type": ["ECS Container Instance State Change"],
            "detail": {
                "remainingResources": {
                    "name": [rng.choice(["CPU", "MEMORY"])],
                    "integerValue": [{"numeric": ["<", rng.choice([16, 32, 64, 128])]}],
                },
            },
        }
    return {
        "source": ["aws.ecs"],
        "detail-type": ["ECS Task State Change"],
        "detail": {
            "lastStatus": ["STOPPED"],
            "version": [{"numeric": [">", rng.randint(6, 8)]}],
            "launchType": ["EC2"],
            "clusterArn": [{"suffix": f":cluster/{rng.choice(CLUSTERS)}"}],
        },
    }


def _trail_numeric(rng: random.Random) -> dict[str, Any]:
    if rng.random() < 0.5:
        return {
            "source": ["aws.ecs"],
            "detail": {
                "eventName": ["UpdateService"],
                "requestParameters": {
                    "desiredCount": [{"numeric": [">=", rng.choice([20, 30, 40, 50])]}],
                    "cluster": [rng.choice(CLUSTERS)],
                },
            },
        }
    return {
        "source": ["aws.ec2"],
        "detail": {
            "eventName": ["RunInstances"],
            "requestParameters": {
                "maxCount": [{"numeric": [">", rng.randint(15, 19)]}],
                "instanceType": [{"prefix": rng.choice(["p4d", "m7g", "t3"])}],
            },
        },
    }


def _ecs_anything_but(rng: random.Random) -> dict[str, Any]:
    if rng.random() < 0.5:
        return {
            "source": ["aws.ecs"],
            "detail-type": ["ECS Task State Change"],
            "detail": {
                "lastStatus": ["STOPPED"],
                "stopCode": [{"anything-but": ["UserInitiated", "ServiceSchedulerInitiated"]}],
                "group": [f"service:{rng.choice(SERVICES)}"],
                "clusterArn": [{"suffix": f"cluster/{rng.choice(CLUSTERS)}"}],
            },
        }
    return {
        "source": ["aws.ecs"],
        "detail-type": ["ECS Container Instance State Change"],
        "detail": {
            "status": [{"anything-but": "ACTIVE"}],
            "clusterArn": [
                {"wildcard": f"arn:aws:ecs:*:{rng.choice(ACCOUNTS)}:cluster/{rng.choice(CLUSTERS)}"}
            ],
        },
    }


def _trail_anything_but(rng: random.Random) -> dict[str, Any]:
    service, name = _pick_call(rng, rng.choice([1, 2, 2, 2]))
    field_test: dict[str, Any] = rng.choice(
        [
            {"sourceIPAddress": [{"anything-but": {"prefix": "10."}}]},
            {"userAgent": [{"anything-but": {"wildcard": "*.amazonaws.com"}}]},
            {"userIdentity": {"type": [{"anything-but": ["AWSService", "AssumedRole"]}]}},
            {"userAgent": [{"anything-but": {"equals-ignore-case": ["AWS Internal"]}}]},
        ]
    )
    return {"source": [f"aws.{service}"], "detail": {"eventName": [name], **field_test}}


def _ecs_wildcard(rng: random.Random) -> dict[str, Any]:
    return {
        "source": ["aws.ecs"],
        "detail-type": ["ECS Task State Change"],
        "detail": {
            "containers": {
                "reason": [{"wildcard": "*OutOfMemory*"}],
                "name": [rng.choice(CONTAINERS)],
            },
            "taskArn": [
                {"wildcard": f"arn:aws:ecs:*:{rng.choice(ACCOUNTS)}:task/{rng.choice(CLUSTERS)}/*"}
            ],
        },
    }


def _trail_wildcard(rng: random.Random) -> dict[str, Any]:
    service, name = _pick_call(rng, rng.choice([1, 2, 2, 2]))
    return {
        "source": [f"aws.{service}"],
        "detail": {
            "eventName": [name],
            "userIdentity": {
                "arn": [
                    {
                        "wildcard": rng.choice(
                            [
                                "arn:aws:sts::*:assumed-role/admin/*",
                                f"arn:aws:iam::{rng.choice(ACCOUNTS)}:user/*",
                                "arn:aws:sts::*:assumed-role/ecsTaskRole-*/*",
                                "arn:aws:iam::*:root",
                            ]
                        )
                    }
                ],
            },
        },
    }


def _ecs_or(rng: random.Random) -> dict[str, Any]:
    return {
        "source": ["aws.ecs"],
        "$or": [
            {
                "detail": {
                    "eventName": ["SERVICE_TASK_PLACEMENT_FAILURE", "SERVICE_DEPLOYMENT_FAILED"],
                    "clusterArn": [{"suffix": f"/{rng.choice(CLUSTERS)}"}],
                }
            },
            {
                "detail": {
                    "stopCode": ["TaskFailedToStart"],
                    "group": [f"service:{rng.choice(SERVICES)}"],
                }
            },
            {
                "detail": {
                    "containers": {"exitCode": [rng.choice([137, 139, 255])]},
                    "launchType": [{"equals-ignore-case": rng.choice(["fargate", "ec2"])}],
                }
            },
        ][: rng.randint(2, 3)],
    }


def _trail_or(rng: random.Random) -> dict[str, Any]:
    service, name = _pick_call(rng, 2)
    _, other = _pick_call(rng, 2)
    return {
        "source": [f"aws.{service}"],
        "$or": [
            {"detail": {"eventName": [name]}},
            {"detail": {"errorCode": ["AccessDenied"], "eventName": [{"prefix": "Delete"}]}},
            {
                "detail": {
                    "eventName": [other],
                    "errorCode": [{"exists": False}],
                    "sourceIPAddress": [{"cidr": "203.0.113.0/24"}],
                }
            },
        ][: rng.randint(2, 3)],
    }


PATTERN_KINDS: dict[str, tuple[Callable[[random.Random], dict[str, Any]], ...]] = {
    "exact": (_ecs_exact, _trail_exact),
    "prefix": (_ecs_prefix, _trail_prefix),
    "numeric": (_ecs_numeric, _trail_numeric),
    "anything-but": (_ecs_anything_but, _trail_anything_but),
    "wildcard": (_ecs_wildcard, _trail_wildcard),
    "$or": (_ecs_or, _trail_or),
}

LOG_PATTERNS = [
    '"OutOfMemoryError"',
    '"Connection refused"',
    '?"panic:" ?"FATAL"',
    '"timed out" -"health"',
    '"certificate has expired"',
    '"Too many open files"',
    '"deadlock detected"',
    "%upstream timed out after [0-9]+ms%",
    "{ $.latency_ms > 2000 }",
    '{ $.status = 503 && $.path = "/api/pay" }',
    '{ $.level = "FATAL" }',
    '{ $.msg = "*heap space*" }',
    "ERROR OutOfMemoryError",
    '"SSL handshake failed"',
    "{ ($.status >= 500) && ($.latency_ms > 1500) }",
]


def _log_filter_rules(rng: random.Random, count: int) -> list[dict[str, Any]]:
    rules = []
    for i in range(count):
        pattern = LOG_PATTERNS[i % len(LOG_PATTERNS)]
        settings: dict[str, Any] = {"pattern": pattern}
        roll = rng.random()
        if roll < 0.3:
            settings["service"] = rng.choice(SERVICES)
        elif roll < 0.45:
            settings["cluster"] = rng.choice(CLUSTERS)
        if i < METRIC_ALARMS:
            settings["metric"] = {"namespace": "bench/logs", "name": f"log-metric-{i}"}
        rule: dict[str, Any] = {
            "id": f"logs-{i:03d}",
            "title": f"log lines matching {pattern}",
            "type": "log_filter",
            "severity": rng.choice(["medium", "high"]),
            "log_filter": settings,
        }
        if rng.random() < 0.5:
            rule["group_by"] = ["service"]
        rules.append(rule)
    return rules


def _metric_alarm_rules(rng: random.Random, count: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"alarm-{i:03d}",
            "title": f"log metric {i} high",
            "type": "metric_alarm",
            "severity": "high",
            "metric_alarm": {
                "namespace": "bench/logs",
                "metric_name": f"log-metric-{i}",
                "statistic": rng.choice(["Sum", "SampleCount", "Maximum"]),
                "period": "1m",
                "evaluation_periods": rng.choice([1, 3, 5]),
                "datapoints_to_alarm": 1,
                "threshold": rng.choice([50, 200, 1000]),
                "comparison_operator": "GreaterThanThreshold",
                "treat_missing_data": rng.choice(["missing", "notBreaching"]),
            },
        }
        for i in range(count)
    ]


def _marker_rules() -> list[dict[str, Any]]:
    return [
        {
            "id": MARKER_ECS,
            "title": "bench marker (ECS event)",
            "type": "event_pattern",
            "severity": "high",
            "group_by": ["id"],
            "event_pattern": {
                "pattern": {
                    "source": ["aws.ecs"],
                    "detail-type": ["ECS Task State Change"],
                    "detail": {"group": ["service:bench-marker"], "marker": [{"exists": True}]},
                }
            },
        },
        {
            "id": MARKER_CLOUDTRAIL,
            "title": "bench marker (CloudTrail)",
            "type": "event_pattern",
            "severity": "high",
            "group_by": ["event_id"],
            "event_pattern": {
                "pattern": {"source": ["aws.sts"], "detail": {"eventName": [MARKER_CALL]}}
            },
        },
        {
            "id": MARKER_LINES,
            "title": "bench marker (log line)",
            "type": "log_filter",
            "severity": "high",
            "group_by": ["service"],
            "log_filter": {"pattern": f'"{MARKER_TEXT}"'},
        },
    ]


def loadable_sigma(folder: Path = SIGMA_DIR) -> list[Path]:
    """The Sigma files ecsguard loads (the others are reported by import-sigma and skipped)."""
    from ecsguard.detect.types.sigma import import_sigma_dir

    rules, _ = import_sigma_dir(folder)
    paths = {Path(rule.source.rsplit(":", 1)[0]) for rule in rules}
    return sorted(p if p.is_absolute() else (folder / p).resolve() for p in paths)


@dataclass
class RuleSet:
    folder: Path
    by_type: dict[str, int]
    pattern_kinds: dict[str, int]


def write_rules(folder: Path, seed: int = 11, total: int = 500) -> RuleSet:
    """`total` rules as YAML files in `folder` (see the module docstring)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    sigma_files = loadable_sigma()
    sigma = [
        {
            "id": f"sigma-{i:03d}-{path.stem}"[:120],
            "title": f"Sigma {path.stem}",
            "type": "sigma",
            "sigma": {"path": str(path)},
        }
        for i, path in enumerate(sigma_files)
    ]
    markers = _marker_rules()
    logs = _log_filter_rules(rng, LOG_FILTERS - 1)  # the lines marker is the 40th
    alarms = _metric_alarm_rules(rng, METRIC_ALARMS)
    n_patterns = total - len(sigma) - len(logs) - len(alarms) - len(markers)
    kinds = list(PATTERN_KINDS)
    seen: set[str] = set()
    patterns: list[dict[str, Any]] = []
    per_kind = dict.fromkeys(kinds, 0)
    attempts = 0
    while len(patterns) < n_patterns:
        attempts += 1
        if attempts > n_patterns * 200:
            raise SystemExit(f"only {len(patterns)} distinct event patterns could be made")
        kind = kinds[len(patterns) % len(kinds)]
        make = PATTERN_KINDS[kind][len(patterns) // len(kinds) % 2]
        pattern = make(rng)
        text = json.dumps(pattern, sort_keys=True)
        if text in seen:
            continue
        seen.add(text)
        per_kind[kind] += 1
        patterns.append(
            {
                "id": f"pattern-{len(patterns):03d}",
                "title": f"{kind} pattern {len(patterns)}",
                "type": "event_pattern",
                "severity": rng.choice(["low", "medium", "high"]),
                "tags": [kind],
                "event_pattern": {"pattern": pattern},
            }
        )
    files = {
        "event_patterns.yaml": patterns,
        "log_filters.yaml": logs,
        "metric_alarms.yaml": alarms,
        "sigma.yaml": sigma,
        "markers.yaml": markers,
    }
    for name, rules in files.items():
        text = yaml.safe_dump({"rules": rules}, sort_keys=False, width=120)
        (folder / name).write_text(text, encoding="utf-8")
    by_type = {
        "event_pattern": len(patterns) + 2,
        "log_filter": len(logs) + 1,
        "sigma": len(sigma),
        "metric_alarm": len(alarms),
    }
    return RuleSet(folder, by_type, per_kind)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=Path, required=True, help="folder to write the rules to")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--total", type=int, default=500)
    args = parser.parse_args(argv)
    made = write_rules(args.rules, args.seed, args.total)
    print(json.dumps({"by_type": made.by_type, "event_pattern_kinds": made.pattern_kinds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
