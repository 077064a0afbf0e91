"""A Kinesis worker: shard leases shared with other ecsguard processes, records into a LogService.

A coordinator thread, every third of the lease time: lists the shards now and then (a lease for
every new shard, with its parents), renews the leases it holds, takes free or expired ones up to a
fair share (ceil(shards / live workers)), and when none is free asks the busiest worker to hand
one over (it does so after its current batch, with a final checkpoint). A shard is read only once
its parents are read to SHARD_END, so a key's records stay in order across a reshard.

One reader thread per held shard: GetRecords, decode, mark the batch's last sequence number as
pending, store (`LogService.accept`: fsynced when it returns), checkpoint. A worker that took over
an expired lease with a pending mark re-reads from the checkpoint: the rows of that window the dead
worker may have stored already are looked up by id in the store and dropped, so a takeover does not
show a record twice (ids are fixed per record: CloudWatch event ids, or stream/shard/sequence for
raw lines).

Throttling (ProvisionedThroughputExceededException, LimitExceededException) and a full WAL back off
with full jitter and retry for ever; nothing is checkpointed before it is stored.
"""

from __future__ import annotations

import logging
import math
import os
import random
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import botocore.exceptions as bce
import pyarrow as pa
import pyarrow.compute as pc

from ecsguard.aws.session import AwsSession
from ecsguard.core.errors import AwsAccessError, UserError
from ecsguard.logs.kinesis.decode import decode
from ecsguard.logs.kinesis.leases import TRIM_HORIZON, Lease, LeaseTable
from ecsguard.logs.records import Parsed, ReceiverOptions
from ecsguard.logs.service import LogService
from ecsguard.logs.wal import WalFullError

log = logging.getLogger(__name__)
T = TypeVar("T")

#: error codes that mean "slow down": retried with backoff, never fatal
THROTTLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
    }
)
#: errors AWS gives when the credentials may not do something
DENIED_CODES = frozenset({"AccessDeniedException", "UnrecognizedClientException"})


@dataclass(frozen=True)
class ConsumerSettings:
    stream: str
    #: the DynamoDB lease table; one per stream and group of cooperating workers
    lease_table: str | None = None
    lease_seconds: float = 10.0
    poll_seconds: float = 1.0
    shard_sync_seconds: float = 30.0
    max_records: int = 10_000
    worker_id: str | None = None
    backoff_base: float = 0.2
    backoff_cap: float = 10.0

    @property
    def table_name(self) -> str:
        return self.lease_table or f"ecsguard-kinesis-{self.stream}"


@dataclass
class ConsumerStats:
    records: int = 0
    batches: int = 0
    duplicates: int = 0
    throttled: int = 0
    lost_leases: int = 0
    #: per shard this worker reads: how far its last GetRecords was behind the stream's tip
    behind_ms: dict[str, int] = field(default_factory=dict)
    #: (shard, starting position, previous owner or None) for every reader started
    starts: list[tuple[str, str, str | None]] = field(default_factory=list)


class Stopped(Exception):
    """The consumer is stopping: unwind without touching the lease further."""


class Backoff:
    """Exponential backoff with full jitter (a random wait up to base * 2^attempt, capped)."""

    def __init__(self, base: float, cap: float, stop: threading.Event) -> None:
        self.base, self.cap, self.stop = base, cap, stop
        self.attempt = 0

    def wait(self) -> None:
        delay = random.uniform(0, min(self.cap, self.base * 2**self.attempt))
        self.attempt += 1
        if self.stop.wait(delay):
            raise Stopped


def _mark(table: LeaseTable, worker: str, sequence: str, lease: Lease) -> Lease | None:
    return table.mark_pending(lease, worker, sequence)


def _checkpoint(table: LeaseTable, worker: str, sequence: str, lease: Lease) -> Lease | None:
    return table.checkpoint(lease, worker, sequence)


