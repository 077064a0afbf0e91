"""LogService: acknowledgement, retry de-duplication, listeners, background flushing."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest
from tests.logs.test_pipeline import logs

from ecsguard.logs.receivers import RECEIVERS
from ecsguard.logs.records import Parsed, Problem, ReceiverOptions
from ecsguard.logs.service import LogService
from ecsguard.logs.wal import WalFullError, decode_frames


def parsed(*ids: str) -> Parsed:
    return Parsed("logs", logs(*ids), [Problem("unparsed", "x line 1", "not JSON")])


def count(service: LogService) -> int:
    row = service.connect().execute("SELECT count(*) FROM logs").fetchone()
    assert row is not None
    return int(row[0])


def test_a_resent_batch_is_stored_once(tmp_path: Path) -> None:
    service = LogService(tmp_path)
    assert service.accept(parsed("a", "b"), size=10) == 2
    assert service.accept(parsed("a", "b", "c"), size=10) == 1  # a retry plus one new record
    assert count(service) == 3
    assert service.stats.duplicates == 2
    assert service.stats.problems == {"unparsed": 2}
    assert service.stats.bytes_received == 20
    service.stop()


def test_retries_after_a_restart_are_still_recognised(tmp_path: Path) -> None:
    first = LogService(tmp_path)
    first.accept(parsed("in-parquet"))
    first.flush_once()
    first.accept(parsed("in-wal"))  # not flushed: the process dies here
    first.pipeline.wal.close()
    second = LogService(tmp_path)
    assert second.accept(parsed("in-parquet", "in-wal", "new")) == 1
    second.stop()
    assert count(LogService(tmp_path)) == 3


def test_listeners_see_durable_batches_and_cannot_break_accept(tmp_path: Path) -> None:
    service = LogService(tmp_path)
    seen: list[list[str]] = []

    def listener(table: str, batch: pa.RecordBatch) -> None:
        seen.append(batch.column("id").to_pylist())
        raise RuntimeError("a buggy listener")

    service.add_listener(listener)
    assert service.accept(parsed("a")) == 1
    assert service.accept(parsed("a")) == 0  # a duplicate is not published again
    assert seen == [["a"]]
    service.stop()


def test_a_listener_gets_the_wal_frame_of_the_batch_it_is_given(tmp_path: Path) -> None:
    """While a batch is published, frame_of gives the frame the WAL wrote for it (detection
    ships that, not a second encoding): it decodes to the batch, duplicates filtered out; for
    another batch, or once publication is over, None."""
    service = LogService(tmp_path)
    frames: list[bytes | None] = []
    published: list[pa.RecordBatch] = []

    def listener(table: str, batch: pa.RecordBatch) -> None:
        published.append(batch)
        for one in (batch, logs("other")):
            parts = service.frame_of(one)
            frames.append(None if parts is None else b"".join(parts))

    service.add_listener(listener)
    service.accept(parsed("a"))
    service.accept(parsed("a", "b"))  # "a" is a duplicate: the frame holds "b" alone
    assert frames[1] is None and frames[3] is None
    for batch, frame in zip(published, frames[::2], strict=True):
        assert frame is not None
        decoded, length = decode_frames(frame)
        assert length == len(frame) and decoded == [batch]
    assert [b.column("id").to_pylist() for b in published] == [["a"], ["b"]]
    assert service.frame_of(published[-1]) is None
    segment = sorted((tmp_path / "wal" / "logs").iterdir())[-1].read_bytes()
    assert segment.endswith(frames[2])  # the bytes written, not an encoding made apart
    service.stop()


def test_a_full_disk_acknowledges_nothing_and_the_retry_succeeds(tmp_path: Path) -> None:
    service = LogService(tmp_path)
    real = service.pipeline.ingest

    def full(table: str, batch: pa.RecordBatch) -> None:
        raise WalFullError("write-ahead log is full", "free space")

    service.pipeline.ingest = full  # type: ignore[method-assign]
    with pytest.raises(WalFullError):
        service.accept(parsed("a"))
    service.pipeline.ingest = real  # type: ignore[method-assign]
    assert service.accept(parsed("a")) == 1  # not mistaken for a duplicate
    service.stop()


def test_background_flush_and_stop(tmp_path: Path) -> None:
    service = LogService(tmp_path, flush_seconds=0.05)
    service.start()
    service.accept(parsed("a"))
    deadline = time.monotonic() + 5
    # the counter moves after the flush has removed the segment: wait for the counter
    while service.stats.flushed["logs"] < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert service.stats.flushed["logs"] == 1
    assert service.pipeline.wal.segments("logs") == []
    service.accept(parsed("b"))
    service.stop()  # flushes what is left
    assert service.pipeline.wal.segments("logs") == []
    assert len(service.pipeline.store.files("logs")) == 2
    service.maintain()
    assert len(service.pipeline.store.files("logs")) == 1
    assert count(service) == 2


def test_full_segments_are_flushed_before_they_are_old(tmp_path: Path) -> None:
    service = LogService(tmp_path, flush_seconds=3600)
    service.pipeline.wal.segment_bytes = 1  # every batch fills a segment and seals the one before
    service.start()
    for name in "abc":
        service.accept(parsed(name))
    deadline = time.monotonic() + 5
    while service.stats.flushed["logs"] < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert service.stats.flushed["logs"] == 2  # "a" and "b", sealed when the next came
    assert len(service.pipeline.wal.segments("logs")) == 1  # "c", young and open
    assert count(service) == 3  # queries read it from the WAL
    service.stop()
    assert service.stats.flushed["logs"] == 3


def test_concurrent_copies_of_a_batch_are_stored_once(tmp_path: Path) -> None:
    service = LogService(tmp_path)
    real = service.pipeline.ingest
    entered, release = threading.Event(), threading.Event()
    fail_first = [True]

    def slow(table: str, batch: pa.RecordBatch) -> tuple[bytes, pa.Buffer]:
        entered.set()
        release.wait(5)
        if fail_first.pop() if fail_first else False:
            raise WalFullError("write-ahead log is full", "free space")
        return real(table, batch)

    service.pipeline.ingest = slow  # type: ignore[method-assign]
    results: list[object] = []

    def send() -> None:
        try:
            results.append(service.accept(parsed("a", "b")))
        except WalFullError as exc:
            results.append(exc)

    first = threading.Thread(target=send)
    first.start()
    entered.wait(5)
    second = threading.Thread(target=send)  # the resend while the first is in flight
    second.start()
    time.sleep(0.05)
    release.set()
    first.join(5)
    second.join(5)
    # the first copy failed, so the waiting copy stored the rows: once, not zero times
    assert sorted(str(r).split(" (")[0] for r in results) == ["2", "write-ahead log is full"]
    assert service.accept(parsed("a", "b")) == 0
    assert count(service) == 2
    service.stop()


def _firelens(body: bytes) -> Parsed:
    return RECEIVERS.get("firelens")(body, ReceiverOptions(input_name="test"))


BODY = b"\n".join(b'{"log":"line %d","source":"stdout","ecs_cluster":"prod"}' % i for i in range(5))


def test_a_resent_body_is_recognised_by_its_first_id(tmp_path: Path) -> None:
    service = LogService(tmp_path)
    first = _firelens(BODY)
    assert first.whole
    assert service.accept(first) == 5
    assert len(service._recent["logs"]._hashes) == 1  # one entry stands for the body
    assert service.accept(_firelens(BODY)) == 0
    assert service.stats.duplicates == 5
    # the same lines in another body are other records
    assert service.accept(_firelens(BODY + b'\n{"log":"more"}')) == 6
    service.pipeline.wal.close()
    restarted = LogService(tmp_path)  # remembers every row's id, the first ones among them
    assert restarted.accept(_firelens(BODY)) == 0
    restarted.stop()
    assert count(LogService(tmp_path)) == 11
