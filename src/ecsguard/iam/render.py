"""`ecsguard iam report --output table|json|csv|dot`: the account analysis for people and tools.

The input is the dict `ecsguard.iam.account.analyze_account` returns (`{"summary": ...,
"principals": [...]}`); these functions only lay it out. Every name in it comes from AWS and is
untrusted: the table prints each cell as a rich `Text` (no markup, control characters shown as
\\xNN), the CSV neutralises cells a spreadsheet would read as a formula (the audit CSV writer's
`cell`), and DOT strings are quoted by `ecsguard.iam.graph`.

- `table`: the headline figure, then one row per principal, in order of concern (over-privileged
  first, see `report.i18n.IAM_TIERS`); headers in the report language, tier names as identifiers.
- `csv`: one row per principal in the analysis' order; lists joined with "; ".
- `json`: the analysis as it is (two-space indent, UTF-8 with non-ASCII text unescaped).
- `dot`: the service-to-identity map as Graphviz DOT.

`html_section` prepares the analysis for the HTML report (`Report.iam`): it adds the map as data,
which the HTML writer draws, and the snapshot file its suggested commands name.
"""

from __future__ import annotations

import csv as csvlib
import io
import shutil
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import orjson
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ecsguard.aws.snapshot import Snapshot
from ecsguard.iam.graph import to_dot
from ecsguard.iam.usage import Use, describe_uses, identity_map
from ecsguard.report import i18n

Analysis = Mapping[str, Any]

CSV_COLUMNS = (
    "arn",
    "name",
    "type",
    "tier",
    "role",
    "admin_equivalent",
    "tier_reasons",
    "escalation_paths",
    "stray_codes",
    "stray_reasons",
    "used_by",
    "last_used",
    "access_levels",
    "findings",
)
#: how the CSV joins a list inside one cell
LIST_SEPARATOR = "; "


# ---------------------------------------------------------------------------------------------
# words shared by the formats, the HTML report's IAM section included


def figures(analysis: Analysis) -> dict[str, int]:
    """The summary's headline figures; one the summary lacks is counted from the principals."""
    principals = analysis.get("principals", [])
    admins = [p for p in principals if p.get("admin_equivalent")]
    counted = {
        "principals": len(principals),
        "admin_equivalent": len(admins),
        "admin_equivalent_outside_iam_admin": sum(
            1 for p in admins if p.get("tier") != "iam-admin"
        ),
        "escalation_paths": sum(len(p.get("escalation_paths", [])) for p in principals),
        "stray": sum(1 for p in principals if p.get("stray_reasons")),
    }
    summary = analysis.get("summary", {})
    return {key: int(summary.get(key, value)) for key, value in counted.items()}


def by_tier(analysis: Analysis) -> dict[str, int]:
    """Principals per tier: every tier of `IAM_TIERS` (0 when none), then any other the
    analysis names."""
    summary = analysis.get("summary", {})
    counts = summary.get("by_tier")
    if counts is None:
        counts = Counter(str(p.get("tier", "")) for p in analysis.get("principals", []))
    found = {tier: int(counts.get(tier, 0)) for tier in i18n.IAM_TIERS}
    found.update((tier, int(n)) for tier, n in sorted(counts.items()) if tier not in found)
    return found


def headline(analysis: Analysis, lang: str = "en") -> str:
    """The headline: `N principals; M admin-equivalent, K of them outside the
    IAM-administrator tier`."""
    numbers = figures(analysis)
    return i18n.text(lang, "iam_headline").format(
        principals=numbers["principals"],
        admin=numbers["admin_equivalent"],
        outside=numbers["admin_equivalent_outside_iam_admin"],
    )


