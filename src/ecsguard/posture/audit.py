"""One audit: checks over a snapshot, mutes and baseline applied, packaged as a Report."""

from __future__ import annotations

from collections.abc import Sequence

from ecsguard import __version__
from ecsguard.aws.snapshot import Snapshot
from ecsguard.core.models import Finding
from ecsguard.posture import engine
from ecsguard.posture.baseline import compare
from ecsguard.posture.check import Check
from ecsguard.posture.mutelist import Mutelist
from ecsguard.report.base import Report


def audit(
    snapshot: Snapshot,
    checks: Sequence[Check] | None = None,
    mutelist: Mutelist | None = None,
    lang: str = "en",
    baseline: list[Finding] | None = None,
) -> Report:
    selected = list(checks) if checks is not None else engine.select()
    findings = engine.run(snapshot, selected, mutelist, lang=lang)
    ran = {c.meta.id for c in selected}  # a check left out this time resolves nothing
    earlier = [f for f in baseline or [] if f.check_id in ran]
    marks, resolved = compare(findings, earlier) if baseline is not None else ({}, [])
    return Report(
        findings=findings,
        account=snapshot.account,
        regions=sorted(snapshot.regions),
        collected_at=snapshot.collected_at,
        lang=lang,
        checks={c.meta.id: c.meta for c in selected},
        baseline=marks,
        resolved=resolved,
        gaps=[str(g) for g in snapshot.gaps],
        ecsguard_version=__version__,
    )
