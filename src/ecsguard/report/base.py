"""What every writer receives, and the registry of formats."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from ecsguard.core.models import Finding
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


Writer = Callable[[Report], bytes]
WRITERS: Registry[Writer] = Registry("output format")


def writer(name: str) -> Callable[[Writer], Writer]:
    return WRITERS.register(name)


def render(report: Report, fmt: str) -> bytes:
    import ecsguard.report.writers  # noqa: F401  (registers the writers)

    return WRITERS.get(fmt)(report)
