"""A small report for the writer tests: every status, hostile AWS strings, both languages."""

from __future__ import annotations

from datetime import UTC, datetime

from ecsguard.core.models import Finding, Pillar, Severity, Status
from ecsguard.posture.check import CheckMeta, Text
from ecsguard.report.base import Report

ACCOUNT = "123456789012"
REGION = "ap-northeast-1"
XSS = "<script>alert(1)</script>"
FORMULA = "=cmd|' /C calc'!A0"
JA_MESSAGE = "特権モードのコンテナ: web"
TD_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/web:3"
SERVICE_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/prod/web"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/app-task"
#: an attribute break-out attempt: it must stay inside the attribute value
HOSTILE_ARN = f'arn:aws:ecs:{REGION}:{ACCOUNT}:service/prod/x" onmouseover="alert(2)'
GAP = f"not collected: AccessDenied on ecs:ListServices in {REGION}"


def meta(check_id: str, severity: str, pillar: str, controls: tuple[str, ...] = ()) -> CheckMeta:
    return CheckMeta(
        id=check_id,
        severity=Severity(severity),
        pillar=Pillar(pillar),
        resource_type="AWS::ECS::TaskDefinition",
        title=Text(en=f"{check_id} title", ja=f"{check_id} のタイトル"),
        description=Text(en=f"why {check_id} matters", ja=f"{check_id} が重要な理由"),
        remediation=Text(en=f"fix {check_id}", ja=f"{check_id} を修正する"),
        fail=Text(en="bad: {x}", ja="不合格: {x}"),
        passed=Text(en="good", ja="合格"),
        controls=controls,
    )


CHECKS = {
    m.id: m
    for m in [
        meta("ecs.container_privileged", "high", "security", ("FSBP:ECS.4",)),
        meta("ecs.task_user", "medium", "security", ("SecurityHub:ECS.20",)),
        meta("iam.task_role_admin", "critical", "iam", ("CIS:1.16",)),
        meta("logging.awslogs", "low", "logging", ("FSBP:ECS.9",)),
        meta("monitoring.container_insights", "info", "monitoring", ("FSBP:ECS.12",)),
        meta("ecs.exec_disabled", "medium", "security"),
    ]
}


def finding(
    check_id: str, status: Status, resource: str, message: str, lang: str = "en", **extra: str
) -> Finding:
    m = CHECKS[check_id]
    return Finding(
        check_id=check_id,
        status=status,
        severity=m.severity,
        resource_arn=resource,
        region="global" if ":iam::" in resource else REGION,
        account=ACCOUNT,
        title=m.title.get(lang),
        message=message,
        remediation=m.remediation.get(lang),
        pillar=m.pillar,
        controls=list(m.controls),
        resource_type=m.resource_type,
        **extra,
    )


def findings(lang: str = "en") -> list[Finding]:
    return [
        finding("ecs.container_privileged", Status.FAIL, TD_ARN, f"{XSS} {JA_MESSAGE}", lang),
        finding("ecs.task_user", Status.FAIL, SERVICE_ARN, FORMULA, lang),
        finding("ecs.task_user", Status.PASS, HOSTILE_ARN, "[bold red]not markup[/]", lang),
        finding("iam.task_role_admin", Status.FAIL, ROLE_ARN, "role has *:*\nsecond line", lang),
        finding(
            "logging.awslogs",
            Status.MUTED,
            TD_ARN,
            "@SUM(1+1) no log driver",
            lang,
            mute_reason=f"accepted {XSS}",
        ),
        finding("logging.awslogs", Status.PASS, SERVICE_ARN, "+awslogs configured", lang),
        finding(
            "monitoring.container_insights",
            Status.NOT_ASSESSED,
            f"arn:aws:ecs:{REGION}:{ACCOUNT}",
            GAP,
            lang,
        ),
        finding(
            "ecs.exec_disabled",
            Status.ERROR,
            f"arn:aws:::{ACCOUNT}",
            "check failed: KeyError: 'x' \x1b[31mred\x1b[0m",
            lang,
        ),
    ]


def report(lang: str = "en", baseline: bool = False, **overrides: object) -> Report:
    items = findings(lang)
    marks: dict[tuple[str, str], str] = {}
    resolved: list[Finding] = []
    if baseline:
        marks = {
            ("ecs.container_privileged", TD_ARN): "new",
            ("ecs.task_user", SERVICE_ARN): "unchanged",
            ("iam.task_role_admin", ROLE_ARN): "new",
        }
        resolved = [finding("ecs.task_user", Status.FAIL, TD_ARN, "was bad", lang)]
    fields: dict[str, object] = {
        "findings": items,
        "account": ACCOUNT,
        "regions": [REGION, "us-east-1"],
        "collected_at": datetime(2025, 6, 1, 9, 30, tzinfo=UTC),
        "lang": lang,
        "checks": CHECKS,
        "baseline": marks,
        "resolved": resolved,
        "gaps": [GAP],
        "ecsguard_version": "0.1.0",
    }
    fields.update(overrides)
    return Report(**fields)  # type: ignore[arg-type]