def by_concern(principals: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Principals in the order of `IAM_TIERS` (unknown tiers last), then by type and name."""
    rank = {tier: n for n, tier in enumerate(i18n.IAM_TIERS)}
    return sorted(
        principals,
        key=lambda p: (
            rank.get(p.get("tier", ""), len(rank)),
            str(p.get("type", "")),
            str(p.get("name", "")),
        ),
    )


def tier_and_role(principal: Mapping[str, Any]) -> str:
    """`service-user (ci)`, or the tier alone."""
    tier, role = str(principal.get("tier", "")), principal.get("role")
    return f"{tier} ({role})" if role else tier


def path_text(path: Mapping[str, Any]) -> str:
    """One escalation path on one line: `method: actions via roles -> gains (notes)`."""
    text = f"{path.get('method', '?')}: {words(path.get('actions', []))}"
    if via := words(path.get("via", [])):
        text += f" via {via}"
    if gains := words(path.get("gains", "")):
        text += f" -> {gains}"
    notes = ["conditional"] if path.get("conditional") else []
    narrowed = path.get("narrowed")
    if narrowed is True:
        notes.append("narrowed")
    elif detail := words(narrowed):
        notes.append(f"narrowed: {detail}")
    return text + (f" ({', '.join(notes)})" if notes else "")


def reason_text(reason: Mapping[str, Any] | str, lang: str = "en") -> str:
    """A stray reason in `lang` (its English text when it has no translation)."""
    if isinstance(reason, str):
        return reason
    return str(reason.get(lang) or reason.get("en") or reason.get("code", ""))


def uses(principal: Mapping[str, Any]) -> list[Use]:
    return [Use.from_dict(item) for item in principal.get("used_by", [])]


def words(value: Any) -> str:
    """A value from the analysis as plain words: lists joined, booleans as "yes"/""."""
    if value is None or value is False:
        return ""
    if value is True:
        return "yes"
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, Mapping):
        for key in ("en", "title", "message", "check_id", "code", "id"):
            if value.get(key):
                return str(value[key])
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    if isinstance(value, Iterable):
        return ", ".join(filter(None, (words(item) for item in value)))
    return str(value)


def _access_levels(levels: Mapping[str, Mapping[str, int]]) -> list[str]:
    """`{"ecs": {"Read": 3, "Write": 1}}` -> `["ecs: Read 3, Write 1"]`."""
    return [
        f"{service}: " + ", ".join(f"{level} {count}" for level, count in counts.items())
        for service, counts in sorted(levels.items())
    ]


# ---------------------------------------------------------------------------------------------
# the formats


def table(analysis: Analysis, lang: str = "en") -> bytes:
    """A terminal table: the headline, then one row per principal (module docstring)."""
    # imported here, not at the top: the report writers import this module (the HTML writer)
    from ecsguard.report.writers.table import DEFAULT_WIDTH, plain

    def header(key: str) -> Text:
        return Text(i18n.text(lang, key))

    grid = Table(box=box.SIMPLE_HEAD)
    grid.add_column(header("iam_name"), overflow="fold")
    grid.add_column(header("iam_type"), no_wrap=True)
    grid.add_column(header("iam_tier_role"), overflow="fold")
    grid.add_column(header("iam_admin"), no_wrap=True)
    grid.add_column(header("iam_escalation_paths"), justify="right")
    grid.add_column(header("iam_stray_reasons"), overflow="fold", ratio=1)
    grid.add_column(header("iam_used_by"), overflow="fold", ratio=1)
    for principal in by_concern(analysis.get("principals", [])):
        paths = principal.get("escalation_paths", [])
        stray = [reason_text(r, lang) for r in principal.get("stray_reasons", [])]
        grid.add_row(
            plain(str(principal.get("name", ""))),
            plain(str(principal.get("type", ""))),
            plain(tier_and_role(principal)),
            Text(i18n.text(lang, "iam_yes") if principal.get("admin_equivalent") else "-"),
            Text(str(len(paths)) if paths else "-"),
            plain("\n".join(stray) or "-"),
            plain("\n".join(describe_uses(uses(principal), lang, short=True)) or "-"),
        )
    console = Console(
        file=io.StringIO(),
        width=shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns or DEFAULT_WIDTH,
        color_system=None,
        force_terminal=False,
        markup=False,
        highlight=False,
        emoji=False,
    )
    console.print(Text(headline(analysis, lang)))
    if analysis.get("principals"):
        console.print(grid)
    else:
        console.print(Text(i18n.text(lang, "iam_no_principals")))
    output = console.file
    assert isinstance(output, io.StringIO)
    return output.getvalue().encode("utf-8")


def csv(analysis: Analysis) -> bytes:
    """One row per principal, `CSV_COLUMNS`, RFC 4180 (CRLF), English text."""
    # imported here, not at the top: the report writers import this module (the HTML writer)
    from ecsguard.report.writers.csv import cell

    buffer = io.StringIO(newline="")
    out = csvlib.writer(buffer, lineterminator="\r\n", quoting=csvlib.QUOTE_MINIMAL)
    out.writerow(CSV_COLUMNS)
    for principal in analysis.get("principals", []):
        reasons = principal.get("stray_reasons", [])
        row: dict[str, Any] = {
            "arn": principal.get("arn", ""),
            "name": principal.get("name", ""),
            "type": principal.get("type", ""),
            "tier": principal.get("tier", ""),
            "role": principal.get("role") or "",
            "admin_equivalent": "true" if principal.get("admin_equivalent") else "false",
            "tier_reasons": [words(r) for r in principal.get("tier_reasons", [])],
            "escalation_paths": [path_text(p) for p in principal.get("escalation_paths", [])],
            "stray_codes": [r.get("code", "") for r in reasons if isinstance(r, Mapping)],
            "stray_reasons": [reason_text(r) for r in reasons],
            "used_by": describe_uses(uses(principal)),
            "last_used": words(principal.get("last_used")),
            "access_levels": _access_levels(principal.get("access_levels", {})),
            "findings": [words(f) for f in principal.get("findings", [])],
        }
        out.writerow(
            [
                cell(LIST_SEPARATOR.join(value) if isinstance(value, list) else value)
                for value in (row[column] for column in CSV_COLUMNS)
            ]
        )
    return buffer.getvalue().encode("utf-8")


def json(analysis: Analysis) -> bytes:
    """The analysis as JSON: two-space indent, non-ASCII kept, a final newline."""
    return orjson.dumps(analysis, option=orjson.OPT_INDENT_2) + b"\n"


def dot(snapshot: Snapshot) -> str:
    """The service-to-identity map of the snapshot as Graphviz DOT."""
    return to_dot(identity_map(snapshot))


def html_section(analysis: Analysis, snapshot: Snapshot, snapshot_file: str = "") -> dict[str, Any]:
    """What `Report.iam` takes: the analysis plus `identity_map` (the map as data, drawn by the
    HTML writer) and `snapshot_file` (named in the suggested `ecsguard iam template` commands)."""
    return {
        **analysis,
        "identity_map": identity_map(snapshot).to_dict(),
        "snapshot_file": snapshot_file,
    }
