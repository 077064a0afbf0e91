"""Which alert goes where, when, and which not at all: pure decisions over the configuration.

- routes: the first route whose `match` holds gets the alert (and the next ones while a matching
  route says `continue: true`); no match → the default route; no default → nowhere;
- grouping: alerts of one rule and key are one group per channel; a group waits `group_wait`
  from its first alert, then becomes one message;
- deduplication: an alert id (with its alarm state) is notified once;
- silences: a silence whose rule glob and key globs match and that has not expired stops the
  notification (the alert itself stays stored by the engine);
- throttling: at most `max_per_minute` messages per channel in any 60 s; the rest wait for the
  next free slot and go out together as one digest.

The dispatcher applies these with its durable store; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

import orjson

from ecsguard.core.models import Alert
from ecsguard.notify.config import DefaultRoute, Match, NotifyConfig, Route, Silence

THROTTLE_WINDOW = 60.0  # seconds: `max_per_minute`


@dataclass(frozen=True)
class Delivery:
    """One channel an alert goes to, and how long its group waits for company."""

    channel: str
    group_wait: float


class Router:
    def __init__(self, config: NotifyConfig) -> None:
        self.config = config

    def deliveries(self, alert: Alert) -> list[Delivery]:
        chosen: list[Route | DefaultRoute] = []
        for route in self.config.routes:
            if matches(route.match, alert):
                chosen.append(route)
                if not route.continue_:
                    break
        if not chosen and self.config.default is not None:
            chosen.append(self.config.default)
        waits: dict[str, float] = {}
        for chosen_route in chosen:
            wait = chosen_route.group_wait
            for channel in chosen_route.channels:
                # a channel named by two routes gets the alert once, with the shorter wait
                waits[channel] = min(waits.get(channel, wait), wait)
        return [Delivery(channel, wait) for channel, wait in waits.items()]


def matches(match: Match, alert: Alert) -> bool:
    if match.severity and alert.severity not in match.severity:
        return False
    if match.min_severity is not None and alert.severity.rank > match.min_severity.rank:
        return False
    if match.rules and not any(fnmatchcase(alert.rule_id, glob) for glob in match.rules):
        return False
    return not match.tags or bool(set(match.tags) & set(alert.tags))


def silenced_by(silences: Iterable[Silence], alert: Alert, now: datetime) -> Silence | None:
    """The first active silence that matches the alert."""
    for silence in silences:
        if silence_matches(silence, alert, now):
            return silence
    return None


def silence_matches(silence: Silence, alert: Alert, now: datetime) -> bool:
    if now >= silence.expires:
        return False
    if not fnmatchcase(alert.rule_id, silence.rule):
        return False
    if len(silence.key) > len(alert.key):
        return False
    return all(
        fnmatchcase(_key_text(value), glob)
        for glob, value in zip(silence.key, alert.key, strict=False)
    )


def group_key(alert: Alert) -> str:
    """Alerts with the same rule and key share a group."""
    return f"{alert.rule_id}\x1f{orjson.dumps(alert.key, default=str).decode()}"


def dedup_key(alert: Alert) -> str:
    """What makes a notification new: the alert id, and for alarms the state it moved to."""
    return f"{alert.id}\x1f{alert.state or ''}"


def throttle_slot(sent: Sequence[float], limit: int, now: float) -> float:
    """When the next message may go out: `now` if fewer than `limit` went in the last minute,
    else when the oldest of the last `limit` leaves the window."""
    recent = sorted(t for t in sent if t > now - THROTTLE_WINDOW)
    if len(recent) < limit:
        return now
    return recent[-limit] + THROTTLE_WINDOW


def _key_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
