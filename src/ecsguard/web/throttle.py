"""Login throttling: after a few failures a name or an address waits, longer each time.

Kept in memory: a restart forgets the counts, which costs an attacker a restart of our server per
handful of guesses. Both the name and the client address are counted, so guessing one password
for many names and many passwords for one name are both slowed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

FREE_FAILURES = 5
WINDOW_SECONDS = 15 * 60
FIRST_WAIT = 30.0
LONGEST_WAIT = 15 * 60.0


@dataclass
class _Record:
    failures: list[float] = field(default_factory=list)
    blocked_until: float = 0.0
    wait: float = FIRST_WAIT


class LoginThrottle:
    def __init__(self) -> None:
        self._records: dict[str, _Record] = {}
        self._lock = threading.Lock()

    def retry_after(self, *keys: str) -> float:
        """Seconds the caller must still wait (0 when it may try now)."""
        now = time.monotonic()
        with self._lock:
            waits = [r.blocked_until - now for k in keys if (r := self._records.get(k))]
        return max([0.0, *waits])

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._records) > 100_000:  # a flood of made-up names: forget the oldest
                self._records.clear()
            for key in keys:
                record = self._records.setdefault(key, _Record())
                record.failures = [t for t in record.failures if now - t < WINDOW_SECONDS]
                record.failures.append(now)
                if len(record.failures) > FREE_FAILURES:
                    record.blocked_until = now + record.wait
                    record.wait = min(record.wait * 2, LONGEST_WAIT)

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._records.pop(key, None)
