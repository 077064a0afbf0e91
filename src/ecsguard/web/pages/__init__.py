"""Console pages: one module (and template) each, registering a Page in `ecsguard.web.page.PAGES`.

Registration is one import line per module, kept in alphabetical order.
"""

from __future__ import annotations

import ecsguard.web.pages.alarms
import ecsguard.web.pages.audit
import ecsguard.web.pages.findings
import ecsguard.web.pages.health
import ecsguard.web.pages.iam
import ecsguard.web.pages.logs
import ecsguard.web.pages.overview
import ecsguard.web.pages.settings
import ecsguard.web.pages.tail  # noqa: F401
