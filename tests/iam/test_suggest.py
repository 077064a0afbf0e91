"""Policies from CloudTrail: what a principal used, what it was granted and never used."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from ecsguard.core.errors import UserError
from ecsguard.iam.suggest import actor, read_cloudtrail, suggest

ROLE = "arn:aws:iam::123456789012:role/ci-deploy"
STRATUS = Path(__file__).parents[2].parent / "shared" / "testdata" / "cloudtrail"


def record(
    name: str,
    source: str = "ecs.amazonaws.com",
    error: str | None = None,
    resources: list[str] | None = None,
) -> dict[str, object]:
    item: dict[str, object] = {
        "eventSource": source,
        "eventName": name,
        "userIdentity": {
            "type": "AssumedRole",
            "arn": "arn:aws:sts::123456789012:assumed-role/ci-deploy/run-42",
            "sessionContext": {"sessionIssuer": {"arn": ROLE}},
        },
    }
    if error:
        item["errorCode"] = error
    if resources:
        item["resources"] = [{"ARN": arn} for arn in resources]
    return item


def test_policy_from_successful_calls_only() -> None:
    svc = "arn:aws:ecs:ap-northeast-1:123456789012:service/prod/api"
    records = [
        record("UpdateService", resources=[svc]),
        record("UpdateService", resources=[svc]),
        record("ListClusters"),
        record("DeleteCluster", error="AccessDenied"),
        record("DescribeServices"),  # supports resources, but the record names none
    ]
    result = suggest(ROLE, records, granted=["ecs:UpdateService", "ecs:DeleteService"])
    statements = {tuple(s["Action"]): s["Resource"] for s in result["policy"]["Statement"]}
    assert statements[("ecs:UpdateService",)] == svc
    assert statements[("ecs:DescribeServices", "ecs:ListClusters")] == "*"
    assert result["unresolved"] == ["ecs:DescribeServices"]
    assert result["granted_unused"] == ["ecs:DeleteService"]
    assert {u["action"]: u["calls"] for u in result["used"]}["ecs:UpdateService"] == 2


def test_actor_of_users_and_roles() -> None:
    assert actor(record("X")) == ROLE
    assert actor({"userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::1:user/bob"}}) == (
        "arn:aws:iam::1:user/bob"
    )


def test_read_files_and_directories(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"Records": [record("ListClusters")]}))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.json.gz").write_bytes(
        gzip.compress(json.dumps({"Records": [record("ListServices")]}).encode())
    )
    assert [r["eventName"] for r in read_cloudtrail(tmp_path)] == ["ListClusters", "ListServices"]


def test_bad_files_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    with pytest.raises(UserError, match=r"bad\.json is not valid JSON"):
        list(read_cloudtrail(bad))
    with pytest.raises(UserError, match="does not exist"):
        list(read_cloudtrail(tmp_path / "none"))


@pytest.mark.skipif(not STRATUS.exists(), reason="shared test data not present")
def test_real_attack_logs() -> None:
    records = list(read_cloudtrail(STRATUS / "stratus-red-team-detonation-logs"))
    assert len(records) > 100
    ok = [r for r in records if not r.get("errorCode") and actor(r)]
    busiest = max({actor(r) for r in ok}, key=lambda a: sum(actor(r) == a for r in ok))
    result = suggest(busiest, records)
    assert result["policy"]["Statement"] and all(u["calls"] for u in result["used"])
