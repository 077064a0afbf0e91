"""One module per output format; importing this package registers every writer."""

from ecsguard.report.writers import (  # noqa: F401  one registration line per format
    csv,
    html,
    json,
    ocsf,
    sarif,
    table,
)
