"""The durable side of notifications: `<data_dir>/notify.db` (SQLite, WAL mode).

Tables:
- `seen`: de-duplication keys of alerts already admitted (an alert re-sent after a restart is
  recognised);
- `pending`: admitted alerts waiting for their group window (or, throttled, for the digest), one
  row per channel; admitting an alert writes its `seen` row and all its `pending` rows in one
  transaction, so a crash loses both or neither;
- `outbox`: rendered messages, written before any send, with `attempts`, `next_attempt`,
  `last_error` and `status` (pending, sent, expired); emitting a message inserts it and deletes
  its pending rows in one transaction;
- `silences`: silences added at run time (the console's "silence" button).

Every thread uses its own connection; commits are fsynced (synchronous=FULL), since an
acknowledged alert must survive a power cut as the alerts themselves do.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ecsguard.core.errors import UserError
from ecsguard.notify.config import Silence
from ecsguard.notify.messages import Message

DB_NAME = "notify.db"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    key TEXT PRIMARY KEY, alert_id TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS seen_at ON seen(at);
CREATE TABLE IF NOT EXISTS pending (
    id INTEGER PRIMARY KEY, channel TEXT NOT NULL, group_key TEXT NOT NULL,
    digest INTEGER NOT NULL DEFAULT 0, alert TEXT NOT NULL, due REAL NOT NULL,
    created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS pending_due ON pending(channel, due);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY, channel TEXT NOT NULL, kind TEXT NOT NULL, message BLOB NOT NULL,
    alert_ids TEXT NOT NULL, created REAL NOT NULL, status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt REAL NOT NULL, last_error TEXT,
    sent_at REAL);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(channel, status, next_attempt);
CREATE INDEX IF NOT EXISTS outbox_created ON outbox(channel, created);
CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY, body TEXT NOT NULL, expires REAL NOT NULL);
"""


@dataclass(frozen=True)
class PendingGroup:
    """Alerts of one group (or the digest) for one channel, ready to become a message."""

    channel: str
    group_key: str
    digest: bool
    due: float
    ids: list[int]
    alerts: list[str]  # Alert JSON


@dataclass(frozen=True)
class OutboxRow:
    id: int
    channel: str
    kind: str
    message: Message
    alert_ids: list[str]
    created: float
    status: str
    attempts: int
    next_attempt: float
    last_error: str | None
    sent_at: float | None


class NotifyStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(
                f"cannot create the data directory {path.parent}: {err.strerror or err}",
                "pass a writable --data-dir",
            ) from None
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._db().executescript(_SCHEMA)  # its own transaction (executescript commits)

    # -- connections ------------------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            try:
                db = sqlite3.connect(
                    self.path, timeout=10.0, isolation_level=None, check_same_thread=False
                )
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
            except sqlite3.Error as err:
                raise UserError(
                    f"cannot open {self.path}: {err}", "check the data directory"
                ) from None
            self._local.db = db
            with self._lock:
                self._all.append(db)
        return db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            for db in self._all:
                db.close()
            self._all.clear()
        self._local = threading.local()

    # -- admission and grouping ------------------------------------------------------------
    def admit(
        self,
        dedup_key: str,
        alert_id: str,
        alert_json: str,
        targets: Sequence[tuple[str, str, float]],
        now: float,
    ) -> bool:
        """Record the alert as seen and queue it for each (channel, group key, due); False when
        it was seen before (nothing is queued)."""
        with self._tx() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO seen (key, alert_id, at) VALUES (?, ?, ?)",
                (dedup_key, alert_id, now),
            )
            if cursor.rowcount == 0:
                return False
            db.executemany(
                "INSERT INTO pending (channel, group_key, alert, due, created)"
                " VALUES (?, ?, ?, ?, ?)",
                [(channel, key, alert_json, due, now) for channel, key, due in targets],
            )
        return True

    def due_groups(self, channel: str, now: float) -> list[PendingGroup]:
        db = self._db()
        heads = db.execute(
            "SELECT group_key, digest, MIN(due) AS first FROM pending WHERE channel = ?"
            " GROUP BY group_key, digest HAVING first <= ? ORDER BY first",
            (channel, now),
        ).fetchall()
        groups = []
        for key, digest, due in heads:
            rows = db.execute(
                "SELECT id, alert FROM pending WHERE channel = ? AND group_key = ? AND digest = ?"
                " ORDER BY id",
                (channel, key, digest),
            ).fetchall()
            groups.append(
                PendingGroup(
                    channel, key, bool(digest), due, [r[0] for r in rows], [r[1] for r in rows]
                )
            )
        return groups

    def defer_to_digest(self, ids: Sequence[int], due: float) -> None:
        """Throttled: these alerts join the channel's digest, due at the next free slot."""
        with self._tx() as db:
            db.executemany(
                "UPDATE pending SET digest = 1, group_key = '', due = ? WHERE id = ?",
                [(due, i) for i in ids],
            )

    def emit(self, channel: str, message: Message, pending_ids: Sequence[int], now: float) -> int:
        """Queue a rendered message for sending and drop the pending rows it covers."""
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO outbox (channel, kind, message, alert_ids, created, next_attempt)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    channel,
                    str(message.json.get("kind", "alert")),
                    message.to_json(),
                    orjson.dumps(list(message.alert_ids)).decode(),
                    now,
                    now,
                ),
            )
            db.executemany("DELETE FROM pending WHERE id = ?", [(i,) for i in pending_ids])
            return int(cursor.lastrowid or 0)

    def recent_messages(self, channel: str, since: float) -> list[float]:
        """Creation times of the channel's messages after `since` (for throttling)."""
        rows = self._db().execute(
            "SELECT created FROM outbox WHERE channel = ? AND created > ?", (channel, since)
        )
        return [r[0] for r in rows]

    # -- sending ----------------------------------------------------------------------------
    def next_message(self, channel: str, now: float) -> OutboxRow | None:
        row = (
            self._db()
            .execute(
                f"SELECT {_COLUMNS} FROM outbox WHERE channel = ? AND status = 'pending'"
                " AND next_attempt <= ? ORDER BY next_attempt, id LIMIT 1",
                (channel, now),
            )
            .fetchone()
        )
        return _row(row) if row else None

    def mark_sent(self, message_id: int, now: float) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE outbox SET status = 'sent', sent_at = ?, attempts = attempts + 1"
                " WHERE id = ?",
                (now, message_id),
            )

    def mark_failed(self, message_id: int, error: str, next_attempt: float) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt = ?"
                " WHERE id = ?",
                (error, next_attempt, message_id),
            )

    def release(self, channel: str, now: float) -> None:
        """The channel is back: messages waiting for a retry may go now."""
        with self._tx() as db:
            db.execute(
                "UPDATE outbox SET next_attempt = ? WHERE channel = ? AND status = 'pending'"
                " AND next_attempt > ?",
                (now, channel, now),
            )

    def expire(self, channel: str, before: float) -> int:
        """Give up on messages created before `before` (their last error stays recorded)."""
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE outbox SET status = 'expired' WHERE channel = ? AND status = 'pending'"
                " AND created < ?",
                (channel, before),
            )
            return cursor.rowcount

    def next_due(self, channel: str) -> float | None:
        """The earliest time something of this channel needs attention."""
        db = self._db()
        times = [
            db.execute(
                "SELECT MIN(next_attempt) FROM outbox WHERE channel = ? AND status = 'pending'",
                (channel,),
            ).fetchone()[0],
            db.execute("SELECT MIN(due) FROM pending WHERE channel = ?", (channel,)).fetchone()[0],
        ]
        known = [t for t in times if t is not None]
        return min(known) if known else None

    # -- reading (console, tests) -----------------------------------------------------------
    def messages(
        self, channel: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[OutboxRow]:
        where, args = [], []
        if channel is not None:
            where.append("channel = ?")
            args.append(channel)
        if status is not None:
            where.append("status = ?")
            args.append(status)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._db().execute(
            f"SELECT {_COLUMNS} FROM outbox {clause} ORDER BY id DESC LIMIT ?", (*args, limit)
        )
        return [_row(r) for r in rows]

    def counts(self) -> dict[str, dict[str, int]]:
        """Per channel: messages by status, and `waiting` alerts not yet rendered."""
        db = self._db()
        counts: dict[str, dict[str, int]] = {}
        for channel, status, n in db.execute(
            "SELECT channel, status, COUNT(*) FROM outbox GROUP BY channel, status"
        ):
            counts.setdefault(channel, {})[status] = n
        for channel, n in db.execute("SELECT channel, COUNT(*) FROM pending GROUP BY channel"):
            counts.setdefault(channel, {})["waiting"] = n
        return counts

    # -- silences ---------------------------------------------------------------------------
    def add_silence(self, silence: Silence) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO silences (id, body, expires) VALUES (?, ?, ?)",
                (silence.id, silence.model_dump_json(), silence.expires.timestamp()),
            )

    def remove_silence(self, silence_id: str) -> bool:
        with self._tx() as db:
            return db.execute("DELETE FROM silences WHERE id = ?", (silence_id,)).rowcount > 0

    def silences(self) -> list[Silence]:
        rows = self._db().execute("SELECT body FROM silences ORDER BY expires")
        return [Silence.model_validate_json(r[0]) for r in rows]

    # -- housekeeping -----------------------------------------------------------------------
    def prune(self, seen_before: float, done_before: float) -> None:
        """Forget old de-duplication keys, finished messages and expired silences."""
        with self._tx() as db:
            db.execute("DELETE FROM seen WHERE at < ?", (seen_before,))
            db.execute(
                "DELETE FROM outbox WHERE status IN ('sent', 'expired') AND created < ?",
                (done_before,),
            )
            db.execute("DELETE FROM silences WHERE expires < ?", (done_before,))


_COLUMNS = (
    "id, channel, kind, message, alert_ids, created, status, attempts, next_attempt,"
    " last_error, sent_at"
)


def _row(row: Any) -> OutboxRow:
    (mid, channel, kind, message, alert_ids, created, status, attempts, nxt, error, sent) = row
    return OutboxRow(
        id=mid,
        channel=channel,
        kind=kind,
        message=Message.from_json(message),
        alert_ids=orjson.loads(alert_ids),
        created=created,
        status=status,
        attempts=attempts,
        next_attempt=nxt,
        last_error=error,
        sent_at=sent,
    )
