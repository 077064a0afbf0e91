"""Metrics bench: sustained ingest of datapoints, and a 30-day hourly p95 over the rollups
against the same query over the raw table.

    .venv/bin/python bench/metrics.py [--minutes 5] [--per-minute 1000000] [--services 100]
                                      [--days 30] [--runs 5] [--work DIR] [--quick]

1. Ingest: --minutes minutes of --per-minute datapoints each (20,000 series: 5 metrics of 4,000
   dimension sets, values seeded-random), handed to Pipeline.ingest in batches of 10,000 rows
   (the WAL: fsynced before it returns, what a receiver acknowledges) and flushed to Parquet at
   the end of every minute, as the server's flusher does. The batches of a minute are built
   before its clock starts (they are what a receiver produces). Target: 1 M datapoints a minute
   sustained, i.e. every minute ingested and flushed in well under 60 s. Then one rollup()
   of those minutes (timed).
2. Query: --days days of per-minute AWS/ECS CPUUtilization for --services services (4.3 M rows
   at the defaults) written to the store one day a file, then `rollup()` (timed: the backfill,
   then the next run a minute later), then the hourly
   p95 of one service over the whole window, --runs times (median), both on a connection that
   is already open and including `connect_with_rollups()`:
   - rollup: `SELECT time, p95 FROM metrics_1h WHERE ... dimensions = <service>`;
   - raw: `quantile_cont(value, 0.95)` per `time_bucket(1 hour)` over the metrics view.
   The two answers are compared (one datapoint a minute: the rollup's p95 is exact).
   Target: under 200 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "src"))

from ecsguard.logs.pipeline import Pipeline  # noqa: E402
from ecsguard.logs.schema import METRICS  # noqa: E402
from ecsguard.monitor.rollups import connect_with_rollups, rollup  # noqa: E402

RESULTS = BENCH / "results" / "metrics.json"
BATCH_ROWS = 10_000
NOW = dt.datetime(2026, 11, 28, 0, 0, tzinfo=dt.UTC)
INGEST_NAMES = ["CPUUtilization", "MemoryUtilization", "CpuUtilized", "MemoryUtilized", "Net"]


def machine() -> dict[str, Any]:
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
    }


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _dims(cluster: int, service: int) -> str:
    return json.dumps({"ClusterName": f"c{cluster}", "ServiceName": f"svc-{service:04d}"})


def minute_batches(minute: dt.datetime, rows: int, rng: random.Random) -> list[pa.RecordBatch]:
    """`rows` datapoints spread over one minute, as receivers' batches of BATCH_ROWS."""
    series = [(n, _dims(s % 10, s)) for n in INGEST_NAMES for s in range(4000)]
    start_us = int(minute.timestamp() * 1_000_000)
    batches = []
    for first in range(0, rows, BATCH_ROWS):
        count = min(BATCH_ROWS, rows - first)
        index = pa.array([(first + i) % len(series) for i in range(count)], pa.int32())
        names = pa.array([s[0] for s in series])
        dims = pa.array([s[1] for s in series])
        offsets = [rng.randrange(60_000_000) for _ in range(count)]
        batches.append(
            pa.RecordBatch.from_pydict(
                {
                    "time": pa.array([start_us + o for o in offsets], pa.int64()).cast(
                        METRICS[0].type
                    ),
                    "namespace": pa.array(["AWS/ECS"] * count),
                    "name": pc.take(names, index),
                    "dimensions": pc.take(dims, index),
                    "value": pa.array([rng.random() * 100 for _ in range(count)], pa.float64()),
                    "unit": pa.array(["Percent"] * count),
                },
                schema=METRICS,
            )
        )
    return batches


