"""`--output table`: a summary for a terminal, rendered by rich to plain text.

Failed findings counted by pillar and severity, then the failures (most severe first), then the
checks that could not be assessed or errored. Every cell is a rich `Text`, never a markup string:
names, tags and messages come from AWS and must print as they are. Headers and enum names follow
the report language. The width is the terminal's (or $COLUMNS), else 120. The output carries no
colour codes, so the same bytes read well in a terminal, a file or a CI log.
"""

from __future__ import annotations

import io
import shutil
from collections import Counter

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ecsguard.core.models import Finding, Pillar, Severity, Status
from ecsguard.report import i18n
from ecsguard.report.base import Report, fail_counts, short_name, writer

DEFAULT_WIDTH = 120
#: C0 and C1 control characters (but tab and newline) print as \xNN: an AWS string must not be
#: able to drive the terminal (escape sequences) or hide text (carriage returns)
_CONTROLS = {
    code: f"\\x{code:02x}" for code in [*range(0x20), *range(0x7F, 0xA0)] if chr(code) not in "\t\n"
}


def plain(value: str) -> Text:
    """Untrusted text as a rich Text: no markup, no control characters."""
    return Text(value.translate(_CONTROLS))


def severity_order(finding: Finding) -> tuple[int, str, str, str]:
    return (finding.severity.rank, finding.check_id, finding.region, finding.resource_arn)


def _width() -> int:
    return shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns or DEFAULT_WIDTH


def _counts_table(report: Report) -> Table:
    lang = report.lang
    counts = fail_counts(report.findings)
    table = Table(title=Text(i18n.text(lang, "fail_by_pillar")), box=box.SIMPLE_HEAD)
    table.add_column(Text(i18n.text(lang, "pillar")))
    for severity in Severity:
        table.add_column(Text(i18n.label(lang, "severities", severity.value)), justify="right")
    table.add_column(Text(i18n.text(lang, "total")), justify="right")
    for pillar in Pillar:
        row = [counts[(pillar, severity)] for severity in Severity]
        table.add_row(
            Text(i18n.label(lang, "pillars", pillar.value)),
            *(Text(str(n) if n else "-") for n in row),
            Text(str(sum(row))),
        )
    totals = [sum(counts[(p, s)] for p in Pillar) for s in Severity]
    table.add_row(
        Text(i18n.text(lang, "total")), *(Text(str(n)) for n in totals), Text(str(sum(totals)))
    )
    return table


def _failures_table(report: Report, failures: list[Finding]) -> Table:
    lang = report.lang
    table = Table(title=Text(i18n.text(lang, "failed_findings")), box=box.SIMPLE_HEAD)
    table.add_column(Text(i18n.text(lang, "severity")), no_wrap=True)
    table.add_column(Text(i18n.text(lang, "check")), overflow="fold")
    table.add_column(Text(i18n.text(lang, "resource")), overflow="fold")
    table.add_column(Text(i18n.text(lang, "message")), overflow="fold", ratio=1)
    if report.baseline:
        table.add_column(Text(i18n.text(lang, "baseline")), no_wrap=True)
    for finding in failures:
        cells = [
            Text(i18n.label(lang, "severities", finding.severity.value)),
            plain(finding.check_id),
            plain(short_name(finding.resource_arn)),
            plain(finding.message),
        ]
        if report.baseline:
            mark = report.baseline.get((finding.check_id, finding.resource_arn), "")
            cells.append(Text(i18n.label(lang, "marks", mark) if mark else ""))
        table.add_row(*cells)
    return table


def _status_line(report: Report) -> Text:
    lang = report.lang
    statuses = Counter(f.status for f in report.findings)
    parts = [
        f"{i18n.label(lang, 'statuses', s.value)} {statuses[s]}" for s in Status if statuses[s]
    ]
    line = Text(f"{i18n.text(lang, 'status_counts')}: " + (", ".join(parts) or "0"))
    if report.baseline:
        new = sum(1 for mark in report.baseline.values() if mark == "new")
        line.append(
            "\n"
            + i18n.text(lang, "baseline_counts").format(
                new=new, unchanged=len(report.baseline) - new, resolved=len(report.resolved)
            )
        )
    return line


@writer("table")
def write_table(report: Report) -> bytes:
    lang = report.lang
    console = Console(
        file=io.StringIO(),
        width=_width(),
        color_system=None,
        force_terminal=False,
        markup=False,
        highlight=False,
        emoji=False,
    )
    header = plain(
        f"{i18n.text(lang, 'title')}\n"
        f"{i18n.text(lang, 'account')} {report.account} · "
        f"{i18n.text(lang, 'regions')} {', '.join(report.regions) or '-'} · "
        f"{i18n.text(lang, 'collected_at')} {report.collected_at.isoformat(timespec='seconds')}"
    )
    console.print(header)
    console.print(_counts_table(report))
    failures = sorted((f for f in report.findings if f.status == Status.FAIL), key=severity_order)
    if failures:
        console.print(_failures_table(report, failures))
    else:
        console.print(Text(i18n.text(lang, "no_failures")))
    blind = [f for f in report.findings if f.status in (Status.NOT_ASSESSED, Status.ERROR)]
    if blind:
        console.print(Text(f"\n{i18n.text(lang, 'unassessed')}:"))
        for finding in sorted(blind, key=lambda f: (f.check_id, f.region, f.resource_arn)):
            console.print(
                plain(
                    f"  {i18n.label(lang, 'statuses', finding.status.value)}  "
                    f"{finding.check_id}  {finding.region}  {finding.message}"
                )
            )
    console.print()
    console.print(_status_line(report))
    output = console.file
    assert isinstance(output, io.StringIO)
    return output.getvalue().encode("utf-8")
