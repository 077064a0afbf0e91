"""Console users and their sessions, in `console.db` (SQLite, WAL mode) in the data directory.

Passwords are argon2id hashes (argon2-cffi's defaults, the RFC 9106 second recommendation).
Session ids, CSRF tokens and one-time login tokens are random; the database keeps only the SHA-256
of session ids and one-time tokens, so a copy of the file does not log anyone in.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ecsguard.core.errors import UserError

#: weakest first: each role may do everything the ones before it may
ROLES = ("viewer", "operator", "admin")
SESSION_SECONDS = 12 * 3600
ONE_TIME_SECONDS = 15 * 60
MIN_PASSWORD = 10

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, hash TEXT NOT NULL, role TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY, user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    csrf TEXT NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS one_time_logins (
    token_hash TEXT PRIMARY KEY, user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    expires REAL NOT NULL);
"""


@dataclass(frozen=True)
class User:
    name: str
    role: str

    def may(self, role: str) -> bool:
        """Whether this user holds `role` or a stronger one."""
        return ROLES.index(self.role) >= ROLES.index(role)


@dataclass(frozen=True)
class Session:
    user: User
    csrf: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}", f"choose one of: {', '.join(ROLES)}")
    return role


class UserStore:
    """Users, sessions and one-time logins. Safe to share between threads and processes."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / "console.db"
        self._hasher = PasswordHasher()
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)

    @cached_property
    def _decoy(self) -> str:
        """Verified against when the user does not exist, so that answer takes as long as a real
        check and response times do not tell which names exist. Made on the first login attempt,
        whatever its name (about 0.1 s that server start-up and the CLI need not pay)."""
        return self._hasher.hash(secrets.token_urlsafe(16))

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    # -- users -----------------------------------------------------------------------------------

    def add(self, name: str, password: str, role: str) -> User:
        check_role(role)
        if not name or not name.isprintable() or len(name) > 64:
            raise UserError(f"invalid user name {name!r}", "use 1-64 printable characters")
        if len(password) < MIN_PASSWORD:
            raise UserError(f"the password is shorter than {MIN_PASSWORD} characters")
        hashed = self._hasher.hash(password)
        with self._tx() as db:
            if db.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise UserError(
                    f"user {name!r} exists", "use `ecsguard users passwd` or `users set-role`"
                )
            db.execute("INSERT INTO users VALUES (?, ?, ?, ?)", (name, hashed, role, time.time()))
        return User(name, role)

    def users(self) -> list[User]:
        with self._lock:
            rows = self._db.execute("SELECT name, role FROM users ORDER BY name").fetchall()
        return [User(name, role) for name, role in rows]

    def get(self, name: str) -> User | None:
        with self._lock:
            row = self._db.execute("SELECT role FROM users WHERE name = ?", (name,)).fetchone()
        return User(name, row[0]) if row else None

    def _require(self, db: sqlite3.Connection, name: str) -> None:
        if not db.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
            raise UserError(f"no user {name!r}", "list them with `ecsguard users list`")

    @staticmethod
    def _keep_an_admin(db: sqlite3.Connection, name: str, role: str | None) -> None:
        """Refuse, inside the change's transaction (so two admins demoting each other at once
        cannot both pass), a change that would leave no admin; `role` None: removed."""
        admins = {row[0] for row in db.execute("SELECT name FROM users WHERE role = 'admin'")}
        if role == "admin":
            admins.add(name)
        else:
            admins.discard(name)
        if not admins:
            raise UserError(
                f"{name} is the last admin",
                "add another admin first, or nobody could manage users",
            )

    def remove(self, name: str, *, keep_an_admin: bool = False) -> None:
        """Delete the user; their sessions end with them. `keep_an_admin`: refuse to remove the
        last admin (the console does; the CLI, the way back in, does not)."""
        with self._tx() as db:
            self._require(db, name)
            if keep_an_admin:
                self._keep_an_admin(db, name, None)
            db.execute("DELETE FROM users WHERE name = ?", (name,))

    def set_role(self, name: str, role: str, *, keep_an_admin: bool = False) -> None:
        check_role(role)
        with self._tx() as db:
            self._require(db, name)
            if keep_an_admin:
                self._keep_an_admin(db, name, role)
            db.execute("UPDATE users SET role = ? WHERE name = ?", (role, name))

    def set_password(self, name: str, password: str) -> None:
        """A new password ends the user's sessions."""
        if len(password) < MIN_PASSWORD:
            raise UserError(f"the password is shorter than {MIN_PASSWORD} characters")
        hashed = self._hasher.hash(password)
        with self._tx() as db:
            self._require(db, name)
            db.execute("UPDATE users SET hash = ? WHERE name = ?", (hashed, name))
            db.execute("DELETE FROM sessions WHERE user = ?", (name,))

    def authenticate(self, name: str, password: str) -> User | None:
        decoy = self._decoy
        with self._lock:
            row = self._db.execute(
                "SELECT hash, role FROM users WHERE name = ?", (name,)
            ).fetchone()
        try:
            self._hasher.verify(row[0] if row else decoy, password)
        except (VerificationError, InvalidHashError):
            return None
        return User(name, row[1]) if row else None

    # -- sessions --------------------------------------------------------------------------------

    def open_session(self, user: User) -> tuple[str, Session]:
        """A new session: (the cookie value, the session)."""
        session_id = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = time.time()
        with self._tx() as db:
            db.execute("DELETE FROM sessions WHERE expires < ?", (now,))
            db.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?)",
                (_digest(session_id), user.name, csrf, now + SESSION_SECONDS),
            )
        return session_id, Session(user, csrf)

    def session(self, session_id: str) -> Session | None:
        with self._lock:
            row = self._db.execute(
                "SELECT s.user, u.role, s.csrf FROM sessions s JOIN users u ON u.name = s.user "
                "WHERE s.id_hash = ? AND s.expires > ?",
                (_digest(session_id), time.time()),
            ).fetchone()
        return Session(User(row[0], row[1]), row[2]) if row else None

    def close_session(self, session_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM sessions WHERE id_hash = ?", (_digest(session_id),))

    # -- one-time logins (the demo's printed link, `ecsguard users login-link`) ------------------

    def one_time_login(self, name: str, seconds: float = ONE_TIME_SECONDS) -> str:
        token = secrets.token_urlsafe(32)
        with self._tx() as db:
            self._require(db, name)
            db.execute(
                "INSERT INTO one_time_logins VALUES (?, ?, ?)",
                (_digest(token), name, time.time() + seconds),
            )
        return token

    def redeem(self, token: str) -> User | None:
        """The user a one-time token logs in, once; None when unknown, used or expired."""
        with self._tx() as db:
            row = db.execute(
                "SELECT t.user, u.role, t.expires FROM one_time_logins t "
                "JOIN users u ON u.name = t.user WHERE t.token_hash = ?",
                (_digest(token),),
            ).fetchone()
            db.execute("DELETE FROM one_time_logins WHERE token_hash = ?", (_digest(token),))
        if row is None or row[2] < time.time():
            return None
        return User(row[0], row[1])


def same_secret(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())
