"""`--output json`: the findings as a JSON array, the format `--baseline` reads back.

Each element is a Finding (`model_dump(mode="json")`); when the report has a baseline every element
also carries `baseline`: "new" or "unchanged" for a failure, null otherwise. Resolved findings are
not in the array (they are not current findings; the CLI prints their count). The bytes are
deterministic: findings sorted by (check, region, resource, status), UTF-8 with non-ASCII text
(Japanese) unescaped, two-space indentation, a final newline.
"""

from __future__ import annotations

import orjson

from ecsguard.report.base import Report, records, writer


@writer("json")
def write_json(report: Report) -> bytes:
    return orjson.dumps(records(report), option=orjson.OPT_INDENT_2) + b"\n"
