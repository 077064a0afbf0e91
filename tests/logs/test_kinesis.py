"""The Kinesis consumer in process against a moto server: decoding, conditional lease writes,
takeover with the de-dup window, fair share, resharding, throttling, a missing stream."""

from __future__ import annotations

import gzip
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from tests.cli.test_errors import assert_one_clear_error, ecsguard

from ecsguard.aws.session import AwsOptions, AwsSession
from ecsguard.core.errors import UserError
from ecsguard.demo.emulator import REGION, MotoServer
from ecsguard.logs.kinesis.consumer import Backoff, ConsumerSettings, KinesisConsumer, Stopped
from ecsguard.logs.kinesis.decode import decode
from ecsguard.logs.kinesis.leases import SHARD_END, TRIM_HORIZON, Lease, LeaseTable
from ecsguard.logs.records import ReceiverOptions
from ecsguard.logs.service import LogService


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture
def session(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> AwsSession:
    for name, value in moto.env().items():
        monkeypatch.setenv(name, value)
    return AwsSession(
        AwsOptions(
            regions=(REGION,), endpoint_url=moto.endpoint, max_attempts=2, retry_mode="standard"
        )
    )


@pytest.fixture
def service(tmp_path: Path) -> Iterator[LogService]:
    svc = LogService(tmp_path / "data")
    svc.start()
    yield svc
    svc.stop()


def new_stream(session: AwsSession, shards: int) -> str:
    name = f"s-{uuid.uuid4().hex[:8]}"
    session.client("kinesis").create_stream(StreamName=name, ShardCount=shards)
    return name


def subscription(events: list[tuple[str, str]], kind: str = "DATA_MESSAGE") -> bytes:
    doc = {
        "messageType": kind,
        "owner": "123456789012",
        "logGroup": "/ecs/web",
        "logStream": "ecs/web/task1",
        "logEvents": [
            {"id": eid, "timestamp": 1_700_000_000_000, "message": text} for eid, text in events
        ],
    }
    return gzip.compress(json.dumps(doc).encode())


def put(session: AwsSession, stream: str, payloads: list[bytes]) -> None:
    kinesis = session.client("kinesis")
    for i, data in enumerate(payloads):
        kinesis.put_record(StreamName=stream, Data=data, PartitionKey=f"k{i}-{uuid.uuid4()}")


def consumer(
    session: AwsSession, service: LogService, stream: str, lines: list[str] | None = None, **kw: Any
) -> KinesisConsumer:
    settings = ConsumerSettings(
        stream, lease_seconds=kw.pop("lease_seconds", 1.5), poll_seconds=0.1, **kw
    )
    return KinesisConsumer(session, service, settings, (lines if lines is not None else []).append)


def stored(service: LogService) -> list[tuple[str, str]]:
    con = service.connect()
    try:
        return [(str(m), str(i)) for m, i in con.execute("SELECT message, id FROM logs").fetchall()]
    finally:
        con.close()


def wait_until(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


# -- decoding --------------------------------------------------------------------------------------


def test_decode_subscription_and_lines() -> None:
    records = [
        {"SequenceNumber": "1", "Data": b"same\nsame\n"},
        {"SequenceNumber": "2", "Data": b'{"level": "error", "message": "boom"}\n'},
        {"SequenceNumber": "3", "Data": subscription([("e1", "from cw")])},
        {"SequenceNumber": "4", "Data": subscription([], kind="CONTROL_MESSAGE")},
        {"SequenceNumber": "5", "Data": b"same\n"},
    ]
    parsed = decode("st", "shardId-1", records, ReceiverOptions())
    rows = parsed.batch.to_pylist()
    assert sorted(r["message"] for r in rows) == ["boom", "from cw", "same", "same", "same"]
    assert len({r["id"] for r in rows}) == 5  # identical lines are distinct events
    assert {r["source"] for r in rows} == {"kinesis"}
    assert [p.kind for p in parsed.problems] == ["control_message"]
    again = decode("st", "shardId-1", records, ReceiverOptions())
    assert again.batch.column("id").to_pylist() == parsed.batch.column("id").to_pylist()
    other_shard = decode("st", "shardId-2", records[:1], ReceiverOptions())
    assert not set(other_shard.batch.column("id").to_pylist()) & {r["id"] for r in rows}


def test_decode_nothing() -> None:
    parsed = decode(
        "st", "shardId-1", [{"SequenceNumber": "1", "Data": b"\n\n"}], ReceiverOptions()
    )
    assert parsed.batch.num_rows == 0


# -- the lease table -------------------------------------------------------------------------------


def test_conditional_writes_keep_one_owner(session: AwsSession) -> None:
    table = LeaseTable(session.client("dynamodb"), f"leases-{uuid.uuid4().hex[:8]}")
    assert table.ensure() is True
    assert table.ensure() is False
    assert table.add("shard-a", ("shard-p",)) is True
    assert table.add("shard-a", ()) is False  # never overwrites a lease
    [seen] = table.scan()
    assert seen.parents == ("shard-p",) and seen.checkpoint == TRIM_HORIZON
    first = table.take(seen, "w1")
    second = table.take(seen, "w2")  # the same observed counter: the first write moved it
    assert first is not None and first.owner == "w1"
    assert second is None
    assert table.checkpoint(first, "w2", "5") is None  # not the owner
    renewed = table.renew(first, "w1")
    assert renewed is not None and renewed.counter == first.counter + 1
    assert table.renew(first, "w1") is None  # a stale counter: someone else wrote meanwhile
    assert table.request_handoff(renewed, "w2") is True
    assert table.request_handoff(renewed, "w3") is False  # one request at a time
    moved = table.transfer(renewed, "w1", "w2")
    assert moved is not None and moved.owner == "w2" and moved.handoff is None
    done = table.finish(moved, "w2")
    assert done is not None and done.checkpoint == SHARD_END and done.owner is None


# -- consuming -------------------------------------------------------------------------------------


def test_missing_stream_is_a_user_error(session: AwsSession, service: LogService) -> None:
    with pytest.raises(UserError) as err:
        consumer(session, service, "no-such-stream").start()
    assert "no-such-stream" in err.value.problem
    assert "create-stream" in err.value.hint


def test_reads_every_shard_checkpoints_and_releases(
    session: AwsSession, service: LogService
) -> None:
    stream = new_stream(session, 2)
    put(session, stream, [f"line {i}".encode() for i in range(30)])
    worker = consumer(session, service, stream)
    worker.start()
    try:
        wait_until(lambda: len(stored(service)) == 30)
    finally:
        worker.stop()
    leases = worker.table.scan()
    assert all(le.owner is None and le.checkpoint not in (TRIM_HORIZON, None) for le in leases)
    # a restart resumes after the checkpoints: nothing is read twice
    again = consumer(session, service, stream)
    again.start()
    try:
        wait_until(lambda: len(again.stats.starts) == 2)
        time.sleep(0.5)
    finally:
        again.stop()
    assert all(position != TRIM_HORIZON for _, position, _ in again.stats.starts)
    assert again.stats.records == 0
    assert len(stored(service)) == 30


def test_takeover_drops_what_the_dead_worker_stored(
    session: AwsSession, service: LogService
) -> None:
    """The dead worker stored a batch and died before its checkpoint: the new owner re-reads it
    and the rows already in the store are dropped by id."""
    stream = new_stream(session, 1)
    put(session, stream, [f"event {i}".encode() for i in range(10)])
    kinesis = session.client("kinesis")
    shard = kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    table = LeaseTable(session.client("dynamodb"), f"ecsguard-kinesis-{stream}")
    table.ensure()
    table.add(shard, ())
    [lease] = table.scan()
    dead = table.take(lease, "dead-worker")
    assert dead is not None
    iterator = kinesis.get_shard_iterator(
        StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = kinesis.get_records(ShardIterator=iterator, Limit=6)["Records"]
    dead = table.mark_pending(dead, "dead-worker", records[-1]["SequenceNumber"])
    assert dead is not None
    service.accept(decode(stream, shard, records, ReceiverOptions()))  # stored, never checkpointed
    assert len(stored(service)) == 6

    worker = consumer(session, service, stream, lease_seconds=1.0)
    worker.start()
    try:
        wait_until(lambda: len(stored(service)) >= 10 and worker.stats.records >= 4)
        time.sleep(0.3)
    finally:
        worker.stop()
    rows = stored(service)
    assert sorted(m for m, _ in rows) == sorted(f"event {i}" for i in range(10))
    assert len({i for _, i in rows}) == 10
    assert worker.stats.duplicates == 6
    assert worker.stats.starts == [(shard, TRIM_HORIZON, "dead-worker")]


def test_lost_lease_stops_the_reader(session: AwsSession, service: LogService) -> None:
    """Another worker's conditional take wins: the reader's next write fails and it stops."""
    stream = new_stream(session, 1)
    put(session, stream, [b"first"])
    worker = consumer(session, service, stream, lease_seconds=30)
    lines: list[str] = []
    worker.announce = lines.append
    worker.start()
    try:
        wait_until(lambda: len(stored(service)) == 1)
        [lease] = worker.table.scan()
        assert lease.owner == worker.worker
        assert worker.table.take(lease, "thief") is not None
        put(session, stream, [b"second"])
        wait_until(lambda: worker.stats.lost_leases == 1)
        wait_until(lambda: not worker._readers)
    finally:
        worker.stop()
    [lease] = worker.table.scan()
    assert lease.owner == "thief"  # the stopping worker did not release what it lost
    assert any("lost the lease" in line for line in lines)


def test_two_workers_share_the_shards(session: AwsSession, tmp_path: Path) -> None:
    stream = new_stream(session, 4)
    put(session, stream, [f"r{i}".encode() for i in range(40)])
    services = [LogService(tmp_path / f"d{i}") for i in range(2)]
    workers = [consumer(session, svc, stream) for svc in services]
    workers[0].start()
    time.sleep(1.0)  # the first one grabs all four
    workers[1].start()
    try:
        table = workers[0].table

        def split() -> list[int]:
            owners = [le.owner for le in table.scan()]
            return [owners.count(w.worker) for w in workers]

        wait_until(lambda: split() == [2, 2], 30)
    finally:
        for w in workers:
            w.stop()
    total = sum(len(stored(svc)) for svc in services)
    assert total == 40
    for svc in services:
        svc.stop()


def test_children_start_after_the_parent_ends(session: AwsSession, service: LogService) -> None:
    stream = new_stream(session, 1)
    kinesis = session.client("kinesis")
    put(session, stream, [subscription([(f"a{i}", f"before {i}")]) for i in range(5)])
    lines: list[str] = []
    worker = consumer(session, service, stream, lines, shard_sync_seconds=0.5)
    worker.start()
    try:
        wait_until(lambda: len(stored(service)) == 5)
        parent = kinesis.list_shards(StreamName=stream)["Shards"][0]
        middle = str(
            (
                int(parent["HashKeyRange"]["StartingHashKey"])
                + int(parent["HashKeyRange"]["EndingHashKey"])
            )
            // 2
        )
        kinesis.split_shard(
            StreamName=stream, ShardToSplit=parent["ShardId"], NewStartingHashKey=middle
        )
        put(session, stream, [subscription([(f"b{i}", f"after {i}")]) for i in range(6)])
        wait_until(lambda: len(stored(service)) == 11)
        wait_until(lambda: len(worker.stats.starts) == 3)
        time.sleep(0.5)
    finally:
        worker.stop()
    leases = {le.shard: le for le in worker.table.scan()}
    assert leases[parent["ShardId"]].checkpoint == SHARD_END
    children = [le for le in leases.values() if le.parents]
    assert len(children) == 2 and all(le.parents == (parent["ShardId"],) for le in children)
    ended = next(i for i, line in enumerate(lines) if "finished (SHARD_END)" in line)
    for child in children:
        started = next(i for i, line in enumerate(lines) if f"{child.shard}: reading" in line)
        assert started > ended
    # moto moves the parent's records into the children on a split; their ids repeat, so the
    # service's de-duplication keeps one copy
    messages = sorted(m for m, _ in stored(service))
    assert messages == sorted([f"before {i}" for i in range(5)] + [f"after {i}" for i in range(6)])


def test_child_waits_for_an_unfinished_parent(session: AwsSession, service: LogService) -> None:
    stream = new_stream(session, 1)
    worker = consumer(session, service, stream)
    parent = Lease("p", "w", 3, "17")
    child = Lease("c", None, 0, TRIM_HORIZON, parents=("p",))
    orphan = Lease("o", None, 0, TRIM_HORIZON, parents=("gone",))
    assert not worker.ready(child, {"p": parent, "c": child})
    assert worker.ready(child, {"p": Lease("p", None, 4, SHARD_END), "c": child})
    assert worker.ready(orphan, {"o": orphan})  # a parent past retention is finished
    assert not worker.ready(Lease("p", None, 4, SHARD_END), {})


# -- throttling ------------------------------------------------------------------------------------


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def inject(session: AwsSession, operation: str, code: str, times: int) -> dict[str, int]:
    """The first `times` HTTP attempts of kinesis `operation` are answered with `code`."""
    state = {"sent": 0}

    def handler(request: Any, **_: Any) -> AWSResponse | None:
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else target
        if not target.endswith(f".{operation}") or state["sent"] >= times:
            return None
        state["sent"] += 1
        body = json.dumps({"__type": code, "message": "Rate exceeded for shard"}).encode()
        return AWSResponse(
            request.url, 400, {"Content-Type": "application/x-amz-json-1.1"}, _Raw(body)
        )

    session._session.events.register("before-send.kinesis", handler)
    return state


def test_throttled_reads_back_off_and_lose_nothing(
    session: AwsSession, service: LogService
) -> None:
    stream = new_stream(session, 1)
    put(session, stream, [f"t{i}".encode() for i in range(8)])
    # a session of its own: clients copy the event handlers when they are created
    throttled = AwsSession(session.options)
    records = inject(throttled, "GetRecords", "ProvisionedThroughputExceededException", 6)
    iterators = inject(throttled, "GetShardIterator", "LimitExceededException", 3)
    worker = consumer(throttled, service, stream, backoff_base=0.01)
    worker.start()
    try:
        wait_until(lambda: len(stored(service)) == 8)
    finally:
        worker.stop()
    assert (records["sent"], iterators["sent"]) == (6, 3)
    # botocore retries once (max_attempts=2), then the consumer's own backoff takes over
    assert worker.stats.throttled >= 3


def test_backoff_is_jittered_and_capped() -> None:
    waits: list[float] = []

    class Recorder(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waits.append(timeout or 0.0)
            return False

    backoff = Backoff(0.1, 1.0, Recorder())
    for _ in range(12):
        backoff.wait()
    assert all(0 <= w <= min(1.0, 0.1 * 2**i) for i, w in enumerate(waits))
    assert len(set(waits)) > 1
    stopping = threading.Event()
    stopping.set()
    with pytest.raises(Stopped):
        Backoff(0.1, 1.0, stopping).wait()


def test_serve_refuses_a_missing_stream(moto: MotoServer, tmp_path: Path) -> None:
    run = ecsguard(
        "serve",
        "--port",
        "0",
        "--forward-port",
        "0",
        "--data-dir",
        str(tmp_path),
        "--kinesis-stream",
        "absent-stream",
        "--region",
        REGION,
        "--endpoint-url",
        moto.endpoint,
    )
    assert_one_clear_error(run, "absent-stream", "create-stream")
    assert run.returncode == 2


def test_metrics_show_the_consumer(session: AwsSession, service: LogService) -> None:
    """What a Prometheus scrape of `serve --kinesis-stream` reads of its consumer: records, the
    shards it holds and how far behind each read was; a released shard leaves the lag gauge."""
    from types import SimpleNamespace

    from tests.web.test_metrics import Samples, samples_of

    from ecsguard.logs.tail import TailHub
    from ecsguard.web.metrics import exposition

    stream = new_stream(session, 2)
    put(session, stream, [f"metric line {i}".encode() for i in range(12)])
    worker = consumer(session, service, stream)
    state = SimpleNamespace(
        service=service, hub=TailHub(), detection=None, dispatcher=None, kinesis=worker
    )

    def scrape() -> Samples:
        return samples_of(exposition(state, None)[0].decode())

    worker.start()
    try:
        wait_until(lambda: len(stored(service)) == 12)
        wait_until(lambda: len(worker.stats.behind_ms) == 2)
        samples = scrape()
    finally:
        worker.stop()
    assert samples[("ecsguard_kinesis_records_total", ())] == 12
    assert samples[("ecsguard_kinesis_shards_held", ())] == 2
    lags = {labels: v for (name, labels), v in samples.items() if name.endswith("behind_latest")}
    assert len(lags) == 2 and all(value >= 0 for value in lags.values())
    after = scrape()
    assert after[("ecsguard_kinesis_shards_held", ())] == 0
    assert not any(name.endswith("behind_latest") for name, _ in after)