def bench_ingest(work: Path, minutes: int, per_minute: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    folder = work / "ingest"
    shutil.rmtree(folder, ignore_errors=True)
    pipeline = Pipeline(folder)
    per_minute_seconds = []
    start_minute = NOW - dt.timedelta(minutes=minutes)
    cpu_seconds = 0.0
    for m in range(minutes):
        batches = minute_batches(start_minute + dt.timedelta(minutes=m), per_minute, rng)
        cpu_before = _cpu()
        began = time.perf_counter()
        for batch in batches:
            pipeline.ingest("metrics", batch)
        written = pipeline.flush()["metrics"]
        per_minute_seconds.append(time.perf_counter() - began)
        cpu_seconds += _cpu() - cpu_before
        assert written == per_minute, (written, per_minute)
        print(f"  minute {m + 1}: {per_minute:,} datapoints in {per_minute_seconds[-1]:.2f} s")
    pipeline.close()
    total = sum(per_minute_seconds)
    con = Pipeline(folder).connect()
    [(stored,)] = con.execute("SELECT count(*) FROM metrics").fetchall()
    con.close()
    assert stored == minutes * per_minute, stored
    # the rollup of these minutes: what a run every minute reads is LATE + 1 minute of them
    began = time.perf_counter()
    rolled = rollup(folder, NOW)
    rollup_s = time.perf_counter() - began
    print(f"  rollup of the {minutes} minutes: {rollup_s:.1f} s {rolled.rows}")
    return {
        "minutes": minutes,
        "datapoints_per_minute": per_minute,
        "batch_rows": BATCH_ROWS,
        "seconds_per_minute": [round(s, 2) for s in per_minute_seconds],
        "datapoints_per_second": round(minutes * per_minute / total),
        "headroom": round(60 * minutes / total, 1),
        "cpu_seconds": round(cpu_seconds, 1),
        "datapoints_per_cpu_second": round(minutes * per_minute / cpu_seconds),
        "rollup_seconds": round(rollup_s, 1),
        "rollup_datapoints_per_second": round(minutes * per_minute / rollup_s),
        "store_bytes": sum(p.stat().st_size for p in (folder / "store").rglob("*.parquet")),
    }


def cpu_history(folder: Path, days: int, services: int, seed: int) -> int:
    """Per-minute CPU of every service for `days` days before NOW, one store file a day."""
    rng = random.Random(seed)
    pipeline = Pipeline(folder)
    dims = [_dims(s % 10, s) for s in range(services)]
    rows = 0
    first_day = NOW - dt.timedelta(days=days)
    for day in range(days):
        start_us = int((first_day + dt.timedelta(days=day)).timestamp() * 1_000_000)
        times, dimensions, values = [], [], []
        for s in range(services):
            base = 20 + (s % 50)
            for minute in range(1440):
                times.append(start_us + minute * 60_000_000)
                dimensions.append(dims[s])
                values.append(base + 30 * rng.random() * (1 + (minute // 60) % 3))
        count = len(times)
        table = pa.table(
            {
                "time": pa.array(times, pa.int64()).cast(METRICS[0].type),
                "namespace": pa.array(["AWS/ECS"] * count),
                "name": pa.array(["CPUUtilization"] * count),
                "dimensions": pa.array(dimensions),
                "value": pa.array(values, pa.float64()),
                "unit": pa.array(["Percent"] * count),
            },
            schema=METRICS,
        )
        pipeline.store.write("metrics", table)
        rows += count
    pipeline.close()
    return rows


def _median_ms(fn: Any, runs: int) -> tuple[float, Any]:
    times, answer = [], None
    for _ in range(runs):
        began = time.perf_counter()
        answer = fn()
        times.append((time.perf_counter() - began) * 1000)
    return round(statistics.median(times), 1), answer


def bench_query(work: Path, days: int, services: int, runs: int, seed: int) -> dict[str, Any]:
    folder = work / "history"
    shutil.rmtree(folder, ignore_errors=True)
    began = time.perf_counter()
    rows = cpu_history(folder, days, services, seed)
    generate_s = time.perf_counter() - began
    print(f"  {rows:,} raw rows written in {generate_s:.1f} s")
    began = time.perf_counter()
    result = rollup(folder, NOW)
    rollup_s = time.perf_counter() - began
    print(f"  rollup in {rollup_s:.1f} s: {result.rows}")
    began = time.perf_counter()
    rollup(folder, NOW + dt.timedelta(minutes=1))
    incremental_s = time.perf_counter() - began
    print(f"  the next run (a minute later): {incremental_s:.2f} s")
    target = _dims(7, 7)
    start = (NOW - dt.timedelta(days=days)).isoformat()
    where = (
        f"namespace = 'AWS/ECS' AND name = 'CPUUtilization' AND dimensions = '{target}' "
        f"AND time >= TIMESTAMPTZ '{start}' AND time < TIMESTAMPTZ '{NOW.isoformat()}'"
    )
    rollup_sql = f"SELECT time, p95 FROM metrics_1h WHERE {where} ORDER BY time"
    raw_sql = (
        "SELECT time_bucket(INTERVAL '1 hour', time) AS hour, quantile_cont(value, 0.95) "
        f"FROM metrics WHERE {where} GROUP BY hour ORDER BY hour"
    )
    con = connect_with_rollups(folder)
    figures: dict[str, Any] = {}
    answers = {}
    for label, sql in (("rollup_1h", rollup_sql), ("raw", raw_sql)):
        con.execute(sql).fetchall()  # warm the OS page cache, as a dashboard's refresh finds it
        warm_ms, answer = _median_ms(lambda sql=sql: con.execute(sql).fetchall(), runs)

        def cold(sql: str = sql) -> list[Any]:
            fresh = connect_with_rollups(folder)
            try:
                return fresh.execute(sql).fetchall()
            finally:
                fresh.close()

        with_connect_ms, _ = _median_ms(cold, runs)
        answers[label] = answer
        figures[label] = {"query_ms": warm_ms, "with_connect_ms": with_connect_ms}
        print(f"  {label}: {warm_ms} ms (with connect {with_connect_ms} ms), {len(answer)} hours")
    con.close()
    same = len(answers["raw"]) == len(answers["rollup_1h"]) == days * 24 and all(
        a[0] == b[0] and abs(a[1] - b[1]) < 1e-9
        for a, b in zip(answers["raw"], answers["rollup_1h"], strict=True)
    )
    if not same:
        raise SystemExit("the rollup's hourly p95 differs from the raw table's")
    return {
        "days": days,
        "services": services,
        "raw_rows": rows,
        "rollup_seconds": round(rollup_s, 1),
        "rollup_rows": result.rows,
        "incremental_rollup_seconds": round(incremental_s, 2),
        "hours": days * 24,
        "answers_equal": same,
        **figures,
        "speedup_query": round(figures["raw"]["query_ms"] / figures["rollup_1h"]["query_ms"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=5)
    parser.add_argument("--per-minute", type=int, default=1_000_000)
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="1 minute of 100k, 3 days")
    args = parser.parse_args()
    if args.quick:
        args.minutes, args.per_minute, args.days = 1, 100_000, 3
    work = args.work or Path(tempfile.mkdtemp(prefix="ecsguard-bench-metrics-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"ingest: {args.minutes} minute(s) of {args.per_minute:,} datapoints")
    ingest = bench_ingest(work, args.minutes, args.per_minute, args.seed)
    print(f"  {ingest['datapoints_per_second']:,} datapoints/s ({ingest['headroom']}x real time)")
    print(f"query: {args.days} days of per-minute CPU for {args.services} services")
    query = bench_query(work, args.days, args.services, args.runs, args.seed)
    report = {
        "bench": "metrics",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "ingest": ingest,
        "query_30d_hourly_p95": query,
        "targets": {
            "ingest_datapoints_per_minute": 1_000_000,
            "hourly_p95_ms": 200,
        },
        "machine": machine(),
    }
    path = RESULTS if not args.quick else RESULTS.with_name("metrics-quick.json")
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nresults written to {path.relative_to(ROOT)}")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
