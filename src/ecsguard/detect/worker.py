"""Detection inside `ecsguard serve`: a thread between the log service and the engine.

The service calls `submit` for every stored batch (after its fsync); the worker evaluates the
rules off the receiving threads and ticks the clock once a second. The queue is bounded: if
detection falls far behind, receivers wait (backpressure) rather than the worker dropping data.
Metric datapoints that rules derive (log metric filters) go back into the store; new alerts go
to the notification dispatcher, whose durable outbox sends them on its own threads.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from datetime import UTC, datetime

import pyarrow as pa

from ecsguard.core.models import Alert
from ecsguard.detect.engine import Engine
from ecsguard.logs.service import LogService
from ecsguard.notify.dispatcher import Dispatcher

log = logging.getLogger(__name__)

QUEUE_BATCHES = 1024
TICK_SECONDS = 1.0


class DetectionWorker:
    def __init__(
        self, service: LogService, engine: Engine, dispatcher: Dispatcher | None = None
    ) -> None:
        self.service = service
        self.engine = engine
        self.dispatcher = dispatcher
        engine.on_metrics = self._store_metrics
        if dispatcher is not None:
            engine.on_alert = self._notify
        self._queue: queue.Queue[tuple[str, pa.RecordBatch] | None] = queue.Queue(QUEUE_BATCHES)
        self._thread = threading.Thread(target=self._run, name="ecsguard-detect", daemon=True)
        self._own: list[tuple[str, pa.RecordBatch]] = []  # submitted by the worker itself
        self.processed = 0  # batches, for /api/stats
        self.lag_seconds = 0.0  # ingest acknowledgement -> evaluated, last batch

    def start(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.start()
        self.service.add_listener(self.submit)
        self._thread.start()

    def _notify(self, alert: Alert, new: bool) -> None:
        if new and self.dispatcher is not None:  # a burst growing is not news
            self.dispatcher.submit(alert)

    def submit(self, table: str, batch: pa.RecordBatch) -> None:
        if table not in self.engine.by_table:
            return
        if threading.current_thread() is self._thread:
            # the worker's own derived metrics: a put on its own full queue would wait for ever
            self._own.append((table, batch))
            return
        self._queue.put((table, batch))

    def _store_metrics(self, batch: pa.RecordBatch) -> None:
        try:
            self.service.store("metrics", batch)
        except Exception:  # a full disk: the next tick's datapoints try again
            log.exception("could not store derived metrics")

    def _run(self) -> None:
        next_tick = time.monotonic() + TICK_SECONDS
        while True:
            try:
                item = self._queue.get(timeout=max(0.0, next_tick - time.monotonic()))
            except queue.Empty:
                item = ("", pa.record_batch([]))
            if item is None:
                break
            table, batch = item
            if table:
                started = time.monotonic()
                self.engine.process(table, batch)
                self.processed += 1
                self.lag_seconds = time.monotonic() - started
            if time.monotonic() >= next_tick:
                self.engine.tick(datetime.now(UTC))
                next_tick = time.monotonic() + TICK_SECONDS
            while self._own:
                self.engine.process(*self._own.pop(0))
        self.engine.tick(datetime.now(UTC))  # save state on the way out

    def stop(self) -> None:
        """Evaluate what is queued, save the rules' state and stop."""
        self._queue.put(None)
        self._thread.join(30)
        if self.dispatcher is not None:
            self.dispatcher.stop()  # the outbox keeps what is unsent for the next start
