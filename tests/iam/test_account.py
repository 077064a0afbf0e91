"""The account analysis (`ecsguard iam report`): its JSON shape, findings, CloudTrail evidence,
the offline `get-account-authorization-details` input, speed, and the demo estate."""

from __future__ import annotations

import gzip
import json
import time
import urllib.parse
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.iam.test_escalation import (
    ADMIN_ROLE,
    DEPLOY,
    ECS,
    ECS_TASKS,
    account,
    allow,
    arn,
    group,
    role,
    service,
    task,
    trust,
    user,
)
from tests.posture.builders import task_definition

from ecsguard.aws.snapshot import Snapshot
from ecsguard.core.errors import UserError
from ecsguard.demo.seed import load_estate
from ecsguard.iam.account import analyze_account, snapshot_from_authorization_details
from ecsguard.iam.stray import cloudtrail_uses
from ecsguard.iam.usage import identity_map

KEY_ID = "AKIAIOSFODNN7EXAMPLE"
PRINCIPAL_KEYS = {
    "arn",
    "name",
    "type",
    "tier",
    "role",
    "base_tier",
    "tier_reasons",
    "tier_reasons_ja",
    "admin_equivalent",
    "admin_equivalent_conditional",
    "escalation_paths",
    "reachable_by",
    "stray_reasons",
    "used_by",
    "last_used",
    "access_levels",
    "findings",
    "missing_policies",
}
LIST_KEYS = (
    "tier_reasons",
    "escalation_paths",
    "reachable_by",
    "stray_reasons",
    "used_by",
    "findings",
    "missing_policies",
)


def report_row(name: str, password: bool, mfa: bool = False) -> dict[str, Any]:
    return {
        "user": name,
        "arn": arn("user", name),
        "password_enabled": str(password).lower(),
        "password_last_used": "2026-05-30T00:00:00+00:00" if password else "N/A",
        "mfa_active": str(mfa).lower(),
        "user_creation_time": "2025-01-01T00:00:00+00:00",
        "access_key_1_active": "false",
        "access_key_2_active": "false",
    }


def small_estate() -> Snapshot:
    """A deployer, an administrator task role, a reader, a group."""
    td = task_definition("mail", taskRoleArn=arn("role", "admin-task"))
    return account(
        users=[
            user("ci", DEPLOY, allow("iam:PassRole")),
            user("reader", groups=("readers",)),
        ],
        roles=[ADMIN_ROLE, role("quiet-task")],
        groups=[group("readers", allow("ecs:Describe*"))],
        ecs={"task_definitions": [td], "services": [service("mail", "mail")]},
        credential_report=[report_row("reader", password=True)],
    )


def by_name(analysis: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in analysis["principals"]}


# ---------------------------------------------------------------------------------------------
# the shape


def test_every_principal_has_every_key_and_lists_are_never_missing() -> None:
    analysis = analyze_account(small_estate())
    assert [p["name"] for p in analysis["principals"]] == [
        "ci",
        "reader",
        "admin-task",
        "quiet-task",
        "readers",
    ], "users, roles, groups, each by name"
    for principal in analysis["principals"]:
        assert set(principal) == PRINCIPAL_KEYS
        assert all(isinstance(principal[key], list) for key in LIST_KEYS)
        assert principal["type"] in ("user", "role", "group")
    quiet = by_name(analysis)["quiet-task"]
    assert quiet["escalation_paths"] == [] and quiet["findings"] == []
    assert quiet["access_levels"] == {} and quiet["last_used"] is None


def test_summary_headline_figures() -> None:
    summary = analyze_account(small_estate())["summary"]
    assert summary["principals"] == 5
    assert summary["by_tier"] == {
        "over-privileged": 2,
        "iam-admin": 0,
        "service-admin": 0,
        "service-user": 1,
        "unrelated": 2,
    }
    assert summary["by_role"] == {"deployer": 0, "operator": 0, "ci": 0, "workload": 1}
    assert summary["admin_equivalent"] == 2
    assert summary["admin_equivalent_outside_iam_admin"] == 2
    assert summary["escalation_paths"] == 1
    assert summary["principals_with_escalation_paths"] == 1
    assert summary["stray"] == 1  # quiet-task: no task definition uses it
    assert summary["now"] == "2026-06-01T00:00:00+00:00"


def test_the_analysis_is_json_and_deterministic() -> None:
    snap = small_estate()
    first, second = analyze_account(snap), analyze_account(snap)
    assert orjson.dumps(first) == orjson.dumps(second)
    assert json.loads(orjson.dumps(first)) == first


