"""The durability contract against the real server process.

1. A load generator posts FireLens batches while `ecsguard serve` is killed with SIGKILL at random
   moments and restarted, several times; a batch whose answer never came is sent again to the next
   server (as Fluent Bit retries), and some batches are sent twice by a client that gave up early.
   Afterwards every acknowledged record is queryable exactly once.
2. On a full disk (a small tmpfs) the receivers answer 503 with Retry-After; once space returns
   the same batches are accepted, and nothing acknowledged is lost.
"""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from ecsguard.demo.logserver import ServeProcess
from ecsguard.logs.pipeline import Pipeline


def body(batch: int, lines: int = 40) -> bytes:
    """A Fluent Bit json_lines body whose messages name their batch and line."""
    base = 1_800_000_000.0 + batch
    return b"\n".join(
        orjson.dumps(
            {
                "date": base + i / 1000,
                "log": f"batch {batch} line {i}",
                "source": "stdout",
                "container_name": "/app",
                "ecs_cluster": "prod",
                "ecs_task_arn": "arn:aws:ecs:ap-northeast-1:123456789012:task/prod/abc",
                "ecs_task_definition": "api:3",
            }
        )
        for i in range(lines)
    )


def stored_messages(data_dir: Path) -> dict[str, int]:
    pipeline = Pipeline(data_dir)
    try:
        rows = pipeline.connect().execute("SELECT message, count(*) FROM logs GROUP BY 1")
        return dict(rows.fetchall())
    finally:
        pipeline.close()


@pytest.mark.slow
def test_sigkill_under_load_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    rng = random.Random(5)
    acknowledged: set[int] = set()
    unanswered: list[int] = []  # sent, no answer: resent to the next server
    next_batch = 0
    for _ in range(4):
        server = ServeProcess(tmp_path, flush_seconds=0.2)
        stop = threading.Event()

        def load(url: str = server.url, stop: threading.Event = stop) -> None:
            nonlocal next_batch
            with httpx.Client(timeout=5) as client:
                while not stop.is_set():
                    if unanswered:
                        batch = unanswered.pop(0)
                    else:
                        batch, next_batch = next_batch, next_batch + 1
                    if batch % 4 == 0:
                        # a client that gives up before the answer and sends again: the server
                        # may well have stored the first copy
                        with contextlib.suppress(httpx.TimeoutException, httpx.TransportError):
                            client.post(f"{url}/ingest/firelens", content=body(batch), timeout=1e-4)
                    try:
                        answer = client.post(f"{url}/ingest/firelens", content=body(batch))
                    except httpx.TransportError:
                        unanswered.append(batch)
                        return
                    assert answer.status_code == 200, answer.text
                    acknowledged.add(batch)

        worker = threading.Thread(target=load)
        worker.start()
        time.sleep(rng.uniform(0.3, 1.2))
        server.kill()  # at a random moment of the load
        stop.set()
        worker.join(10)
    assert len(acknowledged) > 10
    final = ServeProcess(tmp_path, flush_seconds=0.2)
    with httpx.Client(timeout=10) as client:
        for batch in unanswered:  # the retries of the last requests cut off
            assert client.post(f"{final.url}/ingest/firelens", content=body(batch)).is_success
            acknowledged.add(batch)
    assert final.terminate() == 0
    stored = stored_messages(tmp_path)
    expected = {f"batch {b} line {i}" for b in acknowledged for i in range(40)}
    assert expected <= stored.keys(), "an acknowledged record is missing"
    repeated = {m: n for m, n in stored.items() if n != 1}
    assert not repeated, f"records stored more than once: {list(repeated)[:5]}"
    assert not list((tmp_path / "wal" / "logs").glob("*.wal"))  # SIGTERM flushed everything


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_full_disk_answers_503_and_loses_nothing(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "disk", "6m") as disk:
        server = ServeProcess(disk / "data", flush_seconds=0.2)
        acknowledged: list[int] = []
        refused: list[int] = []
        ballast = disk / "ballast"
        with httpx.Client(timeout=10) as client:
            client.post(f"{server.url}/ingest/firelens", content=body(0)).raise_for_status()
            acknowledged.append(0)
            # fill the disk to the last few kilobytes
            with ballast.open("wb") as fh, contextlib.suppress(OSError):
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
            for batch in range(1, 30):
                answer = client.post(f"{server.url}/ingest/firelens", content=body(batch, 400))
                if answer.status_code == 503:
                    assert int(answer.headers["Retry-After"]) > 0
                    assert "full" in answer.text
                    refused.append(batch)
                else:
                    assert answer.status_code == 200, answer.text
                    acknowledged.append(batch)
            assert refused, "the full disk never refused a batch"
            ballast.unlink()  # space returns: the sender's retries now succeed
            for batch in refused:
                answer = client.post(f"{server.url}/ingest/firelens", content=body(batch, 400))
                assert answer.status_code == 200, answer.text
                acknowledged.append(batch)
        assert server.terminate() == 0
        stored = stored_messages(disk / "data")
        for batch in acknowledged:
            lines = 40 if batch == 0 else 400
            assert all(stored.get(f"batch {batch} line {i}") == 1 for i in range(lines)), batch
