"""Run checks over a snapshot: select, apply gaps (NOT_ASSESSED), mute, sort deterministically."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ecsguard.aws.snapshot import Snapshot
from ecsguard.core.errors import UserError
from ecsguard.core.models import Finding, Severity, Status
from ecsguard.posture.check import CHECKS, Check, Result
from ecsguard.posture.context import CheckContext
from ecsguard.posture.mutelist import Mutelist


def all_checks() -> list[Check]:
    import ecsguard.posture.checks  # noqa: F401  (registers the checks)

    return [c for _, c in CHECKS]


def select(
    include: Sequence[str] = (), exclude: Sequence[str] = (), min_severity: Severity | None = None
) -> list[Check]:
    """Checks by id (an unknown id is an error listing the known ones) and minimum severity."""
    checks = {c.meta.id: c for c in all_checks()}
    for name in [*include, *exclude]:
        if name not in checks:
            CHECKS.get(name)  # raises with the list of known ids
    chosen = [c for i, c in checks.items() if (not include or i in include) and i not in exclude]
    if min_severity:
        chosen = [c for c in chosen if c.meta.severity.rank <= min_severity.rank]
    return sorted(chosen, key=lambda c: c.meta.id)


def run(
    snapshot: Snapshot,
    checks: Iterable[Check] | None = None,
    mutelist: Mutelist | None = None,
    lang: str = "en",
) -> list[Finding]:
    if lang not in ("en", "ja"):
        raise UserError(f"unknown language {lang!r}", "use en or ja")
    ctx = CheckContext(snapshot, lang=lang)
    findings: list[Finding] = []
    for chk in checks if checks is not None else all_checks():
        findings.extend(_run_one(chk, ctx))
    if mutelist:
        findings = mutelist.apply(findings, snapshot)
    return sorted(findings, key=lambda f: (f.check_id, f.region, f.resource_arn))


def _run_one(chk: Check, ctx: CheckContext) -> list[Finding]:
    meta = chk.meta
    blind = {
        gap.region: gap for gap in ctx.snapshot.gaps if f"{gap.service}:{gap.action}" in meta.needs
    }
    try:
        results = list(chk.fn(ctx))
    except Exception as err:  # a check that breaks must not hide the others' findings
        return [
            _finding(
                ctx,
                chk,
                Result(f"arn:aws:::{ctx.account}", "global", False),
                Status.ERROR,
                f"check failed: {type(err).__name__}: {err}",
            )
        ]
    findings = [
        _finding(ctx, chk, r, Status.PASS if r.passed else Status.FAIL)
        for r in results
        if r.region not in blind and "global" not in blind
    ]
    for region, gap in sorted(blind.items()):
        resource = f"arn:aws:{gap.service}:{region}:{ctx.account}"
        findings.append(
            _finding(ctx, chk, Result(resource, region, False), Status.NOT_ASSESSED, str(gap))
        )
    return findings


def _finding(
    ctx: CheckContext, chk: Check, result: Result, status: Status, message: str | None = None
) -> Finding:
    meta, lang = chk.meta, ctx.lang
    template = meta.passed if status == Status.PASS else meta.fail
    if message is None:
        try:
            message = template.get(lang).format(**result.params)
        except (KeyError, IndexError) as err:
            raise RuntimeError(f"check {meta.id}: message needs parameter {err}") from None
    return Finding(
        check_id=meta.id,
        status=status,
        severity=meta.severity,
        resource_arn=result.resource_arn,
        region=result.region,
        account=ctx.account,
        title=meta.title.get(lang),
        message=message,
        remediation=meta.remediation.get(lang),
        pillar=meta.pillar,
        controls=list(meta.controls),
        resource_type=meta.resource_type,
    )