def test_paths_uses_reachability_and_access_levels() -> None:
    found = by_name(analyze_account(small_estate()))
    ci = found["ci"]
    assert ci["tier"] == "over-privileged" and ci["base_tier"] == "service-user/deployer"
    (path,) = ci["escalation_paths"]
    assert path["method"] == "ecs-deploy-passrole" and path["gains"] == "admin-equivalent"
    assert found["admin-task"]["reachable_by"] == [
        {
            "principal": arn("user", "ci"),
            "name": "ci",
            "type": "user",
            "method": "ecs-deploy-passrole",
            "conditional": False,
        }
    ]
    kinds = {u["kind"] for u in found["admin-task"]["used_by"]}
    assert "task_role" in kinds
    assert found["ci"]["access_levels"]["ecs"] == {"Write": 2}


def test_findings_about_a_principal_are_attached_to_it() -> None:
    found = by_name(analyze_account(small_estate()))
    assert [f["check_id"] for f in found["reader"]["findings"]] == ["iam.user_console_mfa"]
    assert [f["check_id"] for f in found["admin-task"]["findings"]] == ["ecs.task_role_admin"]
    finding = found["admin-task"]["findings"][0]
    assert {"check_id", "severity", "title", "message", "resource_arn"} <= set(finding)
    assert finding["resource_arn"].startswith(f"{ECS}:task-definition/mail:")


def test_cloudtrail_records_or_evidence_mark_keys_used_from_containers() -> None:
    snap = account(
        users=[user("bot", allow("s3:*"))],
        access_keys=[{"AccessKeyId": KEY_ID, "UserName": "bot", "Status": "Active"}],
    )
    record = {
        "eventTime": "2026-05-30T01:00:00Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "PutObject",
        "userAgent": "aws-sdk-java/2.25 exec-env/AWS_ECS_FARGATE",
        "sourceIPAddress": "10.0.1.9",
        "userIdentity": {"type": "IAMUser", "accessKeyId": KEY_ID, "arn": arn("user", "bot")},
    }
    for cloudtrail in ([record], cloudtrail_uses([record])):
        bot = by_name(analyze_account(snap, cloudtrail=cloudtrail))["bot"]
        codes = [r["code"] for r in bot["stray_reasons"]]
        assert "long_lived_key_in_workload" in codes
    quiet = by_name(analyze_account(snap))["bot"]
    assert "long_lived_key_in_workload" not in [r["code"] for r in quiet["stray_reasons"]]


def test_now_decides_date_conditions() -> None:
    until = {"DateLessThan": {"aws:CurrentTime": "2026-03-01T00:00:00Z"}}
    snap = account(
        users=[user("ci", DEPLOY, allow("iam:PassRole", Condition=until))], roles=[ADMIN_ROLE]
    )
    before = analyze_account(snap, now=snap.collected_at.replace(month=2))
    after = analyze_account(snap)  # the snapshot's own time: June
    assert by_name(before)["ci"]["admin_equivalent"] is True
    assert by_name(after)["ci"]["escalation_paths"] == []


# ---------------------------------------------------------------------------------------------
# get-account-authorization-details


def authorization_details() -> dict[str, Any]:
    trust_doc = trust(ECS_TASKS)
    return {
        "UserDetailList": [
            {
                "UserName": "ci",
                "Arn": arn("user", "ci"),
                "GroupList": [],
                "UserPolicyList": [
                    {
                        "PolicyName": "deploy",
                        # the raw API sends documents URL-encoded; the CLI decodes them
                        "PolicyDocument": urllib.parse.quote(
                            json.dumps(
                                {
                                    "Version": "2012-10-17",
                                    "Statement": [
                                        DEPLOY,
                                        allow("iam:PassRole"),
                                    ],
                                }
                            )
                        ),
                    }
                ],
                "AttachedManagedPolicies": [],
            }
        ],
        "GroupDetailList": [],
        "RoleDetailList": [
            {
                "RoleName": "admin-task",
                "Arn": arn("role", "admin-task"),
                "AssumeRolePolicyDocument": trust_doc,
                "RolePolicyList": [],
                "AttachedManagedPolicies": [
                    {"PolicyName": "everything", "PolicyArn": arn("policy", "everything")}
                ],
            }
        ],
        "Policies": [
            {
                "Arn": arn("policy", "everything"),
                "DefaultVersionId": "v1",
                "PolicyVersionList": [
                    {
                        "VersionId": "v1",
                        "IsDefaultVersion": True,
                        "Document": {"Version": "2012-10-17", "Statement": [allow("*")]},
                    }
                ],
            }
        ],
    }


