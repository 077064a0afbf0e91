"""Event-pattern matching bench: 500 mixed patterns over generated ECS and CloudTrail events,
PatternSet (the index) beside a naive loop that tests every pattern on every event.

    .venv/bin/python bench/detect_patterns.py [--events 100000] [--patterns 500] [--seed 7]
                                              [--runs 3] [--naive-events N]

Data (seeded, made in memory): EventBridge events as AWS delivers them. About 45% ECS events
(task state changes with containers and exit codes, service actions, deployments, container
instances) and 55% CloudTrail API calls turned into EventBridge's shape (source aws.<service>,
detail with eventName, userIdentity, sourceIPAddress, userAgent, errorCode, requestParameters),
over 12 services and 40 API names, 6 clusters, 30 identities.

Patterns: 500 distinct, in equal shares of six kinds, each drawn from the same vocabulary so that
some match and most do not: exact (source, detail-type and a detail field), prefix, numeric
(ranges on exit codes, versions, counts), anything-but (values, prefix), wildcard (ARNs, user
agents), `$or` (two or three branches); a few cidr, exists and equals-ignore-case ride along in
the anything-but and $or kinds.

Measured (wall time on one core, best of --runs; the machine's load is recorded):
- PatternSet.match_all on every event (flattening included), events/s;
- the naive loop: each event flattened once, then every pattern's branches tested, events/s
  (on --naive-events events, default all of them; one run when over 20,000 events, as it takes
  minutes, so its figure moves more with the machine's load: 793 and 1,124 events/s in two runs
  of the default bench);
- the store path the rule engine takes: the same events as Arrow batches of the `events` and
  `cloudtrail` tables (made by the real receivers), matched by SharedPatterns (column filter,
  rows to events, index), events/s.
The two matchers' answers are compared event by event, and the store path's match count with
theirs; a difference fails the bench.
Results go to bench/results/detect_patterns.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "src"))

from ecsguard.detect.eventpattern import EventPattern, PatternSet, compile_pattern  # noqa: E402
from ecsguard.detect.eventpattern.flatten import flatten, path_prefixes  # noqa: E402

RESULTS = BENCH / "results" / "detect_patterns.json"

REGIONS = ["ap-northeast-1", "us-east-1", "eu-west-1"]
ACCOUNTS = ["111122223333", "444455556666"]
CLUSTERS = ["prod", "staging", "batch", "payments", "search", "internal"]
SERVICES = ["api", "web", "worker", "cron", "gateway", "indexer", "billing"]
CONTAINERS = ["app", "log_router", "sidecar", "nginx", "xray"]
STOP_CODES = ["EssentialContainerExited", "TaskFailedToStart", "UserInitiated", "SpotInterruption"]
EXIT_CODES = [0, 0, 0, 1, 2, 137, 139, 143, 255]
STATUSES = ["PROVISIONING", "PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPED"]
SERVICE_EVENTS = [
    ("INFO", "SERVICE_STEADY_STATE"),
    ("INFO", "CAPACITY_PROVIDER_STEADY_STATE"),
    ("WARN", "SERVICE_TASK_START_IMPAIRED"),
    ("ERROR", "SERVICE_TASK_PLACEMENT_FAILURE"),
    ("ERROR", "SERVICE_DISCOVERY_INSTANCE_UNHEALTHY"),
]
DEPLOYMENT_EVENTS = [
    "SERVICE_DEPLOYMENT_IN_PROGRESS",
    "SERVICE_DEPLOYMENT_COMPLETED",
    "SERVICE_DEPLOYMENT_FAILED",
]
API_CALLS: dict[str, list[str]] = {
    "ecs": ["RunTask", "StopTask", "RegisterTaskDefinition", "UpdateService", "ExecuteCommand",
            "DescribeTasks", "ListClusters", "DeleteService"],
    "iam": ["CreateUser", "CreateAccessKey", "AttachRolePolicy", "PutRolePolicy", "GetRole",
            "ListRoles", "UpdateAssumeRolePolicy", "DeleteRolePolicy"],
    "cloudtrail": ["StopLogging", "DeleteTrail", "DescribeTrails", "PutEventSelectors"],
    "sts": ["AssumeRole", "GetCallerIdentity", "GetFederationToken"],
    "s3": ["GetObject", "PutObject", "ListBuckets", "PutBucketPolicy"],
    "ec2": ["DescribeInstances", "AuthorizeSecurityGroupIngress", "RunInstances",
            "ModifyInstanceAttribute"],
    "secretsmanager": ["GetSecretValue", "BatchGetSecretValue"],
    "kms": ["Decrypt", "GenerateDataKey"],
    "logs": ["PutLogEvents", "DeleteLogGroup"],
    "ecr": ["GetAuthorizationToken", "BatchGetImage", "PutImage"],
    "ssm": ["GetParameters", "StartSession", "SendCommand"],
    "signin": ["ConsoleLogin"],
}  # fmt: skip
IDENTITY_TYPES = ["IAMUser", "AssumedRole", "AWSService", "Root"]
USER_AGENTS = [
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.1",
    "Boto3/1.34.0 Python/3.12 Botocore/1.34.0",
    "console.amazonaws.com",
    "ecs.amazonaws.com",
    "aws-sdk-go-v2/1.25.0 os/linux",
    "terraform/1.7.4 (+https://www.terraform.io) terraform-provider-aws/5.40.0",
]
ERRORS = ["AccessDenied", "ThrottlingException", "ValidationException", "NoSuchEntity"]


def _arn(account: str, region: str, kind: str, name: str, service: str = "ecs") -> str:
    return f"arn:aws:{service}:{region}:{account}:{kind}/{name}"


def make_events(count: int, rng: random.Random) -> list[dict[str, Any]]:
    """EventBridge-shaped ECS and CloudTrail events (see the module docstring)."""
    principals = [
        (
            rng.choice(IDENTITY_TYPES),
            f"arn:aws:iam::{rng.choice(ACCOUNTS)}:"
            + rng.choice(["user/dev-", "role/deploy-", "role/ecsTaskRole-", "user/ops-"])
            + str(i),
        )
        for i in range(30)
    ]
    events = []
    for number in range(count):
        account, region = rng.choice(ACCOUNTS), rng.choice(REGIONS)
        cluster, service = rng.choice(CLUSTERS), rng.choice(SERVICES)
        base = {
            "version": "0",
            "id": f"{number:08x}-bench",
            "account": account,
            "time": f"2026-11-28T{number % 24:02d}:{number % 60:02d}:{(number * 7) % 60:02d}Z",
            "region": region,
        }
        cluster_arn = _arn(account, region, "cluster", cluster)
        roll = rng.random()
        if roll < 0.25:
            task = f"{number:032x}"
            status = rng.choice(STATUSES)
            containers = []
            for name in rng.sample(CONTAINERS, rng.randint(1, 3)):
                container: dict[str, Any] = {"name": name, "lastStatus": status}
                if status == "STOPPED":
                    container["exitCode"] = rng.choice(EXIT_CODES)
                    if container["exitCode"] == 137:
                        container["reason"] = "OutOfMemoryError: Container killed due to memory"
                containers.append(container)
            detail: dict[str, Any] = {
                "clusterArn": cluster_arn,
                "taskArn": _arn(account, region, "task", f"{cluster}/{task}"),
                "group": f"service:{service}",
                "lastStatus": status,
                "desiredStatus": "STOPPED" if status == "STOPPED" else "RUNNING",
                "launchType": rng.choice(["FARGATE", "EC2"]),
                "cpu": rng.choice(["256", "512", "1024"]),
                "memory": rng.choice(["512", "1024", "2048"]),
                "version": rng.randint(1, 12),
                "containers": containers,
            }
            if status == "STOPPED":
                detail["stopCode"] = rng.choice(STOP_CODES)
                detail["stoppedReason"] = "Essential container in task exited"
            events.append(
                {
                    **base,
                    "source": "aws.ecs",
                    "detail-type": "ECS Task State Change",
                    "resources": [detail["taskArn"]],
                    "detail": detail,
                }
            )
        elif roll < 0.35:
            event_type, event_name = rng.choice(SERVICE_EVENTS)
            events.append(
                {
                    **base,
                    "source": "aws.ecs",
                    "detail-type": "ECS Service Action",
                    "resources": [_arn(account, region, "service", f"{cluster}/{service}")],
                    "detail": {
                        "eventType": event_type,
                        "eventName": event_name,
                        "clusterArn": cluster_arn,
                        "createdAt": base["time"],
                        "desiredCount": rng.randint(0, 20),
                    },
                }
            )
        elif roll < 0.41:
            events.append(
                {
                    **base,
                    "source": "aws.ecs",
                    "detail-type": "ECS Deployment State Change",
                    "resources": [_arn(account, region, "service", f"{cluster}/{service}")],
                    "detail": {
                        "eventType": "INFO",
                        "eventName": rng.choice(DEPLOYMENT_EVENTS),
                        "deploymentId": f"ecs-svc/{number}",
                        "updatedAt": base["time"],
                        "reason": rng.choice(["ECS deployment circuit breaker: rolling back", ""]),
                    },
                }
            )
        elif roll < 0.45:
            events.append(
                {
                    **base,
                    "source": "aws.ecs",
                    "detail-type": "ECS Container Instance State Change",
                    "resources": [
                        _arn(account, region, "container-instance", f"{cluster}/{number}")
                    ],
                    "detail": {
                        "agentConnected": rng.random() < 0.9,
                        "clusterArn": cluster_arn,
                        "status": rng.choice(["ACTIVE", "DRAINING", "INACTIVE"]),
                        "remainingResources": [
                            {
                                "name": "CPU",
                                "type": "INTEGER",
                                "integerValue": rng.randint(0, 4096),
                            },
                            {
                                "name": "MEMORY",
                                "type": "INTEGER",
                                "integerValue": rng.randint(0, 16384),
                            },
                        ],
                    },
                }
            )
        else:
            events.append(_api_call(base, rng, principals, cluster_arn))
    return events


def _api_call(
    base: dict[str, Any],
    rng: random.Random,
    principals: list[tuple[str, str]],
    cluster_arn: str,
) -> dict[str, Any]:
    service = rng.choice(list(API_CALLS))
    name = rng.choice(API_CALLS[service])
    identity_type, arn = rng.choice(principals)
    detail: dict[str, Any] = {
        "eventSource": f"{service}.amazonaws.com",
        "eventName": name,
        "awsRegion": base["region"],
        "sourceIPAddress": rng.choice(
            [f"10.0.{rng.randint(0, 3)}.{rng.randint(1, 254)}", f"203.0.113.{rng.randint(1, 254)}",
             "ecs.amazonaws.com", f"2001:db8::{rng.randint(1, 999):x}"]
        ),
        "userAgent": rng.choice(USER_AGENTS),
        "userIdentity": {
            "type": identity_type,
            "arn": arn,
            "accessKeyId": f"ASIA{rng.randint(0, 10**12):012d}",
        },
        "requestParameters": {"cluster": cluster_arn, "count": rng.randint(1, 10)}
        if service == "ecs"
        else {"name": f"res-{rng.randint(0, 50)}"},
        "responseElements": None,
        "readOnly": name.startswith(("Describe", "List", "Get")),
        "eventID": base["id"],
        "eventTime": base["time"],
    }  # fmt: skip
    if rng.random() < 0.08:
        detail["errorCode"] = rng.choice(ERRORS)
    detail_type = (
        "AWS Console Sign In via CloudTrail"
        if service == "signin"
        else "AWS API Call via CloudTrail"
    )
    return {
        **base,
        "source": f"aws.{service}",
        "detail-type": detail_type,
        "resources": [],
        "detail": detail,
    }


# --- patterns -------------------------------------------------------------------------------


def make_patterns(count: int, rng: random.Random) -> list[dict[str, Any]]:
    kinds: list[Callable[[random.Random], dict[str, Any]]] = [
        _exact,
        _prefix,
        _numeric,
        _anything_but,
        _wildcard,
        _or,
    ]
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    per_kind = [0] * len(kinds)
    for attempt in range(count * 50):
        if len(out) == count:
            break
        kind = min(range(len(kinds)), key=lambda k: (per_kind[k], (k - attempt) % len(kinds)))
        pattern = kinds[kind](rng)
        text = json.dumps(pattern, sort_keys=True)
        if text not in seen:
            seen.add(text)
            compile_pattern(pattern)  # every generated pattern is valid
            out.append(pattern)
            per_kind[kind] += 1
        elif attempt > count * 10:
            per_kind[kind] += 1  # this kind is running out of new forms: let the others fill in
    if len(out) < count:
        raise SystemExit(f"could only make {len(out)} distinct patterns")
    return out


def _service_call(rng: random.Random) -> tuple[str, str]:
    service = rng.choice(list(API_CALLS))
    return service, rng.choice(API_CALLS[service])


def _cluster_arn(rng: random.Random) -> str:
    return _arn(rng.choice(ACCOUNTS), rng.choice(REGIONS), "cluster", rng.choice(CLUSTERS))


def _exact(rng: random.Random) -> dict[str, Any]:
    choice = rng.random()
    if choice < 0.5:
        service, name = _service_call(rng)
        return {
            "source": [f"aws.{service}"],
            "detail": {"eventName": [name], "userIdentity": {"type": [rng.choice(IDENTITY_TYPES)]}},
        }
    if choice < 0.75:
        return {
            "source": ["aws.ecs"],
            "detail-type": ["ECS Task State Change"],
            "detail": {"lastStatus": [rng.choice(STATUSES)], "clusterArn": [_cluster_arn(rng)]},
        }
    if choice < 0.9:
        return {
            "source": ["aws.ecs"],
            "detail-type": ["ECS Service Action"],
            "detail": {
                "eventName": [rng.choice(SERVICE_EVENTS)[1]],
                "eventType": ["ERROR", "WARN"],
            },
            "region": [rng.choice(REGIONS)],
            "account": [rng.choice(ACCOUNTS)],
        }
    return {
        "detail-type": ["ECS Deployment State Change"],
        "detail": {"eventName": [rng.choice(DEPLOYMENT_EVENTS)]},
        "region": [rng.choice(REGIONS)],
        "account": [rng.choice(ACCOUNTS)],
    }


def _prefix(rng: random.Random) -> dict[str, Any]:
    choice = rng.random()
    if choice < 0.4:
        service, _ = _service_call(rng)
        verb = rng.choice(["Create", "Delete", "Put", "Update", "Get", "Describe", "Stop"])
        return {
            "source": [f"aws.{service}"],
            "detail": {
                "eventName": [{"prefix": verb}],
                "userIdentity": {"type": [rng.choice(IDENTITY_TYPES)]},
            },
        }
    if choice < 0.7:
        account = rng.choice(ACCOUNTS)
        who = (
            f"{rng.choice(['user', 'role'])}/{rng.choice(['dev', 'deploy', 'ops', 'ecsTaskRole'])}"
        )
        return {
            "detail": {
                "userIdentity": {"arn": [{"prefix": f"arn:aws:iam::{account}:{who}"}]},
                "eventName": [rng.choice(API_CALLS[rng.choice(list(API_CALLS))])],
            }
        }
    return {
        "source": ["aws.ecs"],
        "resources": [
            {"prefix": f"arn:aws:ecs:{rng.choice(REGIONS)}:{rng.choice(ACCOUNTS)}:"
                       f"{rng.choice(['task', 'service'])}/{rng.choice(CLUSTERS)}"}
        ],
        "detail": {"$or": [{"lastStatus": ["STOPPED"]}, {"eventType": ["ERROR"]}]},
    }  # fmt: skip


def _numeric(rng: random.Random) -> dict[str, Any]:
    choice = rng.random()
    if choice < 0.4:
        low = rng.randint(1, 250)
        return {
            "source": ["aws.ecs"],
            "detail-type": ["ECS Task State Change"],
            "detail": {
                "containers": {"exitCode": [{"numeric": [">=", low, "<", low + 20]}]},
                "group": [f"service:{rng.choice(SERVICES)}"],
            },
        }
    if choice < 0.7:
        return {
            "detail": {
                "version": [{"numeric": [">", rng.randint(0, 10)]}],
                "launchType": [rng.choice(["FARGATE", "EC2"])],
                "group": [f"service:{rng.choice(SERVICES)}"],
                "lastStatus": ["STOPPED"],
            }
        }
    return {
        "detail-type": ["ECS Container Instance State Change"],
        "detail": {
            "clusterArn": [_cluster_arn(rng)],
            "remainingResources": {
                "name": [rng.choice(["CPU", "MEMORY"])],
                "integerValue": [{"numeric": ["<", rng.choice([128, 256, 512, 1024])]}],
            },
        },
    }


def _anything_but(rng: random.Random) -> dict[str, Any]:
    choice = rng.random()
    if choice < 0.35:
        return {
            "source": ["aws.ecs"],
            "detail-type": ["ECS Task State Change"],
            "detail": {
                "lastStatus": ["STOPPED"],
                "stopCode": [{"anything-but": rng.sample(STOP_CODES, 2)}],
                "group": [f"service:{rng.choice(SERVICES)}"],
            },
        }
    if choice < 0.7:
        service, name = _service_call(rng)
        return {
            "source": [f"aws.{service}"],
            "detail": {
                "eventName": [name],
                "userIdentity": {"type": [{"anything-but": "AWSService"}]},
                "sourceIPAddress": [{"anything-but": {"prefix": "10."}}],
                "errorCode": [{"exists": rng.random() < 0.5}],
            },
        }
    return {
        "detail": {
            "eventSource": [f"{rng.choice(list(API_CALLS))}.amazonaws.com"],
            "sourceIPAddress": [{"cidr": rng.choice(["10.0.0.0/24", "203.0.113.0/25",
                                                     "2001:db8::/120"])}],
            "eventName": [{"prefix": rng.choice(["Delete", "Put", "Create", "Stop"])}],
        }
    }  # fmt: skip


def _wildcard(rng: random.Random) -> dict[str, Any]:
    choice = rng.random()
    if choice < 0.4:
        return {
            "detail": {
                "userAgent": [{"wildcard": rng.choice(["*aws-cli/*", "*Boto3/*", "terraform/*",
                                                       "*sdk-go*"])}],
                "eventName": [rng.choice(API_CALLS[rng.choice(list(API_CALLS))])],
            }
        }  # fmt: skip
    if choice < 0.7:
        return {
            "source": ["aws.ecs"],
            "detail": {
                "clusterArn": [{"wildcard": f"arn:aws:ecs:*:{rng.choice(ACCOUNTS)}:cluster/"
                                            f"{rng.choice(CLUSTERS)}*"}],
                "eventName": [{"wildcard": "*FAIL*"}],
            }
        }  # fmt: skip
    return {
        "detail": {
            "userIdentity": {"arn": [{"wildcard": f"*:role/{rng.choice(['deploy', 'ops'])}-*"}]},
            "eventSource": [{"equals-ignore-case": f"{rng.choice(list(API_CALLS)).upper()}"
                                                   ".AMAZONAWS.COM"}],
            "readOnly": [False],
            "errorCode": [{"exists": True}],
        }
    }  # fmt: skip


def _or(rng: random.Random) -> dict[str, Any]:
    service, name = _service_call(rng)
    if rng.random() < 0.5:
        return {
            "source": [f"aws.{service}"],
            "$or": [
                {"detail": {"eventName": [name], "userIdentity": {"type": ["Root"]}}},
                {"detail": {"errorCode": [rng.choice(ERRORS)], "eventName": [name]}},
                {"detail": {"userAgent": [{"prefix": "terraform/"}], "eventName": [name]}},
            ],
        }
    return {
        "source": ["aws.ecs"],
        "detail": {
            "$or": [
                {"stopCode": [rng.choice(STOP_CODES)]},
                {"containers": {"exitCode": [rng.choice([1, 137, 139, 255])]}},
            ],
            "group": [f"service:{rng.choice(SERVICES)}"],
            "clusterArn": [_cluster_arn(rng)],
        },
    }


# --- measurement ----------------------------------------------------------------------------


def best_of(runs: int, work: Callable[[], Any]) -> tuple[float, Any]:
    best, answer = float("inf"), None
    for _ in range(runs):
        started = time.perf_counter()
        answer = work()
        best = min(best, time.perf_counter() - started)
    return best, answer


def naive(
    compiled: list[tuple[int, EventPattern]], events: list[dict[str, Any]]
) -> list[list[int]]:
    """Every pattern on every event; the event is flattened once (for all patterns' fields)."""
    wanted = path_prefixes(path for _, pattern in compiled for path in pattern.paths)
    out = []
    for event in events:
        leaves, arrayed = flatten(event, wanted)
        out.append([key for key, pattern in compiled if pattern.matches_leaves(leaves, arrayed)])
    return out


def store_batches(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The events as the receivers store them: ECS events as `events` rows, CloudTrail ones as
    `cloudtrail` rows (their EventBridge detail turned back into a CloudTrail record)."""
    import orjson

    from ecsguard.logs.receivers import RECEIVERS
    from ecsguard.logs.receivers import cloudtrail as _cloudtrail  # noqa: F401
    from ecsguard.logs.receivers import ecs_events as _ecs_events  # noqa: F401
    from ecsguard.logs.records import ReceiverOptions

    ecs = [e for e in events if e["source"] == "aws.ecs" and "eventSource" not in e["detail"]]
    trail = [
        {**e["detail"], "recipientAccountId": e["account"]}
        for e in events
        if "eventSource" in e["detail"]
    ]
    options = ReceiverOptions()
    return {
        "events": RECEIVERS.get("ecs_events")(orjson.dumps(ecs), options).batch,
        "cloudtrail": RECEIVERS.get("cloudtrail")(orjson.dumps({"Records": trail}), options).batch,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--patterns", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--naive-events", type=int, default=0, help="0: all of them")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    started = time.perf_counter()
    events = make_events(args.events, rng)
    patterns = make_patterns(args.patterns, rng)
    made = time.perf_counter() - started

    index = PatternSet({i: p for i, p in enumerate(patterns)})
    compiled = [(i, compile_pattern(p)) for i, p in enumerate(patterns)]
    started = time.perf_counter()
    index.match_all(events[0])  # builds the index
    build = time.perf_counter() - started

    indexed_s, indexed = best_of(args.runs, lambda: [index.match_all(e) for e in events])
    naive_events = events[: args.naive_events] if args.naive_events else events
    naive_s, slow = best_of(1 if len(naive_events) > 20_000 else args.runs,
                            lambda: naive(compiled, naive_events))  # fmt: skip
    different = sum(1 for a, b in zip(indexed, slow, strict=False) if a != b)
    if different:
        raise SystemExit(f"the index and the naive loop disagree on {different} events")

    from ecsguard.detect.types.event_pattern import SharedPatterns

    batches = store_batches(events)
    shared = SharedPatterns()
    for pattern in patterns:
        shared.register(compile_pattern(pattern))
    store: dict[str, Any] = {}
    for table, batch in batches.items():
        seconds, found = best_of(args.runs, lambda t=table, b=batch: shared._compute(t, b).rows)
        store[table] = {
            "rows": batch.num_rows,
            "seconds": round(seconds, 3),
            "events_per_second": round(batch.num_rows / seconds),
            "matches": sum(len(rows) for rows in found.values()),
        }

    matched = sum(len(found) for found in indexed)
    # the store round trip (receivers, then rows back to EventBridge's shape) must lose nothing
    store_matches = sum(figures["matches"] for figures in store.values())
    if store_matches != matched:
        raise SystemExit(f"store path found {store_matches} matches, the events {matched}")
    result = {
        "bench": "detect_patterns",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
        },
        "events": len(events),
        "patterns": len(patterns),
        "branches": sum(len(p.branches) for _, p in compiled),
        "seed": args.seed,
        "generate_seconds": round(made, 2),
        "index_build_seconds": round(build, 4),
        "matches": matched,
        "events_with_a_match": sum(1 for found in indexed if found),
        "pattern_set": {
            "seconds": round(indexed_s, 3),
            "events_per_second": round(len(events) / indexed_s),
        },
        "naive_loop": {
            "events": len(naive_events),
            "seconds": round(naive_s, 3),
            "events_per_second": round(len(naive_events) / naive_s),
        },
        "ratio": round((len(events) / indexed_s) / (len(naive_events) / naive_s), 1),
        "store_path": store,
        "answers_identical": True,
        "store_path_matches_equal": True,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{len(events):,} events, {len(patterns)} patterns ({result['branches']} branches), "
          f"{matched:,} matches on {result['events_with_a_match']:,} events")  # fmt: skip
    print(f"{'PatternSet (index)':<28}{result['pattern_set']['events_per_second']:>12,} events/s")
    print(f"{'naive loop':<28}{result['naive_loop']['events_per_second']:>12,} events/s")
    print(f"{'ratio':<28}{result['ratio']:>12}x")
    for table, figures in store.items():
        print(f"{'store batch: ' + table:<28}{figures['events_per_second']:>12,} events/s "
              f"({figures['rows']:,} rows, {figures['matches']:,} matches)")  # fmt: skip
    print(f"written to {RESULTS.relative_to(BENCH.parent)}")


if __name__ == "__main__":
    main()
