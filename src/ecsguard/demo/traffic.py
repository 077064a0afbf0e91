"""Synthetic application logs for the demo: what FireLens (Fluent Bit `http`, json_lines) would
post for the emulated services, with request ids, warnings, errors and stack traces."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

PATHS = ["/", "/api/cart", "/api/orders", "/api/pay", "/login", "/search", "/health"]
TRACE = (
    "Traceback (most recent call last):\n"
    '  File "/app/orders/handlers.py", line 88, in create_order\n'
    "    reserve(items)\n"
    "TimeoutError: inventory did not answer within 2000 ms"
)


def firelens_bodies(
    services: list[tuple[str, str, str]],
    lines_per_service: int = 400,
    seed: int = 7,
    end: datetime | None = None,
    span_seconds: float = 3600,
) -> Iterator[tuple[str, bytes]]:
    """(service, json_lines body) per (cluster, service, task definition), the lines spread over
    the `span_seconds` before `end` (default: the last hour)."""
    rng = random.Random(seed)
    end = end or datetime.now(UTC)
    for cluster, service, family in services:
        task = f"{rng.getrandbits(64):016x}{rng.getrandbits(64):016x}"
        task_arn = f"arn:aws:ecs:ap-northeast-1:123456789012:task/{cluster}/{task}"
        lines = []
        for i in range(lines_per_service):
            moment = end - timedelta(
                seconds=span_seconds * (lines_per_service - i) / lines_per_service
            )
            roll = rng.random()
            level = "ERROR" if roll < 0.02 else "WARN" if roll < 0.08 else "INFO"
            event = {
                "time": moment.isoformat().replace("+00:00", "Z"),
                "level": level,
                "request_id": f"req-{rng.getrandbits(48):012x}",
                "path": rng.choice(PATHS),
                "status": 500 if level == "ERROR" else 429 if level == "WARN" else 200,
                "latency_ms": round(rng.lognormvariate(3.0, 0.6), 1),
                "message": TRACE if level == "ERROR" else f"{level.lower()} handled request",
            }
            lines.append(
                orjson.dumps(
                    {
                        "date": moment.timestamp(),
                        "source": "stdout",
                        "log": orjson.dumps(event).decode(),
                        "container_name": service,
                        "ecs_cluster": cluster,
                        "ecs_task_arn": task_arn,
                        "ecs_task_definition": family,
                    }
                )
            )
        yield service, b"\n".join(lines) + b"\n"


def error_burst(service: tuple[str, str, str], lines: int = 30) -> tuple[str, bytes]:
    """(service, json_lines body): a minute in which one service answers 5xx again and again."""
    cluster, name, family = service
    end = datetime.now(UTC)
    task_arn = (
        f"arn:aws:ecs:ap-northeast-1:123456789012:task/{cluster}/5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b"
    )
    rows = []
    for i in range(lines):
        moment = end - timedelta(seconds=lines - i)
        event = {
            "time": moment.isoformat().replace("+00:00", "Z"),
            "level": "ERROR",
            "request_id": f"req-burst{i:07x}",
            "path": "/api/pay",
            "status": 503,
            "latency_ms": 2000.0,
            "message": "upstream payments-gateway unavailable",
        }
        rows.append(
            orjson.dumps(
                {
                    "date": moment.timestamp(),
                    "source": "stderr",
                    "log": orjson.dumps(event).decode(),
                    "container_name": name,
                    "ecs_cluster": cluster,
                    "ecs_task_arn": task_arn,
                    "ecs_task_definition": family,
                }
            )
        )
    return name, b"\n".join(rows) + b"\n"


def ecs_events(
    services: list[tuple[str, str, str]], when: datetime | None = None
) -> list[dict[str, Any]]:
    """What EventBridge would deliver for a bad minute of the emulated estate: a task of the
    first service killed for memory, a failed deployment of the second and a placement failure
    of the third (shaped like the ECS developer guide's examples)."""
    when = when or datetime.now(UTC)
    stamp = when.isoformat().replace("+00:00", "Z")
    account, region = "123456789012", "ap-northeast-1"

    def event(
        detail_type: str, resources: list[str], detail: dict[str, Any], n: int
    ) -> dict[str, Any]:
        return {
            "version": "0",
            "id": f"00000000-0000-4000-8000-{when.strftime('%H%M%S')}{n:06d}",
            "detail-type": detail_type,
            "source": "aws.ecs",
            "account": account,
            "time": stamp,
            "region": region,
            "resources": resources,
            "detail": detail,
        }

    (c1, s1, f1), (c2, s2, _), (c3, s3, _) = sorted(services)[:3]
    cluster_arn = f"arn:aws:ecs:{region}:{account}:cluster/{c1}"
    task_arn = f"arn:aws:ecs:{region}:{account}:task/{c1}/9f1c2e3d4b5a69788796a5b4c3d2e1f0"
    return [
        event(
            "ECS Task State Change",
            [task_arn],
            {
                "clusterArn": cluster_arn,
                "taskArn": task_arn,
                "group": f"service:{s1}",
                "taskDefinitionArn": f"arn:aws:ecs:{region}:{account}:task-definition/{f1}",
                "lastStatus": "STOPPED",
                "desiredStatus": "STOPPED",
                "stopCode": "EssentialContainerExited",
                "stoppedReason": "Essential container in task exited",
                "containers": [
                    {
                        "name": s1,
                        "exitCode": 137,
                        "reason": "OutOfMemoryError: Container killed due to memory usage",
                        "lastStatus": "STOPPED",
                    }
                ],
            },
            1,
        ),
        event(
            "ECS Deployment State Change",
            [f"arn:aws:ecs:{region}:{account}:service/{c2}/{s2}"],
            {
                "eventType": "ERROR",
                "eventName": "SERVICE_DEPLOYMENT_FAILED",
                "deploymentId": "ecs-svc/4920185763401",
                "updatedAt": stamp,
                "reason": "ECS deployment circuit breaker: tasks failed to start.",
            },
            2,
        ),
        event(
            "ECS Service Action",
            [f"arn:aws:ecs:{region}:{account}:service/{c3}/{s3}"],
            {
                "eventType": "ERROR",
                "eventName": "SERVICE_TASK_PLACEMENT_FAILURE",
                "clusterArn": f"arn:aws:ecs:{region}:{account}:cluster/{c3}",
                "reason": "RESOURCE:MEMORY",
                "createdAt": stamp,
            },
            3,
        ),
    ]


def cpu_metrics(services: list[tuple[str, str, str]], minutes: int = 60, seed: int = 7) -> bytes:
    """An hour of per-minute CPU and memory utilisation per service, as the embedded metric
    format documents a Container Insights-style agent would log (NDJSON). The first service
    (the one the bad minute kills for memory) climbs towards its limit at the end."""
    rng = random.Random(seed)
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    first = sorted(services)[0]
    docs = []
    for cluster, service, _ in sorted(services):
        base = rng.uniform(15, 45)
        for minute in range(minutes):
            moment = end - timedelta(minutes=minutes - minute)
            climbing = (cluster, service) == first[:2] and minute > minutes - 15
            cpu = base + rng.gauss(0, 4) + (4 * (minute - minutes + 15) if climbing else 0)
            memory = 40 + rng.gauss(0, 2) + (3.5 * (minute - minutes + 15) if climbing else 0)
            docs.append(
                orjson.dumps(
                    {
                        "_aws": {
                            "Timestamp": int(moment.timestamp() * 1000),
                            "CloudWatchMetrics": [
                                {
                                    "Namespace": "AWS/ECS",
                                    "Dimensions": [["ClusterName", "ServiceName"]],
                                    "Metrics": [
                                        {"Name": "CPUUtilization", "Unit": "Percent"},
                                        {"Name": "MemoryUtilization", "Unit": "Percent"},
                                    ],
                                }
                            ],
                        },
                        "ClusterName": cluster,
                        "ServiceName": service,
                        "CPUUtilization": round(min(max(cpu, 0.0), 100.0), 1),
                        "MemoryUtilization": round(min(max(memory, 0.0), 100.0), 1),
                    }
                )
            )
    return b"\n".join(docs) + b"\n"
