"""`GET /metrics`: the server's own health in the Prometheus text format.

A team that runs ecsguard already scrapes its other services; this lets the same Prometheus (or
the CloudWatch agent's Prometheus support) alert when ecsguard itself is in trouble: senders
refused (401, 413, 503: a full disk), the WAL growing because flushes fail, detection falling
behind, a notification channel failing, a Kinesis consumer lagging.

Nothing is counted twice: a scrape reads the counters the server already keeps (LogService.Stats,
the WAL, the tail hub, the detection worker, the outbox, the Kinesis consumer) through a
prometheus_client collector made for that scrape, plus the process's CPU, memory and open files
(prometheus_client's process collector). The token rule is /api/stats's: required when
the server has one (Prometheus sends it as `authorization: {credentials: ...}`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool

from ecsguard.logs.service import LogService
from ecsguard.logs.tail import TailHub
from ecsguard.web.auth import check_token

router = APIRouter()


def _counter(name: str, doc: str, values: dict[str, int] | int, label: str = "") -> Metric:
    family = CounterMetricFamily(name, doc, labels=[label] if label else None)
    if isinstance(values, int):
        family.add_metric([], values)
    else:
        for key, value in sorted(dict(values).items()):  # a copy: receivers add keys meanwhile
            family.add_metric([key], value)
    return family


def _gauge(name: str, doc: str, value: float | None = None, labels: list[str] | None = None) -> Any:
    return GaugeMetricFamily(name, doc, value=value, labels=labels)


class ServerCollector(Collector):
    """The counters of one running server (the app's state), read when scraped."""

    def __init__(self, state: Any) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        service: LogService = self.state.service
        stats = service.stats
        yield _gauge(
            "ecsguard_start_time_seconds", "When the server started (Unix time).", stats.started
        )
        yield _counter(
            "ecsguard_records_stored_total",
            "Records acknowledged (fsynced), by table.",
            stats.records,
            "table",
        )
        yield _counter(
            "ecsguard_records_flushed_total",
            "Records moved to Parquet, by table.",
            stats.flushed,
            "table",
        )
        yield _counter(
            "ecsguard_received_bytes_total",
            "Bytes of accepted request bodies.",
            stats.bytes_received,
        )
        yield _counter(
            "ecsguard_duplicate_records_total",
            "Records dropped as resends of stored ones.",
            stats.duplicates,
        )
        yield _counter(
            "ecsguard_record_problems_total",
            "Records not stored as sent (unparsed lines kept as text, bad gzip, ...).",
            stats.problems,
            "kind",
        )
        yield _counter(
            "ecsguard_ingest_refused_total",
            "Ingest requests answered with an error, by HTTP status (503: disk full).",
            stats.refused,
            "status",
        )
        yield _counter(
            "ecsguard_flush_errors_total",
            "Flushes or compactions that failed and will be retried.",
            stats.flush_errors,
        )
        wal = service.pipeline.wal
        yield _counter("ecsguard_wal_appends_total", "Batches appended to the WAL.", wal.appends)
        yield _counter("ecsguard_wal_fsyncs_total", "WAL fsyncs (appends share them).", wal.fsyncs)
        yield _counter(
            "ecsguard_wal_torn_tails_total",
            "Torn WAL tails (a crash mid-write) cut off on replay.",
            wal.torn,
        )
        wal_backlog = service.wal_backlog()
        backlog = _gauge(
            "ecsguard_wal_segments", "WAL segments not yet flushed, by table.", labels=["table"]
        )
        size = _gauge(
            "ecsguard_wal_bytes", "Bytes of WAL not yet flushed, by table.", labels=["table"]
        )
        for table, (segments, size_bytes) in wal_backlog.items():
            backlog.add_metric([table], segments)
            size.add_metric([table], size_bytes)
        yield backlog
        yield size
        hub: TailHub = self.state.hub
        yield _gauge("ecsguard_tail_subscribers", "Live tails following now.", hub.subscribers)
        yield from self._detection()
        yield from self._notify()
        yield from self._kinesis()

    def _detection(self) -> Iterator[Metric]:
        detection = self.state.detection
        if detection is None:
            return
        yield _gauge("ecsguard_detection_rules", "Detection rules enabled.", len(detection.rules))
        yield _counter(
            "ecsguard_detection_batches_total", "Batches the rules evaluated.", detection.processed
        )
        yield _gauge(
            "ecsguard_detection_queued_batches",
            "Batches waiting for detection (near 64, receivers wait).",
            detection.queued,
        )
        yield _gauge(
            "ecsguard_detection_last_batch_seconds",
            "Time detection took over its last batch.",
            detection.lag_seconds,
        )
        yield _counter(
            "ecsguard_detection_restarts_total",
            "Detection processes started again after one died.",
            detection.restarts,
        )
        yield _gauge(
            "ecsguard_detection_failing_rules",
            "Rules that raised an error since the detection process (re)started.",
            len(detection.errors),
        )
        yield _counter(
            "ecsguard_alerts_total",
            "New alerts raised, by severity.",
            dict(detection.alerts),
            "severity",
        )

    def _kinesis(self) -> Iterator[Metric]:
        consumer = self.state.kinesis
        if consumer is None:
            return
        stats = consumer.stats
        yield _counter(
            "ecsguard_kinesis_records_total",
            "Records read from the stream and stored.",
            stats.records,
        )
        yield _counter(
            "ecsguard_kinesis_duplicate_records_total",
            "Records a previous owner of a shard had stored, dropped.",
            stats.duplicates,
        )
        yield _counter(
            "ecsguard_kinesis_throttled_total",
            "Kinesis or DynamoDB calls throttled.",
            stats.throttled,
        )
        yield _counter(
            "ecsguard_kinesis_lost_leases_total",
            "Shards another worker took while this one read them.",
            stats.lost_leases,
        )
        yield _gauge("ecsguard_kinesis_shards_held", "Shards this worker reads.", consumer.held)
        behind = _gauge(
            "ecsguard_kinesis_millis_behind_latest",
            "How far this worker's last read of a shard was behind the stream's tip.",
            labels=["shard"],
        )
        for shard, millis in sorted(dict(stats.behind_ms).items()):
            behind.add_metric([shard], millis)
        yield behind

    def _notify(self) -> Iterator[Metric]:
        dispatcher = self.state.dispatcher
        if dispatcher is None:
            return
        messages = _gauge(
            "ecsguard_notify_messages",
            "Outbox messages by channel and status (pending: not delivered yet).",
            labels=["channel", "status"],
        )
        waiting = _gauge(
            "ecsguard_notify_waiting_alerts",
            "Alerts held for grouping, not yet in a message.",
            labels=["channel"],
        )
        failing = _gauge(
            "ecsguard_notify_channel_failures",
            "Consecutive failed deliveries of a channel (0: healthy).",
            labels=["channel"],
        )
        for channel, found in sorted(dispatcher.stats().items()):
            for status in ("pending", "sent", "expired"):
                messages.add_metric([channel, status], found.get(status, 0))
            waiting.add_metric([channel], found.get("waiting", 0))
            failing.add_metric([channel], found.get("failing", 0))
        yield messages
        yield waiting
        yield failing


def exposition(state: Any, accept: str | None) -> tuple[bytes, str]:
    """The body and content type a scrape gets, in the format its Accept header asks for
    (Prometheus text 0.0.4 by default, OpenMetrics on request). Blocking: the outbox counts
    read SQLite."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServerCollector(state))
    ProcessCollector(registry=registry)
    encode, content_type = choose_encoder(accept or "")
    return encode(registry), content_type


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    check_token(request, request.app.state.settings.token)
    accept = request.headers.get("accept")
    body, content_type = await run_in_threadpool(exposition, request.app.state, accept)
    return Response(body, headers={"Content-Type": content_type})
