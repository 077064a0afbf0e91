"""The IAM inventory of one account (`ecsguard iam report`): every user, role and group with its
tier, escalation paths, stray reasons, what uses it, last use, access levels and posture findings.

`analyze_account(snapshot)` returns plain JSON data, in a stable order (users, roles, groups,
each by name; lists sorted), so that two runs over one snapshot give the same bytes:

    {"summary": {"principals", "by_tier", "by_role", "admin_equivalent",
                 "admin_equivalent_outside_iam_admin", "admin_equivalent_conditional",
                 "escalation_paths", "principals_with_escalation_paths", "stray", ...},
     "principals": [{"arn", "name", "type", "tier", "role", "base_tier", "tier_reasons",
                     "tier_reasons_ja", "admin_equivalent", "admin_equivalent_conditional",
                     "escalation_paths", "reachable_by", "stray_reasons", "used_by",
                     "last_used", "access_levels", "findings", "missing_policies"}]}

Every list is present, empty when nothing applies. `reachable_by` turns the paths around: which
principals can gain this one's rights in one hop (for an administrator task role, everyone who
can run code as it). `findings` are the failed posture checks of the IAM pillar about the
principal (a console user without MFA, an administrator task role).

`snapshot_from_authorization_details(path)` makes a snapshot of the output of
`aws iam get-account-authorization-details` alone, as Cloudsplaining takes it: IAM only, no
regions, so no uses, no credentials and no ECS paths, but tiers and the IAM and PassRole paths.
"""

from __future__ import annotations

import gzip
import urllib.parse
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from ecsguard.aws.snapshot import IamSection, Snapshot
from ecsguard.core.errors import UserError
from ecsguard.core.files import is_gzip
from ecsguard.core.models import Finding, Status
from ecsguard.iam.escalation import Facts, paths_of
from ecsguard.iam.evaluate import account_of, levels_by_service
from ecsguard.iam.principals import Principal
from ecsguard.iam.stray import KeyEvidence, cloudtrail_uses, stray_identities
from ecsguard.iam.tiers import ROLES, TIERS, Tier, classify
from ecsguard.iam.usage import IdentityMap, Use, identity_map

CloudTrail = Mapping[str, KeyEvidence] | Iterable[Any] | None

GAAD_KEYS = ("UserDetailList", "GroupDetailList", "RoleDetailList", "Policies")
_GAAD_HINT = "pass the JSON output of `aws iam get-account-authorization-details`"


def analyze_account(
    snapshot: Snapshot, cloudtrail: CloudTrail = None, now: datetime | None = None
) -> dict[str, Any]:
    """The inventory (module docstring). `cloudtrail` is CloudTrail records (or the evidence
    `stray.cloudtrail_uses` made of them): keys used from containers count as stray. `now`
    (default: the snapshot's collection time) decides date conditions and key ages."""
    at = now or snapshot.collected_at
    usage = identity_map(snapshot)
    facts = Facts.of(snapshot, at, identity_map=usage)
    evidence = cloudtrail if isinstance(cloudtrail, Mapping) else cloudtrail_uses(cloudtrail or [])
    strays = stray_identities(snapshot, usage, at, evidence)
    findings = _findings(snapshot, facts)
    reachable = _reachable_by(facts)
    entries = []
    for principal in facts.principals:
        tier = classify(principal, facts)
        entries.append(
            _entry(principal, tier, facts, usage, strays, findings, reachable.get(principal.arn))
        )
    return {"summary": _summary(snapshot, at, entries), "principals": entries}


