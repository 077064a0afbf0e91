"""Deliver alerts: route, silence, de-duplicate, group, throttle, then send from a durable outbox.

    dispatcher = Dispatcher(load_config("notify.yaml"), data_dir)
    dispatcher.start()                 # one sender thread per channel
    dispatcher.submit(alert)           # fast: one SQLite transaction, never waits for a send
    dispatcher.stop()

`submit` decides where the alert goes and stores it (see router.py for the rules). Each channel
has its own thread, so a slow or failing channel delays only itself. A thread turns due groups
into messages (written to the outbox before any send), then sends them oldest first. A failed
send keeps its message with `attempts`, `next_attempt` and `last_error`; the message is retried
with exponential backoff and jitter, and the channel as a whole backs off too, so a channel that
is down is probed, not hammered. When a send succeeds again, everything it holds goes out, also
after a restart (the outbox is on disk). A message is sent at least once: one interrupted in the
middle of a send is sent again after a restart.

Only one process may run the sender threads for a data directory (a lock file says so); any
process may `submit`.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from ecsguard.core.errors import UserError
from ecsguard.core.models import Alert
from ecsguard.notify import secrets
from ecsguard.notify.channels import CHANNELS, Channel, ChannelContext, ChannelError
from ecsguard.notify.config import NotifyConfig, Silence
from ecsguard.notify.messages import render, render_digest, render_group, sample_alert
from ecsguard.notify.outbox import DB_NAME, NotifyStore, OutboxRow, PendingGroup
from ecsguard.notify.router import (
    THROTTLE_WINDOW,
    Router,
    dedup_key,
    group_key,
    silenced_by,
    throttle_slot,
)

log = logging.getLogger(__name__)

LOCK_NAME = "notify.lock"
MAX_IDLE = 1.0  # seconds a sender sleeps when nothing is due (a submit wakes it sooner)
DEFAULT_MAX_AGE = 7 * 86400.0  # a message still undelivered after this is given up
DEDUP_RETENTION = 30 * 86400.0  # alert ids remembered this long


@dataclass(frozen=True)
class Backoff:
    """Delay before retry `attempt` (1, 2, …): base × factor^(attempt-1), capped, minus up to
    `jitter` of itself at random, so that many senders do not retry in step."""

    base: float = 2.0
    factor: float = 2.0
    cap: float = 300.0
    jitter: float = 0.5

    def delay(self, attempt: int, rng: random.Random) -> float:
        raw = min(self.cap, self.base * self.factor ** max(0, attempt - 1))
        return raw * (1.0 - self.jitter * rng.random())


@dataclass(frozen=True)
class Submitted:
    """What `submit` did with an alert."""

    alert_id: str
    channels: tuple[str, ...] = ()
    duplicate: bool = False
    silenced_by: str | None = None
    unrouted: bool = False


@dataclass(frozen=True)
class TestSendResult:
    channel: str
    ok: bool
    error: str | None
    seconds: float
    description: str


class Dispatcher:
    def __init__(
        self,
        config: NotifyConfig,
        data_dir: Path | str,
        *,
        clock: Callable[[], float] = time.time,
        env: Mapping[str, str] | None = None,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
        max_age: float = DEFAULT_MAX_AGE,
    ) -> None:
        self.config = config
        self.data_dir = Path(data_dir)
        self.clock = clock
        self.env = os.environ if env is None else env
        self.backoff = backoff or Backoff()
        self.rng = rng or random.Random()
        self.max_age = max_age
        self.router = Router(config)
        self.store = NotifyStore(self.data_dir / DB_NAME)
        now = clock()
        self.store.prune(seen_before=now - DEDUP_RETENTION, done_before=now - max_age)
        self._silences = self.store.silences()
        self._channels: dict[str, Channel] = {}
        self._build_lock = threading.Lock()
        self._failures = dict.fromkeys(config.channels, 0)  # consecutive, per channel
        self._gate = dict.fromkeys(config.channels, 0.0)  # no attempt before this time
        self._wake = {name: threading.Event() for name in config.channels}
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock_file: IO[str] | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> Dispatcher:
        if self._threads:
            return self
        self._take_lock()
        self._stopping.clear()
        for name in self.config.channels:
            thread = threading.Thread(
                target=self._work, args=(name,), name=f"notify-{name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the senders; a send in progress finishes in the background (its message stays
        queued and is sent again after a restart)."""
        self._stopping.set()
        for event in self._wake.values():
            event.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def close(self) -> None:
        self.stop()
        self.store.close()

    def __enter__(self) -> Dispatcher:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    def _take_lock(self) -> None:
        path = self.data_dir / LOCK_NAME
        handle = path.open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise UserError(
                f"another ecsguard process is sending notifications from {self.data_dir}",
                "run one `ecsguard serve` per data directory",
            ) from None
        self._lock_file = handle

    # -- the caller's side --------------------------------------------------------------------
    def submit(self, alert: Alert) -> Submitted:
        """Route and store an alert for notification; never waits for a channel."""
        now = self.clock()
        silence = silenced_by(self.silences(), alert, datetime.fromtimestamp(now, UTC))
        if silence is not None:
            log.info("notify: alert %s silenced by %s (%s)", alert.id, silence.id, silence.reason)
            return Submitted(alert.id, silenced_by=silence.id)
        deliveries = self.router.deliveries(alert)
        if not deliveries:
            log.debug("notify: no route for alert %s (rule %s)", alert.id, alert.rule_id)
            return Submitted(alert.id, unrouted=True)
        group = group_key(alert)
        fresh = self.store.admit(
            dedup_key(alert),
            alert.id,
            alert.model_dump_json(),
            [(d.channel, group, now + d.group_wait) for d in deliveries],
            now,
        )
        if not fresh:
            return Submitted(alert.id, duplicate=True)
        for delivery in deliveries:
            self._wake[delivery.channel].set()
        return Submitted(alert.id, channels=tuple(d.channel for d in deliveries))

    def submit_many(self, alerts: Iterable[Alert]) -> list[Submitted]:
        return [self.submit(alert) for alert in alerts]

    def test_send(self, channel: str) -> TestSendResult:
        """Send a test message now, outside the outbox (the console's "test send" button)."""
        self._spec(channel)
        lang = self.config.channel_lang(channel)
        message = render(sample_alert(channel, lang), lang, self.config.console_url)
        description = self._describe(channel)
        started = time.monotonic()
        try:
            self._channel(channel).send(message)
        except ChannelError as err:
            error: str | None = secrets.scrub(str(err))
        else:
            error = None
        seconds = time.monotonic() - started
        return TestSendResult(channel, error is None, error, seconds, description)

    # -- silences -----------------------------------------------------------------------------
    def silences(self, include_expired: bool = False) -> list[Silence]:
        """Configured and added silences, active ones unless asked otherwise."""
        now = datetime.fromtimestamp(self.clock(), UTC)
        every = [*self.config.silences, *self._silences]
        return every if include_expired else [s for s in every if s.expires > now]

    def add_silence(
        self, *, rule: str, reason: str, by: str, expires: datetime, key: Sequence[str] = ()
    ) -> Silence:
        silence = Silence(rule=rule, key=list(key), reason=reason, by=by, expires=expires)
        self.store.add_silence(silence)
        self._silences = self.store.silences()
        return silence

    def remove_silence(self, silence_id: str) -> bool:
        removed = self.store.remove_silence(silence_id)
        self._silences = self.store.silences()
        return removed

    # -- reading ------------------------------------------------------------------------------
    def messages(
        self, channel: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[OutboxRow]:
        return self.store.messages(channel, status, limit)

    def stats(self) -> dict[str, dict[str, Any]]:
        counts = self.store.counts()
        return {
            name: {
                "type": spec.type,
                "description": self._describe(name),
                "failing": self._failures.get(name, 0),
                **counts.get(name, {}),
            }
            for name, spec in self.config.channels.items()
        }

    # -- the senders' side --------------------------------------------------------------------
    def pump(self) -> int:
        """Do everything that is due now, in the calling thread; the number of send attempts.

        For tests with an injected clock and for one-shot commands; not while `start`ed.
        """
        attempts = 0
        for name in self.config.channels:
            while True:
                now = self.clock()
                self._plan(name, now)
                if not self._deliver_one(name, now):
                    break
                attempts += 1
        return attempts

    def _work(self, name: str) -> None:
        wake = self._wake[name]
        while not self._stopping.is_set():
            wake.clear()
            try:
                now = self.clock()
                self._plan(name, now)
                if self._deliver_one(name, now):
                    continue
                wait = self._idle_wait(name, self.clock())
            except Exception:  # a broken database must not kill the sender: log, retry later
                if self._stopping.is_set():
                    return  # the store closed under a send that outlived stop(): resent later
                log.exception("notify: the sender for channel %s failed", name)
                wait = MAX_IDLE
            wake.wait(wait)

    def _idle_wait(self, name: str, now: float) -> float:
        due = self.store.next_due(name)
        if due is None:
            return MAX_IDLE
        due = max(due, self._gate[name])
        return min(MAX_IDLE, max(0.0, due - now))

    def _plan(self, name: str, now: float) -> None:
        """Turn due groups into outbox messages, respecting the channel's throttle."""
        spec = self.config.channels[name]
        expired = self.store.expire(name, now - self.max_age)
        if expired:
            log.warning(
                "notify: gave up %d message(s) for %s after %.0f s", expired, name, self.max_age
            )
        for group in self.store.due_groups(name, now):
            sent = self.store.recent_messages(name, now - THROTTLE_WINDOW)
            slot = throttle_slot(sent, spec.max_per_minute, now)
            if slot > now:
                self.store.defer_to_digest(group.ids, slot)
                continue
            self.store.emit(name, self._render(name, group), group.ids, now)

    def _render(self, name: str, group: PendingGroup) -> Any:
        lang = self.config.channel_lang(name)
        url = self.config.console_url
        alerts = [Alert.model_validate_json(text) for text in group.alerts]
        if group.digest and len(alerts) > 1:
            return render_digest(alerts, lang, url)
        return render_group(alerts, lang, url)

    def _deliver_one(self, name: str, now: float) -> bool:
        """Try the channel's oldest due message; False when there was none to try."""
        if self._gate[name] > now:
            return False
        row = self.store.next_message(name, now)
        if row is None:
            return False
        error = self._send(name, row)
        if error is None:
            self.store.mark_sent(row.id, self.clock())
            if self._failures[name]:
                log.info("notify: channel %s works again", name)
                self.store.release(name, now)
            self._failures[name] = 0
            self._gate[name] = 0.0
            return True
        attempts = row.attempts + 1
        retry_in = self.backoff.delay(attempts, self.rng)
        self.store.mark_failed(row.id, error, now + retry_in)
        self._failures[name] += 1
        self._gate[name] = now + self.backoff.delay(self._failures[name], self.rng)
        log.warning(
            "notify: sending message %d to %s (%s) failed, attempt %d, next in %.1f s: %s",
            row.id,
            name,
            self._describe(name),
            attempts,
            retry_in,
            error,
        )
        return True

    def _send(self, name: str, row: OutboxRow) -> str | None:
        """None when delivered, else the error (without secrets)."""
        try:
            self._channel(name).send(row.message)
        except ChannelError as err:
            return secrets.scrub(str(err)) or type(err).__name__
        except Exception as err:  # a bug in a channel must not stop the others: record it
            log.exception("notify: channel %s raised an unexpected error", name)
            return secrets.scrub(f"internal error: {type(err).__name__}: {err}")
        log.info("notify: sent message %d (%s) to %s", row.id, row.kind, name)
        return None

    # -- channels -----------------------------------------------------------------------------
    def _spec(self, name: str) -> Any:
        try:
            return self.config.channels[name]
        except KeyError:
            defined = ", ".join(sorted(self.config.channels)) or "none"
            raise UserError(f"unknown channel {name!r}", f"defined channels: {defined}") from None

    def _channel(self, name: str) -> Channel:
        with self._build_lock:
            channel = self._channels.get(name)
            if channel is None:
                spec = self._spec(name)
                context = ChannelContext(name, spec.settings, self.env, spec.timeout)
                channel = CHANNELS.get(spec.type).build(context)
                self._channels[name] = channel
            return channel

    def _describe(self, name: str) -> str:
        with contextlib.suppress(ChannelError, UserError):
            return self._channel(name).describe()
        return name
