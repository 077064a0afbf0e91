"""Synthetic application logs for the demo: what FireLens (Fluent Bit `http`, json_lines) would
post for the emulated services, with request ids, warnings, errors and stack traces."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

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