def _entry(
    principal: Principal,
    tier: Tier,
    facts: Facts,
    usage: IdentityMap,
    strays: Mapping[str, list[Any]],
    findings: Mapping[str, list[dict[str, Any]]],
    reachable: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    return {
        "arn": principal.arn,
        "name": principal.name,
        "type": principal.type,
        "tier": tier.tier,
        "role": tier.role,
        "base_tier": tier.base,
        "tier_reasons": list(tier.reasons),
        "tier_reasons_ja": list(tier.reasons_ja),
        "admin_equivalent": tier.admin_equivalent,
        "admin_equivalent_conditional": tier.admin_conditional,
        "escalation_paths": [p.to_dict() for p in paths_of(principal, facts)],
        "reachable_by": reachable or [],
        "stray_reasons": [r.to_dict() for r in strays.get(principal.arn, [])],
        "used_by": [_use_dict(u) for u in usage.uses_of(principal.arn)],
        "last_used": principal.last_used.isoformat() if principal.last_used else None,
        "access_levels": levels_by_service(facts.allowed(principal)),
        "findings": findings.get(principal.arn, []),
        "missing_policies": sorted(principal.missing_policies),
    }


def _use_dict(use: Use) -> dict[str, Any]:
    """`Use.to_dict()` without `dataclasses.asdict`'s deep copies (a Use is flat): an account
    with 1,000 principals has tens of thousands of uses."""
    out = {f.name: getattr(use, f.name) for f in _USE_FIELDS}
    out["evidence"] = list(use.evidence)
    return out


_USE_FIELDS = fields(Use)


def _summary(snapshot: Snapshot, at: datetime, entries: list[dict[str, Any]]) -> dict[str, Any]:
    tiers = Counter(e["tier"] for e in entries)
    roles = Counter(e["role"] for e in entries if e["role"])
    admins = [e for e in entries if e["admin_equivalent"]]
    return {
        "account": snapshot.account,
        "now": at.isoformat(),
        "principals": len(entries),
        "by_type": {kind: sum(1 for e in entries if e["type"] == kind) for kind in _TYPES},
        "by_tier": {tier: tiers.get(tier, 0) for tier in TIERS},
        "by_role": {role: roles.get(role, 0) for role in ROLES},
        "admin_equivalent": len(admins),
        "admin_equivalent_outside_iam_admin": sum(1 for e in admins if e["tier"] != "iam-admin"),
        "admin_equivalent_conditional": sum(
            1 for e in entries if e["admin_equivalent_conditional"]
        ),
        "escalation_paths": sum(len(e["escalation_paths"]) for e in entries),
        "principals_with_escalation_paths": sum(1 for e in entries if e["escalation_paths"]),
        "stray": sum(1 for e in entries if e["stray_reasons"]),
    }


_TYPES = ("user", "role", "group")


def _reachable_by(facts: Facts) -> dict[str, list[dict[str, Any]]]:
    """Target ARN -> who can gain its rights in one hop, and how."""
    found: dict[str, list[dict[str, Any]]] = {}
    for principal in facts.principals:
        for path in paths_of(principal, facts):
            for target in path.targets:
                found.setdefault(target, []).append(
                    {
                        "principal": principal.arn,
                        "name": principal.name,
                        "type": principal.type,
                        "method": path.method,
                        "conditional": path.conditional,
                    }
                )
    return {
        arn: sorted(items, key=lambda i: (i["principal"], i["method"]))
        for arn, items in found.items()
    }


def _findings(snapshot: Snapshot, facts: Facts) -> dict[str, list[dict[str, Any]]]:
    """Principal ARN -> the failed IAM-pillar posture findings about it. Findings on a task
    definition that are about its roles (ecs.task_role_admin, ...) go to the role they name."""
    from ecsguard.posture.engine import run, select  # the checks register on first use

    checks = [c for c in select() if c.meta.pillar == "iam"]
    td_roles: dict[str, list[Principal]] = {}
    for td in facts.task_definitions:
        if (role := facts.role_named(td.role)) is not None:
            td_roles.setdefault(td.arn, []).append(role)
    executions = _execution_roles(snapshot, facts)
    found: dict[str, list[dict[str, Any]]] = {}
    for finding in run(snapshot, checks):
        if finding.status != Status.FAIL:
            continue
        if finding.resource_arn in facts.by_arn:
            owners = [facts.by_arn[finding.resource_arn]]
        else:
            roles = td_roles.get(finding.resource_arn, []) + executions.get(
                finding.resource_arn, []
            )
            owners = [r for r in roles if r.name in finding.message]
        for owner in _unique_principals(owners):
            found.setdefault(owner.arn, []).append(_finding(finding))
    return found


def _execution_roles(snapshot: Snapshot, facts: Facts) -> dict[str, list[Principal]]:
    found: dict[str, list[Principal]] = {}
    for inventory in snapshot.regions.values():
        for td in inventory.ecs.task_definitions:
            role = facts.role_named(str(td.get("executionRoleArn") or ""))
            if role is not None:
                found.setdefault(str(td.get("taskDefinitionArn", "")), []).append(role)
    return found


def _unique_principals(items: Iterable[Principal]) -> list[Principal]:
    return list({p.arn: p for p in items}.values())


def _finding(finding: Finding) -> dict[str, Any]:
    return {
        "check_id": finding.check_id,
        "severity": str(finding.severity.value),
        "title": finding.title,
        "message": finding.message,
        "resource_arn": finding.resource_arn,
    }


# ---------------------------------------------------------------------------------------------
# offline: the output of `aws iam get-account-authorization-details`


def snapshot_from_authorization_details(path: str | Path) -> Snapshot:
    """A snapshot holding only the IAM section, from a `get-account-authorization-details`
    output (JSON, gzip or not; one response or a list of paged responses). Its collection
    time is the file's modification time: when the account looked like this."""
    source = Path(path)
    try:
        raw = source.read_bytes()
        modified = datetime.fromtimestamp(source.stat().st_mtime, UTC)
    except OSError as err:
        raise UserError(f"cannot read {source}: {err.strerror or err}", "check the path") from None
    if is_gzip(raw):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise UserError(f"{source} is a damaged gzip file ({err})", _GAAD_HINT) from None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise UserError(f"{source} is not valid JSON ({err})", _GAAD_HINT) from None
    pages = data if isinstance(data, list) else [data]
    if not pages or not all(
        isinstance(page, dict) and any(k in page for k in GAAD_KEYS) for page in pages
    ):
        raise UserError(
            f"{source} is not the output of `aws iam get-account-authorization-details`"
            f" (no {', '.join(GAAD_KEYS)})",
            _GAAD_HINT,
        )
    lists = {key: _items(pages, key, source) for key in GAAD_KEYS}
    iam = IamSection(
        users=[_decoded(u) for u in lists["UserDetailList"]],
        groups=[_decoded(g) for g in lists["GroupDetailList"]],
        roles=[_decoded(r) for r in lists["RoleDetailList"]],
        policies=[_decoded(p) for p in lists["Policies"]],
    )
    return Snapshot(account=_account(iam), collected_at=modified, iam=iam)


def _items(pages: list[Any], key: str, source: Path) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for page in pages:
        value = page.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise UserError(f"{source}: {key} is not a list of objects", _GAAD_HINT)
        found.extend(value)
    return found


def _decoded(item: dict[str, Any]) -> dict[str, Any]:
    """Policy documents as objects: the raw API sends them URL-encoded (the CLI decodes them)."""
    out = dict(item)
    if "AssumeRolePolicyDocument" in out:
        out["AssumeRolePolicyDocument"] = _document(out["AssumeRolePolicyDocument"])
    for listed in ("UserPolicyList", "GroupPolicyList", "RolePolicyList"):
        if listed in out:
            out[listed] = [
                {**p, "PolicyDocument": _document(p.get("PolicyDocument"))} for p in out[listed]
            ]
    if "PolicyVersionList" in out:
        out["PolicyVersionList"] = [
            {**v, "Document": _document(v.get("Document"))} for v in out["PolicyVersionList"]
        ]
    if "Arn" in out and "PolicyVersionList" in out:
        out.setdefault("PolicyName", str(out["Arn"]).rsplit("/", 1)[-1])
    return out


def _document(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return orjson.loads(urllib.parse.unquote(value))
        except orjson.JSONDecodeError:
            return value  # left as it is: it then grants nothing
    return value


def _account(iam: IamSection) -> str:
    for item in [*iam.users, *iam.roles, *iam.groups, *iam.policies]:
        account = account_of(str(item.get("Arn", "")))
        if account and account != "aws":
            return account
    return ""
