"""The detection process beside the server: batches in, alerts and derived metrics out; it
survives being killed, ignores a Ctrl-C meant for the server, and evaluates what is queued
before it stops."""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pyarrow as pa
import pytest

from ecsguard.detect import worker as worker_module
from ecsguard.detect.loader import load_rules
from ecsguard.detect.ring import FrameRing, Span
from ecsguard.detect.rules import Match
from ecsguard.detect.types.log_filter import LogFilter
from ecsguard.detect.worker import DetectionWorker, Progress, Unfinished
from ecsguard.logs.pipeline import conform
from ecsguard.logs.receivers import RECEIVERS
from ecsguard.logs.records import ReceiverOptions
from ecsguard.logs.service import LogService
from ecsguard.logs.wal import frame_parts

RULE = """
id: api-errors
title: Errors in the API
severity: high
type: log_filter
group_by: [service]
log_filter:
  pattern: ERROR
  service: api
  metric: {namespace: ecsguard/logs, name: api-errors}
"""
SIGMA_RULE = """
id: trail-stopped
title: CloudTrail stopped
type: sigma
severity: high
sigma:
  rule:
    title: CloudTrail stopped
    logsource: {product: aws, service: cloudtrail}
    detection:
      selection: {eventName: StopLogging}
      condition: selection
"""


def wait_for(check: Callable[[], bool], seconds: float = 60.0) -> None:
    # generous: a detection child starts (imports, its engine) in seconds, many more on a loaded
    # two-core machine running the suite on both cores; a check that holds returns at once
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@contextmanager
def started_worker(tmp_path: Path) -> Iterator[tuple[LogService, DetectionWorker]]:
    """A service and its detection process with RULE and SIGMA_RULE, stopped on exit."""
    (tmp_path / "rule.yaml").write_text(RULE)
    (tmp_path / "sigma.yaml").write_text(SIGMA_RULE)
    loaded = load_rules([str(tmp_path / "rule.yaml"), str(tmp_path / "sigma.yaml")])
    loaded.raise_errors()
    service = LogService(tmp_path / "data", flush_seconds=0.2)
    service.start()
    detection = DetectionWorker(service, loaded.rules, tmp_path / "data" / "detect.db")
    detection.start()
    try:
        yield service, detection
    finally:
        detection.stop()
        service.stop()


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[tuple[LogService, DetectionWorker]]:
    with started_worker(tmp_path) as started:
        yield started


def post(service: LogService, text: str) -> None:
    options = ReceiverOptions(input_name="test", service="api")
    service.accept(RECEIVERS.get("lines")(text.encode(), options), len(text))


def errors_counted(detection: DetectionWorker) -> int:
    return sum(alert.count for alert in detection.store.alerts(rule="api-errors"))


def test_lines_become_an_alert_and_stats(worker: tuple[LogService, DetectionWorker]) -> None:
    service, detection = worker
    post(service, "starting\nERROR payment declined\nERROR again\n")
    wait_for(lambda: errors_counted(detection) == 2)
    (alert,) = detection.store.alerts()
    assert alert.rule_id == "api-errors" and alert.key == ["api"]
    wait_for(lambda: detection.processed >= 1)
    assert detection.errors == {} and detection.lag_seconds >= 0


def test_sigma_rules_reach_the_process(worker: tuple[LogService, DetectionWorker]) -> None:
    """A compiled Sigma rule holds closures; the process compiles it again from its mapping."""
    service, detection = worker
    record = {
        "eventTime": "2026-11-01T00:00:00Z", "eventSource": "cloudtrail.amazonaws.com",
        "eventName": "StopLogging", "eventID": "e1", "awsRegion": "us-east-1",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123:user/mallory"},
    }  # fmt: skip
    body = orjson.dumps({"Records": [record, {**record, "eventName": "LookupEvents"}]})
    service.accept(RECEIVERS.get("cloudtrail")(body, ReceiverOptions()), len(body))
    wait_for(lambda: bool(detection.store.alerts(rule="trail-stopped")))
    (alert,) = detection.store.alerts(rule="trail-stopped")
    assert alert.count == 1


