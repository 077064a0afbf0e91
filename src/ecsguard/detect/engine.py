"""The detection engine: batches in, alerts out, state kept across restarts.

`process(table, batch)` hands a stored batch to every rule reading that table; `tick(now)` lets
windowed rules (alarms, anomaly bands, counts) decide what time revealed. Matches become `Alert`s:
one per rule, group key and window, so a burst of a thousand matching lines is one alert with a
count. Alarm transitions (a Match with a state) are always alerts of their own.

Alerts and each rule's evaluator state live in SQLite (WAL mode) in `<data_dir>/detect.db`; open
alerts are reloaded on start, so a restart continues a burst instead of alerting on it again.
`on_alert(alert, new)` is called for every new or grown alert (the notification dispatcher),
once per batch or tick with the alert as it stands after it: the matches of a batch are folded
into their alerts first (the same windows, counts and evidence as one match at a time), then
each touched alert is made once. New alerts are saved with their batch, in one statement; an
alert that only grew is written at the next tick (once a second in the server) or before the
store is read, whichever comes first, so a crash can lose at most a second of a burst's count.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from ecsguard.core.models import Alert
from ecsguard.detect.rules import TYPES, BatchGroup, Evaluator, Match, Rule
from ecsguard.logs.query.timerange import parse_duration

log = logging.getLogger(__name__)

AlertSink = Callable[[Alert, bool], None]
MetricSink = Callable[[pa.RecordBatch], None]
MAX_EVIDENCE = 5
#: alerts whose stored evidence the store remembers (an int each), then it forgets them all
EVIDENCE_WRITTEN_LIMIT = 100_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
  id TEXT PRIMARY KEY, rule_id TEXT NOT NULL, severity TEXT NOT NULL,
  first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, count INTEGER NOT NULL,
  state TEXT, body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_by_time ON alerts(last_seen);
CREATE TABLE IF NOT EXISTS rule_state (rule_id TEXT PRIMARY KEY, body TEXT NOT NULL);
"""


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