def test_authorization_details_make_an_iam_only_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "gaad.json"
    path.write_text(json.dumps(authorization_details()))
    snap = snapshot_from_authorization_details(path)
    assert snap.account == "123456789012" and snap.regions == {}
    assert snap.iam.policies[0]["PolicyName"] == "everything"
    found = by_name(analyze_account(snap))
    assert found["admin-task"]["tier"] == "over-privileged"
    assert found["ci"]["escalation_paths"][0]["method"] == "ecs-deploy-passrole"
    assert found["ci"]["used_by"] == []  # no regions: nothing uses anything
    assert [f["check_id"] for f in found["ci"]["findings"]] == ["iam.user_direct_policies"]


def test_authorization_details_gzip_and_pages(tmp_path: Path) -> None:
    details = authorization_details()
    pages = [
        {"UserDetailList": details["UserDetailList"], "IsTruncated": True},
        {key: details[key] for key in ("RoleDetailList", "Policies")},
    ]
    path = tmp_path / "gaad.json.gz"
    path.write_bytes(gzip.compress(json.dumps(pages).encode()))
    snap = snapshot_from_authorization_details(path)
    assert [u["UserName"] for u in snap.iam.users] == ["ci"]
    assert [r["RoleName"] for r in snap.iam.roles] == ["admin-task"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "is not valid JSON"),
        (b'{"Users": []}', "is not the output of `aws iam get-account-authorization-details`"),
        (b"[]", "is not the output of"),
        (b'{"UserDetailList": {"a": 1}}', "UserDetailList is not a list of objects"),
        (b"\x1f\x8b not really gzip", "is a damaged gzip file"),
    ],
)
def test_bad_authorization_details_name_the_file(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "gaad.json"
    path.write_bytes(content)
    with pytest.raises(UserError) as caught:
        snapshot_from_authorization_details(path)
    assert message in str(caught.value) and str(path) in str(caught.value)


def test_a_missing_authorization_details_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"cannot read .*nope\.json"):
        snapshot_from_authorization_details(tmp_path / "nope.json")


# ---------------------------------------------------------------------------------------------
# speed


def big_account(principals: int = 1000) -> Snapshot:
    """Groups of deployers, operators and readers, their users, task roles (some running, some
    with ECS Exec), CI roles trusted by an OIDC provider, one administrator task role."""
    roles_n, users_n = principals * 55 // 100, principals * 40 // 100
    groups_n = principals - roles_n - users_n
    pass_tasks = allow(
        "iam:PassRole",
        arn("role", "*-task"),
        Condition={"StringEquals": {"iam:PassedToService": ECS_TASKS}},
    )
    kinds = [
        (allow(["ecs:RegisterTaskDefinition", "ecs:UpdateService", "ecs:Describe*"]), pass_tasks),
        (allow(["ecs:UpdateService", "ecs:StopTask", "ecs:ExecuteCommand", "ecs:Describe*"]),),
        (allow(["ecs:Describe*", "ecs:List*", "cloudwatch:Get*"]),),
        (allow(["s3:GetObject", "s3:PutObject"], "arn:aws:s3:::data/*"),),
    ]
    groups = [group(f"g{n:03}", *kinds[n % len(kinds)]) for n in range(groups_n)]
    users = [
        user(
            f"u{n:04}",
            *([allow("sqs:SendMessage", f"arn:aws:sqs:{n}")] if n % 5 == 0 else []),
            groups=(f"g{n % groups_n:03}",),
        )
        for n in range(users_n)
    ]
    oidc = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    roles, tds, services, tasks = [], [], [], []
    for n in range(roles_n):
        if n % 50 == 0:
            roles.append(role(f"ci{n:03}", *kinds[0], trusted=trust(federated=oidc)))
            continue
        name = "admin-task" if n == 1 else f"app{n:03}-task"
        rights = ["*"] if n == 1 else ["sqs:SendMessage", "ssmmessages:*"]
        roles.append(role(name, allow(rights)))
        if n % 3 == 1:
            tds.append(task_definition(f"app{n:03}", taskRoleArn=arn("role", name)))
            exec_on = n % 2 == 0
            services.append(service(f"app{n:03}", f"app{n:03}", enableExecuteCommand=exec_on))
            tasks.append(task(f"app{n:03}", f"app{n:03}"))
    ecs = {
        "clusters": [{"clusterArn": f"{ECS}:cluster/prod", "clusterName": "prod"}],
        "task_definitions": tds,
        "services": services,
        "tasks": tasks,
    }
    return account(users=users, roles=roles, groups=groups, ecs=ecs)


