"""Shard leases in a DynamoDB table, the way the Kinesis Client Library keeps them.

One item per shard: `shard` (key), `owner` (absent: free), `counter` (bumped by every write of the
owner: a lease whose counter stops moving for the lease time is expired, judged on the observer's
own clock, so workers need no synchronised clocks), `checkpoint` (TRIM_HORIZON, a sequence number
whose records are stored, or SHARD_END), `pending` (the last sequence number of a batch that may be
stored but is not checkpointed yet: the window a new owner de-duplicates), `parents`, `handoff`
(a worker asking for the lease to balance the load) and `heartbeat` (wall clock, for people).

Every write is conditional: taking a lease requires the counter the taker saw, and an owner's write
requires its owner name and its last counter. Two workers can therefore never both own a shard: the
loser's write fails with ConditionalCheckFailedException and it drops the shard.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import botocore.exceptions as bce

TRIM_HORIZON = "TRIM_HORIZON"
SHARD_END = "SHARD_END"
_KEY = "shard"


@dataclass(frozen=True)
class Lease:
    shard: str
    owner: str | None
    counter: int
    checkpoint: str
    parents: tuple[str, ...] = ()
    pending: str | None = None
    handoff: str | None = None
    heartbeat: float = 0.0

    @property
    def finished(self) -> bool:
        return self.checkpoint == SHARD_END

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Lease:
        def text(name: str) -> str | None:
            value = item.get(name)
            return value["S"] if value else None

        return cls(
            shard=item[_KEY]["S"],
            owner=text("owner"),
            counter=int(item.get("counter", {"N": "0"})["N"]),
            checkpoint=text("checkpoint") or TRIM_HORIZON,
            parents=tuple(p["S"] for p in item.get("parents", {"L": []})["L"]),
            pending=text("pending"),
            handoff=text("handoff"),
            heartbeat=float(item.get("heartbeat", {"N": "0"})["N"]),
        )


def conditional_failure(err: bce.ClientError) -> bool:
    return err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class LeaseTable:
    """The lease table of one application (one table per stream and consumer group)."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name

    def ensure(self) -> bool:
        """Create the table when it is missing (on-demand capacity); True if this call made it."""
        try:
            self.client.describe_table(TableName=self.name)
            return False
        except bce.ClientError as err:
            if err.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
        created = True
        try:
            self.client.create_table(
                TableName=self.name,
                KeySchema=[{"AttributeName": _KEY, "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": _KEY, "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        except bce.ClientError as err:  # another worker created it at the same moment
            if err.response.get("Error", {}).get("Code") != "ResourceInUseException":
                raise
            created = False
        self.client.get_waiter("table_exists").wait(
            TableName=self.name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
        return created

    def add(self, shard: str, parents: tuple[str, ...]) -> bool:
        """A free lease for a shard not seen before; False if it already has one."""
        try:
            self.client.put_item(
                TableName=self.name,
                Item={
                    _KEY: {"S": shard},
                    "counter": {"N": "0"},
                    "checkpoint": {"S": TRIM_HORIZON},
                    "parents": {"L": [{"S": p} for p in parents]},
                    "heartbeat": {"N": str(time.time())},
                },
                ConditionExpression="attribute_not_exists(#k)",
                ExpressionAttributeNames={"#k": _KEY},
            )
        except bce.ClientError as err:
            if conditional_failure(err):
                return False
            raise
        return True

    def scan(self) -> list[Lease]:
        leases: list[Lease] = []
        for page in self._pages():
            leases.extend(Lease.from_item(item) for item in page)
        return sorted(leases, key=lambda lease: lease.shard)

    def _pages(self) -> Iterator[list[dict[str, Any]]]:
        kwargs: dict[str, Any] = {"TableName": self.name, "ConsistentRead": True}
        while True:
            reply = self.client.scan(**kwargs)
            yield reply.get("Items", [])
            if "LastEvaluatedKey" not in reply:
                return
            kwargs["ExclusiveStartKey"] = reply["LastEvaluatedKey"]

    # -- conditional writes ----------------------------------------------------------------------

    def take(self, lease: Lease, worker: str) -> Lease | None:
        """Own `lease` if its counter is still the one observed (free, expired or handed over to
        us); None when another worker wrote it first."""
        return self._update(
            lease.shard,
            sets={"owner": worker},
            removes=("handoff",),
            condition="#counter = :seen",
            values={":seen": {"N": str(lease.counter)}},
            counter=lease.counter,
        )

    def renew(self, lease: Lease, worker: str) -> Lease | None:
        """Heartbeat; None when the lease is no longer ours."""
        return self.owned(lease, worker)

    def owned(
        self,
        lease: Lease,
        worker: str,
        sets: dict[str, str] | None = None,
        removes: tuple[str, ...] = (),
    ) -> Lease | None:
        """A write only the current owner at its last counter can make; None when the lease was
        lost (taken over by another worker, whose writes moved the counter)."""
        return self._update(
            lease.shard,
            sets=sets or {},
            removes=removes,
            condition="#owner = :me AND #counter = :seen",
            values={":me": {"S": worker}, ":seen": {"N": str(lease.counter)}},
            counter=lease.counter,
        )

    def mark_pending(self, lease: Lease, worker: str, sequence: str) -> Lease | None:
        return self.owned(lease, worker, {"pending": sequence})

    def checkpoint(self, lease: Lease, worker: str, sequence: str) -> Lease | None:
        return self.owned(lease, worker, {"checkpoint": sequence}, ("pending",))

    def finish(self, lease: Lease, worker: str) -> Lease | None:
        """The shard was read to its end: mark it SHARD_END and free it (children may start)."""
        return self.owned(lease, worker, {"checkpoint": SHARD_END}, ("pending", "owner", "handoff"))

    def release(self, lease: Lease, worker: str) -> Lease | None:
        """Give the lease up (a clean stop): any worker may take it at once."""
        return self.owned(lease, worker, removes=("owner", "handoff"))

    def transfer(self, lease: Lease, worker: str, to: str) -> Lease | None:
        """Hand the lease to the worker that asked for it (after a final checkpoint)."""
        return self.owned(lease, worker, {"owner": to}, ("handoff",))

    def request_handoff(self, lease: Lease, worker: str) -> bool:
        """Ask the owner to hand `lease` over at its next renewal. The counter is not moved, so
        the owner's own writes still succeed; it finishes its batch, checkpoints and transfers."""
        try:
            self.client.update_item(
                TableName=self.name,
                Key={_KEY: {"S": lease.shard}},
                UpdateExpression="SET #handoff = :me",
                ConditionExpression=(
                    "#owner = :owner AND #counter = :seen AND attribute_not_exists(#handoff)"
                ),
                ExpressionAttributeNames={
                    "#handoff": "handoff",
                    "#owner": "owner",
                    "#counter": "counter",
                },
                ExpressionAttributeValues={
                    ":me": {"S": worker},
                    ":owner": {"S": lease.owner or ""},
                    ":seen": {"N": str(lease.counter)},
                },
            )
        except bce.ClientError as err:
            if conditional_failure(err):
                return False
            raise
        return True

    def _update(
        self,
        shard: str,
        *,
        sets: dict[str, str],
        removes: tuple[str, ...],
        condition: str,
        values: dict[str, Any],
        counter: int,
    ) -> Lease | None:
        names = {"#counter": "counter", "#heartbeat": "heartbeat", "#owner": "owner"}
        values = {
            **values,
            ":next": {"N": str(counter + 1)},
            ":now": {"N": f"{time.time():.3f}"},
        }
        assignments = ["#counter = :next", "#heartbeat = :now"]
        for i, (name, value) in enumerate(sets.items()):
            names[f"#{name}"] = name
            values[f":v{i}"] = {"S": value}
            assignments.append(f"#{name} = :v{i}")
        expression = "SET " + ", ".join(assignments)
        if removes:
            for name in removes:
                names[f"#{name}"] = name
            expression += " REMOVE " + ", ".join(f"#{name}" for name in removes)
        try:
            reply = self.client.update_item(
                TableName=self.name,
                Key={_KEY: {"S": shard}},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames={
                    k: v for k, v in names.items() if k in expression or k in condition
                },
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except bce.ClientError as err:
            if conditional_failure(err):
                return None
            raise
        return Lease.from_item(reply["Attributes"])
