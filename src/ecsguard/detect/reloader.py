"""Reading the rule files again into a running server: the one path behind SIGHUP, the console's
button and `POST /api/rules/reload` (`ecsguard rules reload`).

Every file is validated first; with any problem the running rules stay and the problems are
returned with their file:line, so a typo in one file never unloads the others.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ecsguard.detect.loader import load_rules

if TYPE_CHECKING:
    from ecsguard.detect.worker import DetectionWorker


@dataclass(frozen=True)
class Reloaded:
    """What a reload did: `enabled` rules run now; `problems` (file:line: message) non-empty
    means nothing changed."""

    enabled: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class RuleReloader:
    def __init__(self, paths: Sequence[str], detection: DetectionWorker) -> None:
        self.paths = tuple(paths)
        self.detection = detection
        # one at a time: two reloads racing could queue their rule sets in either order
        self._lock = threading.Lock()

    def reload(self) -> Reloaded:
        with self._lock:
            loaded = load_rules(self.paths)
            if loaded.errors:
                return Reloaded(len(self.detection.rules), loaded.errors)
            self.detection.reload(loaded.rules)
            return Reloaded(len(self.detection.rules))
