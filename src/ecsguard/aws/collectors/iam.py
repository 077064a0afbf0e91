"""IAM (global): every principal and policy with documents, access keys with last use, the
credential report, the password policy and the account summary."""

from __future__ import annotations

import csv
import io
import time
import urllib.parse
from typing import Any

import orjson

from ecsguard.aws.collect import CollectContext, collector
from ecsguard.aws.snapshot import IamSection

REPORT_WAIT_SECONDS = 30.0


@collector(
    "iam",
    scope="global",
    actions=[
        "iam:GetAccountAuthorizationDetails",
        "iam:ListAccessKeys",
        "iam:GetAccessKeyLastUsed",
        "iam:GenerateCredentialReport",
        "iam:GetCredentialReport",
        "iam:GetAccountPasswordPolicy",
        "iam:GetAccountSummary",
    ],
)
def collect_iam(ctx: CollectContext) -> IamSection:
    section = IamSection()
    details = ctx.pages_by(
        "iam",
        "GetAccountAuthorizationDetails",
        ("UserDetailList", "GroupDetailList", "RoleDetailList", "Policies"),
    )
    section.users = [_decode_documents(u) for u in details["UserDetailList"]]
    section.groups = [_decode_documents(g) for g in details["GroupDetailList"]]
    section.roles = [_decode_documents(r) for r in details["RoleDetailList"]]
    # AWS-managed policies nobody uses add megabytes and no evidence: keep attached ones only.
    section.policies = [
        _named(_decode_documents(p))
        for p in details["Policies"]
        if p.get("AttachmentCount", 0) > 0 or not p.get("Arn", "").startswith("arn:aws:iam::aws:")
    ]
    keys_per_user = ctx.map(lambda u: _access_keys(ctx, u["UserName"]), section.users)
    section.access_keys = [key for keys in keys_per_user for key in keys]
    section.credential_report = _credential_report(ctx)
    reply = ctx.call("iam", "GetAccountPasswordPolicy", ok=["NoSuchEntity"])
    section.password_policy = reply["PasswordPolicy"] if reply else None
    summary = ctx.call("iam", "GetAccountSummary")
    section.account_summary = summary["SummaryMap"] if summary else {}
    return section


def _named(policy: dict[str, Any]) -> dict[str, Any]:
    # Some emulators omit PolicyName; the ARN's last segment is the name by definition.
    policy.setdefault("PolicyName", policy.get("Arn", "").rsplit("/", 1)[-1])
    return policy


def _access_keys(ctx: CollectContext, user: str) -> list[dict[str, Any]]:
    keys = ctx.pages("iam", "ListAccessKeys", "AccessKeyMetadata", UserName=user)
    for key in keys:
        used = ctx.call("iam", "GetAccessKeyLastUsed", AccessKeyId=key["AccessKeyId"])
        key["LastUsed"] = used.get("AccessKeyLastUsed", {}) if used else {}
    return keys


def _credential_report(ctx: CollectContext) -> list[dict[str, Any]]:
    deadline = time.monotonic() + REPORT_WAIT_SECONDS
    pause = 0.2  # reports usually take seconds; poll quickly first, then back off
    while True:
        state = ctx.call("iam", "GenerateCredentialReport")
        if state is None:
            return []
        if state.get("State") == "COMPLETE" or time.monotonic() > deadline:
            break
        time.sleep(pause)
        pause = min(pause * 2, 5.0)
    reply = ctx.call("iam", "GetCredentialReport", ok=["ReportNotPresent", "ReportInProgress"])
    if not reply:
        return []
    return list(csv.DictReader(io.StringIO(reply["Content"])))


def _decode_documents(item: dict[str, Any]) -> dict[str, Any]:
    """Policy documents arrive URL-encoded JSON strings (boto3 decodes some, not all)."""

    def decode(doc: Any) -> Any:
        if isinstance(doc, str):
            try:
                return orjson.loads(urllib.parse.unquote(doc))
            except orjson.JSONDecodeError:
                return doc
        return doc

    for field in ("AssumeRolePolicyDocument",):
        if field in item:
            item[field] = decode(item[field])
    for listed in ("UserPolicyList", "GroupPolicyList", "RolePolicyList"):
        for policy in item.get(listed, []):
            policy["PolicyDocument"] = decode(policy.get("PolicyDocument"))
    for version in item.get("PolicyVersionList", []):
        version["Document"] = decode(version.get("Document"))
    return item
