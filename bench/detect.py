"""Detection bench: 500 mixed rules over a stream of ECS events, CloudTrail records and log lines,
the engine beside a naive loop, and end to end through `ecsguard serve` to a webhook.

    .venv/bin/python bench/detect.py [--events 1000000] [--min-seconds 10] [--batch 1000]
                                     [--pool 300000] [--naive-events 20000] [--seed 11]
                                     [--e2e-seconds 20] [--e2e-start 40960] [--e2e-factor 1.25]
                                     [--e2e-steps 7]
                                     [--skip-e2e] [--profile]

Rules and data come from bench/detectgen.py (seeded): 500 rules (event_pattern, log_filter,
sigma from ../shared/testdata/sigma, metric_alarm) written as YAML and loaded with the real
loader; records in a fixed mix (35% ECS events, 25% CloudTrail records, 40% log lines), cut into
bodies of --batch records as the receivers get them over HTTP.

1. In process: every body is parsed once by the real receiver (ecs_events, cloudtrail, lines)
   into its Arrow batch; --pool records of distinct batches are made up front and fed in a loop
   to `Engine.process` until --events records and --min-seconds have passed. The engine ticks
   once a second of wall time, as the server's detection worker does, and the metric datapoints
   of log metric filters go back into it as the worker stores them. Alerts and rule state go to
   a SQLite file, as in the server. Reported: records/s (per table too), alerts, and where the
   time goes per rule type (one more pass over the pool with each evaluator timed).
2. Naive loop, on the pool's first bodies of each table, MIX's share of --naive-events records
   each (at least one body per table): each record is converted once
   (EventBridge shape for event patterns, a row dict for Sigma, message or JSON fields for
   filter patterns), then every rule reading its table is evaluated alone on it: each event
   pattern compiled alone (`EventPattern.matches`), each Sigma rule's compiled test on the
   record, each filter pattern's `match(text)` per line. Metric alarms read only the metrics
   table, which the stream does not carry, so they cost nothing here. Reported: records/s in
   the engine's mix (each table's seconds per record weighed by its MIX share, so the pool's
   order cannot decide it) and the ratio engine / naive. The matches per rule of both are
   compared on the same records; a difference is printed and makes the exit status 1.
3. End to end: `ecsguard serve --rules DIR --notify FILE` (ServeProcess), the notify file
   sending alerts of the three marker rules to a `webhook` channel whose URL is a
   ThreadingHTTPServer in this process (it records arrival times) and every other alert to a
   second webhook path. Sender threads post pre-made bodies (their record ids made unique per
   post, as the server drops records whose id it has seen) to /ingest/ecs-events,
   /ingest/cloudtrail and /ingest/lines on a fixed schedule (open loop) at a rate stepped up by
   --e2e-factor from --e2e-start records/s, --e2e-seconds per step. About four bodies a
   second (every body at low rates) carry one marker record in place of an ordinary one (a
   unique value its rule groups by, so each is a new alert); its latency is from the HTTP 200
   of that body to the webhook receiving its alert. A step is sustained when the acknowledged
   rate is at least 95% of the offered one, every marker arrived and p99 is at most 1 s;
   stepping stops after the first step that is not. A 5 s step at the first rate goes before
   them, unrecorded (first uses). Then one closed-loop step (4 senders, no schedule) shows the
   ingest ceiling. Server CPU seconds (serve and its detection process) come from
   /proc/<pid>/stat, with the detection process's share apart; the load generator's own CPU
   from os.times().

Results go to bench/results/detect.json; the machine's core count and load average are
recorded with them, because on a shared 2-core machine wall times move with the load.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import http.client
import io
import json
import os
import platform
import pstats
import random
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow as pa

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "src"))

from detectgen import Stream, lines_params, unique, write_rules  # noqa: E402
from ecsguard.demo.logserver import ServeProcess  # noqa: E402
from ecsguard.detect.engine import AlertStore, Engine  # noqa: E402
from ecsguard.detect.eventpattern import compile_pattern  # noqa: E402
from ecsguard.detect.eventpattern.records import to_events  # noqa: E402
from ecsguard.detect.loader import load_rules  # noqa: E402
from ecsguard.detect.rules import Rule  # noqa: E402
from ecsguard.detect.sigma.fields import Record  # noqa: E402
from ecsguard.logs.query.filter_pattern import compile_pattern as compile_filter  # noqa: E402
from ecsguard.logs.receivers import RECEIVERS  # noqa: E402
from ecsguard.logs.records import ReceiverOptions  # noqa: E402
from ecsguard.logs.service import DEFAULT_FLUSH_SECONDS  # noqa: E402
from procstat import cpu_split  # noqa: E402

RESULTS = BENCH / "results" / "detect.json"
TARGET_RATE = 100_000  # records/s, issue 6
TARGET_P99 = 1.0  # seconds from acknowledgement to notification
#: records per table in the stream (the rest of the mix is lines)
MIX = {"events": 0.35, "cloudtrail": 0.25, "logs": 0.40}
ROUTE = {
    "events": "/ingest/ecs-events",
    "cloudtrail": "/ingest/cloudtrail",
    "logs": "/ingest/lines",
}
RECEIVER = {"events": "ecs_events", "cloudtrail": "cloudtrail", "logs": "lines"}
MARKERS_PER_SECOND = 4  # bodies of the end-to-end load carrying a marker (every body at most)
MARKED_BODIES = 8  # distinct bodies per table to put markers in
PLACEHOLDER = "mkPLACEHOLDERmk"
#: every Engine made here stays alive until the end: an event_pattern evaluator, when garbage
#: collected, releases its pattern from the process-wide SharedPatterns under the lock that a
#: batch being matched may hold, and that deadlocks (reported; see bench/README.md)
_ENGINES: list[Engine] = []


# --------------------------------------------------------------------------------- the data


@dataclass
class Body:
    table: str
    data: bytes
    params: dict[str, str]
    records: int
    batch: pa.RecordBatch | None = None


def table_order(count: int, rng: random.Random) -> list[str]:
    """Which table each of `count` bodies belongs to, in MIX's shares, shuffled."""
    tables = [t for t, share in MIX.items() for _ in range(round(share * count))]
    while len(tables) < count:
        tables.append("logs")
    rng.shuffle(tables)
    return tables[:count]


