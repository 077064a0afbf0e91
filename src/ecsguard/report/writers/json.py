"""`--output json`: the findings as a JSON array, the format `--baseline` reads back.

Each element is a Finding (`model_dump(mode="json")`); when the report has a baseline every element
also carries `baseline`: "new" or "unchanged" for a failure, null otherwise. Resolved findings are
not in the array (they are not current findings; the CLI prints their count). The bytes are
deterministic: findings sorted by (check, region, resource, status), UTF-8 with non-ASCII text
(Japanese) unescaped, two-space indentation, a final newline.
"""

from __future__ import annotations

from typing import Any

import orjson

from ecsguard.core.models import Finding
from ecsguard.report.base import Report, writer


def sort_key(finding: Finding) -> tuple[str, str, str, str]:
    """The order every machine-readable writer uses."""
    return (finding.check_id, finding.region, finding.resource_arn, finding.status.value)


def records(report: Report) -> list[dict[str, Any]]:
    """The findings as plain dicts, with `baseline` when the report has one."""
    rows = []
    for finding in sorted(report.findings, key=sort_key):
        row = finding.model_dump(mode="json")
        if report.baseline:
            row["baseline"] = report.baseline.get((finding.check_id, finding.resource_arn))
        rows.append(row)
    return rows


@writer("json")
def write_json(report: Report) -> bytes:
    return orjson.dumps(records(report), option=orjson.OPT_INDENT_2) + b"\n"
