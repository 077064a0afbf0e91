"""Detection beside `ecsguard serve`: the rules run in a child process, fed the stored batches.

Why a process: HTTP, the WAL, flushing and detection shared one interpreter lock, and detection
was about 40% of the server's one core under load. In its own process it has a core of its own,
and a rule that is slow or crashes cannot stall ingest.

The service calls `submit` for every stored batch (after its fsync); the batch's WAL frame
(Arrow IPC) goes to the child through shared memory (ring.py), and where it lies over a bounded
queue, so if detection falls far behind, receivers wait (backpressure) rather than batches being
dropped. The child evaluates them, ticks the clock once a second, and sends back what the server
acts on: metric datapoints that rules derive (stored here), new alerts (to the notification
dispatcher, whose durable outbox sends them on its own threads) and its rules' errors. Its
counters (`Progress`) it writes in shared memory, which the server reads when it needs them.
Alerts and rule state live in SQLite, which both processes open; a child that dies is started
again and carries on from that state. The server keeps every item it sent until the child has
counted it evaluated, and sends a new child what the dead one left, first and in order: detection
is at least once (a batch the dead child evaluated as it died is evaluated again). A batch that
kills two children in a row is dropped from detection, with an error in the log, so one
poisonous batch cannot stop detection for good.

New rules (`reload`, on the server's SIGHUP) travel the same queue as the batches: the child
evaluates every batch queued before them with the old rules, saves their state, and goes on with
the new ones from that state. No batch is skipped or evaluated twice, and no process restarts.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from ecsguard.core.models import Alert
from ecsguard.core.runtime import spread_native_threads, tune_server_process
from ecsguard.detect.engine import AlertStore, Engine
from ecsguard.detect.ring import RING_BYTES, FrameRing, Span
from ecsguard.detect.rules import TYPES, Rule
from ecsguard.logs.service import LogService
from ecsguard.logs.wal import FrameParts, decode_frames, encode_frame, frame_parts
from ecsguard.notify.dispatcher import Dispatcher

log = logging.getLogger(__name__)

#: batches on their way to the child (their frames wait in the ring, about 1 MB each for 1,000
#: log lines), so the bound is lower than an in-process queue's would be
QUEUE_BATCHES = 64
TICK_SECONDS = 1.0
PUT_WAIT_SECONDS = 1.0  # a put waits this long, then checks that the child is still alive
STOP_SECONDS = 30.0
QUICK_DEATH_SECONDS = 10.0

_Message = tuple[Any, ...]


class Progress:
    """What the current child has done, in memory the server reads when it needs it (its
    ledger, /api/stats). A report message per batch woke a feeder thread in the child and the
    reader here: 4% of the detection process. The child writes each word after each item."""

    def __init__(self, context: Any) -> None:
        self._words = context.RawArray("q", 3)  # items taken, batches evaluated, lag in µs

    def record(self, taken: int, processed: int, lag: float) -> None:
        self._words[1] = processed
        self._words[2] = int(lag * 1e6)
        self._words[0] = taken  # last: an item counted taken is evaluated

    @property
    def taken(self) -> int:
        """Inbox items (batches and reloads) the child is done with."""
        return int(self._words[0])

    @property
    def processed(self) -> int:
        return int(self._words[1])

    @property
    def lag(self) -> float:
        return self._words[2] / 1e6


@dataclass(frozen=True)
class _NewRules:
    """An inbox item: evaluate with these rules from here on."""

    rules: list[Rule]


class Unfinished:
    """The items sent to the current child and not yet reported evaluated, oldest first, and who
    is to blame when a child dies. Not thread-safe: the worker holds its ledger lock."""

    #: a child that built its engine and died before finishing any item died on the oldest one;
    #: after this many such deaths in a row, that item is given up
    DEATHS_TO_GIVE_UP = 2

    def __init__(self) -> None:
        self.items: deque[object] = deque()
        self.taken = 0  # items the current child reported evaluated
        self.ready = False  # the current child built its engine
        self.head_deaths = 0

    def sent(self, item: object) -> None:
        self.items.append(item)

    def not_sent(self) -> None:
        """Take back the last item recorded as sent (its put timed out)."""
        self.items.pop()

    def reported(self, taken: int) -> None:
        """The current child has evaluated its first `taken` items."""
        for _ in range(taken - self.taken):
            self.items.popleft()
        if taken > self.taken:
            self.taken, self.head_deaths = taken, 0

    def child_died(self) -> object | None:
        """Account for the current child's death; the item given up, if any. What is left in
        `items` is for the next child."""
        given_up = None
        if self.ready and self.taken == 0 and self.items:
            self.head_deaths += 1
            if self.head_deaths >= self.DEATHS_TO_GIVE_UP:
                given_up, self.head_deaths = self.items.popleft(), 0
        self.taken, self.ready = 0, False
        return given_up


class DetectionWorker:
    """The server's side of detection: `rules`, `errors`, `store` (a reader of the alerts and
    rule state) and the counters are what the console and /api/stats show."""

    def __init__(
        self,
        service: LogService,
        rules: Sequence[Rule],
        store_path: Path,
        dispatcher: Dispatcher | None = None,
        cpu: int | None = None,
    ) -> None:
        self.service = service
        self.cpu = cpu  # the detection process's one CPU (runtime.CpuPlan), None: any
        self.rules: dict[str, Rule] = {}
        self.tables: set[str] = set()
        self._set_rules(rules)
        self.store_path = store_path
        self.store = AlertStore(store_path)
        self.dispatcher = dispatcher
        # rule id -> last evaluation error, as the child said; kept across a child's death,
        # emptied by a reload
        self.errors: dict[str, str] = {}
        self._lag = 0.0  # time the child took over its last batch
        self._processed = [0, 0]  # batches: by the children before this one, by this one
        self.restarts = 0
        self.alerts: Counter[str] = Counter()  # new alerts raised since start, by severity
        self._context = multiprocessing.get_context("spawn")  # fork is unsafe with threads
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # the child, its queues and the reader swap together
        # the ledger has a lock of its own: the reader records each report under it while a
        # submitter holds _lock in a put that waits for room (a full queue)
        self._ledger = threading.Lock()
        self._inbox: Any = None
        self._outbox: Any = None
        self._child: Any = None
        self._reader: threading.Thread | None = None
        self._started = 0.0
        self._backoff = 0.0
        self._unfinished = Unfinished()  # under _ledger
        self._ring: FrameRing | None = None  # made with the first child, kept for the next
        self._progress: Progress | None = None  # the current child's; under _ledger

    @property
    def processed(self) -> int:
        """Batches evaluated since the server started, for /api/stats."""
        with self._ledger:
            self._sync()
            return sum(self._processed)

    @property
    def queued(self) -> int:
        """Items sent to the child and not yet evaluated (near QUEUE_BATCHES: detection is
        behind, and receivers are waiting), for /api/stats."""
        with self._ledger:
            self._sync()
            return len(self._unfinished.items)

    @property
    def lag_seconds(self) -> float:
        """The time the child took over its last batch, for /api/stats."""
        with self._ledger:
            self._sync()
            return self._lag

    def _sync(self) -> None:
        """Take the current child's progress into the ledger (with _ledger held)."""
        progress = self._progress
        if progress is not None:
            self._unfinished.reported(progress.taken)
            self._processed[1], self._lag = progress.processed, progress.lag

    def start(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.start()
        self._spawn()
        self.service.add_listener(self.submit)

    def _spawn(self) -> None:
        with self._lock:
            if self._ring is None:
                self._ring = _new_ring(self._context)
            progress = Progress(self._context)
            with self._ledger:
                self._progress = progress
            self._inbox = self._context.Queue(QUEUE_BATCHES)
            self._outbox = self._context.Queue()
            self._child = self._context.Process(
                target=_child_main,
                args=(
                    list(self.rules.values()),
                    str(self.store_path),
                    self._inbox,
                    self._outbox,
                    self.cpu,
                    self._ring,
                    progress,
                ),
                name="ecsguard-detect",
                daemon=True,
            )
            with spread_native_threads():  # it starts with every CPU, then takes its own
                self._child.start()
            self._started = time.monotonic()
            self._resend(self._child, self._inbox)
            self._reader = threading.Thread(
                target=self._read,
                args=(self._child, self._inbox, self._outbox),
                name="ecsguard-detect-reader",
            )
            self._reader.daemon = True
            self._reader.start()

    def _resend(self, child: Any, inbox: Any) -> None:
        """Send a new child what the last one left, first and in order (with _lock held, so
        submissions wait). If it dies meanwhile, the rest waits for the next child."""
        with self._ledger:
            left = list(self._unfinished.items)
        for item in left:
            while True:
                try:
                    inbox.put(item, timeout=PUT_WAIT_SECONDS)
                    break
                except queue.Full:
                    if not child.is_alive():
                        return

    def _set_rules(self, rules: Sequence[Rule]) -> None:
        self.rules = {rule.id: rule for rule in rules if rule.enabled}
        self.tables = {t for rule in self.rules.values() for t in TYPES.get(rule.type).tables}

    def reload(self, rules: Sequence[Rule]) -> None:
        """Evaluate with `rules` from now on: batches already queued are evaluated with the old
        rules, whose state is saved first; the new ones start from the saved state (a rule whose
        metric or options changed starts afresh). A child started later gets them too."""
        self._set_rules(rules)
        if self._inbox is not None:  # else the child, when it starts, gets them
            item = _NewRules(list(self.rules.values()))
            self._put(lambda: item)

    def submit(self, table: str, batch: pa.RecordBatch) -> None:
        if table not in self.tables or batch.num_rows == 0:
            return
        if threading.current_thread() is self._reader:
            return  # metrics the child derived: it has evaluated them itself
        # as the WAL wrote it: no second encoding
        parts = self.service.frame_of(batch) or frame_parts(batch)
        self._put(lambda: self._placed(table, parts))

    def _placed(self, table: str, parts: FrameParts) -> object | None:
        """The inbox item for a frame: where it now lies in the ring, or the frame itself when
        it is larger than the ring (or there is none); None when the ring is full for now.
        With _ledger held: the spans in use are the ledger's."""
        ring = self._ring
        if ring is None or not ring.fits(len(parts[0]) + len(parts[1])):
            return (table, b"".join(parts))
        spans = [span for span in map(_span_of, self._unfinished.items) if span is not None]
        span = ring.place(parts, spans[0] if spans else None, spans[-1] if spans else None)
        return None if span is None else (table, span)

    def _put(self, make: Callable[[], object | None]) -> None:
        """Send the item `make` gives (with _ledger held), waiting while it gives None or the
        queue is full: backpressure."""
        while not self._stopping.is_set():
            with self._lock:  # in the order of _unfinished, and never into a replaced queue
                # recorded before the put: the child may count it evaluated before put returns
                with self._ledger:
                    self._sync()  # frees the spans of what the child has evaluated
                    item = make()
                    if item is not None:
                        self._unfinished.sent(item)
                if item is not None:
                    try:
                        self._inbox.put(item, timeout=PUT_WAIT_SECONDS)
                        return
                    except queue.Full:
                        # still the last item: puts take turns under _lock, and progress only
                        # takes items the child got, from the front
                        with self._ledger:
                            self._unfinished.not_sent()  # its span is free again
            time.sleep(0.01)  # let the reader take the lock to restart a dead child

    def _read(self, child: Any, inbox: Any, outbox: Any) -> None:
        """Act on what the child sends until it ends; start it again if it died."""
        while True:
            try:
                message = outbox.get(timeout=PUT_WAIT_SECONDS)
            except queue.Empty:
                if child.is_alive():
                    continue
                break
            if message[0] == "stopped":
                break
            self._act(message)
        if not self._stopping.is_set():
            # its queue's feeder thread must not hold up the server's exit
            inbox.cancel_join_thread()
            with self._lock, self._ledger:  # no put in progress: the ledger is what was sent
                self._sync()  # what it counted before it died
                self._progress = None  # its counts are not the next child's
                given_up = self._unfinished.child_died()
            if given_up is not None:
                what = f"a {given_up[0]} batch" if isinstance(given_up, tuple) else "a reload"
                log.error("%s killed the detection process twice; it is not evaluated", what)
            self._processed = [sum(self._processed), 0]
            self.restarts += 1
            # one that dies as it starts (a rule it cannot compile) waits longer each time
            lived = time.monotonic() - self._started
            self._backoff = (
                0.0 if lived > QUICK_DEATH_SECONDS else min(60.0, self._backoff * 2 or 1)
            )
            log.error(
                "the detection process ended (exit code %s); starting it again in %.0f s",
                child.exitcode,
                self._backoff,
            )
            if not self._stopping.wait(self._backoff):
                self._spawn()

    def _act(self, message: _Message) -> None:
        kind = message[0]
        if kind == "metrics":
            try:
                for batch in decode_frames(message[1])[0]:
                    self.service.store("metrics", batch)
            except Exception:  # a full disk: the next tick's datapoints try again
                log.exception("could not store derived metrics")
        elif kind == "alert":
            alert = Alert.model_validate_json(message[1])
            self.alerts[alert.severity.value] += 1
            if self.dispatcher is not None:
                self.dispatcher.submit(alert)
        elif kind == "errors":
            self.errors = message[1]
        elif kind == "ready":
            with self._ledger:
                self._unfinished.ready = True

    def stop(self) -> None:
        """Let the child evaluate what is queued, save the rules' state and stop."""
        self._stopping.set()
        with self._lock:
            child, reader = self._child, self._reader
            if child is not None:
                try:
                    self._inbox.put(None, timeout=STOP_SECONDS)
                except queue.Full:
                    log.error("the detection process did not take the stop request")
        if child is not None:
            child.join(STOP_SECONDS)
            if child.is_alive():
                log.error("the detection process did not stop in %s s", STOP_SECONDS)
                child.kill()
                self._inbox.cancel_join_thread()
        if reader is not None:
            reader.join(STOP_SECONDS)
        self.store.close()
        if self.dispatcher is not None:
            self.dispatcher.stop()  # the outbox keeps what is unsent for the next start


def _new_ring(context: Any) -> FrameRing | None:
    try:
        return FrameRing(context, RING_BYTES)
    except OSError as exc:  # no room for it in /dev/shm nor the temporary folder
        log.warning("frames go to detection through its queue: no shared memory (%s)", exc)
        return None


def _span_of(item: object) -> Span | None:
    """Where an inbox item's frame lies in the ring; None: it has none there."""
    return item[1] if type(item) is tuple and isinstance(item[1], Span) else None


# ------------------------------------------------------------------------------ in the child


def _child_main(
    rules: list[Rule],
    store_path: str,
    inbox: Any,
    outbox: Any,
    cpu: int | None,
    ring: FrameRing | None,
    progress: Progress,
) -> None:
    # the server decides when detection stops (a stop request, or its own end): a Ctrl-C or a
    # SIGTERM sent to the whole process group must not cut a batch short
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    parent = os.getppid()
    own: list[tuple[str, pa.RecordBatch]] = []  # metrics the rules derived, evaluated here too

    def on_metrics(batch: pa.RecordBatch) -> None:
        own.append(("metrics", batch))
        outbox.put(("metrics", encode_frame(batch)))

    def on_alert(alert: Alert, new: bool) -> None:
        if new:  # a burst growing is not news
            outbox.put(("alert", alert.model_dump_json()))

    store = AlertStore(store_path)
    engine = Engine(rules, store, on_alert=on_alert, on_metrics=on_metrics)
    tune_server_process(cpu)
    outbox.put(("ready",))
    processed, taken = 0, 0  # batches evaluated; inbox items done (batches, reloads)
    # the rules' errors as last sent; a new child leaves the server the dead one's (they may
    # say what killed it); None: send them as they are (new rules start with none)
    errors: dict[str, str] | None = {}
    next_tick = time.monotonic() + TICK_SECONDS
    while True:
        try:
            item = inbox.get(timeout=max(0.0, next_tick - time.monotonic()))
        except queue.Empty:
            item = ()
            if os.getppid() != parent:
                break  # the server is gone without a word
        if item is None:
            break
        if isinstance(item, _NewRules):
            engine.tick(datetime.now(UTC))  # the old rules' state, saved for the new ones
            engine = Engine(item.rules, store, on_alert=on_alert, on_metrics=on_metrics)
            errors = None
            taken += 1
            progress.record(taken, processed, progress.lag)
        elif item:
            table, frame = item
            started = time.monotonic()
            if isinstance(frame, Span):
                assert ring is not None  # the server places frames only in a ring it gave
                frame = ring.read(frame)
            for batch in decode_frames(frame)[0]:
                engine.process(table, batch)
            processed += 1
            taken += 1
            progress.record(taken, processed, time.monotonic() - started)
        if engine.errors != errors:
            errors = dict(engine.errors)
            outbox.put(("errors", errors))
        if time.monotonic() >= next_tick:
            engine.tick(datetime.now(UTC))
            next_tick = time.monotonic() + TICK_SECONDS
        while own:
            engine.process(*own.pop(0))
    engine.tick(datetime.now(UTC))  # save state on the way out
    store.close()
    if engine.errors != errors:
        outbox.put(("errors", dict(engine.errors)))
    outbox.put(("stopped",))
