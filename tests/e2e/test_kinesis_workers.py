"""Three `ecsguard serve --kinesis-stream` processes share a four-shard stream on a moto server; one
is killed with SIGKILL while records keep arriving. Afterwards every record is in the store exactly
once, and the dead worker's shards were resumed from their checkpoints, not from TRIM_HORIZON."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from ecsguard.demo.emulator import REGION, MotoServer
from ecsguard.logs.kinesis.leases import LeaseTable
from ecsguard.logs.pipeline import Pipeline

pytestmark = pytest.mark.slow
STREAM = "e2e-logs"
LEASE_SECONDS = 3


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


def client(server: MotoServer, service: str) -> Any:
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=server.endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def subscription(group: int, count: int) -> bytes:
    """A CloudWatch Logs subscription record with `count` events."""
    events = [
        {"id": f"{group}-{i}", "timestamp": 1_700_000_000_000 + i, "message": f"cw {group} {i}"}
        for i in range(count)
    ]
    doc = {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": "/ecs/web",
        "logStream": "ecs/web/abc",
        "logEvents": events,
    }
    return gzip.compress(json.dumps(doc).encode())


class Producer:
    """Puts records and remembers every message it expects in the store."""

    def __init__(self, kinesis: Any) -> None:
        self.kinesis = kinesis
        self.expected: list[str] = []
        self.count = 0

    def put(self, n: int) -> None:
        for _ in range(n):
            i = self.count
            self.count += 1
            if i % 10 == 0:
                data = subscription(i, 3)
                self.expected.extend(f"cw {i} {e}" for e in range(3))
            else:
                # the same text twice in one record and across records: distinct events
                data = f"line {i}\nsame text\n".encode()
                self.expected.extend([f"line {i}", "same text"])
            self.kinesis.put_record(StreamName=STREAM, Data=data, PartitionKey=f"key-{i}")


def serve(server: MotoServer, data_dir: Path) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
    env = {**os.environ, **server.env(), "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ecsguard",
            "serve",
            "--port",
            "0",
            "--forward-port",
            "0",
            "--data-dir",
            str(data_dir),
            "--kinesis-stream",
            STREAM,
            "--kinesis-lease-seconds",
            str(LEASE_SECONDS),
            "--region",
            REGION,
            "--endpoint-url",
            server.endpoint,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return proc, lines


def drain(lines: queue.Queue[str], into: list[str]) -> list[str]:
    while True:
        try:
            into.append(lines.get_nowait())
        except queue.Empty:
            return into


def wait_for_line(
    proc: subprocess.Popen[str],
    lines: queue.Queue[str],
    output: list[str],
    needle: str,
    timeout: float,
) -> None:
    """Collect `proc`'s output until a line holds `needle`. A process that dies or says nothing
    in time fails the test with its output; a live one is first made to dump its threads' stacks
    (faulthandler on SIGABRT), so a hang names where it waits."""
    deadline = time.monotonic() + timeout
    while not any(needle in line for line in output):
        if proc.poll() is not None and lines.empty():
            raise AssertionError(f"exited {proc.returncode} before {needle!r}: {''.join(output)}")
        if time.monotonic() > deadline:
            proc.send_signal(signal.SIGABRT)
            proc.wait(10)
            time.sleep(0.5)  # the pump thread reads the last lines
            drain(lines, output)
            raise AssertionError(f"no {needle!r} in {timeout} s: {''.join(output)}")
        with contextlib.suppress(queue.Empty):
            output.append(lines.get(timeout=0.5))


def stored_messages(data_dir: Path) -> list[tuple[str, str]]:
    pipeline = Pipeline(data_dir)
    try:
        con = pipeline.connect()
        rows = con.execute("SELECT message, id FROM logs").fetchall()
        con.close()
    finally:
        pipeline.close()
    return [(str(m), str(i)) for m, i in rows]


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_three_workers_one_killed(moto: MotoServer, tmp_path: Path) -> None:
    kinesis = client(moto, "kinesis")
    kinesis.create_stream(StreamName=STREAM, ShardCount=4)
    table = LeaseTable(client(moto, "dynamodb"), f"ecsguard-kinesis-{STREAM}")
    producer = Producer(kinesis)
    producer.put(120)
    data_dir = tmp_path / "data"
    workers = [serve(moto, data_dir) for _ in range(3)]
    outputs: list[list[str]] = [[], [], []]
    try:
        names: list[str] = []
        for (proc, lines), output in zip(workers, outputs, strict=True):
            wait_for_line(proc, lines, output, "as worker", 90)
            found = re.search(r"as worker (\S+)", "".join(output))
            assert found
            names.append(found[1])

        # every worker ends up with a share of the four shards (handoffs balance them)
        def balanced() -> bool:
            owners = [lease.owner for lease in table.scan()]
            return len(set(owners) - {None}) == 3

        wait_until(balanced, 40, "three workers owning shards")
        wait_until(
            lambda: len(stored_messages(data_dir)) == len(producer.expected), 40, "first records"
        )

        # records keep coming while the worker holding shards dies without a word
        stop = threading.Event()

        def produce() -> None:
            while not stop.is_set():
                producer.put(5)
                time.sleep(0.05)

        thread = threading.Thread(target=produce)
        thread.start()
        time.sleep(1.0)
        victim = 0
        victim_shards = [le.shard for le in table.scan() if le.owner == names[victim]]
        assert victim_shards
        workers[victim][0].send_signal(signal.SIGKILL)
        workers[victim][0].wait(10)
        checkpoints = {le.shard: le.checkpoint for le in table.scan()}
        time.sleep(1.0)
        stop.set()
        thread.join()
        producer.put(40)

        wait_until(
            lambda: not {le.shard for le in table.scan() if le.owner == names[victim]},
            30,
            "the dead worker's leases to be taken over",
        )
        wait_until(
            lambda: len(stored_messages(data_dir)) >= len(producer.expected), 60, "all records"
        )
        time.sleep(2 * LEASE_SECONDS)  # a late duplicate would show up by now
        for proc, _ in workers[1:]:
            proc.send_signal(signal.SIGTERM)
        for proc, _ in workers[1:]:
            assert proc.wait(30) == 0
    finally:
        for proc, _ in workers:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for (_, lines), output in zip(workers, outputs, strict=True):
        drain(lines, output)

    rows = stored_messages(data_dir)
    assert len({i for _, i in rows}) == len(rows), "a record is stored twice"
    assert sorted(m for m, _ in rows) == sorted(producer.expected)

    # the survivors resumed each of the dead worker's shards from its checkpoint
    survivors = "".join(line for output in outputs[1:] for line in output)
    for shard in victim_shards:
        checkpoint = checkpoints[shard]
        assert checkpoint != "TRIM_HORIZON"
        assert f"{shard}: reading after checkpoint {checkpoint} (was {names[victim]})" in survivors
        assert f"{shard}: reading from TRIM_HORIZON (was {names[victim]})" not in survivors
    assert all(lease.checkpoint != "TRIM_HORIZON" for lease in table.scan())
