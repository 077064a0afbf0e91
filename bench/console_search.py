"""Console search bench: the logs page's JSON twin against the CLI on the same store.

    .venv/bin/python bench/console_search.py [--events 10000000] [--seed 42] [--runs 5]
                                             [--work DIR]

Issue 8 asks that the logs page answer a search over 10 M events in about the time the CLI
does. Data: bench/loggen.py's FireLens records, ingested in process into a store and compacted
(bench/logs.py's `ingest_in_process`, then `LogService.maintain`, what `ecsguard serve` does in
the background). Data and store are kept under --work (default /tmp/ecsguard-bench-logs) and
reused by later runs.

A server runs in this process (uvicorn in a thread, as in tests/web/conftest.py) on the store,
with a viewer created for the run; the bench logs in through the login form. Two searches over
the generator's whole day (an absolute 24 h window, so the data's date does not matter):

- needle: one request id of all of them, as the filter pattern `{ $.request_id = "<id>" }`
  when its record is a JSON line, else as the term `"<id>"` (nginx and Java lines);
- errors per service: the Insights query
  `filter level = "ERROR" | stats count(*) as errors by service | sort errors desc`.

Each is timed --runs times (median) three ways, interleaved (one run of each per round, so a
change in the shared machine's load falls on all of them): `GET /logs.json` (the page's data:
the histogram and facets pass, then the rows), `ecsguard logs filter` / `ecsguard logs query`
as processes (Python start-up included), and the same library calls in this process
(`search_logs`, `compile_query` + DuckDB, connection included). Answers are compared. Results
go to bench/results/console_search.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results" / "console_search.json"
#: the generator's first day (bench/loggen.py START_MS): 10 M records fill about 14 hours of it
DAY_START, DAY_END = "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z"
INSIGHTS = 'filter level = "ERROR" | stats count(*) as errors by service | sort errors desc'


def logs_bench() -> ModuleType:
    """bench/logs.py (bench is not a package): its data, ingest and report helpers."""
    spec = importlib.util.spec_from_file_location("bench_logs", BENCH / "logs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------------- store


def ensure_store(bench: ModuleType, work: Path, events: int, seed: int) -> dict[str, Any]:
    """The data directory of a compacted store of `events` records, built once and reused."""
    manifest = bench.loggen().ensure(work / f"data-{events}-{seed}", events, seed)
    home = work / f"console-{events}-{seed}"
    data_dir, marker = home / "store", home / "built.json"
    if marker.exists():
        built = json.loads(marker.read_text())
        if built.get("rows") == events:
            print(f"store: reusing {data_dir}", flush=True)
            return {**built, "manifest": manifest, "data_dir": data_dir, "reused": True}
    raw = work / f"data-{events}-{seed}" / "raw.ndjson"
    cuts_file = work / f"cuts-{events}-{seed}.json"
    cuts_file.write_text(json.dumps(bench.body_offsets(raw, seed)))
    shutil.rmtree(data_dir, ignore_errors=True)
    print(f"store: ingesting {events:,} records into {data_dir} ...", flush=True)
    started = time.perf_counter()
    ingested = bench.ingest_in_process(raw, cuts_file, data_dir)
    if ingested["rows"] != events:
        raise SystemExit(f"the store holds {ingested['rows']} rows, expected {events}")
    ingest_seconds = time.perf_counter() - started
    from ecsguard.logs.service import LogService

    started = time.perf_counter()
    LogService(data_dir).maintain()
    built = {
        "rows": events,
        "ingest_seconds": round(ingest_seconds, 1),
        "compact_seconds": round(time.perf_counter() - started, 1),
    }
    marker.write_text(json.dumps(built, indent=2) + "\n")
    return {**built, "manifest": manifest, "data_dir": data_dir, "reused": False}


# ------------------------------------------------------------------------------------ server


@contextmanager
def server(data_dir: Path) -> Iterator[tuple[str, Any]]:
    """`ecsguard serve`'s app on `data_dir` in a thread; (url, a client logged in as a viewer)."""
    import httpx

    from ecsguard.logs.service import LogService
    from ecsguard.web.app import ServerSettings, bind, create_app, make_server
    from ecsguard.web.users import UserStore

    name, password = f"bench-{secrets.token_hex(3)}", secrets.token_urlsafe(18)
    users = UserStore(data_dir)
    try:
        users.add(name, password, "viewer")
    finally:
        users.close()
    settings = ServerSettings(host="127.0.0.1", port=0, forward_port=0)
    service = LogService(data_dir)
    app_server = make_server(create_app(settings, service), settings)
    sock = bind("127.0.0.1", 0)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    thread = threading.Thread(target=app_server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120  # start-up seeds the retry-dedup ids from young files
    while not app_server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise SystemExit("the server did not start")
        time.sleep(0.05)
    client = httpx.Client(base_url=url, timeout=600)
    try:
        form = client.get("/login").text
        found = re.search(r'name="csrf" value="([^"]+)"', form)
        assert found, "no login form"
        reply = client.post(
            "/login", data={"user": name, "password": password, "csrf": found.group(1)}
        )
        if reply.status_code != 303:
            raise SystemExit(f"login failed: {reply.status_code} {reply.text[:200]}")
        yield url, client
    finally:
        client.close()
        app_server.should_exit = True
        thread.join(30)
        users = UserStore(data_dir)
        try:
            users.remove(name)
        finally:
            users.close()


# ---------------------------------------------------------------------------------- searches


def page(client: Any, **params: str) -> list[list[Any]]:
    reply = client.get("/logs.json", params={**params, "start": DAY_START, "end": DAY_END})
    body = reply.json()
    if reply.status_code != 200 or body.get("error"):
        raise SystemExit(f"/logs.json failed: {reply.status_code} {body.get('error')}")
    rows: list[list[Any]] = body["rows"]
    return rows


def cli(data_dir: Path, *args: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "ecsguard", "logs", *args, "--start", DAY_START, "--end", DAY_END,
         "--output", "json", "--data-dir", str(data_dir)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"ecsguard logs {args[0]} failed: {done.stderr[-300:]}")
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


def api_filter(data_dir: Path, pattern: str) -> list[tuple[Any, ...]]:
    from ecsguard.logs.pipeline import Pipeline
    from ecsguard.logs.query.filter_pattern import compile_pattern
    from ecsguard.logs.query.filter_pattern.search import search_logs
    from ecsguard.logs.query.timerange import resolve

    pipeline = Pipeline(data_dir)
    try:
        window = resolve(None, DAY_START, DAY_END)
        return search_logs(pipeline.connect(), compile_pattern(pattern), window)[1]
    finally:
        pipeline.close()


def api_insights(data_dir: Path, query: str) -> list[tuple[Any, ...]]:
    from ecsguard.logs.pipeline import Pipeline
    from ecsguard.logs.query.insights import compile_query
    from ecsguard.logs.query.timerange import resolve

    pipeline = Pipeline(data_dir)
    try:
        sql = compile_query(query, resolve(None, DAY_START, DAY_END)).sql
        rows: list[tuple[Any, ...]] = pipeline.connect().execute(sql).fetchall()
        return rows
    finally:
        pipeline.close()


def timed(runs: int, ways: dict[str, Callable[[], Any]]) -> dict[str, dict[str, Any]]:
    """Each way `runs` times, interleaved (one run of each per round), so a change in the
    shared machine's load falls on every way alike; the median and every run."""
    times: dict[str, list[float]] = {way: [] for way in ways}
    answers: dict[str, Any] = {}
    for _ in range(runs):
        for way, fn in ways.items():
            started = time.perf_counter()
            answers[way] = fn()
            times[way].append(time.perf_counter() - started)
    return {
        way: {
            "median_s": round(statistics.median(spent), 3),
            "runs_s": [round(t, 3) for t in spent],
            "answer": answers[way],
        }
        for way, spent in times.items()
    }


def needle_pattern(data_dir: Path, rid: str) -> str:
    """The filter pattern a person would type for this request id: a JSON field test when the
    record is a JSON line (its `message` holds only the line's msg), else the id as a term."""
    from ecsguard.logs.pipeline import Pipeline

    pipeline = Pipeline(data_dir)
    try:
        found = (
            pipeline.connect()
            .execute(
                "SELECT json_extract_string(fields, '$.request_id') = ? FROM logs "
                "WHERE contains(message, ?) OR contains(fields, ?)",
                [rid, rid, rid],
            )
            .fetchall()
        )
    finally:
        pipeline.close()
    if len(found) != 1:
        raise SystemExit(f"the needle {rid} is in {len(found)} records, expected one")
    return f'{{ $.request_id = "{rid}" }}' if found[0][0] else f'"{rid}"'


def measure(data_dir: Path, client: Any, needle: str, runs: int) -> dict[str, Any]:
    searches: dict[str, dict[str, Callable[[], Any]]] = {
        "needle_filter_pattern": {
            "page": lambda: len(page(client, mode="filter", q=needle)),
            "cli": lambda: len(cli(data_dir, "filter", needle)),
            "in_process": lambda: len(api_filter(data_dir, needle)),
        },
        "errors_per_service_insights": {
            "page": lambda: sorted(map(tuple, page(client, mode="insights", q=INSIGHTS))),
            "cli": lambda: sorted(tuple(r.values()) for r in cli(data_dir, "query", INSIGHTS)),
            "in_process": lambda: sorted(api_insights(data_dir, INSIGHTS)),
        },
    }
    out: dict[str, Any] = {}
    for search, ways in searches.items():
        print(f"  {search}: {', '.join(ways)} x{runs}, interleaved ...", flush=True)
        out[search] = timed(runs, ways)
        reference = out[search]["in_process"]["answer"]
        for way in ways:
            answer = out[search][way]["answer"]
            out[search][way]["same_answer"] = answer == reference
            if not isinstance(answer, int):  # a table of (service, errors): keep the total
                out[search][way]["answer"] = sum(int(row[1]) for row in answer)
        medians = {way: out[search][way]["median_s"] for way in ways}
        out[search]["page_over_cli"] = round(medians["page"] / medians["cli"], 2)
        out[search]["page_over_in_process"] = round(medians["page"] / medians["in_process"], 2)
    return out


def print_table(report: dict[str, Any]) -> None:
    print(f"\n{report['events']:,} FireLens records, median of {report['runs']} runs")
    print(f"{'search':30s} {'page':>9s} {'CLI':>9s} {'in-proc':>9s} {'page/CLI':>9s}  answers")
    for search, r in report["searches"].items():
        same = all(r[w]["same_answer"] for w in ("page", "cli", "in_process"))
        print(
            f"{search:30s} {r['page']['median_s']:8.3f}s {r['cli']['median_s']:8.3f}s "
            f"{r['in_process']['median_s']:8.3f}s {r['page_over_cli']:9.2f}  "
            f"{r['page']['answer']}{'' if same else '  DIFFERENT ANSWERS'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--work", type=Path, default=Path("/tmp/ecsguard-bench-logs"))
    args = parser.parse_args()
    bench = logs_bench()
    store = ensure_store(bench, args.work, args.events, args.seed)
    manifest, data_dir = store["manifest"], store["data_dir"]
    rid = manifest["needles"]["0.61"]
    needle = needle_pattern(data_dir, rid)
    with server(data_dir) as (_, client):
        searches = measure(data_dir, client, needle, args.runs)
    found = searches["needle_filter_pattern"]["in_process"]["answer"]
    if found != 1:
        raise SystemExit(f"{needle} found {found} records, expected one")
    errors = searches["errors_per_service_insights"]["in_process"]["answer"]
    if errors != manifest["errors"]:
        raise SystemExit(f"{errors} errors counted, the generator wrote {manifest['errors']}")
    files = list((data_dir / "store" / "logs").rglob("*.parquet"))
    report = {
        "bench": "console_search",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": bench.machine(),
        "versions": bench.versions(),
        "events": args.events,
        "runs": args.runs,
        "store": {
            "parquet_bytes": sum(f.stat().st_size for f in files),
            "parquet_files": len(files),
            **{k: store[k] for k in ("ingest_seconds", "compact_seconds", "reused")},
        },
        "window": {"start": DAY_START, "end": DAY_END},
        "needle_request_id": rid,
        "needle_pattern": needle,
        "insights_query": INSIGHTS,
        "searches": searches,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
