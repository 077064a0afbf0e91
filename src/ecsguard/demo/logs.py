"""The log step of the demo, over the network like production: synthetic FireLens traffic is
POSTed to a running `ecsguard serve`, a live tail watches new records arrive, and the operator's
first questions are asked in the Logs Insights language through the server's query API."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import Any

import httpx

from ecsguard.demo.traffic import firelens_bodies
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


def run(url: str, services: list[tuple[str, str, str]]) -> LogDemo:
    """Send an hour of traffic, then a live burst while tailing, then ask questions."""
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
    return result
