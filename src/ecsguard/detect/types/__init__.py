"""Rule types: one module each, registering a RuleType in `ecsguard.detect.rules.TYPES`."""

from __future__ import annotations

# one line per rule type module; each registers itself on import
from ecsguard.detect.types import log_filter  # noqa: F401
from ecsguard.detect.types import metric_alarm  # noqa: F401
from ecsguard.detect.types import sigma  # noqa: F401
