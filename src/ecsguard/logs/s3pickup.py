"""`ecsguard ingest --from-s3 s3://bucket/prefix`: objects Firehose (or anything) delivered to S3.

Every object under the prefix (Firehose writes `prefix/YYYY/MM/DD/HH/name`) is read once: gzip
layers are undone (Firehose's own compression over CloudWatch Logs' gzip records), the receiver of
`--format` parses it, the rows are stored through a LogService (fsynced) and only then is the key
recorded as done in `DATA_DIR/s3-pickup.db` (SQLite). A crash in between re-reads the object: its
rows carry the same ids and the service's de-duplication drops them. `follow` lists again every
`interval` seconds until stopped.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.exceptions as bce
import pyarrow as pa

from ecsguard.aws.session import AwsSession
from ecsguard.core.errors import AwsAccessError, UserError
from ecsguard.logs.ingest import GZIP_AWARE, ungzip
from ecsguard.logs.receivers import RECEIVERS
from ecsguard.logs.records import Parsed, Problem, ReceiverOptions, record_ids
from ecsguard.logs.service import LogService

STATE_FILE = "s3-pickup.db"
#: receivers whose ids depend on the place in the payload only: made unique per object here
_POSITIONAL_IDS = frozenset({"lines"})


def parse_uri(uri: str) -> tuple[str, str]:
    """(bucket, prefix) of `s3://bucket/prefix`."""
    if not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
        raise UserError(f"not an S3 URI: {uri!r}", "write s3://BUCKET/PREFIX")
    bucket, _, prefix = uri[5:].partition("/")
    return bucket, prefix


class DoneKeys:
    """The keys already ingested, in SQLite (WAL mode) in the data directory."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS done (bucket TEXT, key TEXT, etag TEXT, records INTEGER,"
            " done_at REAL, PRIMARY KEY (bucket, key))"
        )
        self._db.commit()

    def keys(self, bucket: str, prefix: str) -> set[str]:
        rows = self._db.execute(
            "SELECT key FROM done WHERE bucket = ? AND substr(key, 1, ?) = ?",
            (bucket, len(prefix), prefix),
        )
        return {row[0] for row in rows}

    def add(self, bucket: str, key: str, etag: str, records: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO done VALUES (?, ?, ?, ?, ?)",
            (bucket, key, etag, records, time.time()),
        )
        self._db.commit()

    def close(self) -> None:
        self._db.close()


@dataclass
class PickupSummary:
    table: str = "logs"
    objects: int = 0
    records: int = 0
    skipped: int = 0  # already done in an earlier run
    problems: list[Problem] = field(default_factory=list)


class S3Pickup:
    def __init__(
        self,
        session: AwsSession,
        uri: str,
        fmt: str,
        service: LogService,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.bucket, self.prefix = parse_uri(uri)
        self.fmt = fmt.replace("-", "_")
        self.receiver = RECEIVERS.get(self.fmt)
        self.service = service
        self.meta = {k: v for k, v in (meta or {}).items() if v}
        self.s3 = session.client("s3")
        self.done = DoneKeys(service.data_dir / STATE_FILE)
        self.summary = PickupSummary()

    def close(self) -> None:
        self.done.close()

    def _objects(self) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix}
        while True:
            try:
                reply = self.s3.list_objects_v2(**kwargs)
            except bce.ClientError as err:
                raise self._error(err) from None
            except bce.BotoCoreError as err:
                raise AwsAccessError(f"cannot reach S3: {err}", "check --endpoint-url") from None
            yield from reply.get("Contents", [])
            if not reply.get("IsTruncated"):
                return
            kwargs["ContinuationToken"] = reply["NextContinuationToken"]

    def _error(self, err: bce.ClientError) -> UserError:
        code = err.response.get("Error", {}).get("Code", "")
        if code == "NoSuchBucket":
            return UserError(
                f"S3 bucket {self.bucket!r} does not exist",
                "check the name in s3://BUCKET/PREFIX, --region and --endpoint-url",
            )
        return AwsAccessError(
            f"cannot read s3://{self.bucket}/{self.prefix}: {code}",
            "allow s3:ListBucket on the bucket and s3:GetObject under the prefix",
        )

    def run_once(self) -> PickupSummary:
        """Ingest every object not done yet, oldest key first (Firehose keys sort by time)."""
        done = self.done.keys(self.bucket, self.prefix)
        for obj in sorted(self._objects(), key=lambda o: str(o["Key"])):
            key = str(obj["Key"])
            if key.endswith("/"):
                continue  # a "folder" marker
            if key in done:
                self.summary.skipped += 1
                continue
            self.ingest_object(key, str(obj.get("ETag", "")))
        return self.summary

    def ingest_object(self, key: str, etag: str) -> int:
        where = f"s3://{self.bucket}/{key}"
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except bce.ClientError as err:
            raise self._error(err) from None
        try:
            data = ungzip(body, keep_last=self.fmt in GZIP_AWARE)
        except ValueError as err:  # a damaged object is a problem to report, not a stop
            self.summary.problems.append(Problem("invalid_gzip", where, str(err)))
            self.done.add(self.bucket, key, etag, 0)
            return 0
        options = ReceiverOptions(input_name=where, **self.meta)
        parsed = self.receiver(data, options)
        if self.fmt in _POSITIONAL_IDS and parsed.batch.num_rows:
            parsed = _ids_by_object(parsed, where)
        self.summary.table = parsed.table
        self.summary.problems.extend(parsed.problems)
        self.service.accept(parsed, len(body))  # durable from here on
        self.done.add(self.bucket, key, etag, parsed.batch.num_rows)
        self.summary.objects += 1
        self.summary.records += parsed.batch.num_rows
        return parsed.batch.num_rows

    def follow(
        self,
        interval: float,
        stop: threading.Event,
        report: Callable[[PickupSummary], None] = lambda summary: None,
    ) -> None:
        while True:
            before = self.summary.objects
            self.run_once()
            if self.summary.objects != before:
                report(self.summary)
            if stop.wait(interval):
                return


def _ids_by_object(parsed: Parsed, where: str) -> Parsed:
    """Ids from the object and the row's place in it: the same line in two objects is two
    records, and the same object read twice gives the same ids."""
    n = parsed.batch.num_rows
    ids = record_ids("s3", [where] * n, [None] * n, [""] * n, range(n))
    index = parsed.batch.schema.get_field_index("id")
    batch = parsed.batch.set_column(index, "id", pa.array(ids, pa.string()))
    # per row: an object read again after it grew stores its new rows (`whole` would drop all)
    return parsed._replace(batch=batch, whole=False)
