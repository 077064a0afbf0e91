"""Overview: the four pillars at a glance. Open findings by severity (posture), admin-equivalent
principals (IAM), records received in the last five minutes and the pipeline's health (logs) and
alerts of the last day (monitoring and response)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from ecsguard.core.models import Severity, Status
from ecsguard.web import estate
from ecsguard.web.mutes import MuteStore
from ecsguard.web.page import PAGES, Page, PageContext
from ecsguard.web.pages.alarms import firing

RATE_MINUTES = 5


def _logs(ctx: PageContext) -> dict[str, Any]:
    service = ctx.app_state.service
    since = datetime.now(UTC) - timedelta(minutes=RATE_MINUTES)
    con = service.connect()
    try:
        per_table = {
            table: con.execute(
                f"SELECT count(*) FROM {table} WHERE time >= ?",
                [since],
            ).fetchone()[0]
            for table in ("logs", "cloudtrail", "events")
        }
    finally:
        con.close()
    return {
        "window_minutes": RATE_MINUTES,
        "records": per_table,
        "per_second": round(sum(per_table.values()) / (RATE_MINUTES * 60), 3),
        "since_start": service.stats.records,
        # the pipeline's own health, as /metrics reports it: non-zero figures need a look
        "refused": sum(dict(service.stats.refused).values()),
        "flush_errors": service.stats.flush_errors,
        "wal_bytes": sum(size for _, size in service.wal_backlog().values()),
    }


def _alerts(ctx: PageContext) -> dict[str, Any]:
    from ecsguard.detect.engine import stored_alerts

    since = datetime.now(UTC) - timedelta(days=1)
    detection = ctx.app_state.detection
    running = detection.store if detection is not None else None
    found = stored_alerts(ctx.console.data_dir, running, since=since, limit=1000)
    by_severity = Counter(str(a.severity) for a in found)
    return {
        "last_day": len(found),
        "by_severity": {s.value: by_severity.get(s.value, 0) for s in Severity},
        "rules": len(detection.rules) if detection is not None else 0,
        "firing": firing(ctx),
        "latest": [a.model_dump(mode="json") for a in found[:5]],
    }


def data(ctx: PageContext) -> dict[str, Any]:
    found = estate.latest(ctx.console.data_dir)
    posture: dict[str, Any] | None = None
    iam: dict[str, Any] | None = None
    if found is not None:
        from ecsguard.iam.render import figures

        mutes = MuteStore(ctx.console.data_dir).all()
        current = estate.findings_with_mutes(found, mutes, ctx.lang)
        failed = [f for f in current if f.status is Status.FAIL]
        by_severity = Counter(f.severity.value for f in failed)
        posture = {
            "snapshot": found.path.name,
            "account": found.snapshot.account,
            "collected_at": found.snapshot.collected_at.isoformat(),
            "open_findings": len(failed),
            "by_severity": {s.value: by_severity.get(s.value, 0) for s in Severity},
        }
        iam = figures(estate.iam_analysis(found))
    return {
        "severities": [s.value for s in Severity],
        "posture": posture,
        "iam": iam,
        "logs": _logs(ctx),
        "alerts": _alerts(ctx),
    }


PAGES.add(
    "overview",
    Page(
        name="overview",
        order=0,
        data=data,
        script=True,
        words={
            "en": {
                "title": "Overview",
                "posture": "Security posture",
                "open_findings": "open findings",
                "iam": "IAM",
                "admin_equivalent": "admin-equivalent principals",
                "outside_iam_admin": "of them outside the IAM-administrator tier",
                "escalation_paths": "privilege-escalation paths",
                "logs": "Logs",
                "per_second": "records per second (last {minutes} min)",
                "health": "{refused} requests refused, {flush_errors} flush errors, "
                "{wal_mb} MB waiting in the WAL",
                "alerts": "Alerts",
                "last_day": "alerts in the last 24 h",
                "firing": "alarms firing now",
                "snapshot": "Snapshot {name} of account {account}, collected {at}",
                "by_severity": "Open findings and alerts by severity",
            },
            "ja": {
                "title": "概要",
                "posture": "セキュリティ態勢",
                "open_findings": "件の未対応の検出事項",
                "iam": "IAM",
                "admin_equivalent": "管理者相当のプリンシパル",
                "outside_iam_admin": "うち IAM 管理者層以外",
                "escalation_paths": "権限昇格パス",
                "logs": "ログ",
                "per_second": "件/秒 (直近 {minutes} 分)",
                "health": "拒否したリクエスト {refused} 件、フラッシュのエラー {flush_errors} 件、"
                "WAL で待機中 {wal_mb} MB",
                "alerts": "アラート",
                "last_day": "件のアラート (直近 24 時間)",
                "firing": "件のアラームが発生中",
                "snapshot": "スナップショット {name} (アカウント {account}、{at} に収集)",
                "by_severity": "重大度別の未対応の検出事項とアラート",
            },
        },
    ),
)
