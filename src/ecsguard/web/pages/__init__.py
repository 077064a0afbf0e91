"""Console pages: one module (and template) each, registering a Page in `ecsguard.web.page.PAGES`.

Registration is one import line per module, kept in alphabetical order.
"""

from __future__ import annotations

import ecsguard.web.pages.alarms  # noqa: F401
import ecsguard.web.pages.audit  # noqa: F401
import ecsguard.web.pages.findings  # noqa: F401
import ecsguard.web.pages.health  # noqa: F401
import ecsguard.web.pages.iam  # noqa: F401
import ecsguard.web.pages.logs  # noqa: F401
import ecsguard.web.pages.overview  # noqa: F401
import ecsguard.web.pages.settings  # noqa: F401
import ecsguard.web.pages.tail  # noqa: F401
