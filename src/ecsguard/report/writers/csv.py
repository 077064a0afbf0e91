"""`--output csv`: one row per finding, the JSON writer's fields, for spreadsheets.

RFC 4180 through the csv module (CRLF line ends, quotes doubled). `controls` is joined with ";".
Messages carry strings from AWS (names, tags, commands), so a cell a spreadsheet would read as a
formula (= + - @ first, possibly after spaces, or a leading tab or line break) gets a leading
apostrophe. Japanese reports start with a UTF-8 byte order mark so Excel opens them as UTF-8.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from ecsguard.core.models import Finding
from ecsguard.report.base import Report, records, writer

COLUMNS = [*Finding.model_fields]
FORMULA_STARTS = ("=", "+", "-", "@")
CONTROL_STARTS = ("\t", "\r", "\n")


def cell(value: Any) -> str:
    """A value as a CSV cell that no spreadsheet evaluates."""
    if value is None:
        return ""
    if isinstance(value, list):
        value = ";".join(str(item) for item in value)
    text = str(value)
    risky = text.startswith(CONTROL_STARTS) or text.lstrip().startswith(FORMULA_STARTS)
    return "'" + text if risky else text


@writer("csv")
def write_csv(report: Report) -> bytes:
    columns = [*COLUMNS, "baseline"] if report.baseline else COLUMNS
    buffer = io.StringIO(newline="")
    out = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    out.writerow(columns)
    for row in records(report):
        out.writerow([cell(row.get(column)) for column in columns])
    bom = "\ufeff" if report.lang == "ja" else ""
    return (bom + buffer.getvalue()).encode("utf-8")
