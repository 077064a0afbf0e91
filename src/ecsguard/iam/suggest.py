"""A policy from what a principal really did: CloudTrail records -> least-privilege statements.

Only successful calls count (an AccessDenied is a wish, not a need). Resources come from each
record's `resources` ARNs when CloudTrail names them; an action that supports no resource-level
permission gets `"*"`; an action that does but whose record names nothing gets `"*"` too, listed in
`unresolved` so a person narrows it by hand (the same limit as IAM Access Analyzer's generator).
"""

from __future__ import annotations

import gzip
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from ecsguard.core.errors import UserError
from ecsguard.core.files import is_gzip
from ecsguard.iam import actions

#: eventSource host prefixes whose IAM prefix differs from the host
SOURCE_PREFIX = {
    "monitoring": "cloudwatch",
    "email": "ses",
    "elasticloadbalancing": "elasticloadbalancing",
}


def read_cloudtrail(path: str | Path) -> Iterator[dict[str, Any]]:
    """Records of CloudTrail log files: one file (.json or .json.gz, `{"Records": [...]}` or a
    bare list) or a directory tree of them."""
    source = Path(path)
    if not source.exists():
        raise UserError(f"CloudTrail path {source} does not exist", "check the path")
    files = (
        sorted(p for p in source.rglob("*") if p.suffix in (".json", ".gz"))
        if source.is_dir()
        else [source]
    )
    for file in files:
        raw = file.read_bytes()
        try:
            doc = orjson.loads(gzip.decompress(raw) if is_gzip(raw) else raw)
        except (orjson.JSONDecodeError, OSError, EOFError) as err:
            raise UserError(
                f"CloudTrail file {file} is not valid JSON ({err})",
                "pass CloudTrail log files as delivered to S3",
            ) from None
        records = doc.get("Records") if isinstance(doc, dict) else doc
        if not isinstance(records, list):
            raise UserError(
                f"CloudTrail file {file} has no Records list",
                "pass CloudTrail log files as delivered to S3",
            )
        yield from (r for r in records if isinstance(r, dict))


def actor(record: dict[str, Any]) -> str:
    """The IAM principal behind a record: a user's ARN, or the role behind an assumed session."""
    identity = record.get("userIdentity") or {}
    issuer = (identity.get("sessionContext") or {}).get("sessionIssuer") or {}
    if identity.get("type") == "AssumedRole" and issuer.get("arn"):
        return str(issuer["arn"])
    return str(identity.get("arn", ""))


def iam_action(record: dict[str, Any]) -> str:
    host = str(record.get("eventSource", "")).split(".", 1)[0]
    return f"{SOURCE_PREFIX.get(host, host)}:{record.get('eventName', '')}"


def suggest(
    principal_arn: str, records: Iterable[dict[str, Any]], granted: Iterable[str] = ()
) -> dict[str, Any]:
    """The policy the principal's successful calls need, and what it is granted but never used
    (`granted`: the actions its policies allow, e.g. from the evaluation engine)."""
    used: dict[str, set[str]] = defaultdict(set)
    counts: dict[str, int] = defaultdict(int)
    for record in records:
        if actor(record) != principal_arn or record.get("errorCode"):
            continue
        info = actions.lookup(iam_action(record))
        if info is None:
            continue
        counts[info.action] += 1
        arns = {str(r["ARN"]) for r in record.get("resources") or [] if r.get("ARN")}
        used[info.action] |= arns if info.resource_types else {"*"}
    unresolved = sorted(a for a, arns in used.items() if not arns)
    by_resources: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for action, arns in sorted(used.items()):
        by_resources[tuple(sorted(arns)) or ("*",)].append(action)
    statements = [
        {
            "Effect": "Allow",
            "Action": sorted(acts),
            "Resource": list(res) if len(res) > 1 else res[0],
        }
        for res, acts in sorted(by_resources.items(), key=lambda kv: kv[1])
    ]
    used_lower = {a.lower() for a in used}
    return {
        "principal": principal_arn,
        "policy": {"Version": "2012-10-17", "Statement": statements},
        "used": [
            {"action": a, "calls": counts[a], "resources": sorted(used[a])} for a in sorted(used)
        ],
        "unresolved": unresolved,
        "granted_unused": sorted({g for g in granted if g.lower() not in used_lower}),
    }