def test_derived_metrics_are_stored_once(worker: tuple[LogService, DetectionWorker]) -> None:
    service, _ = worker
    post(service, "ERROR one\nERROR two\nERROR three\n")

    def counted() -> float:
        with service.connect() as con:
            rows = con.sql("SELECT sum(value) FROM metrics WHERE name = 'api-errors'").fetchall()
        return float(rows[0][0] or 0)

    wait_for(lambda: counted() == 3.0)
    time.sleep(2.5)  # more ticks: the datapoints the child sent back are not counted again
    assert counted() == 3.0


def test_a_killed_detection_process_is_started_again(
    worker: tuple[LogService, DetectionWorker],
) -> None:
    service, detection = worker
    post(service, "ERROR before\n")
    wait_for(lambda: errors_counted(detection) == 1)
    first = detection._child
    os.kill(first.pid, signal.SIGKILL)
    wait_for(lambda: detection.restarts == 1 and detection._child is not first)
    before = detection.processed
    post(service, "ERROR after\n")
    wait_for(lambda: errors_counted(detection) == 2)  # the alert in its window grew
    wait_for(lambda: detection.processed == before + 1)  # counted on from the first child


def test_rule_errors_outlive_a_restart_until_the_rules_are_reloaded(
    worker: tuple[LogService, DetectionWorker],
) -> None:
    """A rule's last error stays shown when the child dies (it may be what killed it); the
    new child sends errors when they change, and a reload's rules start with none."""
    service, detection = worker
    detection._act(("errors", {"api-errors": "a bug in the rule"}))  # as the child sends it
    first = detection._child
    os.kill(first.pid, signal.SIGKILL)
    wait_for(lambda: detection.restarts == 1 and detection._child is not first)
    post(service, "ERROR after\n")
    wait_for(lambda: errors_counted(detection) == 1)
    assert detection.errors == {"api-errors": "a bug in the rule"}
    detection.reload(list(detection.rules.values()))
    wait_for(lambda: detection.errors == {})


def test_ctrl_c_for_the_server_does_not_stop_detection(
    worker: tuple[LogService, DetectionWorker],
) -> None:
    service, detection = worker
    post(service, "ERROR first\n")
    wait_for(lambda: errors_counted(detection) == 1)
    os.kill(detection._child.pid, signal.SIGINT)
    os.kill(detection._child.pid, signal.SIGTERM)
    time.sleep(0.5)
    assert detection._child.is_alive() and detection.restarts == 0
    post(service, "ERROR second\n")
    wait_for(lambda: errors_counted(detection) == 2)


def test_stop_evaluates_what_is_queued(tmp_path: Path) -> None:
    (tmp_path / "rule.yaml").write_text(RULE)
    service = LogService(tmp_path / "data", flush_seconds=0.2)
    service.start()
    detection = DetectionWorker(
        service, load_rules([str(tmp_path / "rule.yaml")]).rules, tmp_path / "data" / "detect.db"
    )
    detection.start()
    for body in range(20):  # distinct lines: a body sent twice is stored once
        post(service, "".join(f"ERROR queued {body}.{n}\n" for n in range(50)))
    detection.stop()  # at once: most batches are still queued or in the child
    service.stop()
    reader = DetectionWorker(service, [], tmp_path / "data" / "detect.db")
    assert errors_counted(reader) == 1000


def test_a_process_that_dies_as_it_starts_is_retried_ever_later(tmp_path: Path) -> None:
    (tmp_path / "rule.yaml").write_text(RULE)
    service = LogService(tmp_path / "data", flush_seconds=0.2)
    db = tmp_path / "data" / "detect.db"
    detection = DetectionWorker(service, load_rules([str(tmp_path / "rule.yaml")]).rules, db)
    for path in db.parent.glob("detect.db*"):  # the server's reader holds the old file open
        path.unlink()
    db.mkdir()  # the child cannot open its store: it dies at once, every time
    detection.start()
    wait_for(lambda: detection.restarts >= 2)
    assert detection._backoff >= 2.0  # 1 s, then 2 s, ...
    started = time.monotonic()
    detection.stop()  # also while it waits to start the next one
    assert time.monotonic() - started < 5


WARN_RULE = RULE.replace("id: api-errors", "id: api-warnings").replace(
    "pattern: ERROR", "pattern: WARN"
)


