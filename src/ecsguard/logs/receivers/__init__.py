"""Receivers: pure functions from a wire payload to one Arrow batch of a fixed table schema.

Each is `parse(data: bytes, options: ReceiverOptions) -> Parsed(table, batch, problems, whole)`,
registered under the word a user writes (`RECEIVERS.get("firelens")`). Network servers wrap these
later.
"""

from __future__ import annotations

from collections.abc import Callable

from ecsguard.core.registry import Registry
from ecsguard.logs.records import Parsed, ReceiverOptions

Receiver = Callable[[bytes, ReceiverOptions], Parsed]
RECEIVERS: Registry[Receiver] = Registry("receiver")

# one line per receiver module; each registers itself (imported after RECEIVERS exists)
from ecsguard.logs.receivers import lines  # noqa: E402, F401, I001
from ecsguard.logs.receivers import firelens  # noqa: E402, F401
from ecsguard.logs.receivers import cloudwatch  # noqa: E402, F401
from ecsguard.logs.receivers import cloudtrail  # noqa: E402, F401
from ecsguard.logs.receivers import ecs_events  # noqa: E402, F401
from ecsguard.logs.receivers import forward  # noqa: E402, F401
from ecsguard.logs.receivers import emf  # noqa: E402, F401
