"""Findings muted from the console, in `console.db` (table `finding_mutes`), and their bridge to
the CLI's mutelist.

A console mute names one check and one resource exactly; it records who muted it and when. The
console applies the stored mutes through `posture.mutelist.Mutelist`, the same code `ecsguard
audit --mutelist` runs, and exports them as a mutelist YAML file that command reads: the
console and the CLI then agree on what is muted. Resource ARNs are glob-escaped in the entries,
so an ARN holding `*`, `?` or `[` mutes only itself.
"""

from __future__ import annotations

import datetime as dt
import glob
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from ecsguard.posture.mutelist import MuteEntry, Mutelist

_SCHEMA = """
CREATE TABLE IF NOT EXISTS finding_mutes (
    check_id TEXT NOT NULL, resource_arn TEXT NOT NULL, reason TEXT NOT NULL,
    expires TEXT, muted_by TEXT NOT NULL, muted_at REAL NOT NULL,
    PRIMARY KEY (check_id, resource_arn));
"""

MAX_REASON = 1000


@dataclass(frozen=True)
class Mute:
    check_id: str
    resource_arn: str
    reason: str
    expires: dt.date | None
    muted_by: str
    muted_at: float

    def entry(self) -> MuteEntry:
        return MuteEntry(
            check=glob.escape(self.check_id),
            resource=glob.escape(self.resource_arn),
            reason=self.reason,
            expires=self.expires,
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "check_id": self.check_id,
            "resource_arn": self.resource_arn,
            "reason": self.reason,
            "expires": self.expires.isoformat() if self.expires else None,
            "muted_by": self.muted_by,
            "muted_at": dt.datetime.fromtimestamp(self.muted_at, dt.UTC).isoformat(
                timespec="seconds"
            ),
        }


class MuteStore:
    """Short-lived connections: each call opens console.db, so threads never share one."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "console.db"

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, timeout=5)) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            with db:  # one transaction: committed on success, rolled back on error
                yield db

    def all(self) -> list[Mute]:
        with self._db() as db:
            rows = db.execute(
                "SELECT check_id, resource_arn, reason, expires, muted_by, muted_at"
                " FROM finding_mutes ORDER BY check_id, resource_arn"
            ).fetchall()
        return [
            Mute(c, r, reason, dt.date.fromisoformat(e) if e else None, by, at)
            for c, r, reason, e, by, at in rows
        ]

    def mute(
        self, check_id: str, resource_arn: str, reason: str, expires: dt.date | None, by: str
    ) -> Mute:
        """Add or replace the mute of (check, resource)."""
        mute = Mute(check_id, resource_arn, reason, expires, by, time.time())
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO finding_mutes VALUES (?, ?, ?, ?, ?, ?)",
                (
                    check_id,
                    resource_arn,
                    reason,
                    expires.isoformat() if expires else None,
                    by,
                    mute.muted_at,
                ),
            )
        return mute

    def unmute(self, check_id: str, resource_arn: str) -> bool:
        with self._db() as db:
            cursor = db.execute(
                "DELETE FROM finding_mutes WHERE check_id = ? AND resource_arn = ?",
                (check_id, resource_arn),
            )
        return cursor.rowcount > 0


def mutelist(mutes: list[Mute]) -> Mutelist:
    return Mutelist(mutelist=[m.entry() for m in mutes])


def mutelist_yaml(mutes: list[Mute]) -> str:
    """The mutes as a file for `ecsguard audit --mutelist`; who muted when is a comment."""
    lines = ["# exported from the ecsguard console; use with: ecsguard audit --mutelist FILE"]
    if not mutes:
        return "\n".join([*lines, "mutelist: []"]) + "\n"
    lines.append("mutelist:")
    for mute in mutes:
        entry = mute.entry().model_dump(mode="json", exclude_defaults=True)
        block = yaml.safe_dump([entry], allow_unicode=True, sort_keys=False, width=1000)
        stamp = mute.to_dict()["muted_at"]
        # a user name is printable text but may hold anything: keep the comment on one line
        who = mute.muted_by.replace("\n", " ").replace("\r", " ")
        lines.append(f"  # muted by {who} at {stamp}")
        lines.extend("  " + line for line in block.rstrip("\n").splitlines())
    return "\n".join(lines) + "\n"