def error_code(err: bce.ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


class KinesisConsumer:
    """`start()` checks the stream and the lease table and starts the threads; `stop()` lets each
    reader finish its batch, checkpoint and release its lease."""

    def __init__(
        self,
        session: AwsSession,
        service: LogService,
        settings: ConsumerSettings,
        announce: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.session = session
        self.service = service
        self.settings = settings
        self.announce = announce
        self.worker = settings.worker_id or (
            f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        )
        self.kinesis = session.client("kinesis")
        self.table = LeaseTable(session.client("dynamodb"), settings.table_name)
        self.stats = ConsumerStats()
        self._stop = threading.Event()
        self._sync_now = threading.Event()
        self._lock = threading.Lock()
        self._readers: dict[str, ShardReader] = {}
        self._seen: dict[str, tuple[int, float]] = {}  # shard -> (counter, when it last moved)
        self._shards: dict[str, dict[str, Any]] = {}  # the last ListShards, by shard id
        self._asked: tuple[str, float] | None = None  # the handoff we requested, and when
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self.check_stream()
        try:
            created = self.retry(self.table.ensure)
        except bce.ClientError as err:
            raise AwsAccessError(
                f"cannot use the DynamoDB lease table {self.settings.table_name}: "
                f"{error_code(err)}: {err.response.get('Error', {}).get('Message', '')}",
                "allow dynamodb:DescribeTable, CreateTable, Scan, PutItem, UpdateItem on it",
            ) from None
        if created:
            self.announce(f"  kinesis: created the lease table {self.settings.table_name}")
        self._sync_shards()
        self._thread = threading.Thread(
            target=self._coordinate, name="ecsguard-kinesis", daemon=True
        )
        self._thread.start()
        self.announce(
            f"  kinesis: consuming {self.settings.stream} as worker {self.worker} "
            f"(leases in {self.settings.table_name})"
        )

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            readers = list(self._readers.values())
        for reader in readers:
            reader.stop.set()
        for reader in readers:
            reader.join()

    def check_stream(self) -> dict[str, Any]:
        """The stream's summary; a missing stream or refused credentials are UserErrors."""
        name = self.settings.stream
        try:
            return dict(
                self.kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
            )
        except bce.ClientError as err:
            code = error_code(err)
            if code == "ResourceNotFoundException":
                raise UserError(
                    f"Kinesis stream {name!r} not found in {self.session.default_region}",
                    f"create it (aws kinesis create-stream --stream-name {name} --shard-count 1)"
                    " or check --region, --profile and --endpoint-url",
                ) from None
            raise AwsAccessError(
                f"cannot read Kinesis stream {name!r}: {code}",
                "allow kinesis:DescribeStreamSummary, ListShards, GetShardIterator, GetRecords",
            ) from None
        except bce.BotoCoreError as err:
            raise AwsAccessError(f"cannot reach Kinesis: {err}", "check --endpoint-url") from None

    # -- calls -----------------------------------------------------------------------------------

    def retry(self, call: Callable[[], T], stop: threading.Event | None = None) -> T:
        """`call()`, retried with jittered backoff while AWS throttles (or is unreachable)."""
        backoff = Backoff(self.settings.backoff_base, self.settings.backoff_cap, stop or self._stop)
        while True:
            try:
                return call()
            except bce.ClientError as err:
                if error_code(err) not in THROTTLE_CODES:
                    raise
                self.stats.throttled += 1
                log.info("throttled (%s), backing off", error_code(err))
            except (bce.EndpointConnectionError, bce.ConnectionClosedError) as err:
                log.warning("kinesis consumer: %s; retrying", err)
            backoff.wait()

    # -- the coordinator -------------------------------------------------------------------------

    def _coordinate(self) -> None:
        interval = self.settings.lease_seconds / 3
        last_sync = time.monotonic()
        while not self._stop.is_set():
            try:
                if (
                    self._sync_now.is_set()
                    or time.monotonic() - last_sync >= self.settings.shard_sync_seconds
                ):
                    self._sync_now.clear()
                    self._sync_shards()
                    last_sync = time.monotonic()
                self.tick()
            except Stopped:
                return
            except (bce.ClientError, bce.BotoCoreError) as err:  # the outside world: try again
                log.warning("kinesis coordinator: %s", err)
            self._stop.wait(interval)

    def _sync_shards(self) -> None:
        shards: dict[str, dict[str, Any]] = {}
        kwargs: dict[str, Any] = {"StreamName": self.settings.stream}
        while True:
            reply = self.retry(partial(self.kinesis.list_shards, **kwargs))
            for shard in reply.get("Shards", []):
                shards[shard["ShardId"]] = shard
            token = reply.get("NextToken")
            if not token:
                break
            kwargs = {"NextToken": token}
        known = {lease.shard for lease in self.retry(self.table.scan)}
        for shard_id, shard in shards.items():
            if shard_id not in known:
                parents = tuple(
                    p for p in (shard.get("ParentShardId"), shard.get("AdjacentParentShardId")) if p
                )
                self.retry(partial(self.table.add, shard_id, parents))
        with self._lock:
            self._shards = shards

    def tick(self, now: float | None = None) -> None:
        """One round: renew, observe, adopt, take up to a fair share, ask for a handoff."""
        now = time.monotonic() if now is None else now
        leases = self.retry(self.table.scan)
        by_shard = {lease.shard: lease for lease in leases}
        with self._lock:
            readers = dict(self._readers)
        for reader in readers.values():
            renewed = reader.write(lambda lease: self.table.renew(lease, self.worker))
            if renewed is not None and renewed.handoff:
                reader.handoff_to = renewed.handoff
        for lease in leases:
            seen = self._seen.get(lease.shard)
            if seen is None or seen[0] != lease.counter:
                self._seen[lease.shard] = (lease.counter, now)
        for lease in leases:  # handed over to us by a busier worker
            if lease.owner == self.worker and lease.shard not in readers and not lease.finished:
                self._start_reader(lease, previous="handoff")
        self._balance(leases, by_shard, now)

    def expired(self, lease: Lease, now: float) -> bool:
        seen = self._seen.get(lease.shard)
        return (
            lease.owner is not None
            and lease.owner != self.worker
            and seen is not None
            and now - seen[1] >= self.settings.lease_seconds
        )

    def ready(self, lease: Lease, by_shard: dict[str, Lease]) -> bool:
        """Not finished, and every parent read to SHARD_END (or gone from the stream)."""
        if lease.finished:
            return False
        with self._lock:
            listed = set(self._shards)
        for parent in lease.parents:
            parent_lease = by_shard.get(parent)
            if parent_lease is None:
                if parent in listed:
                    return False  # its lease is about to be created
            elif not parent_lease.finished:
                return False
        return True

    def _balance(self, leases: list[Lease], by_shard: dict[str, Lease], now: float) -> None:
        active = [lease for lease in leases if self.ready(lease, by_shard)]
        with self._lock:
            mine = set(self._readers)
        owners = Counter(
            lease.owner
            for lease in active
            if lease.owner and lease.owner != self.worker and not self.expired(lease, now)
        )
        workers = len(owners) + 1
        target = math.ceil(len(active) / workers) if active else 0
        free = [
            lease
            for lease in active
            if lease.shard not in mine and (lease.owner is None or self.expired(lease, now))
        ]
        random.shuffle(free)  # workers starting together do not all race for the same lease
        for lease in free:
            if len(mine) >= target:
                return
            taken = self.retry(partial(self.table.take, lease, self.worker))
            if taken is not None:
                previous = lease.owner if lease.owner else None
                self._start_reader(taken, previous=previous)
                mine.add(lease.shard)
        if len(mine) >= target or not owners:
            return
        busiest, count = owners.most_common(1)[0]
        if count <= len(mine) + 1:
            return  # as balanced as it gets
        if self._asked is not None:
            shard, when = self._asked
            still = by_shard.get(shard)
            if (
                still
                and still.handoff == self.worker
                and now - when < 2 * self.settings.lease_seconds
            ):
                return  # one request at a time
        victims = [le for le in active if le.owner == busiest and not le.handoff]
        if victims:
            victim = random.choice(victims)
            if self.retry(lambda: self.table.request_handoff(victim, self.worker)):
                self._asked = (victim.shard, now)

    def _start_reader(self, lease: Lease, previous: str | None) -> None:
        reader = ShardReader(self, lease, previous)
        with self._lock:
            self._readers[lease.shard] = reader
        reader.start()

    def reader_done(self, reader: ShardReader) -> None:
        with self._lock:
            if self._readers.get(reader.lease.shard) is reader:
                del self._readers[reader.lease.shard]

    @property
    def held(self) -> int:
        """Shards this worker reads now."""
        with self._lock:
            return len(self._readers)

    def shard(self, shard_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._shards.get(shard_id)

    def request_sync(self) -> None:
        self._sync_now.set()

    # -- storing ---------------------------------------------------------------------------------

    def store(self, parsed: Parsed, size: int, stop: threading.Event) -> None:
        """Durably stored when it returns; a full WAL waits and retries (nothing is skipped)."""
        backoff = Backoff(self.settings.backoff_base, self.settings.backoff_cap, stop)
        while True:
            try:
                self.service.accept(parsed, size)
                return
            except WalFullError as err:
                log.warning("kinesis: %s; retrying", err.problem)
                backoff.wait()

    def already_stored(self, ids: pa.Array) -> set[str]:
        """Which of `ids` the store (Parquet and every process's WAL) holds already."""
        con = self.service.connect()
        try:
            con.register("_candidates", pa.table({"id": ids}))
            rows = con.execute(
                "SELECT DISTINCT l.id FROM logs l JOIN _candidates c ON l.id = c.id"
            ).fetchall()
        finally:
            con.close()
        return {row[0] for row in rows}


class ShardReader(threading.Thread):
    """Reads one leased shard until it ends, its lease is lost or handed over, or a stop."""

    def __init__(self, consumer: KinesisConsumer, lease: Lease, previous: str | None) -> None:
        super().__init__(name=f"ecsguard-kinesis-{lease.shard}", daemon=True)
        self.consumer = consumer
        self.lease = lease
        self.previous = previous
        self.stop = threading.Event()
        self.handoff_to: str | None = None
        self.lost = False
        self._write_lock = threading.Lock()

    def write(self, op: Callable[[Lease], Lease | None]) -> Lease | None:
        """One conditional lease write, serialised with the coordinator's; None: lease lost."""
        with self._write_lock:
            if self.lost:
                return None
            new = self.consumer.retry(lambda: op(self.lease), self.stop)
            if new is None:
                self.lost = True
                self.consumer.stats.lost_leases += 1
                self.consumer.announce(f"  kinesis: lost the lease of {self.lease.shard}")
                return None
            self.lease = new
            return new

    def run(self) -> None:
        try:
            self._read()
        except Stopped:  # stopping: free the shard at once for the other workers
            self._release()
        except Exception:  # a reader's failure must free its shard for another worker
            log.exception("kinesis reader of %s failed", self.lease.shard)
            self._release()
        finally:
            self.consumer.stats.behind_ms.pop(self.lease.shard, None)  # no longer read here
            self.consumer.reader_done(self)

    def _release(self) -> None:
        with self._write_lock:
            if not self.lost:
                try:
                    self.consumer.table.release(self.lease, self.consumer.worker)
                except (bce.ClientError, bce.BotoCoreError) as err:
                    log.warning("cannot release %s: %s", self.lease.shard, err)

    def _iterator(self, position: str) -> str:
        kwargs: dict[str, Any] = {
            "StreamName": self.consumer.settings.stream,
            "ShardId": self.lease.shard,
        }
        if position == TRIM_HORIZON:
            kwargs["ShardIteratorType"] = TRIM_HORIZON
        else:
            kwargs["ShardIteratorType"] = "AFTER_SEQUENCE_NUMBER"
            kwargs["StartingSequenceNumber"] = position
        reply = self.consumer.retry(
            lambda: self.consumer.kinesis.get_shard_iterator(**kwargs), self.stop
        )
        return str(reply["ShardIterator"])

    def _read(self) -> None:
        consumer, settings, worker = self.consumer, self.consumer.settings, self.consumer.worker
        shard = self.lease.shard
        position = self.lease.checkpoint
        pending = self.lease.pending
        # the window the previous owner may have stored without checkpointing
        dedup_to = (
            int(pending)
            if pending and (position == TRIM_HORIZON or int(pending) > int(position))
            else None
        )
        consumer.stats.starts.append((shard, position, self.previous))
        consumer.announce(
            f"  kinesis: {shard}: reading "
            + ("from TRIM_HORIZON" if position == TRIM_HORIZON else f"after checkpoint {position}")
            + (f" (was {self.previous})" if self.previous else "")
        )
        iterator = self._iterator(position)
        last_read: str | None = None if position == TRIM_HORIZON else position
        options = ReceiverOptions()
        while not self.stop.is_set():
            if self.handoff_to:
                if self.write(
                    lambda lease: consumer.table.transfer(lease, worker, self.handoff_to or "")
                ):
                    consumer.announce(f"  kinesis: {shard}: handed over to {self.handoff_to}")
                return
            try:
                reply = consumer.retry(
                    partial(
                        consumer.kinesis.get_records,
                        ShardIterator=iterator,
                        Limit=settings.max_records,
                    ),
                    self.stop,
                )
            except bce.ClientError as err:
                if error_code(err) != "ExpiredIteratorException":
                    raise
                iterator = self._iterator(last_read or position)
                continue
            consumer.stats.behind_ms[shard] = int(reply.get("MillisBehindLatest", 0))
            records = reply.get("Records", [])
            if records:
                last = str(records[-1]["SequenceNumber"])
                parsed = decode(settings.stream, shard, records, options)
                if self.write(partial(_mark, consumer.table, worker, last)) is None:
                    return
                if dedup_to is not None:
                    parsed = self._drop_stored(parsed)
                    if int(last) >= dedup_to:
                        dedup_to = None
                size = sum(len(r["Data"]) for r in records)
                consumer.store(parsed, size, self.stop)
                consumer.stats.records += parsed.batch.num_rows
                consumer.stats.batches += 1
                if self.write(partial(_checkpoint, consumer.table, worker, last)) is None:
                    return
                last_read = last
            following = reply.get("NextShardIterator")
            if following is None or self._at_end(records, last_read, reply):
                if self.write(lambda lease: consumer.table.finish(lease, worker)) is not None:
                    consumer.announce(f"  kinesis: {shard}: finished (SHARD_END)")
                consumer.request_sync()  # its children need leases
                return
            iterator = following
            if not records or reply.get("MillisBehindLatest", 0) == 0:
                self.stop.wait(settings.poll_seconds)
        self._release()

    def _at_end(
        self, records: list[dict[str, Any]], last_read: str | None, reply: dict[str, Any]
    ) -> bool:
        """A closed shard read to its last sequence number. AWS says so with a null iterator;
        this also covers emulators that hand out iterators for ever."""
        if records:
            return False
        shard = self.consumer.shard(self.lease.shard)
        if shard is None:
            return False
        numbers = shard.get("SequenceNumberRange", {})
        ending = numbers.get("EndingSequenceNumber")
        if ending is None:
            return False
        if last_read is not None:
            return int(last_read) >= int(ending)
        # never read a record: an empty closed shard, as far as this reply can tell
        return ending == numbers.get("StartingSequenceNumber") and not reply.get(
            "MillisBehindLatest", 0
        )

    def _drop_stored(self, parsed: Parsed) -> Parsed:
        ids = parsed.batch.column("id")
        found = self.consumer.already_stored(ids)
        if not found:
            return parsed
        keep = pc.invert(pc.is_in(ids, value_set=pa.array(sorted(found), pa.string())))
        self.consumer.stats.duplicates += len(found)
        return Parsed(parsed.table, parsed.batch.filter(keep), parsed.problems)