def make_body(stream: Stream, table: str, size: int, marker: str | None = None) -> Body:
    if table == "events":
        return Body(table, stream.ecs_body(size, marker), {}, size)
    if table == "cloudtrail":
        return Body(table, stream.cloudtrail_body(size, marker), {}, size)
    params = lines_params(stream.rng, marker)
    return Body(table, stream.lines_body(size, marker), params, size)


def parse(body: Body, ingest_time_us: int | None = None) -> pa.RecordBatch:
    """`body` through its receiver (`ingest_time_us`: the time of lines without one, for runs
    that compare batches)."""
    p = body.params
    options = ReceiverOptions(
        input_name="bench",
        cluster=p.get("cluster"),
        service=p.get("service"),
        container=p.get("container"),
        ingest_time_us=ingest_time_us,
    )
    parsed = RECEIVERS.get(RECEIVER[body.table])(body.data, options)
    if parsed.problems:
        raise SystemExit(f"the {body.table} receiver reported problems: {parsed.problems[:3]}")
    return parsed.batch


def make_pool(seed: int, records: int, size: int) -> list[Body]:
    stream = Stream(seed=seed)
    rng = random.Random(seed)
    bodies = [make_body(stream, table, size) for table in table_order(records // size, rng)]
    for body in bodies:
        body.batch = parse(body)
    return bodies


def new_engine(rules: list[Rule], store: AlertStore) -> Engine:
    engine = Engine(rules, store)
    _ENGINES.append(engine)
    return engine


def load(folder: Path) -> list[Rule]:
    loaded = load_rules([folder])
    loaded.raise_errors()
    return loaded.rules


# --------------------------------------------------------------------------- the engine run


def run_engine(
    rules: list[Rule], pool: list[Body], events: int, min_seconds: float, work: Path
) -> dict[str, Any]:
    store = AlertStore(work / "detect.db")
    engine = new_engine(rules, store)

    derived: list[pa.RecordBatch] = []

    def store_metrics(batch: pa.RecordBatch) -> None:
        # as the worker does: evaluated after the tick, whose transaction is still open here
        derived.append(batch)

    engine.on_metrics = store_metrics
    alerts = 0
    per_table_seconds: dict[str, float] = defaultdict(float)
    per_table_records: Counter[str] = Counter()
    done = 0
    tick_seconds = 0.0
    started = time.perf_counter()
    next_tick = started + 1.0
    cpu = time.process_time()
    index = 0
    while done < events or time.perf_counter() - started < min_seconds:
        body = pool[index % len(pool)]
        index += 1
        assert body.batch is not None
        before = time.perf_counter()
        alerts += len(engine.process(body.table, body.batch))
        after = time.perf_counter()
        per_table_seconds[body.table] += after - before
        per_table_records[body.table] += body.batch.num_rows
        done += body.batch.num_rows
        if after >= next_tick:
            alerts += len(engine.tick(datetime.now(UTC)))
            while derived:
                alerts += len(engine.process("metrics", derived.pop(0)))
            tick_seconds += time.perf_counter() - after
            next_tick = time.perf_counter() + 1.0
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    stored = len(store.alerts(limit=1_000_000))
    store.close()
    return {
        "records": done,
        "seconds": round(elapsed, 2),
        "cpu_seconds": round(cpu, 2),
        "records_per_second": round(done / elapsed),
        "per_table_records_per_second": {
            t: round(per_table_records[t] / per_table_seconds[t]) for t in per_table_seconds
        },
        "tick_seconds": round(tick_seconds, 2),
        "alerts_returned": alerts,
        "alerts_stored": stored,
        "rule_errors": engine.errors,
    }


def per_type_costs(rules: list[Rule], pool: list[Body], work: Path) -> dict[str, Any]:
    """One pass over the pool with every evaluator's on_batch timed: seconds per rule type and
    the engine's own share (alerts, SQLite), per 100,000 records."""
    store = AlertStore(work / "detect-costs.db")
    engine = new_engine(rules, store)
    cost: dict[str, float] = defaultdict(float)
    for rule_id, evaluator in engine.evaluators.items():
        kind = engine.rules[rule_id].type
        inner = evaluator.on_batch

        def timed(table: str, batch: pa.RecordBatch, inner: Any = inner, kind: str = kind) -> Any:
            t0 = time.perf_counter()
            try:
                return inner(table, batch)
            finally:
                cost[kind] += time.perf_counter() - t0

        evaluator.on_batch = timed  # type: ignore[method-assign]
    # a batch group's shared pass (event patterns) is its rule type's cost too
    groups: dict[Any, str] = {}
    for by_group in engine.groups.values():
        for group, keys in by_group.items():
            groups[group] = engine.rules[next(iter(keys.values()))[0]].type
    for group, kind in groups.items():
        inner = group.matched

        def timed_group(
            table: str, batch: pa.RecordBatch, inner: Any = inner, kind: str = kind
        ) -> Any:
            t0 = time.perf_counter()
            try:
                return inner(table, batch)
            finally:
                cost[kind] += time.perf_counter() - t0

        group.matched = timed_group
    total = 0.0
    records = 0
    try:
        for body in pool:
            assert body.batch is not None
            t0 = time.perf_counter()
            engine.process(body.table, body.batch)
            total += time.perf_counter() - t0
            records += body.records
    finally:
        for group in groups:
            del group.matched  # the shared set outlives this engine
    store.close()
    scale = 100_000 / records
    ranked = sorted(cost.items(), key=lambda item: -item[1])
    shares = {kind: round(seconds * scale, 3) for kind, seconds in ranked}
    shares["engine (alerts, SQLite)"] = round((total - sum(cost.values())) * scale, 3)
    return {"seconds_per_100k_records": shares, "records": records}


def profile_engine(rules: list[Rule], pool: list[Body], work: Path, top: int = 25) -> str:
    store = AlertStore(work / "detect-profile.db")
    engine = new_engine(rules, store)
    profiler = cProfile.Profile()
    profiler.enable()
    for body in pool:
        assert body.batch is not None
        engine.process(body.table, body.batch)
    profiler.disable()
    store.close()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


# ----------------------------------------------------------------------------- naive loop


def _naive_rules(rules: list[Rule]) -> dict[str, list[tuple[str, Any]]]:
    """Per table: (rule id, a test of one record) for every rule reading it, compiled alone."""
    by_table: dict[str, list[tuple[str, Any]]] = defaultdict(list)
    for rule in rules:
        settings = rule.settings
        if rule.type == "event_pattern":
            pattern = compile_pattern(settings.pattern)
            for table in ("events", "cloudtrail"):
                by_table[table].append((rule.id, ("pattern", pattern.matches)))
        elif rule.type == "sigma":
            by_table["cloudtrail"].append((rule.id, ("sigma", settings.spec.compiled.test)))
        elif rule.type == "log_filter":
            flt = compile_filter(settings.pattern)
            test = (flt.kind == "json", settings.cluster, settings.service, flt.match)
            by_table["logs"].append((rule.id, ("filter", test)))
    return by_table


def _naive_body(body: Body, tests: list[tuple[str, Any]], hits: Counter[str]) -> int:
    """Evaluates every rule alone on every record of the body; the records some rule matched."""
    batch = body.batch
    assert batch is not None
    matched = 0
    if body.table in ("events", "cloudtrail"):
        events = to_events(body.table, batch)
        records = batch.to_pylist() if body.table == "cloudtrail" else [None] * len(events)
        for event, row in zip(events, records, strict=True):
            any_hit = False
            record = Record(row) if row is not None else None
            for rule_id, (kind, test) in tests:
                ok = test(event) if kind == "pattern" else test(record)
                if ok:
                    hits[rule_id] += 1
                    any_hit = True
            matched += any_hit
        return matched
    columns = batch.select(["cluster", "service", "message", "fields"]).to_pylist()
    for row in columns:
        any_hit = False
        for rule_id, (_, (is_json, cluster, service, match)) in tests:
            if cluster is not None and row["cluster"] != cluster:
                continue
            if service is not None and row["service"] != service:
                continue
            text = row["fields"] if is_json and row["fields"] is not None else row["message"]
            if text is not None and match(text) is not None:
                hits[rule_id] += 1
                any_hit = True
        matched += any_hit
    return matched


def naive_sample(pool: list[Body], records: int) -> list[Body]:
    """Bodies for the naive loop: per table, the first ones of the pool until the table's share
    of `records` (at least one body each), so every table is measured whatever the pool's order."""
    sample: list[Body] = []
    for table, share in MIX.items():
        taken = 0
        for body in pool:
            if body.table == table and (taken == 0 or taken < share * records):
                sample.append(body)
                taken += body.records
    return sample


def run_naive(rules: list[Rule], sample: list[Body]) -> dict[str, Any]:
    """The naive loop over `sample`. Its rate is for MIX, as the engine's is: each table's
    seconds per record weighed by the table's share, so a sample whose first bodies happen to
    be of one table does not decide the ratio."""
    by_table = _naive_rules(rules)
    hits: Counter[str] = Counter()
    matched = 0
    seconds: dict[str, float] = dict.fromkeys(MIX, 0.0)
    counted: Counter[str] = Counter()
    for body in sample:
        started = time.perf_counter()
        matched += _naive_body(body, by_table[body.table], hits)
        seconds[body.table] += time.perf_counter() - started
        counted[body.table] += body.records
    per_record = {table: seconds[table] / counted[table] for table in counted}
    mixed = sum(MIX[table] * per_record[table] for table in per_record)
    records = sum(counted.values())
    return {
        "records": records,
        "seconds": round(sum(seconds.values()), 2),
        "records_per_second": round(1 / mixed),
        "per_table_records_per_second": {t: round(1 / v) for t, v in per_record.items()},
        "records_matched_by_some_rule": matched,
        "matched_fraction": round(matched / records, 4),
        "hits": hits,
    }


def engine_hits(rules: list[Rule], pool: list[Body], work: Path) -> Counter[str]:
    """Matched records per rule as the engine's evaluators report them (Match.count)."""
    store = AlertStore(work / "detect-check.db")
    engine = new_engine(rules, store)
    hits: Counter[str] = Counter()
    for body in pool:
        assert body.batch is not None
        for rule_id in engine.by_table.get(body.table, ()):
            for match in engine.evaluators[rule_id].on_batch(body.table, body.batch):
                hits[rule_id] += match.count
    store.close()
    return hits


# ----------------------------------------------------------------------------- end to end


class Webhook:
    """A local HTTP server recording when each marker's alert arrives."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.other_messages = 0
        self.other_alerts = 0
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                now = time.monotonic()
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()
                owner.record(self.path, body, now)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.port = self.server.server_address[1]

    def record(self, path: str, body: bytes, now: float) -> None:
        message = json.loads(body).get("alert") or {}
        alerts = message.get("alerts") or []
        with self.lock:
            if not path.startswith("/markers"):
                self.other_messages += 1
                self.other_alerts += int(message.get("alert_count") or len(alerts))
                return
            for alert in alerts:
                key = alert.get("key") or [""]
                marker = str(key[0]).removeprefix("marker-")
                self.arrived.setdefault(marker, now)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def notify_config(path: Path, port: int) -> Path:
    text = f"""\
lang: en
channels:
  markers:
    type: webhook
    max_per_minute: 10000
    webhook: {{url: "json://127.0.0.1:{port}/markers"}}
  everything:
    type: webhook
    webhook: {{url: "json://127.0.0.1:{port}/all"}}
routes:
  - match: {{rules: ["bench-marker-*"]}}
    channels: [markers]
default:
  channels: [everything]
"""
    path.write_text(text, encoding="utf-8")
    return path


@dataclass
class LoadBodies:
    """Bodies for the load generator: plain ones, and per table one with a marker placeholder."""

    plain: list[Body]
    marked: dict[str, list[Body]]


def make_load_bodies(seed: int, count: int, size: int) -> LoadBodies:
    stream = Stream(seed=seed + 1)
    rng = random.Random(seed + 1)
    plain = [make_body(stream, t, size) for t in table_order(count, rng)]
    marked = {
        t: [make_body(stream, t, size, PLACEHOLDER) for _ in range(MARKED_BODIES)] for t in MIX
    }
    return LoadBodies(plain, marked)


@dataclass
class StepResult:
    offered: float | None
    seconds: float
    records: int
    acked_rate: float
    errors: Counter[str]
    markers_sent: int
    markers_arrived: int
    latencies: list[float]
    server_cpu: float
    detection_cpu: float  # the part of server_cpu its detection process used
    client_cpu: float
    statuses: Counter[int] = field(default_factory=Counter)

    def percentile(self, q: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        rank = max(1, -(-len(ordered) * q // 100))  # nearest rank
        return ordered[int(rank) - 1]

    def sustained(self) -> bool:
        p99 = self.percentile(99)
        return (
            self.offered is not None
            and self.acked_rate >= 0.95 * self.offered
            and self.markers_arrived == self.markers_sent
            and p99 is not None
            and p99 <= TARGET_P99
        )

    def summary(self) -> dict[str, Any]:
        p50, p99 = self.percentile(50), self.percentile(99)
        return {
            "offered_records_per_second": None if self.offered is None else round(self.offered),
            "acked_records_per_second": round(self.acked_rate),
            "seconds": round(self.seconds, 1),
            "records": self.records,
            "markers_sent": self.markers_sent,
            "markers_arrived": self.markers_arrived,
            "latency_p50_s": None if p50 is None else round(p50, 3),
            "latency_p99_s": None if p99 is None else round(p99, 3),
            "latency_max_s": round(max(self.latencies), 3) if self.latencies else None,
            "server_cpu_seconds": round(self.server_cpu, 1),
            "server_cores_busy": round(self.server_cpu / self.seconds, 2),
            "detection_cores_busy": round(self.detection_cpu / self.seconds, 2),
            "load_generator_cpu_seconds": round(self.client_cpu, 1),
            "http_errors": dict(self.errors),
            "sustained": self.sustained(),
        }


class LoadStep:
    """One step of load: `senders` threads post bodies, on a schedule when `rate` is given."""

    def __init__(
        self, url: str, bodies: LoadBodies, rate: float | None, seconds: float, step: int
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.bodies = bodies
        self.rate = rate
        self.seconds = seconds
        self.step = step
        self.size = bodies.plain[0].records
        bodies_per_second = rate / self.size if rate else 8 * MARKERS_PER_SECOND
        self.marker_every = max(1, round(bodies_per_second / MARKERS_PER_SECOND))
        self.lock = threading.Lock()
        self.next_slot = 0
        self.records = 0
        self.errors: Counter[str] = Counter()
        self.acked: dict[str, float] = {}  # marker -> monotonic time of its HTTP 200

    def _slot(self) -> int:
        with self.lock:
            slot = self.next_slot
            self.next_slot += 1
            return slot

    def _body(self, slot: int) -> tuple[Body, bytes, str | None, dict[str, str]]:
        plain = self.bodies.plain[slot % len(self.bodies.plain)]
        number = self.step * 10_000_000 + slot  # unique per post over the whole run
        if slot % self.marker_every == self.marker_every - 1:
            # the same table as the plain body of this slot, so markers keep the mix
            marked = self.bodies.marked[plain.table]
            body = marked[(slot // self.marker_every) % len(marked)]
            marker = f"mk{self.step:02d}{slot:07d}"
            data = unique(body.data.replace(PLACEHOLDER.encode(), marker.encode()), number)
            params = dict(body.params)
            if "service" in params:
                params["service"] = f"marker-{marker}"
            return body, data, marker, params
        return plain, unique(plain.data, number), None, plain.params

    def _sender(self, start: float) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        end = start + self.seconds
        interval = self.size / self.rate if self.rate else 0.0
        while True:
            slot = self._slot()
            due = start + slot * interval
            now = time.monotonic()
            # far behind the schedule is a result already: the step is not sustained
            if due >= end or now >= end + self.seconds / 2 or (not self.rate and now >= end):
                break
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            body, data, marker, params = self._body(slot)
            path = ROUTE[body.table]
            if params:
                path += "?" + urllib.parse.urlencode(params)
            try:
                conn.request("POST", path, body=data, headers={"content-type": "application/json"})
                reply = conn.getresponse()
                reply.read()
                status = reply.status
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                with self.lock:
                    self.errors[type(exc).__name__] += 1
                continue
            now = time.monotonic()
            with self.lock:
                if status == 200:
                    self.records += body.records
                    if marker is not None:
                        self.acked[marker] = now
                else:
                    self.errors[f"HTTP {status}"] += 1
        conn.close()

    def run(self, senders: int) -> float:
        start = time.monotonic() + 0.05
        threads = [
            threading.Thread(target=self._sender, args=(start,), daemon=True)
            for _ in range(senders)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # the schedule's length at least: the last body is due before the end, not at it
        return max(time.monotonic() - start, self.seconds)


def run_step(
    server: ServeProcess,
    hook: Webhook,
    bodies: LoadBodies,
    rate: float | None,
    seconds: float,
    step: int,
    senders: int,
) -> StepResult:
    pid = server.proc.pid
    cpu0, client0 = cpu_split(pid), os.times()
    load = LoadStep(server.url, bodies, rate, seconds, step)
    elapsed = load.run(senders)
    cpu1, client1 = cpu_split(pid), os.times()
    # markers still in flight arrive while detection catches up; wait for them (bounded)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with hook.lock:
            if all(marker in hook.arrived for marker in load.acked):
                break
        time.sleep(0.1)
    with hook.lock:
        latencies = [hook.arrived[m] - t for m, t in load.acked.items() if m in hook.arrived]
    return StepResult(
        offered=rate,
        seconds=elapsed,
        records=load.records,
        acked_rate=load.records / elapsed,
        errors=load.errors,
        markers_sent=len(load.acked),
        markers_arrived=len(latencies),
        latencies=latencies,
        server_cpu=sum(cpu1) - sum(cpu0),
        detection_cpu=cpu1[1] - cpu0[1],
        client_cpu=(client1.user + client1.system) - (client0.user + client0.system),
    )


def server_stats(url: str) -> dict[str, Any]:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=10)
    try:
        conn.request("GET", "/api/stats")
        body = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    detection = body.get("detection") or {}
    return {
        "rules": detection.get("rules"),
        "batches_evaluated": detection.get("batches"),
        "rule_errors": detection.get("rule_errors"),
    }


def run_e2e(rules_dir: Path, work: Path, args: argparse.Namespace, log: Any) -> dict[str, Any]:
    hook = Webhook()
    data_dir = work / "serve-data"
    config = notify_config(work / "notify.yaml", hook.port)
    bodies = make_load_bodies(args.seed, 60, args.batch)
    steps: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    try:
        with ServeProcess(  # serve's own flush policy, as users run it
            data_dir,
            flush_seconds=DEFAULT_FLUSH_SECONDS,
            args=["--rules", str(rules_dir), "--notify", str(config)],
        ) as server:
            rate = float(args.e2e_start)
            # not recorded: the first batches pay for first uses (DuckDB, Sigma's memos, SQLite)
            run_step(server, hook, bodies, rate, 5.0, 0, senders=4)
            for step in range(1, args.e2e_steps + 1):
                result = run_step(server, hook, bodies, rate, args.e2e_seconds, step, senders=4)
                row = result.summary()
                steps.append(row)
                log(_e2e_line(row))
                if result.sustained():
                    best = row
                else:
                    break
                rate *= args.e2e_factor
            flat_out = run_step(
                server, hook, bodies, None, min(args.e2e_seconds, 10.0), 99, senders=4
            )
            ceiling = flat_out.summary()
            log("closed loop, 4 senders: " + _e2e_line(ceiling))
            stats = server_stats(server.url)
    finally:
        hook.close()
    return {
        "body_records": args.batch,
        "markers_per_second": MARKERS_PER_SECOND,
        "steps": steps,
        "highest_sustained": best,
        "closed_loop": ceiling,
        "server": stats,
        "other_notifications": {"messages": hook.other_messages, "alerts": hook.other_alerts},
    }


def _e2e_line(row: dict[str, Any]) -> str:
    offered = row["offered_records_per_second"]
    return (
        f"offered {offered if offered is not None else 'max':>7} /s  acked "
        f"{row['acked_records_per_second']:>7} /s  markers {row['markers_arrived']}/"
        f"{row['markers_sent']}  p50 {row['latency_p50_s']} s  p99 {row['latency_p99_s']} s  "
        f"server {row['server_cores_busy']} cores ({row['detection_cores_busy']} detection)  "
        f"{'ok' if row['sustained'] else 'not sustained'}"
    )


# ---------------------------------------------------------------------------------- report


def machine() -> dict[str, Any]:
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1]
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gb": round(int(mem) / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "versions": {n: metadata.version(n) for n in ("ecsguard", "pyarrow", "duckdb", "pysigma")},
    }


def compare(engine: Counter[str], naive: Counter[str]) -> list[dict[str, Any]]:
    differ = []
    for rule_id in sorted(set(engine) | set(naive)):
        if engine[rule_id] != naive[rule_id]:
            differ.append({"rule": rule_id, "engine": engine[rule_id], "naive": naive[rule_id]})
    return differ


@contextlib.contextmanager
def workdir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="ecsguard-bench-detect-") as tmp:
        yield Path(tmp)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="records through the engine")
    parser.add_argument("--min-seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=1000, help="records per body and batch")
    parser.add_argument("--pool", type=int, default=300_000, help="distinct records made")
    parser.add_argument("--naive-events", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--rules", type=int, default=500)
    parser.add_argument("--e2e-seconds", type=float, default=20.0)
    # 40,960 x 1.25^4 is 100,000: the ramp steps on the target itself
    parser.add_argument("--e2e-start", type=float, default=40960.0, help="first rate, records/s")
    parser.add_argument("--e2e-factor", type=float, default=1.25)
    parser.add_argument("--e2e-steps", type=int, default=7)
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the engine")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    def log(text: str) -> None:
        print(text, flush=True)

    load_before = os.getloadavg()[0]
    with workdir(args.keep) as work:
        ruleset = write_rules(work / "rules", seed=args.seed, total=args.rules)
        rules = load(work / "rules")
        log(f"rules: {len(rules)} {ruleset.by_type}; event patterns {ruleset.pattern_kinds}")
        t0 = time.perf_counter()
        pool = make_pool(args.seed, args.pool, args.batch)
        log(
            f"pool: {sum(b.records for b in pool):,} records in {len(pool)} batches of "
            f"{args.batch} (made and parsed in {time.perf_counter() - t0:.0f} s)"
        )

        engine = run_engine(rules, pool, args.events, args.min_seconds, work)
        log(
            f"engine: {engine['records']:,} records in {engine['seconds']} s = "
            f"{engine['records_per_second']:,} records/s {engine['per_table_records_per_second']}"
        )
        costs = per_type_costs(rules, pool, work)
        log(f"seconds per 100k records: {costs['seconds_per_100k_records']}")

        sample = naive_sample(pool, args.naive_events)
        naive = run_naive(rules, sample)
        ratio = engine["records_per_second"] / naive["records_per_second"]
        log(
            f"naive loop: {naive['records']:,} records in {naive['seconds']} s = "
            f"{naive['records_per_second']:,} records/s in the mix "
            f"{naive['per_table_records_per_second']}; engine / naive = {ratio:.1f}x; "
            f"{naive['matched_fraction']:.2%} of records match some rule"
        )
        differ = compare(engine_hits(rules, sample, work), naive.pop("hits"))
        if differ:
            log(f"ENGINE AND NAIVE LOOP DISAGREE on {len(differ)} rule(s): {differ[:5]}")
        profile = profile_engine(rules, pool[:60], work) if args.profile else None
        if profile:
            log(profile)

        e2e = None if args.skip_e2e else run_e2e(work / "rules", work, args, log)

    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            **machine(),
            "loadavg_1m_before": round(load_before, 2),
            "loadavg_1m_after": round(os.getloadavg()[0], 2),
        },
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "rules": {
            "total": len(rules),
            **ruleset.by_type,
            "event_pattern_kinds": ruleset.pattern_kinds,
        },
        "mix": MIX,
        "target": {"records_per_second": TARGET_RATE, "p99_seconds": TARGET_P99},
        "engine": engine,
        "engine_costs": costs,
        "naive": naive,
        "engine_vs_naive": round(ratio, 1),
        "agreement": {"rules_differing": differ, "records_compared": naive["records"]},
        "end_to_end": e2e,
        "profile_top": profile.splitlines()[:40] if profile else None,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print_table(result, args.out)
    return 1 if differ else 0


def print_table(result: dict[str, Any], out: Path) -> None:
    engine, naive = result["engine"], result["naive"]
    rows = [
        (
            "engine, in process",
            f"{engine['records_per_second']:,} records/s",
            f"{engine['records']:,} records, {engine['seconds']} s",
        ),
        (
            "naive loop",
            f"{naive['records_per_second']:,} records/s",
            f"{naive['records']:,} records, {naive['seconds']} s",
        ),
        ("engine / naive", f"{result['engine_vs_naive']}x", ""),
        ("target", f"{TARGET_RATE:,} records/s", "p99 <= 1 s"),
    ]
    e2e = result["end_to_end"]
    if e2e:
        best = e2e["highest_sustained"]
        if best:
            rows.append(
                (
                    "end to end, sustained",
                    f"{best['acked_records_per_second']:,} records/s",
                    f"p50 {best['latency_p50_s']} s, p99 {best['latency_p99_s']} s",
                )
            )
        ceiling = e2e["closed_loop"]
        rows.append(
            (
                "end to end, closed loop",
                f"{ceiling['acked_records_per_second']:,} records/s",
                f"p99 {ceiling['latency_p99_s']} s",
            )
        )
    width = max(len(r[0]) for r in rows)
    print()
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>20}  {note}")
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    sys.exit(main())
