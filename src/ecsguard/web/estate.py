"""The audited estate as the console sees it: the newest snapshot in the data directory, its
audit findings and its IAM analysis, each computed once per snapshot file and language."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ecsguard.aws import snapshot as snapshots
from ecsguard.core.models import Finding

if TYPE_CHECKING:
    from ecsguard.web.mutes import Mute


@dataclass(frozen=True)
class Estate:
    path: Path
    snapshot: snapshots.Snapshot

    def summary(self) -> dict[str, str]:
        """Which snapshot a page shows: its file, account and collection time."""
        return {
            "file": self.path.name,
            "account": self.snapshot.account,
            "collected_at": self.snapshot.collected_at.isoformat(),
        }


_lock = threading.Lock()
_cache: dict[tuple[str, Any], Any] = {}


def latest_snapshot_file(data_dir: Path) -> Path | None:
    """The most recently written `snapshots/*.json.gz` (what `inventory`, `audit` and the demo
    save)."""
    files = list((data_dir / "snapshots").glob("*.json.gz"))
    return max(files, key=lambda p: p.stat().st_mtime_ns) if files else None


def _cached(kind: str, path: Path, lang: str, make: Any) -> Any:
    key = (kind, (str(path), path.stat().st_mtime_ns, lang))
    with _lock:
        if key in _cache:
            return _cache[key]
    value = make()
    with _lock:
        # keep the newest few: a long-running server sees many snapshots over time
        if len(_cache) > 16:
            _cache.clear()
        _cache[key] = value
    return value


def latest(data_dir: Path) -> Estate | None:
    path = latest_snapshot_file(data_dir)
    if path is None:
        return None
    snapshot = _cached("snapshot", path, "", lambda: snapshots.load(path))
    return Estate(path, snapshot)


def findings(estate: Estate, lang: str = "en") -> list[Finding]:
    """Every check's result on the snapshot (PASS included), in `lang`."""
    from ecsguard.posture.audit import audit

    result: list[Finding] = _cached(
        "audit", estate.path, lang, lambda: audit(estate.snapshot, lang=lang).findings
    )
    return result


def iam_analysis(estate: Estate) -> dict[str, Any]:
    """`ecsguard iam report`'s analysis (principals, tiers, escalation paths, services)."""
    from ecsguard.iam.account import analyze_account

    result: dict[str, Any] = _cached(
        "iam", estate.path, "", lambda: analyze_account(estate.snapshot)
    )
    return result


def identity_map(estate: Estate) -> Any:
    """The snapshot's service-to-identity map (`ecsguard.iam.usage.IdentityMap`)."""
    from ecsguard.iam.usage import identity_map as make

    return _cached("identity_map", estate.path, "", lambda: make(estate.snapshot))


def findings_with_mutes(estate: Estate, mutes: list[Mute], lang: str = "en") -> list[Finding]:
    """`findings` with the console's mutes (MuteStore.all()) applied: muted ones become MUTED
    with the reason, as the findings page and the overview count them."""
    from ecsguard.web.mutes import mutelist

    return mutelist(mutes).apply(findings(estate, lang), estate.snapshot)
