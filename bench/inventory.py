"""Inventory at scale: 1,000 services and 3,000 task definition revisions on a moto server.

Generates the estate, collects it twice (one worker, then the default pool) and reports wall time
and API calls per ECS operation beside the minimum the APIs allow (describe_clusters and
describe_tasks take 100 names, describe_services 10, list calls return at most 100 per page,
describe_task_definition one revision). Moto ignores page sizes and returns whole lists, so list
calls on moto can come in under the AWS minimum; the describe calls are what scale.

    .venv/bin/python bench/inventory.py [--services 1000] [--revisions 3] [--clusters 10]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ecsguard.aws.collect import collect
from ecsguard.aws.session import AwsOptions, AwsSession
from ecsguard.aws.snapshot import Snapshot
from ecsguard.demo.emulator import MotoServer

REGION = "ap-northeast-1"
RESULTS = Path(__file__).parent / "results" / "inventory.json"


def generate(session: AwsSession, clusters: int, services: int, revisions: int) -> None:
    ecs = session.client("ecs", REGION)
    for c in range(clusters):
        ecs.create_cluster(clusterName=f"cluster-{c:02d}")

    def family(i: int) -> None:
        for r in range(revisions):
            ecs.register_task_definition(
                family=f"svc-{i:04d}",
                requiresCompatibilities=["FARGATE"],
                networkMode="awsvpc",
                cpu="256",
                memory="512",
                containerDefinitions=[
                    {
                        "name": "app",
                        "image": f"123456789012.dkr.ecr.{REGION}.amazonaws.com/app:{r}",
                        "essential": True,
                        "memory": 512,
                        "environment": [{"name": "REVISION", "value": str(r)}],
                        "logConfiguration": {
                            "logDriver": "awslogs",
                            "options": {"awslogs-group": f"/ecs/svc-{i:04d}"},
                        },
                    }
                ],
            )
        ecs.create_service(
            cluster=f"cluster-{i % clusters:02d}",
            serviceName=f"svc-{i:04d}",
            taskDefinition=f"svc-{i:04d}",
            desiredCount=2,
            launchType="FARGATE",
        )

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(family, range(services)))


def minimum_ecs_calls(snap: Snapshot) -> dict[str, int]:
    ecs = snap.regions[REGION].ecs
    per_cluster: dict[str, int] = {}
    for service in ecs.services:
        per_cluster[service["clusterArn"]] = per_cluster.get(service["clusterArn"], 0) + 1
    tasks: dict[tuple[str, str], int] = {}
    for task in ecs.tasks:
        key = (task["clusterArn"], "STOPPED" if task.get("desiredStatus") == "STOPPED" else "RUN")
        tasks[key] = tasks.get(key, 0) + 1
    arns = [c["clusterArn"] for c in ecs.clusters]
    return {
        "ecs:ListClusters": max(1, math.ceil(len(arns) / 100)),
        "ecs:DescribeClusters": math.ceil(len(arns) / 100),
        "ecs:ListServices": sum(max(1, math.ceil(per_cluster.get(a, 0) / 100)) for a in arns),
        "ecs:DescribeServices": sum(math.ceil(n / 10) for n in per_cluster.values()),
        "ecs:ListTaskDefinitions": max(1, math.ceil(len(ecs.task_definitions) / 100)),
        "ecs:DescribeTaskDefinition": len(ecs.task_definitions),
        "ecs:ListTasks": sum(
            max(1, math.ceil(tasks.get((a, s), 0) / 100)) for a in arns for s in ("RUN", "STOPPED")
        ),
        "ecs:DescribeTasks": sum(math.ceil(n / 100) for n in tasks.values()),
        "ecs:ListContainerInstances": len(arns),
        "ecs:DescribeContainerInstances": sum(
            math.ceil(n / 100) for n in _per_cluster_count(ecs.container_instances).values()
        ),
    }


def _per_cluster_count(items: list[dict[str, str]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item["clusterArn"]] = counts.get(item["clusterArn"], 0) + 1
    return counts


def measure(endpoint: str, workers: int, latency_ms: float = 0.0) -> tuple[Snapshot, float]:
    """Collect once; `latency_ms` adds a network round trip per HTTP request, since moto on
    loopback answers in microseconds where a real region is tens of milliseconds away."""
    session = AwsSession(AwsOptions(regions=(REGION,), endpoint_url=endpoint, max_workers=workers))
    if latency_ms:
        session._session.events.register(
            "before-send", lambda **_: time.sleep(latency_ms / 1000) or None
        )
    started = time.perf_counter()
    snap = collect(session)
    return snap, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--revisions", type=int, default=3)
    parser.add_argument("--clusters", type=int, default=10)
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=25.0,
        help="simulated round trip per request for the latency runs",
    )
    args = parser.parse_args()
    with MotoServer() as server:
        os.environ.update(server.env())
        seeding = AwsSession(AwsOptions(regions=(REGION,), endpoint_url=server.endpoint))
        started = time.perf_counter()
        generate(seeding, args.clusters, args.services, args.revisions)
        print(
            f"generated {args.services} services, {args.services * args.revisions} revisions "
            f"in {time.perf_counter() - started:.1f} s"
        )
        runs = {
            (workers, latency): measure(server.endpoint, workers, latency)
            for workers in (1, 8)
            for latency in (0.0, args.latency_ms)
        }
    snap, _ = runs[(8, 0.0)]
    minimum = minimum_ecs_calls(snap)
    rows = [
        {"operation": op, "calls": snap.api.calls.get(op, 0), "minimum_on_aws": need}
        for op, need in minimum.items()
    ]
    report = {
        "services": len(snap.regions[REGION].ecs.services),
        "task_definitions": len(snap.regions[REGION].ecs.task_definitions),
        "wall_seconds": {
            f"{w}_workers_{int(lat)}ms_rtt": round(t, 2) for (w, lat), (_, t) in runs.items()
        },
        "speedup_8_vs_1_at_rtt": round(
            runs[(1, args.latency_ms)][1] / runs[(8, args.latency_ms)][1], 2
        ),
        "api_calls_total": snap.api.total_calls,
        "ecs_calls": sum(r["calls"] for r in rows),
        "ecs_minimum_on_aws": sum(minimum.values()),
        "by_operation": rows,
    }
    print(f"{'operation':32} {'calls':>7} {'minimum':>8}")
    for row in rows:
        print(f"{row['operation']:32} {row['calls']:>7} {row['minimum_on_aws']:>8}")
    print(json.dumps({k: v for k, v in report.items() if k != "by_operation"}, indent=2))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
