"""The log step of the demo, over the network like production: synthetic FireLens traffic is
POSTed to a running `ecsguard serve`, a live tail watches new records arrive, and the operator's
first questions are asked in the Logs Insights language through the server's query API."""

from __future__ import annotations

import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from ecsguard.demo.traffic import cpu_metrics, ecs_events, error_burst, firelens_bodies
from ecsguard.logs.tail import follow

ERRORS_BY_SERVICE = (
    "filter level = 'ERROR' | stats count(*) as errors by cluster, service "
    "| sort errors desc, service asc | limit 5"
)
SLOWEST_PATHS = (
    "filter ispresent(latency_ms) | stats count(*) as requests, pct(latency_ms, 95) as p95_ms "
    "by path | sort p95_ms desc | limit 5"
)
TAIL_WAIT_SECONDS = 10.0


@dataclass
class Answer:
    query: str
    columns: list[str]
    rows: list[list[Any]]


@dataclass
class LogDemo:
    stored: int = 0
    answers: list[Answer] = field(default_factory=list)
    tailed: list[dict[str, Any]] = field(default_factory=list)
    request_id: str | None = None
    alerts: list[dict[str, Any]] = field(default_factory=list)
    notified: int = 0
    #: (cluster, service) -> 5-minute average CPU and memory (%), oldest first
    usage: dict[tuple[str, str], tuple[list[float], list[float]]] = field(default_factory=dict)
    #: the server's own counters from GET /metrics (what a Prometheus scrape reads), summed
    #: over their labels
    health: dict[str, float] = field(default_factory=dict)


NOTIFY_CONFIG = """\
# the demo's notification channel: a local inbox file (docs/notify.md lists the real ones)
channels:
  inbox:
    type: command
    command:
      argv: [{python}, -c, "import sys; open(sys.argv[1], 'a').write(sys.stdin.read() + '\\\\n')",
             {inbox}]
default:
  channels: [inbox]
"""
ALERT_WAIT_SECONDS = 15.0


def notify_config(folder: Path) -> tuple[Path, Path]:
    """(config file, inbox file) of the demo's local notification channel."""
    folder.mkdir(parents=True, exist_ok=True)
    inbox = folder / "notifications.jsonl"
    inbox.unlink(missing_ok=True)
    config = folder / "notify.yaml"
    config.write_text(NOTIFY_CONFIG.format(python=sys.executable, inbox=inbox))
    return config, inbox


def _ask(client: httpx.Client, query: str) -> Answer:
    reply = client.post("/api/query", json={"query": query, "since": "2h"})
    reply.raise_for_status()
    body = reply.json()
    return Answer(query, body["columns"], body["rows"])


def _tail(url: str, records: queue.Queue[dict[str, Any] | None]) -> None:
    """Follow the live tail, handing records over until the reader stops caring."""
    for event in follow(url, params={}, give_up_seconds=5):
        if event.kind == "ready":
            records.put(None)  # subscribed: new records will reach us from here on
        elif event.kind == "message":
            records.put(event.data)


def _bad_minute(client: httpx.Client, services: list[tuple[str, str, str]]) -> int:
    """What goes wrong: ECS events (an OOM kill, a failed deployment, a placement failure) and a
    burst of 5xx errors from one service; the records posted."""
    events = ecs_events(services)
    client.post("/ingest/ecs-events", json=events).raise_for_status()
    service, body = error_burst(sorted(services)[-1])
    client.post("/ingest/firelens", params={"service": service}, content=body).raise_for_status()
    return len(events) + body.count(b"\n")


def _wait_for_alerts(client: httpx.Client, inbox: Path | None, result: LogDemo) -> None:
    deadline = time.monotonic() + ALERT_WAIT_SECONDS
    while time.monotonic() < deadline:
        result.alerts = client.get("/api/alerts", params={"since": "1h"}).json()["alerts"]
        result.notified = len(inbox.read_text().splitlines()) if inbox and inbox.exists() else 0
        if len(result.alerts) >= 5 and (inbox is None or result.notified >= len(result.alerts)):
            return
        time.sleep(0.2)


def run(url: str, services: list[tuple[str, str, str]], inbox: Path | None = None) -> LogDemo:
    """Send an hour of traffic, then a live burst while tailing, then ask questions; then a bad
    minute that the server's rules turn into alerts (delivered to `inbox`)."""
    result = LogDemo()
    with httpx.Client(base_url=url, timeout=60) as client:
        for service, body in firelens_bodies(sorted(services)):
            reply = client.post(
                "/ingest/firelens",
                params={"service": service},  # as each task's Fluent Bit `uri` would say
                content=body,
                headers={"Content-Type": "application/x-ndjson"},
            )
            reply.raise_for_status()
            result.stored += reply.json()["stored"]

        records: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=_tail, args=(url, records), daemon=True).start()
        records.get(timeout=TAIL_WAIT_SECONDS)  # the tail is subscribed
        burst = list(
            firelens_bodies(sorted(services)[:3], lines_per_service=3, seed=11, span_seconds=3)
        )
        for service, body in burst:
            client.post(
                "/ingest/firelens", params={"service": service}, content=body
            ).raise_for_status()
        expected = 3 * len(burst)
        try:
            while len(result.tailed) < expected:
                record = records.get(timeout=TAIL_WAIT_SECONDS)
                if record is not None:
                    result.tailed.append(record)
        except queue.Empty:
            pass
        result.stored += expected

        result.answers = [_ask(client, ERRORS_BY_SERVICE), _ask(client, SLOWEST_PATHS)]
        needle = _ask(
            client,
            "filter level = 'ERROR' and ispresent(request_id) | sort @timestamp asc "
            "| fields request_id | limit 1",
        )
        if needle.rows:
            result.request_id = str(needle.rows[0][needle.columns.index("request_id")])
        result.stored += _bad_minute(client, services)
        _wait_for_alerts(client, inbox, result)
        client.post("/ingest/metrics", content=cpu_metrics(services)).raise_for_status()
        result.usage = _usage(client)
        result.health = _health(client)
    return result


def _health(client: httpx.Client) -> dict[str, float]:
    """Each `ecsguard_*` sample of one /metrics scrape, summed over its labels."""
    reply = client.get("/metrics")
    reply.raise_for_status()
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            if sample.name.startswith("ecsguard_"):
                totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


USAGE_SQL = """
SELECT json_extract_string(dimensions, '$.ClusterName') AS cluster,
       json_extract_string(dimensions, '$.ServiceName') AS service,
       time_bucket(INTERVAL 5 MINUTE, time) AS bucket,
       avg(value) FILTER (WHERE name = 'CPUUtilization') AS cpu,
       avg(value) FILTER (WHERE name = 'MemoryUtilization') AS memory
FROM metrics WHERE namespace = 'AWS/ECS' AND time > now() - INTERVAL 2 HOUR
GROUP BY ALL ORDER BY cluster, service, bucket
"""


def _usage(client: httpx.Client) -> dict[tuple[str, str], tuple[list[float], list[float]]]:
    """5-minute CPU and memory per service, through the query API (the EMF just posted)."""
    reply = client.post("/api/query", json={"sql": USAGE_SQL, "limit": 10_000})
    reply.raise_for_status()
    usage: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    for cluster, service, _, cpu, memory in reply.json()["rows"]:
        cpus, memories = usage.setdefault((cluster, service), ([], []))
        cpus.append(cpu)
        memories.append(memory)
    return usage
