"""What every writer receives, and the registry of formats."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ecsguard.core.models import Finding, Pillar, Severity, Status
from ecsguard.core.registry import Registry
from ecsguard.posture.check import CheckMeta


@dataclass(frozen=True)
class Report:
    """An audit's results: findings plus what a reader needs to trust and act on them."""

    findings: list[Finding]
    account: str
    regions: list[str]
    collected_at: datetime
    lang: str = "en"
    checks: dict[str, CheckMeta] = field(default_factory=dict)
    #: (check_id, resource_arn) -> "new" | "unchanged"; resolved findings listed separately
    baseline: dict[tuple[str, str], str] = field(default_factory=dict)
    resolved: list[Finding] = field(default_factory=list)
    #: "not collected: ..." lines from the snapshot
    gaps: list[str] = field(default_factory=list)
    ecsguard_version: str = ""
    #: the IAM analysis (`ecsguard.iam.account.analyze_account`) for the HTML report's IAM
    #: section, best built with `ecsguard.iam.render.html_section` (which adds the map as data);
    #: None: no IAM section. The other writers do not show it.
    iam: dict[str, Any] | None = None


# -- helpers every writer shares ---------------------------------------------------------


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


def utc(moment: datetime) -> datetime:
    """An aware UTC time (a naive one is taken as UTC, as snapshots write it)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def finding_uid(check_id: str, resource_arn: str) -> str:
    """The same id for the same check on the same resource, in every audit and format."""
    return hashlib.sha256(f"{check_id}\x00{resource_arn}".encode()).hexdigest()


def short_name(arn: str) -> str:
    """The readable end of an ARN: `service/prod/web` -> `prod/web`; other strings unchanged."""
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        return arn
    resource = parts[5]
    if not resource:
        return parts[4] or arn
    _, sep, rest = resource.partition("/")
    return rest if sep and rest else resource


def fail_counts(findings: list[Finding]) -> Counter[tuple[Pillar, Severity]]:
    return Counter((f.pillar, f.severity) for f in findings if f.status == Status.FAIL)


Writer = Callable[[Report], bytes]
WRITERS: Registry[Writer] = Registry("output format")


def writer(name: str) -> Callable[[Writer], Writer]:
    return WRITERS.register(name)


def render(report: Report, fmt: str) -> bytes:
    import ecsguard.report.writers  # noqa: F401  (registers the writers)

    return WRITERS.get(fmt)(report)
