"""`ecsguard serve` as a process: concurrent posts, a live tail client, SIGTERM, and then every
acknowledged record is in Parquet with an empty WAL."""

from __future__ import annotations

import contextlib
import gzip
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

import httpx

from ecsguard.logs.pipeline import Pipeline

TOKEN = "e2e-secret-token"
SAMPLES = Path(__file__).parents[2].parent / "shared" / "testdata" / "logs" / "samples"


def lines_of(stream: IO[str] | None) -> queue.Queue[str]:
    """The process's output lines, read in a thread so a wait can time out."""
    assert stream is not None
    found: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            found.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return found


def wait_for(lines: queue.Queue[str], needle: str, seen: list[str]) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=deadline - time.monotonic())
        except queue.Empty:
            break
        seen.append(line)
        if needle in line:
            return line
    raise AssertionError(f"no {needle!r} in the output: {seen}")


def ecsguard(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "ECSGUARD_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "ecsguard", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def post_load(client: httpx.Client) -> int:
    """4 concurrent senders x 5 gzip requests x 40 lines, plus the FireLens sample: acknowledged."""

    def sender(worker: int) -> int:
        stored = 0
        for request in range(5):
            body = "".join(f"w{worker} r{request} line {i}\n" for i in range(40))
            reply = client.post(
                "/ingest/lines",
                params={"service": "load"},
                content=gzip.compress(body.encode()),
                headers={"Content-Encoding": "gzip"},
            )
            assert reply.status_code == 200, reply.text
            stored += reply.json()["stored"]
        return stored

    with ThreadPoolExecutor(4) as pool:
        acknowledged = sum(pool.map(sender, range(4)))
    firelens = (SAMPLES / "fluentbit-http-json_lines.constructed.jsonl").read_bytes()
    return acknowledged + client.post("/ingest/firelens", content=firelens).json()["stored"]


def test_serve_acknowledges_tails_and_flushes_everything_on_sigterm(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = ecsguard("serve", "--port", "0", "--forward-port", "0", "--data-dir", str(data),
                      "--flush-seconds", "3600")  # fmt: skip
    tail: subprocess.Popen[str] | None = None
    try:
        out: list[str] = []
        output = lines_of(server.stdout)
        url = wait_for(output, "listening on", out).split("listening on ")[1].split()[0]
        # the tail client starts (imports take a while) while the server gets ready and loads
        tail = ecsguard("logs", "tail", "--server", url, "--service", "e2e", "--output", "json")
        tail_lines = lines_of(tail.stdout)
        wait_for(output, "ready", out)
        assert any("token is required" in line for line in out)
        assert any("ingest parser (FireLens, lines, CloudTrail, events): " in line for line in out)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            acknowledged = post_load(client)
            assert acknowledged == 4 * 5 * 40 + 2
            # the client is subscribed once its stream is open: post until it shows a record
            deadline, first, hellos = time.monotonic() + 30, None, 0
            while first is None and time.monotonic() < deadline:
                hellos += 1
                line = f"hello {hellos}\n".encode()
                reply = client.post("/ingest/lines", params={"service": "e2e"}, content=line)
                assert reply.status_code == 200 and reply.json()["stored"] == 1
                with contextlib.suppress(queue.Empty):
                    first = tail_lines.get(timeout=0.1)
        assert first is not None and '"message":"hello ' in first and '"service":"e2e"' in first
        tail.send_signal(signal.SIGINT)  # Ctrl-C
        assert tail.wait(10) == 0

        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0, server.stderr.read()  # type: ignore[union-attr]
        wait_for(output, "every acknowledged record is flushed", out)
        assert TOKEN not in "".join(out) + server.stderr.read()  # type: ignore[union-attr]
    finally:
        for process in (server, tail):
            if process is not None:
                process.kill()
                process.wait()

    pipeline = Pipeline(data)
    assert pipeline.wal.segments("logs") == []  # everything acknowledged went to Parquet
    counts = pipeline.connect().execute("SELECT count(*), count(DISTINCT id) FROM logs").fetchone()
    assert counts == (acknowledged + hellos, acknowledged + hellos)
    assert pipeline.store.files("logs")