def test_reload_swaps_rules_in_queue_order(
    tmp_path: Path, worker: tuple[LogService, DetectionWorker]
) -> None:
    """Batches queued before new rules are evaluated with the old ones; no process restarts."""
    service, detection = worker
    post(service, "ERROR before the reload\nWARN before the reload\n")
    (tmp_path / "warn.yaml").write_text(WARN_RULE)
    loaded = load_rules([str(tmp_path / "warn.yaml")])
    loaded.raise_errors()
    detection.reload(loaded.rules)
    assert set(detection.rules) == {"api-warnings"} and detection.tables == {"logs"}
    post(service, "ERROR after the reload\nWARN after the reload\n")
    warnings = lambda: sum(a.count for a in detection.store.alerts(rule="api-warnings"))  # noqa: E731
    wait_for(lambda: warnings() == 1)
    wait_for(lambda: detection.processed >= 2)
    assert errors_counted(detection) == 1  # the first batch only, under the old rules
    assert detection.restarts == 0


def test_reload_before_start_gives_the_child_the_new_rules(tmp_path: Path) -> None:
    """A SIGHUP may come before the server's startup has started the child."""
    (tmp_path / "rule.yaml").write_text(RULE)
    (tmp_path / "warn.yaml").write_text(WARN_RULE)
    service = LogService(tmp_path / "data", flush_seconds=0.2)
    service.start()
    detection = DetectionWorker(
        service, load_rules([str(tmp_path / "rule.yaml")]).rules, tmp_path / "data" / "d.db"
    )
    detection.reload(load_rules([str(tmp_path / "warn.yaml")]).rules)
    detection.start()
    try:
        post(service, "ERROR x\nWARN y\n")
        wait_for(lambda: len(detection.store.alerts()) == 1)
        assert [a.rule_id for a in detection.store.alerts()] == ["api-warnings"]
    finally:
        detection.stop()
        service.stop()


def test_batches_queued_for_a_killed_child_are_evaluated_by_the_next(
    worker: tuple[LogService, DetectionWorker],
) -> None:
    service, detection = worker
    post(service, "ERROR first\n")
    wait_for(lambda: errors_counted(detection) == 1)
    pid = detection._child.pid
    os.kill(pid, signal.SIGSTOP)  # it takes nothing more from its queue
    for i in range(10):
        post(service, f"ERROR queued {i}\n")
    wait_for(lambda: detection.queued == 10)  # the first one was reported before the stop
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: detection.restarts == 1)
    wait_for(lambda: errors_counted(detection) == 11)
    assert detection._child.pid != pid
    wait_for(lambda: detection.queued == 0)


def test_unfinished_items_and_who_is_to_blame() -> None:
    ledger = Unfinished()
    for item in ("a", "b", "c"):
        ledger.sent(item)
    ledger.ready = True
    ledger.reported(1)
    assert list(ledger.items) == ["b", "c"]
    assert ledger.child_died() is None  # it finished "a": "b" is not to blame
    ledger.ready = True  # the next child builds its engine, then dies on "b"
    assert ledger.child_died() is None and ledger.head_deaths == 1
    assert ledger.child_died() is None  # died before its engine was built: rules, not "b"
    ledger.ready = True
    assert ledger.child_died() == "b"  # a second death on "b": given up
    assert list(ledger.items) == ["c"] and ledger.head_deaths == 0
    ledger.ready = True
    ledger.reported(1)  # progress clears the blame
    assert list(ledger.items) == [] and ledger.child_died() is None


