"""The WAL: round trip, torn tails, group commit, full disk."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pytest

from ecsguard.logs import wal as wal_module
from ecsguard.logs.wal import Wal, WalFullError

SCHEMA = pa.schema([("id", pa.string()), ("n", pa.int64())])


def batch(*ids: str) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict({"id": list(ids), "n": list(range(len(ids)))}, schema=SCHEMA)


def replayed_ids(wal: Wal, table: str = "logs") -> list[str]:
    return [i for _, b in wal.replay(table) for i in b.column("id").to_pylist()]


def test_round_trip_across_segments(tmp_path: Path) -> None:
    wal = Wal(tmp_path, segment_bytes=2000)
    for i in range(20):
        wal.append("logs", batch(f"a{i}", f"b{i}"))
    assert len(wal.segments("logs")) > 1  # rolled at the size
    wal.close()
    fresh = Wal(tmp_path)
    assert replayed_ids(fresh) == [f"{p}{i}" for i in range(20) for p in "ab"]
    assert fresh.torn == 0


def test_rotate_older_than_seals_only_an_old_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(wal_module, "time", SimpleNamespace(monotonic=lambda: now[0]))
    wal = Wal(tmp_path)
    wal.append("logs", batch("a"))
    now[0] += 59
    wal.rotate("logs", older_than=60)
    wal.append("logs", batch("b"))
    assert len(wal.segments("logs")) == 1  # still open: "b" went to the same segment
    now[0] += 1
    wal.rotate("logs", older_than=60)
    wal.append("logs", batch("c"))  # a new segment, opened now
    assert len(wal.segments("logs")) == 2
    wal.rotate("logs", older_than=60)
    assert len(wal.segments("logs")) == 2  # the new one is young
    wal.close()
    assert replayed_ids(Wal(tmp_path)) == ["a", "b", "c"]


def test_replay_sees_the_open_segment_without_sealing_it(tmp_path: Path) -> None:
    wal = Wal(tmp_path)
    wal.append("logs", batch("x"))
    assert replayed_ids(Wal(tmp_path)) == ["x"]
    wal.append("logs", batch("y"))  # still appendable
    assert replayed_ids(wal) == ["x", "y"]


def _segment(tmp_path: Path) -> Path:
    (segment,) = sorted((tmp_path / "logs").glob("*.wal"))
    return segment


@pytest.mark.parametrize("cut", [1, 5, 13, 40])
def test_torn_tail_is_truncated_and_counted(tmp_path: Path, cut: int) -> None:
    wal = Wal(tmp_path)
    wal.append("logs", batch("keep1"))
    wal.append("logs", batch("keep2"))
    wal.append("logs", batch("lost"))
    wal.close()
    segment = _segment(tmp_path)
    size = segment.stat().st_size
    os.truncate(segment, size - cut)  # a crash in the middle of the last frame
    fresh = Wal(tmp_path)
    assert replayed_ids(fresh) == ["keep1", "keep2"]
    assert fresh.torn == 1
    assert replayed_ids(fresh) == ["keep1", "keep2"]
    assert fresh.torn == 1  # repaired once, clean since


def test_bad_crc_stops_replay_there(tmp_path: Path) -> None:
    wal = Wal(tmp_path)
    wal.append("logs", batch("ok"))
    wal.append("logs", batch("flipped"))
    wal.close()
    segment = _segment(tmp_path)
    data = bytearray(segment.read_bytes())
    data[-3] ^= 0xFF
    segment.write_bytes(bytes(data))
    fresh = Wal(tmp_path)
    assert replayed_ids(fresh) == ["ok"]
    assert fresh.torn == 1


def test_zero_filled_tail_is_torn(tmp_path: Path) -> None:
    wal = Wal(tmp_path)
    wal.append("logs", batch("ok"))
    wal.close()
    segment = _segment(tmp_path)
    with segment.open("ab") as f:
        f.write(b"\0" * 4096)  # what a filesystem may leave after a crash
    assert replayed_ids(Wal(tmp_path)) == ["ok"]


def test_group_commit_shares_fsyncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        real_fsync(fd)
        threading.Event().wait(0.002)  # a disk's flush latency, so appenders pile up

    monkeypatch.setattr(wal_module.os, "fsync", slow_fsync)
    wal = Wal(tmp_path)
    threads, per_thread = 8, 125

    def work(t: int) -> None:
        for i in range(per_thread):
            wal.append("logs", batch(f"{t}-{i}"))

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert wal.appends == threads * per_thread == 1000
    assert wal.fsyncs < wal.appends / 3, (wal.fsyncs, wal.appends)
    assert sorted(replayed_ids(wal)) == sorted(
        f"{t}-{i}" for t in range(threads) for i in range(per_thread)
    )


@pytest.mark.parametrize("whole_writes", [0, 1], ids=["in the header", "in the payload"])
def test_full_disk_raises_and_keeps_acknowledged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, whole_writes: int
) -> None:
    wal = Wal(tmp_path)
    wal.append("logs", batch("acked"))
    real_write = os.write
    calls = [0]

    def half_then_full(fd: int, data: bytes | memoryview) -> int:
        # a frame is written as header then payload: the disk fills up in one of them
        calls[0] += 1
        if calls[0] <= whole_writes:
            return real_write(fd, data)
        real_write(fd, bytes(data)[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(wal_module.os, "write", half_then_full)
    with pytest.raises(WalFullError) as info:
        wal.append("logs", batch("refused"))
    assert "full" in str(info.value)
    monkeypatch.setattr(wal_module.os, "write", real_write)
    wal.append("logs", batch("after"))  # space is back: appends go on
    wal.close()
    fresh = Wal(tmp_path)
    assert replayed_ids(fresh) == ["acked", "after"]
    assert fresh.torn == 0  # the partial frame was taken back at once


def test_fsync_failure_fails_the_waiters_and_seals_the_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wal = Wal(tmp_path)
    wal.append("logs", batch("acked"))

    def full(fd: int) -> None:
        raise OSError(errno.EDQUOT, "Disk quota exceeded")

    monkeypatch.setattr(wal_module.os, "fsync", full)
    with pytest.raises(WalFullError):
        wal.append("logs", batch("maybe"))
    monkeypatch.undo()
    wal.append("logs", batch("after"))
    assert len(wal.segments("logs")) == 2  # never appended after a failed fsync
    ids = replayed_ids(Wal(tmp_path))
    assert "acked" in ids and "after" in ids


def test_other_os_errors_propagate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(fd: int, data: bytes) -> int:
        raise OSError(errno.EIO, "I/O error")

    wal = Wal(tmp_path)
    monkeypatch.setattr(wal_module.os, "write", broken)
    with pytest.raises(OSError) as info:
        wal.append("logs", batch("x"))
    assert not isinstance(info.value, WalFullError)


def test_sealed_segments_are_mapped_and_outlive_their_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flusher reads a sealed segment mapped (no copy); its batches stay readable after the
    segment is deleted. An open segment, which its writer may truncate, is copied instead."""
    mapped: list[str] = []
    real_map = wal_module.pa.memory_map

    def recording(path: str, *args: str) -> pa.MemoryMappedFile:
        mapped.append(path)
        return real_map(path, *args)

    monkeypatch.setattr(wal_module.pa, "memory_map", recording)
    wal = Wal(tmp_path)
    wal.append("logs", batch("a", "b"))
    assert replayed_ids(wal) == ["a", "b"] and mapped == []  # open: copied
    wal.rotate("logs")
    (segment,) = wal.segments("logs")
    with wal.claim(segment) as claimed:
        assert claimed is not None
        wal.delete(segment)
    assert mapped == [str(segment)] and not segment.exists()
    assert [i for b in claimed.batches for i in b.column("id").to_pylist()] == ["a", "b"]


def test_batches_a_query_holds_do_not_keep_a_segment_locked(tmp_path: Path) -> None:
    """A query reads a sealed segment (mapped, under its lock); while it keeps the batches, the
    flusher must still be able to claim the segment."""
    wal = Wal(tmp_path)
    wal.append("logs", batch("a"))
    wal.rotate("logs")
    held = list(wal.read_segments("logs"))
    (segment,) = wal.segments("logs")
    with wal.claim(segment) as claimed:
        assert claimed is not None, "the query's mapping kept the segment locked"
    assert held[0].batches[0].column("id").to_pylist() == ["a"]