class AlertStore:
    """Alerts and rule state in SQLite; safe to share between threads."""

    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()  # a transaction holds it across the saves inside it
        self._in_transaction = False
        #: grown alerts not written yet (id -> latest): see `stage`
        self._staged: dict[str, Alert] = {}
        #: id -> the length of the evidence its stored body holds, for alerts written here
        self._evidence_written: dict[str, int] = {}
        self._saved_states: dict[str, str] = {}  # rule id -> the state body last written

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One commit for many saves (a batch's alerts): a commit per alert cost 140 µs."""
        with self._lock:
            self._db.execute("BEGIN")
            self._in_transaction = True
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                # what they say was written may not be
                self._saved_states.clear()
                self._evidence_written.clear()
                raise
            finally:
                self._in_transaction = False
            self._db.execute("COMMIT")

    def save(self, alert: Alert) -> None:
        self.save_many([alert])

    def stage(self, alerts: Sequence[Alert]) -> None:
        """Alerts that only grew (a count, a last_seen): written by the next `flush`, which the
        engine's tick does once a second, and before any read of this store. Rewriting every
        open alert after every batch was most of the engine's SQLite time."""
        with self._lock:
            for alert in alerts:
                self._staged[alert.id] = alert

    def flush(self) -> None:
        """Write the staged alerts."""
        with self._lock:
            if not self._staged:
                return
            staged, self._staged = list(self._staged.values()), {}
            if self._in_transaction:
                self._write(staged)
            else:
                with self.transaction():
                    self._write(staged)

    def save_many(self, alerts: Sequence[Alert]) -> None:
        """Insert or replace, in one statement (a later alert with the same id wins)."""
        if not alerts:
            return
        with self._lock:
            for alert in alerts:
                self._staged.pop(alert.id, None)  # this version is newer
            self._write(alerts, grown=False)

    def _write(self, alerts: Sequence[Alert], grown: bool = True) -> None:
        """Alerts that `grown` (staged ones) and whose evidence is what their stored bodies
        hold (only a count and a last_seen changed) get those two columns updated, which
        `alerts` reads over the body's: an open alert's body (about 4 KB with its evidence)
        was rewritten every second, a third of the detection tick."""
        written = self._evidence_written
        if len(written) > EVIDENCE_WRITTEN_LIMIT:
            written.clear()  # those are written whole again: correct, only slower
        whole, counted = [], []
        for alert in alerts:
            # evidence only ever grows, by appending, until MAX_EVIDENCE: the same length is
            # the same evidence
            if grown and written.get(alert.id) == len(alert.evidence):
                counted.append((_iso(alert.last_seen), alert.count, alert.id))
                continue
            written[alert.id] = len(alert.evidence)
            whole.append(
                (
                    alert.id,
                    alert.rule_id,
                    alert.severity.value,
                    _iso(alert.first_seen),
                    _iso(alert.last_seen),
                    alert.count,
                    alert.state,
                    alert.model_dump_json(),
                )
            )
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?)", whole
            )
            self._db.executemany("UPDATE alerts SET last_seen = ?, count = ? WHERE id = ?", counted)

    def alerts(
        self, since: datetime | None = None, rule: str | None = None, limit: int = 1000
    ) -> list[Alert]:
        """Newest first."""
        sql, args = "SELECT body, last_seen, count FROM alerts WHERE 1=1", list[Any]()
        if since is not None:
            sql, args = sql + " AND last_seen >= ?", [*args, _iso(since)]
        if rule is not None:
            sql, args = sql + " AND rule_id = ?", [*args, rule]
        sql += " ORDER BY last_seen DESC LIMIT ?"
        with self._lock:
            self.flush()
            rows = self._db.execute(sql, [*args, limit]).fetchall()
        return [_stored_alert(*row) for row in rows]

    def save_state(self, rule_id: str, state: dict[str, Any]) -> None:
        body = orjson.dumps(state, default=str).decode()
        with self._lock:
            if self._saved_states.get(rule_id) == body:
                return  # unchanged (most rules keep no state): no write at every tick
            self._db.execute("INSERT OR REPLACE INTO rule_state VALUES (?, ?)", (rule_id, body))
            self._saved_states[rule_id] = body

    def state(self, rule_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT body FROM rule_state WHERE rule_id = ?", (rule_id,)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def close(self) -> None:
        with self._lock:
            self.flush()
            self._db.close()


def _stored_alert(body: str, last_seen: str, count: int) -> Alert:
    """An alert as stored: its body, with the columns a growth updates (`_write`)."""
    alert = Alert.model_validate_json(body)
    if alert.count == count and _iso(alert.last_seen) == last_seen:
        return alert
    return alert.model_copy(update={"last_seen": datetime.fromisoformat(last_seen), "count": count})


def stored_alerts(
    data_dir: Path,
    running: AlertStore | None = None,
    *,
    since: datetime | None = None,
    rule: str | None = None,
    limit: int = 1000,
) -> list[Alert]:
    """Alerts newest first: from the running engine's store when there is one (the server with
    --rules), else from DATA_DIR/detect.db as an earlier run left it (none: no alerts)."""
    if running is not None:
        return running.alerts(since=since, rule=rule, limit=limit)
    path = data_dir / "detect.db"
    if not path.exists():
        return []
    store = AlertStore(path)
    try:
        return store.alerts(since=since, rule=rule, limit=limit)
    finally:
        store.close()


def _lookup(record: dict[str, Any], path: str) -> Any:
    """A dotted path into a record, reading JSON text columns (detail, fields, ...) as objects."""
    value: Any = record
    for part in path.split("."):
        if isinstance(value, str) and value[:1] in ("{", "["):
            try:
                value = json.loads(value)
            except ValueError:
                return None
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


class Engine:
    """Every enabled rule, compiled once; not thread-safe (one detection worker drives it)."""

    def __init__(
        self,
        rules: Sequence[Rule],
        store: AlertStore,
        on_alert: AlertSink | None = None,
        on_metrics: MetricSink | None = None,
        *,
        live: bool = True,
    ) -> None:
        """`live=False` (a replay of the past): start from empty state and do not save it, so a
        replay never disturbs the running server's rules; its alerts are stored all the same."""
        self.store = store
        self.live = live
        self.on_alert = on_alert
        self.on_metrics = on_metrics
        self.rules = {rule.id: rule for rule in rules if rule.enabled}
        self.windows = {rule.id: parse_duration(rule.window) for rule in self.rules.values()}
        self.evaluators: dict[str, Evaluator] = {}
        self.by_table: dict[str, list[str]] = {}
        #: table -> batch group -> key -> the rules holding it (see rules.BatchGroup)
        self.groups: dict[str, dict[BatchGroup, dict[str, list[str]]]] = {}
        self._grouped: dict[tuple[str, BatchGroup], frozenset[str]] = {}  # every rule in one
        self.errors: dict[str, str] = {}  # rule id -> last evaluation error
        for rule in self.rules.values():
            rule_type = TYPES.get(rule.type)
            evaluator = rule_type.compile(rule)
            saved = store.state(rule.id) if live else None
            if saved:
                evaluator.restore(saved)
            self.evaluators[rule.id] = evaluator
            for table in rule_type.tables:
                self.by_table.setdefault(table, []).append(rule.id)
                group = getattr(evaluator, "batch_group", None)
                if group is not None:
                    keys = self.groups.setdefault(table, {}).setdefault(group, {})
                    keys.setdefault(evaluator.batch_key, []).append(rule.id)  # type: ignore[attr-defined]
        self._grouped = {
            (table, group): frozenset(rule_id for ids in keys.values() for rule_id in ids)
            for table, groups in self.groups.items()
            for group, keys in groups.items()
        }
        self.open: dict[tuple[str, str], Alert] = {}  # (rule id, key json) -> the alert in window
        recent = store.alerts(since=datetime.now(UTC) - timedelta(days=1)) if live else []
        for alert in recent:
            slot = (alert.rule_id, orjson.dumps(alert.key, default=str).decode())
            if alert.state is None and slot not in self.open:
                self.open[slot] = alert

    def process(self, table: str, batch: pa.RecordBatch) -> list[Alert]:
        """Evaluate the rules that read `table` on one stored batch; the alerts it created or
        grew, each once, as they stand after it."""
        drafts = _Drafts(self.open)
        quiet = self._quiet(table, batch)
        with self.store.transaction():
            for rule_id in self.by_table.get(table, ()):
                if rule_id in quiet:
                    continue
                for match in self._run(rule_id, lambda e: e.on_batch(table, batch)):
                    drafts.add(self.rules[rule_id], match, self.windows[rule_id])
            return self._settle(drafts)

    def _quiet(self, table: str, batch: pa.RecordBatch) -> set[str]:
        """The rules whose batch group found nothing of theirs in `batch`: hundreds of event
        patterns are matched together once, and calling each rule to hear that cost more than
        a tenth of the detection process."""
        quiet: set[str] = set()
        for group, keys in self.groups.get(table, {}).items():
            try:
                matched = group.matched(table, batch)
            except Exception:  # each rule runs, fails on its own and is reported as before
                continue
            # a few keys of hundreds match: the rest are found by a set difference, not a
            # Python loop over every key
            loud = [rule_id for key in matched for rule_id in keys.get(key, ())]
            quiet.update(self._grouped[(table, group)].difference(loud))
        return quiet

    def tick(self, now: datetime | None = None) -> list[Alert]:
        """Let time pass for every rule; persist their state."""
        now = now or datetime.now(UTC)
        drafts = _Drafts(self.open)
        derived: list[pa.RecordBatch] = []
        with self.store.transaction():
            for rule_id, evaluator in self.evaluators.items():
                for match in self._run(rule_id, lambda e: e.on_tick(now)):
                    drafts.add(self.rules[rule_id], match, self.windows[rule_id])
                if self.live:
                    self.store.save_state(rule_id, evaluator.state())
                drain = getattr(evaluator, "metrics", None)
                if drain is not None and self.on_metrics is not None:
                    batch = drain()
                    if batch is not None:
                        derived.append(batch)
            if derived and self.on_metrics is not None:
                # one batch a tick, not one per rule: each is stored, and evaluated by every
                # metric rule, whose Arrow calls cost the same for one row as for a thousand
                self.on_metrics(pa.concat_batches(derived))
            alerts = self._settle(drafts)
            self.store.flush()  # grown alerts, at most a tick late
            return alerts

    def _run(self, rule_id: str, step: Callable[[Evaluator], Iterable[Match]]) -> list[Match]:
        try:
            return list(step(self.evaluators[rule_id]))
        except Exception as exc:  # one broken rule must not stop the others
            if self.errors.get(rule_id) != str(exc):
                log.exception("rule %s failed", rule_id)
            self.errors[rule_id] = str(exc)
            return []

    def _settle(self, drafts: _Drafts) -> list[Alert]:
        """The drafts as alerts: new ones stored in one statement, grown ones staged (see
        AlertStore.stage); kept open, handed to on_alert."""
        alerts = drafts.finish()
        self.store.save_many([alert for alert in alerts if alert.id in drafts.created])
        self.store.stage([alert for alert in alerts if alert.id not in drafts.created])
        for slot, alert in drafts.opened().items():
            self.open[slot] = alert
        if self.on_alert is not None:
            for alert in alerts:
                try:
                    self.on_alert(alert, alert.id in drafts.created)
                except Exception:  # notification trouble never stops detection
                    log.exception("alert sink failed for %s", alert.id)
        return alerts


class _Draft:
    """An alert being built from the matches of one batch (or tick): the Alert is made once,
    at the end, instead of once per match (a copy and a save per matching row cost most of
    the engine's time when a batch holds hundreds of matches)."""

    __slots__ = ("base", "count", "evidence", "id", "key", "last_seen", "match", "rule", "slot")

    def __init__(
        self, rule: Rule, slot: tuple[str, str], key: list[Any], match: Match, base: Alert | None
    ) -> None:
        self.rule = rule
        self.slot = slot
        self.key = key
        self.base = base  # the open alert this grows; None: created by `match`
        self.match = match  # the match that created it (its time, summary, state, key)
        if base is None:
            digest = hashlib.blake2b(
                f"{slot}|{_iso(match.time)}|{match.state}".encode(), digest_size=10
            )
            self.id = digest.hexdigest()
            self.last_seen = match.time
            self.count = match.count
            self.evidence = match.evidence[:MAX_EVIDENCE]
        else:
            self.id = base.id
            self.last_seen = base.last_seen
            self.count = base.count
            self.evidence = list(base.evidence)

    def grow(self, match: Match) -> None:
        self.last_seen = max(self.last_seen, match.time)
        self.count += match.count
        room = MAX_EVIDENCE - len(self.evidence)
        if room > 0:
            self.evidence = self.evidence + match.evidence[:room]

    def alert(self) -> Alert:
        if self.base is not None:
            return self.base.model_copy(
                update={
                    "last_seen": self.last_seen,
                    "count": self.count,
                    "evidence": self.evidence,
                }
            )
        rule, match = self.rule, self.match
        return Alert(
            id=self.id,
            rule_id=rule.id,
            title=rule.title,
            severity=rule.severity,
            summary=match.summary,
            first_seen=match.time,
            last_seen=self.last_seen,
            count=self.count,
            key=self.key,
            evidence=self.evidence,
            tags=list(rule.tags),
            state=match.state,
        )


class _Drafts:
    """The alerts one batch touches, folded match by match exactly as one alert per match
    would have been (same windows, ids, counts and evidence), then made and saved once."""

    def __init__(self, open_alerts: dict[tuple[str, str], Alert]) -> None:
        self.open = open_alerts
        self.slots: dict[tuple[str, str], _Draft] = {}  # slot -> its draft in this batch
        self.by_id: dict[str, _Draft] = {}  # the last draft per alert id (a later one wins)
        self.created: set[str] = set()  # ids of alerts new in this batch
        self.alerts: dict[str, Alert] = {}  # id -> the alert made of its last draft

    def add(self, rule: Rule, match: Match, window: timedelta) -> None:
        key = list(match.key) or [
            _lookup(match.evidence[0], path) if match.evidence else None for path in rule.group_by
        ]
        slot = (rule.id, orjson.dumps(key, default=str).decode())
        draft = self.slots.get(slot)
        if match.state is None:
            if draft is not None:
                if match.time - draft.last_seen <= window:
                    draft.grow(match)
                    return
            else:
                current = self.open.get(slot)
                if current is not None and match.time - current.last_seen <= window:
                    draft = _Draft(rule, slot, key, match, current)
                    draft.grow(match)
                    self._keep(draft)
                    return
        draft = _Draft(rule, slot, key, match, None)
        self.created.add(draft.id)
        self._keep(draft)

    def _keep(self, draft: _Draft) -> None:
        if draft.match.state is None or draft.base is not None:
            self.slots[draft.slot] = draft
        self.by_id.pop(draft.id, None)  # re-inserted: saved in the order last touched
        self.by_id[draft.id] = draft

    def finish(self) -> list[Alert]:
        self.alerts = {draft.id: draft.alert() for draft in self.by_id.values()}
        return list(self.alerts.values())

    def opened(self) -> dict[tuple[str, str], Alert]:
        """Slot -> the alert now open in it (alarm transitions are never open)."""
        return {
            slot: self.alerts[draft.id]
            for slot, draft in self.slots.items()
            if self.by_id.get(draft.id) is draft
        }
