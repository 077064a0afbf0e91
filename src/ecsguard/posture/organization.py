"""An organization's audit: one Report per collected account, combined into one for the writers.

Findings already carry their account, so the combined report is every account's findings side by
side (the CSV, JSON, OCSF and SARIF writers show the account column). Accounts that could not be
collected appear among the report's gaps with the reason, as do each account's own gaps. The
per-account summary is data (`AccountSummary`), rendered by the CLI.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from ecsguard.aws.organization import AccountResult, not_collected, require_collected
from ecsguard.core.models import Finding, Severity, Status
from ecsguard.posture.audit import audit
from ecsguard.posture.check import Check
from ecsguard.posture.mutelist import Mutelist
from ecsguard.report.base import Report


@dataclass(frozen=True)
class AccountSummary:
    account: str
    name: str
    collected: bool
    reason: str = ""
    resources: int = 0
    failed: dict[str, int] = field(default_factory=dict)  # severity -> FAIL count

    def as_dict(self) -> dict[str, object]:
        return {
            "account": self.account,
            "name": self.name,
            "collected": self.collected,
            "reason": self.reason or None,
            "resources": self.resources,
            "failed": self.failed,
        }


def audit_organization(
    results: Sequence[AccountResult],
    checks: Sequence[Check] | None = None,
    mutelist: Mutelist | None = None,
    lang: str = "en",
    baseline: list[Finding] | None = None,
) -> tuple[Report, list[AccountSummary]]:
    """The combined report and one summary per account (collected or not, in input order).
    Raises AwsAccessError when no account at all was collected."""
    require_collected(results)
    reports: list[Report] = []
    summaries: list[AccountSummary] = []
    gaps: list[str] = []
    for result in results:
        account = result.account
        if result.snapshot is None:
            summaries.append(
                AccountSummary(account.id, account.name, False, result.error or "unknown")
            )
            gaps.append(not_collected(result))
            continue
        # a baseline finding of another account must not look resolved here
        earlier = (
            [f for f in baseline if f.account == result.snapshot.account]
            if baseline is not None
            else None
        )
        report = audit(result.snapshot, checks, mutelist, lang, earlier)
        reports.append(report)
        gaps.extend(f"account {report.account}: {gap}" for gap in report.gaps)
        failed = Counter(f.severity.value for f in report.findings if f.status == Status.FAIL)
        summaries.append(
            AccountSummary(
                report.account,
                account.name,
                True,
                resources=result.snapshot.resource_total(),
                failed={s.value: failed[s.value] for s in Severity if failed[s.value]},
            )
        )
    combined = Report(
        findings=[f for r in reports for f in r.findings],
        account=", ".join(r.account for r in reports),
        regions=sorted({region for r in reports for region in r.regions}),
        collected_at=min(r.collected_at for r in reports),
        lang=lang,
        checks={k: v for r in reports for k, v in r.checks.items()},
        baseline={k: v for r in reports for k, v in r.baseline.items()},
        resolved=[f for r in reports for f in r.resolved],
        gaps=gaps,
        ecsguard_version=reports[0].ecsguard_version,
    )
    return combined, summaries