def test_reports_are_recorded_while_a_submission_waits_for_room(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a submitter waiting on a full queue holds the worker's lock; the child's progress must
    # still be readable (the ledger, /api/stats) rather than wait with it
    monkeypatch.setattr(worker_module, "QUEUE_BATCHES", 1)
    monkeypatch.setattr(worker_module, "PUT_WAIT_SECONDS", 30.0)
    with started_worker(tmp_path) as (service, detection):
        pid = detection._child.pid
        try:
            wait_for(lambda: detection._unfinished.ready)
            os.kill(pid, signal.SIGSTOP)  # it takes nothing more from its queue
            post(service, "ERROR fills the queue\n")
            blocked = threading.Thread(target=post, args=(service, "ERROR waits for room\n"))
            blocked.start()
            wait_for(lambda: detection._lock.locked())  # its put is waiting for room
            report = threading.Thread(target=lambda: detection.queued)
            report.start()
            report.join(5.0)
            assert not report.is_alive(), "the report waited for the submission"
            assert blocked.is_alive()
        finally:
            os.kill(pid, signal.SIGCONT)
        blocked.join(30.0)
        wait_for(lambda: errors_counted(detection) == 2)
        wait_for(lambda: detection.queued == 0)


def _logs_frame(text: str) -> tuple[bytes, pa.Buffer]:
    parsed = RECEIVERS.get("lines")(text.encode(), ReceiverOptions(service="api"))
    return frame_parts(conform("logs", parsed.batch))


def test_the_child_reads_the_ring_counts_its_progress_and_reports_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child's loop, run here: a frame from the ring and one sent whole are evaluated, a
    reload counts as done but not as a batch, and the rules' errors are sent when they change
    (a reload's rules start with none)."""
    (tmp_path / "rule.yaml").write_text(RULE)
    (tmp_path / "broken.yaml").write_text(RULE.replace("api-errors", "broken"))
    rules = load_rules([str(tmp_path / "rule.yaml"), str(tmp_path / "broken.yaml")]).rules
    evaluate = LogFilter.on_batch

    def failing(self: LogFilter, table: str, batch: pa.RecordBatch) -> list[Match]:
        if self.rule.id == "broken":
            raise RuntimeError("a bug in the rule")
        return evaluate(self, table, batch)

    monkeypatch.setattr(LogFilter, "on_batch", failing)
    monkeypatch.setattr(worker_module, "tune_server_process", lambda cpu: None)
    context = multiprocessing.get_context("spawn")
    ring, progress = FrameRing(context, 1 << 20), Progress(context)
    inbox: queue.Queue[object] = queue.Queue()
    outbox: queue.Queue[tuple[object, ...]] = queue.Queue()
    span = ring.place(_logs_frame("ERROR one\n"), None, None)
    inbox.put(("logs", span))
    inbox.put(worker_module._NewRules(rules))
    inbox.put(("logs", b"".join(_logs_frame("ERROR two\nERROR three\n"))))
    inbox.put(None)
    store = tmp_path / "detect.db"
    worker_module._child_main(rules, str(store), inbox, outbox, None, ring, progress)
    assert (progress.taken, progress.processed) == (3, 2) and progress.lag >= 0
    sent = [outbox.get_nowait() for _ in range(outbox.qsize())]
    kinds = [message[0] for message in sent]
    assert kinds[0] == "ready" and kinds[-1] == "stopped"
    failed = {"broken": "a bug in the rule"}
    assert [m[1] for m in sent if m[0] == "errors"] == [failed, {}, failed]
    assert kinds.count("alert") == 1  # the burst grew; one new alert
    reader = DetectionWorker(LogService(tmp_path / "data"), [], store)
    assert errors_counted(reader) == 3


def test_frames_larger_than_the_ring_go_through_the_queue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_module, "RING_BYTES", 16 << 10)
    placed: list[object] = []
    place = DetectionWorker._placed

    def recorded(self: DetectionWorker, table: str, parts: tuple[bytes, pa.Buffer]) -> object:
        item = place(self, table, parts)
        placed.append(item)
        return item

    monkeypatch.setattr(DetectionWorker, "_placed", recorded)
    with started_worker(tmp_path) as (service, detection):
        post(service, "ERROR small\n")
        post(service, "".join(f"ERROR large {n} {'x' * 100}\n" for n in range(400)))
        wait_for(lambda: errors_counted(detection) == 401)
    assert [type(item[1]) for item in placed] == [Span, bytes]


def test_a_full_ring_holds_submissions_until_the_child_catches_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_module, "RING_BYTES", 16 << 10)
    with started_worker(tmp_path) as (service, detection):
        wait_for(lambda: detection._unfinished.ready)
        pid = detection._child.pid
        os.kill(pid, signal.SIGSTOP)  # it evaluates nothing: the ring fills up
        bodies = ["".join(f"ERROR {body}.{n} {'x' * 40}\n" for n in range(40)) for body in range(8)]
        poster = threading.Thread(target=lambda: [post(service, body) for body in bodies])
        try:
            poster.start()
            wait_for(lambda: detection.queued == 1)  # a body's frame is over half the ring
            time.sleep(0.5)
            assert poster.is_alive() and detection.queued == 1  # the rest held, not dropped
        finally:
            os.kill(pid, signal.SIGCONT)
        poster.join(30.0)
        wait_for(lambda: errors_counted(detection) == 8 * 40)
        wait_for(lambda: detection.queued == 0)
