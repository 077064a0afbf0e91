"""`--output sarif`: a SARIF 2.1.0 log that GitHub code scanning accepts.

One run; `tool.driver.rules` are the audited checks (texts in the report language), `results` the
FAIL findings and the MUTED ones (with an external, accepted suppression carrying the mute reason).
PASS, NOT_ASSESSED and ERROR are not results; the run's invocation lists what was not collected as
warning notifications.

A cloud resource has no file, but GitHub needs a physical location on every result, so each result
points at a relative pseudo-path `aws/<account>/<region>/<service>/<resource>` (line 1), and names
the resource exactly in a logical location (`kind: resource`, the ARN as fully qualified name).
A relative URI is deliberate: GitHub rejects absolute URIs whose scheme (`arn:`) differs from the
checkout's. `partialFingerprints` is a hash of (check, resource), so an alert keeps its identity
across audits. Levels: critical and high -> error, medium -> warning, low and info -> note.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson

from ecsguard.core.models import Finding, Severity, Status
from ecsguard.posture.check import CheckMeta
from ecsguard.report.base import Report, finding_uid, short_name, sort_key, utc, writer
from ecsguard.report.i18n import text

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
#: GitHub's security-severity score (critical > 9, high 7-8.9, medium 4-6.9, low 0.1-3.9)
SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "2.0",
}
MAX_DESCRIPTION = 1024  # GitHub's limit for short and full descriptions


def artifact_uri(finding: Finding) -> str:
    """A stable relative path for a resource: aws/<account>/<region>/<service>/<resource>."""
    parts = finding.resource_arn.split(":", 5)
    if len(parts) == 6 and parts[0] == "arn":
        service, region, resource = parts[2], parts[3], parts[5]
    else:
        service, region, resource = "resource", finding.region, finding.resource_arn
    segments = [finding.account or "unknown", region or "global", service or "aws"]
    path = "/".join(quote(segment, safe="") for segment in segments)
    tail = quote(resource.strip("/"), safe="/:@") or "account"
    return f"aws/{path}/{tail}"


def _clip(text: str) -> str:
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1] + "…"


def _rule(check_id: str, meta: CheckMeta | None, sample: Finding | None, lang: str) -> dict:
    if meta is not None:
        severity, pillar, controls = meta.severity, meta.pillar.value, list(meta.controls)
        title, description = meta.title.get(lang), meta.description.get(lang)
        remediation = meta.remediation.get(lang)
    else:
        assert sample is not None
        severity, pillar, controls = sample.severity, sample.pillar.value, list(sample.controls)
        title = description = sample.title
        remediation = sample.remediation
    markdown = f"{description}\n\n**{text(lang, 'remediation')}**: {remediation}"
    if controls:
        markdown += f"\n\n**{text(lang, 'controls')}**: " + ", ".join(f"`{c}`" for c in controls)
    properties: dict[str, Any] = {
        "tags": list(dict.fromkeys(["security", pillar, *controls])),  # unique, per the schema
        "precision": "high",
        "controls": controls,
        "pillar": pillar,
        "severity": severity.value,
    }
    if severity in SECURITY_SEVERITY:
        properties["security-severity"] = SECURITY_SEVERITY[severity]
    return {
        "id": check_id,
        "name": check_id,
        "shortDescription": {"text": _clip(title)},
        "fullDescription": {"text": _clip(description)},
        "help": {"text": remediation, "markdown": markdown},
        "defaultConfiguration": {"level": LEVELS[severity]},
        "properties": properties,
    }


def _result(report: Report, finding: Finding, rule_index: int) -> dict[str, Any]:
    key = (finding.check_id, finding.resource_arn)
    uid = finding_uid(*key)
    properties: dict[str, Any] = {
        "severity": finding.severity.value,
        "pillar": finding.pillar.value,
        "controls": list(finding.controls),
        "resourceArn": finding.resource_arn,
        "resourceType": finding.resource_type,
        "region": finding.region,
        "account": finding.account,
        "remediation": finding.remediation,
    }
    result: dict[str, Any] = {
        "ruleId": finding.check_id,
        "ruleIndex": rule_index,
        "kind": "fail",
        "level": LEVELS[finding.severity],
        "message": {"text": finding.message or finding.title},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": artifact_uri(finding)},
                    "region": {"startLine": 1, "startColumn": 1, "endLine": 1, "endColumn": 1},
                },
                "logicalLocations": [
                    {
                        "name": short_name(finding.resource_arn),
                        "fullyQualifiedName": finding.resource_arn,
                        "kind": "resource",
                    }
                ],
            }
        ],
        "partialFingerprints": {
            "ecsguardFindingHash/v1": uid,
            "primaryLocationLineHash": f"{uid[:16]}:1",
        },
        "properties": properties,
    }
    mark = report.baseline.get(key)
    if mark in ("new", "unchanged"):
        result["baselineState"] = mark
    if finding.status == Status.MUTED:
        suppression: dict[str, Any] = {"kind": "external", "status": "accepted"}
        if finding.mute_reason:
            suppression["justification"] = finding.mute_reason
        result["suppressions"] = [suppression]
    return result


def sarif_log(report: Report) -> dict[str, Any]:
    reported = sorted(
        (f for f in report.findings if f.status in (Status.FAIL, Status.MUTED)), key=sort_key
    )
    samples = {f.check_id: f for f in reported}
    rule_ids = sorted(set(report.checks) | set(samples))
    rules = [_rule(i, report.checks.get(i), samples.get(i), report.lang) for i in rule_ids]
    index = {rule_id: n for n, rule_id in enumerate(rule_ids)}
    invocation: dict[str, Any] = {
        "executionSuccessful": True,
        "endTimeUtc": utc(report.collected_at).isoformat().replace("+00:00", "Z"),
    }
    if report.gaps:
        invocation["toolExecutionNotifications"] = [
            {"level": "warning", "message": {"text": gap}} for gap in report.gaps
        ]
    driver: dict[str, Any] = {"name": "ecsguard", "rules": rules}
    if report.ecsguard_version:
        driver["version"] = report.ecsguard_version
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": driver},
                "invocations": [invocation],
                "results": [_result(report, f, index[f.check_id]) for f in reported],
                "columnKind": "unicodeCodePoints",
                "properties": {"account": report.account, "regions": list(report.regions)},
            }
        ],
    }


@writer("sarif")
def write_sarif(report: Report) -> bytes:
    return orjson.dumps(sarif_log(report), option=orjson.OPT_INDENT_2) + b"\n"
