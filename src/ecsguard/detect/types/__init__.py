"""Rule types: one module each, registering a RuleType in `ecsguard.detect.rules.TYPES`.

Registration is one import line per module, kept in alphabetical order.
"""

from __future__ import annotations

import ecsguard.detect.types.anomaly_band
import ecsguard.detect.types.event_pattern
import ecsguard.detect.types.log_filter
import ecsguard.detect.types.log_pattern
import ecsguard.detect.types.metric_alarm
import ecsguard.detect.types.sigma  # noqa: F401