def test_a_thousand_principals_in_a_few_seconds() -> None:
    snap = big_account(1000)
    analyze_account(account(users=[user("warm-up", allow("*"))]))  # the action database
    started = time.monotonic()
    summary = analyze_account(snap)["summary"]
    elapsed = time.monotonic() - started
    assert summary["principals"] == 1000
    assert summary["admin_equivalent"] > 100, "deployers and operators reach admin-task"
    assert elapsed < 10, f"{elapsed:.1f} s"


# ---------------------------------------------------------------------------------------------
# the demo estate


@pytest.fixture(scope="module")
def demo_analysis(demo_snapshot: Snapshot) -> dict[str, Any]:
    return analyze_account(demo_snapshot)


@pytest.fixture(scope="module")
def demo(demo_analysis: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return by_name(demo_analysis)


@pytest.fixture(scope="module")
def intended() -> dict[tuple[str, str], str]:
    iam = load_estate()["iam"]
    return {
        (kind, item["name"]): item["tier"]
        for kind, key in (("user", "users"), ("group", "groups"), ("role", "roles"))
        for item in iam[key]
    }


def test_every_principal_is_in_the_tier_the_estate_intends(
    demo: dict[str, dict[str, Any]], intended: dict[tuple[str, str], str]
) -> None:
    found = {
        (p["type"], name): p["tier"] + (f"/{p['role']}" if p["role"] else "")
        for name, p in demo.items()
    }
    assert set(found) == set(intended), "every principal has a tier in estate.yaml"
    wrong = {key: (intended[key], found[key]) for key in found if found[key] != intended[key]}
    assert wrong == {}


def test_planted_iam_problems_are_found(demo: dict[str, dict[str, Any]]) -> None:
    # everyone-administrator
    developers = demo["developers"]
    assert developers["tier"] == "over-privileged" and developers["admin_equivalent"]
    assert all(demo[u]["admin_equivalent"] for u in ("sato.hiroshi", "ito.mai", "yamamoto.aya"))
    # task-role-administrator, and who can run code as it
    notifications = demo["notifications-task"]
    assert notifications["tier"] == "over-privileged"
    assert notifications["base_tier"] == "service-user/workload"
    reachers = {r["name"] for r in notifications["reachable_by"] if not r["conditional"]}
    assert {"ci-deployer", "service-admin", "ecs-events"} <= reachers
    # stray-iam-user (and its key in the nightly-report environment)
    bot = demo["legacy-batch-bot"]
    assert "long_lived_key_in_workload" in [r["code"] for r in bot["stray_reasons"]]
    assert bot["tier"] == "unrelated"
    # shared-staging-task-role
    staging = demo["staging-task"]
    assert [r["code"] for r in staging["stray_reasons"]] == ["task_role_shared"]
    # console-user-without-mfa stays a posture finding
    assert "iam.user_console_mfa" in [f["check_id"] for f in demo["watanabe.ryo"]["findings"]]


def test_planted_entries_for_the_iam_report_are_found(demo: dict[str, dict[str, Any]]) -> None:
    """Planted mistakes that no posture check reports (`found_by: iam-report`) are stray or
    over-privileged principals in the analysis."""
    entries = [e for e in load_estate()["planted"] if e.get("found_by") == "iam-report"]
    assert entries, "estate.yaml marks the IAM report's planted entries"
    for entry in entries:
        kind, _, name = entry["where"].partition(":")
        assert kind in ("iam_user", "iam_role", "iam_group"), entry["id"]
        principal = demo[name]
        assert principal["stray_reasons"] or principal["tier"] == "over-privileged", entry["id"]


def test_the_demo_headline(demo_analysis: dict[str, Any]) -> None:
    summary, iam = demo_analysis["summary"], load_estate()["iam"]
    assert summary["principals"] == sum(len(iam[k]) for k in ("users", "roles", "groups"))
    assert summary["admin_equivalent"] == summary["by_tier"]["over-privileged"] + 2
    assert summary["admin_equivalent_outside_iam_admin"] == summary["by_tier"]["over-privileged"]
    assert summary["stray"] == 2


def test_the_demo_is_analysed_in_under_a_second(demo_snapshot: Snapshot) -> None:
    analyze_account(demo_snapshot)  # compiled patterns and the action database, once
    started = time.monotonic()
    analyze_account(demo_snapshot)
    assert time.monotonic() - started < 1.0


def test_uses_are_the_identity_maps(demo_snapshot: Snapshot, demo: dict[str, Any]) -> None:
    usage = identity_map(demo_snapshot)
    for principal in demo.values():
        assert principal["used_by"] == [u.to_dict() for u in usage.uses_of(principal["arn"])]
