"""S3 store bench: the same FireLens records ingested into the local store and into the S3 store
(a moto server on 127.0.0.1), in the same run, then the same queries over each.

    .venv/bin/python bench/store_s3.py [--lines 1000000 | --quick] [--seed 42] [--work DIR]

Data: bench/loggen.py's records, cut into 1-4 MB bodies as bench/logs.py does. For each store, in
this process: one thread parses each body (the firelens receiver) and hands it to
LogService.accept (WAL, fsync), with the flusher running; the clock stops after stop() has flushed
everything to Parquet. Then, over each store, DuckDB through Pipeline.connect(): errors per
service (checked against the generator's count) and a request-id needle, best of --runs.

moto keeps objects in its own memory and answers over HTTP on this machine, so the S3 figures
measure ecsguard's side (PUT of whole files, listing, range reads through the fsspec bridge) plus
moto's; real S3 adds network latency to each request and has no CPU cost here.
Writes bench/results/store_s3.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results" / "store_s3.json"


def _module(name: str) -> ModuleType:
    """A sibling bench script as a module (bench is not a package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def ingest(raw: Path, cuts: list[int], data_dir: Path, store: Any) -> dict[str, Any]:
    """Parse and accept every body, then flush; wall and CPU seconds."""
    from ecsguard.logs.receivers import RECEIVERS
    from ecsguard.logs.records import ReceiverOptions
    from ecsguard.logs.service import LogService

    parse = RECEIVERS.get("firelens")
    options = ReceiverOptions(input_name="POST /ingest/firelens")
    cpu0, started = time.process_time(), time.perf_counter()
    service = LogService(data_dir, flush_seconds=2.0, store=store)
    service.start()
    rows = 0
    fd = os.open(raw, os.O_RDONLY)
    try:
        for i in range(len(cuts) - 1):
            body = os.pread(fd, cuts[i + 1] - cuts[i], cuts[i])
            rows += service.accept(parse(body, options), len(body))
    finally:
        os.close(fd)
    acked = time.perf_counter()
    service.stop()
    done = time.perf_counter()
    return {
        "rows": rows,
        "seconds": round(done - started, 2),
        "acked_seconds": round(acked - started, 2),
        "cpu_seconds": round(time.process_time() - cpu0, 2),
        "flush_errors": service.stats.flush_errors,
    }


def best(runs: int, query: Any) -> tuple[float, Any]:
    times, answer = [], None
    for _ in range(runs):
        started = time.perf_counter()
        answer = query()
        times.append(time.perf_counter() - started)
    return round(min(times), 3), answer


def query_store(
    data_dir: Path, store: Any, needle: str, runs: int, logs_needle_sql: str
) -> dict[str, Any]:
    from ecsguard.logs.pipeline import Pipeline

    def run(sql: str) -> list[tuple[Any, ...]]:
        pipeline = Pipeline(data_dir, store=store)
        try:
            con = pipeline.connect()  # listing included: what every CLI query pays
            return con.execute(sql).fetchall()
        finally:
            pipeline.close()

    # bench/logs.py's two questions: errors per service (task definition family) and a needle
    errors_sql = (
        "SELECT split_part(task_definition, ':', 1) AS service, count(*) FROM logs "
        "WHERE level = 'ERROR' GROUP BY 1 ORDER BY 1"
    )
    needle_sql = logs_needle_sql.format(rid=needle)
    errors_s, errors = best(runs, lambda: run(errors_sql))
    needle_s, found = best(runs, lambda: run(needle_sql))
    return {
        "errors_per_service_s": errors_s,
        "needle_s": needle_s,
        "errors": sum(n for _, n in errors),
        "errors_by_service": {s: n for s, n in errors},
        "needle_rows": len(found),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="200,000 lines")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--work", type=Path, default=Path("/tmp/ecsguard-bench-logs"))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from ecsguard.demo.emulator import REGION, MotoServer
    from ecsguard.logs.store import StoreLocation

    gen, logs_bench = _module("loggen"), _module("logs")
    lines = gen.QUICK_LINES if args.quick else args.lines
    data = args.work / f"data-{lines}-{args.seed}"
    manifest = gen.ensure(data, lines, args.seed)
    raw = data / "raw.ndjson"
    cuts = logs_bench.body_offsets(raw, args.seed)
    raw_bytes = manifest["raw_bytes"]
    needle = manifest["needles"]["0.61"]
    print(f"{lines:,} records, {raw_bytes / 1e6:.0f} MB raw in {len(cuts) - 1} bodies", flush=True)

    report: dict[str, Any] = {"lines": lines, "raw_bytes": raw_bytes, "stores": {}}
    with MotoServer() as server, tempfile.TemporaryDirectory(prefix="ecsguard-s3-bench-") as tmp:
        os.environ.update(server.env())
        s3 = boto3.client("s3", endpoint_url=server.endpoint, region_name=REGION)
        s3.create_bucket(
            Bucket="ecsguard-bench", CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        stores = {
            "local": None,
            "s3_moto": StoreLocation(url="s3://ecsguard-bench/store", endpoint_url=server.endpoint),
        }
        for name, store in stores.items():
            data_dir = Path(tmp) / name
            print(f"ingest into the {name} store ...", flush=True)
            result = ingest(raw, cuts, data_dir, store)
            result["mb_per_s"] = round(raw_bytes / 1e6 / result["seconds"], 1)
            result["events_per_s"] = round(result["rows"] / result["seconds"])
            result["events_per_cpu_s"] = round(result["rows"] / result["cpu_seconds"])
            print(f"query the {name} store ...", flush=True)
            result["queries"] = query_store(
                data_dir, store, needle, args.runs, logs_bench.NEEDLE_SQL
            )
            if store is not None:
                pages = s3.get_paginator("list_objects_v2").paginate(Bucket="ecsguard-bench")
                objects = [o for page in pages for o in page.get("Contents", [])]
                result["objects"] = len(objects)
                result["stored_bytes"] = sum(o["Size"] for o in objects)
            else:
                files = list((data_dir / "store").rglob("*.parquet"))
                result["objects"] = len(files)
                result["stored_bytes"] = sum(f.stat().st_size for f in files)
            report["stores"][name] = result

    local, remote = report["stores"]["local"], report["stores"]["s3_moto"]
    for result in (local, remote):
        assert result["rows"] == lines, result
        assert result["queries"]["errors"] == manifest["errors"], result
        assert result["queries"]["needle_rows"] == 1, result
    assert local["queries"]["errors_by_service"] == remote["queries"]["errors_by_service"]
    report["s3_vs_local_ingest"] = round(remote["seconds"] / local["seconds"], 2)
    report["machine"] = {
        "cpus": os.cpu_count(),
        "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
    }
    names = ("duckdb", "pyarrow", "boto3", "moto", "fsspec")
    report["versions"] = {name: metadata.version(name) for name in names}

    print(f"\n{'store':<9} {'ingest s':>9} {'MB/s':>7} {'events/s':>10} {'ev/cpu-s':>10} "
          f"{'objects':>8} {'errors q s':>11} {'needle q s':>11}")  # fmt: skip
    for name, r in report["stores"].items():
        q = r["queries"]
        print(f"{name:<9} {r['seconds']:>9} {r['mb_per_s']:>7} {r['events_per_s']:>10,} "
              f"{r['events_per_cpu_s']:>10,} {r['objects']:>8} {q['errors_per_service_s']:>11} "
              f"{q['needle_s']:>11}")  # fmt: skip
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
