"""Audit speed: every posture check over a saved snapshot of 1,000 services, target under 2 s.

Builds the estate on a moto server (the demo estate, then 1,000 services with 3,000 task definition
revisions from bench/inventory.py's generator), collects it and saves the snapshot. Then it times
what `ecsguard audit --snapshot FILE` does: `engine.run(load(FILE))`, load plus all checks, best
of 3 (check modules imported beforehand, as the CLI does at start). The slowest checks are timed
one by one, and the whole `ecsguard audit --snapshot FILE --output json` process once.

    .venv/bin/python bench/audit_speed.py [--services 1000] [--revisions 3] [--clusters 10]
                                          [--no-estate] [--snapshot FILE]

With --snapshot FILE an existing file is reused (no moto server); a missing one is built and kept.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from importlib import metadata
from pathlib import Path
from types import ModuleType

from ecsguard.aws.collect import collect
from ecsguard.aws.session import AwsOptions, AwsSession
from ecsguard.aws.snapshot import load, save
from ecsguard.core.models import Status
from ecsguard.demo.emulator import MotoServer
from ecsguard.demo.seed import load_estate, seed
from ecsguard.posture import engine

REGION = "ap-northeast-1"
BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results" / "audit_speed.json"
TARGET_SECONDS = 2.0
RUNS = 3


def inventory_bench() -> ModuleType:
    """bench/inventory.py (bench is not a package), for its estate generator."""
    spec = importlib.util.spec_from_file_location("bench_inventory", BENCH / "inventory.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(path: Path, services: int, revisions: int, clusters: int, estate: bool) -> dict:
    """Seed moto, generate the services, collect and save the snapshot; timings of each step."""
    timings: dict[str, float] = {}
    with MotoServer() as server:
        os.environ.update(server.env())
        session = AwsSession(AwsOptions(regions=(REGION,), endpoint_url=server.endpoint))
        if estate:
            started = time.perf_counter()
            seed(session, load_estate())
            timings["seed_demo_estate"] = time.perf_counter() - started
        started = time.perf_counter()
        inventory_bench().generate(session, clusters, services, revisions)
        timings["generate"] = time.perf_counter() - started
        print(
            f"generated {services} services / {services * revisions} revisions "
            f"in {timings['generate']:.1f} s",
            flush=True,
        )
        started = time.perf_counter()
        snapshot = collect(
            AwsSession(AwsOptions(regions=(REGION,), endpoint_url=server.endpoint)), [REGION]
        )
        timings["collect"] = time.perf_counter() - started
    started = time.perf_counter()
    save(snapshot, path)
    timings["save"] = time.perf_counter() - started
    print(
        f"collected in {timings['collect']:.1f} s ({snapshot.api.total_calls} API calls), "
        f"saved {path}",
        flush=True,
    )
    return {k: round(v, 2) for k, v in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--revisions", type=int, default=3)
    parser.add_argument("--clusters", type=int, default=10)
    parser.add_argument("--no-estate", action="store_true", help="generated services only")
    parser.add_argument("--snapshot", type=Path, help="reuse this snapshot, or build and keep it")
    args = parser.parse_args()

    workdir = None
    if args.snapshot is None:
        workdir = tempfile.TemporaryDirectory(prefix="audit-speed-")
        path = Path(workdir.name) / "snapshot.json.gz"
    else:
        path = args.snapshot
    build_timings = None
    if not path.exists():
        build_timings = build(
            path, args.services, args.revisions, args.clusters, not args.no_estate
        )

    checks = engine.all_checks()  # imports the check modules once, outside the timing
    runs = []
    for _ in range(RUNS):
        started = time.perf_counter()
        snapshot = load(path)
        loaded = time.perf_counter()
        findings = engine.run(snapshot)
        done = time.perf_counter()
        runs.append({"load": loaded - started, "checks": done - loaded, "total": done - started})
    best = min(runs, key=lambda r: r["total"])

    per_check = []
    for chk in checks:
        started = time.perf_counter()
        engine.run(snapshot, [chk])
        per_check.append((time.perf_counter() - started, chk.meta.id))
    per_check.sort(reverse=True)

    # what a user waits for: the CLI process, from start to a written JSON report
    started = time.perf_counter()
    cli = subprocess.run(
        [sys.executable, "-m", "ecsguard", "audit", "--snapshot", str(path), "--output", "json",
         "-o", os.devnull],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    cli_seconds = time.perf_counter() - started

    counts = snapshot.counts()
    statuses = Counter(f.status.value for f in findings)
    print(
        f"snapshot: {counts.get('ecs.services', 0)} services, "
        f"{counts.get('ecs.task_definitions', 0)} task definitions, "
        f"{counts.get('ecs.tasks', 0)} tasks, {counts.get('iam.roles', 0)} IAM roles; "
        f"{path.stat().st_size / 1e6:.1f} MB on disk"
    )
    print(f"{len(checks)} checks -> {len(findings)} findings ({dict(statuses)})")
    for i, run in enumerate(runs, 1):
        print(
            f"run {i}: load {run['load']:.2f} s + checks {run['checks']:.2f} s "
            f"= {run['total']:.2f} s"
        )
    verdict = "meets" if best["total"] < TARGET_SECONDS else "MISSES"
    print(f"best of {RUNS}: {best['total']:.2f} s ({verdict} the {TARGET_SECONDS:.0f} s target)")
    print(
        f"`ecsguard audit --snapshot FILE --output json` process: {cli_seconds:.2f} s"
        + (f" (exit {cli.returncode}: {cli.stderr.strip()[-300:]})" if cli.returncode else "")
    )
    print("slowest checks: " + ", ".join(f"{cid} {t * 1000:.0f} ms" for t, cid in per_check[:8]))
    errors = [f for f in findings if f.status == Status.ERROR]
    for f in errors[:5]:
        print(f"check error: {f.check_id}: {f.message[:160]}")

    report = {
        "bench": "audit_speed",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
        },
        "versions": {"ecsguard": metadata.version("ecsguard"), "moto": metadata.version("moto")},
        "snapshot": {
            "services": counts.get("ecs.services", 0),
            "task_definitions": counts.get("ecs.task_definitions", 0),
            "tasks": counts.get("ecs.tasks", 0),
            "bytes": path.stat().st_size,
            "demo_estate_included": not args.no_estate if build_timings else None,
        },
        "build_seconds": build_timings,
        "checks": len(checks),
        "findings": dict(statuses),
        "target_seconds": TARGET_SECONDS,
        "best_seconds": {k: round(v, 3) for k, v in best.items()},
        "meets_target": best["total"] < TARGET_SECONDS,
        "cli_process_seconds": round(cli_seconds, 2),
        "runs_seconds": [{k: round(v, 3) for k, v in r.items()} for r in runs],
        "slowest_checks_ms": {cid: round(t * 1000, 1) for t, cid in per_check[:10]},
        "check_errors": [f"{f.check_id}: {f.message}" for f in errors],
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results written to {RESULTS.relative_to(BENCH.parent)}")
    if workdir is not None:
        workdir.cleanup()


if __name__ == "__main__":
    main()
