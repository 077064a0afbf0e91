"""`--output ocsf`: a JSON array of OCSF Compliance Finding events (class 2003), one per finding.

Mapping (OCSF 1.3, profiles cloud and datetime):
- `compliance.status_id`: PASS 1 (Pass), FAIL and MUTED 3 (Fail), NOT_ASSESSED 2 (Warning: "no
  result due to missing information"), ERROR 99 (Other); our status is kept in `status_code`.
- `status_id` (the finding's lifecycle): 3 (Suppressed) for MUTED, else 1 (New).
- `severity_id`: info 1, low 2, medium 3, high 4, critical 5 (the check's severity, whatever the
  result, as Security Hub does: consumers filter on `compliance.status_id`).
- `compliance.standards` from the framework part of the controls (`FSBP:ECS.4` -> the AWS
  Foundational Security Best Practices), `compliance.requirements` the controls themselves,
  `compliance.control` the check id.
- `finding_info.uid` is stable across audits: a hash of (check id, resource ARN).
"""

from __future__ import annotations

from typing import Any

import orjson

from ecsguard.core.models import Finding, Severity, Status
from ecsguard.report.base import Report, finding_uid, short_name, sort_key, utc, writer

OCSF_VERSION = "1.3.0"
CLASS_UID = 2003
CATEGORY_UID = 2
ACTIVITY_CREATE = 1

SEVERITY_IDS = {
    Severity.INFO: (1, "Informational"),
    Severity.LOW: (2, "Low"),
    Severity.MEDIUM: (3, "Medium"),
    Severity.HIGH: (4, "High"),
    Severity.CRITICAL: (5, "Critical"),
}
COMPLIANCE_STATUS = {
    Status.PASS: (1, "Pass"),
    Status.FAIL: (3, "Fail"),
    Status.MUTED: (3, "Fail"),
    Status.NOT_ASSESSED: (2, "Warning"),
    Status.ERROR: (99, "Other"),
}
STANDARDS = {
    "FSBP": "AWS Foundational Security Best Practices",
    "CIS": "CIS Amazon Web Services Foundations Benchmark",
    "SecurityHub": "AWS Security Hub controls",
}
DEFAULT_STANDARD = "ecsguard ECS best practices"


def standards(controls: list[str]) -> list[str]:
    names = sorted({STANDARDS.get(c.partition(":")[0], c.partition(":")[0]) for c in controls})
    return names or [DEFAULT_STANDARD]


def _partition(arn: str) -> str | None:
    parts = arn.split(":", 2)
    return parts[1] if len(parts) == 3 and parts[0] == "arn" and parts[1] else None


def event(report: Report, finding: Finding) -> dict[str, Any]:
    meta = report.checks.get(finding.check_id)
    collected = utc(report.collected_at)
    when = int(collected.timestamp() * 1000)
    when_dt = collected.isoformat().replace("+00:00", "Z")
    severity_id, severity = SEVERITY_IDS[finding.severity]
    compliance_id, compliance = COMPLIANCE_STATUS[finding.status]
    muted = finding.status == Status.MUTED
    uid = finding_uid(finding.check_id, finding.resource_arn)
    resource: dict[str, Any] = {
        "uid": finding.resource_arn,
        "name": short_name(finding.resource_arn),
        "type": finding.resource_type or None,
        "region": finding.region,
        "cloud_partition": _partition(finding.resource_arn),
    }
    info: dict[str, Any] = {
        "uid": uid,
        "title": finding.title,
        "desc": meta.description.get(report.lang) if meta else finding.message,
        "types": [finding.pillar.value],
        "created_time": when,
        "created_time_dt": when_dt,
        "analytic": {
            "uid": finding.check_id,
            "name": finding.check_id,
            "type_id": 1,
            "type": "Rule",
        },
    }
    detail = finding.mute_reason if muted and finding.mute_reason else finding.message
    unmapped: dict[str, Any] = {"pillar": finding.pillar.value, "status": finding.status.value}
    if report.baseline:
        unmapped["baseline"] = report.baseline.get((finding.check_id, finding.resource_arn))
    return {
        "activity_id": ACTIVITY_CREATE,
        "activity_name": "Create",
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "class_uid": CLASS_UID,
        "class_name": "Compliance Finding",
        "type_uid": CLASS_UID * 100 + ACTIVITY_CREATE,
        "type_name": "Compliance Finding: Create",
        "severity_id": severity_id,
        "severity": severity,
        "status_id": 3 if muted else 1,
        "status": "Suppressed" if muted else "New",
        "time": when,
        "time_dt": when_dt,
        "message": finding.message,
        "metadata": {
            "version": OCSF_VERSION,
            "profiles": ["cloud", "datetime"],
            "product": _drop_none(
                {
                    "name": "ecsguard",
                    "vendor_name": "ecsguard",
                    "version": report.ecsguard_version or None,
                }
            ),
            "event_code": finding.check_id,
            "uid": uid,
        },
        "cloud": {
            "provider": "AWS",
            "region": finding.region,
            "account": {"uid": finding.account, "type_id": 10, "type": "AWS Account"},
        },
        "finding_info": info,
        "compliance": {
            "control": finding.check_id,
            "standards": standards(finding.controls),
            "requirements": list(finding.controls),
            "status_id": compliance_id,
            "status": compliance,
            "status_code": finding.status.value,
            "status_detail": detail,
        },
        "remediation": {"desc": finding.remediation},
        "resources": [_drop_none(resource)],
        "unmapped": unmapped,
    }


def _drop_none(value: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if v is not None}


@writer("ocsf")
def write_ocsf(report: Report) -> bytes:
    events = [event(report, f) for f in sorted(report.findings, key=sort_key)]
    return orjson.dumps(events, option=orjson.OPT_INDENT_2) + b"\n"
