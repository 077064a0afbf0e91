"""Stray identities: keys in workloads, old and unused keys, unused and shared task roles, and
principals nothing maps to; CloudTrail evidence of keys used from containers."""

from __future__ import annotations

import copy
import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.posture.builders import ACCOUNT, REGION, snapshot, task_definition

from ecsguard.aws.snapshot import Snapshot
from ecsguard.core.errors import UserError
from ecsguard.iam.stray import (
    Reason,
    application_parts,
    cloudtrail_uses,
    is_private_address,
    load_cloudtrail,
    people,
    records_from,
    related_families,
    stray_identities,
    trusts_ecs_tasks,
)
from ecsguard.iam.usage import identity_map

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
ECS = f"arn:aws:ecs:{REGION}:{ACCOUNT}"
KEY_ID = "AKIAIOSFODNN7EXAMPLE"
STRATUS = (
    Path(__file__).parents[2].parent
    / "shared"
    / "testdata"
    / "cloudtrail"
    / "stratus-red-team-detonation-logs"
)


def iso(days_ago: int) -> str:
    return (NOW - timedelta(days=days_ago)).isoformat()


def role_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


def user_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:user/{name}"


def td_arn(family: str, revision: int = 1) -> str:
    return f"{ECS}:task-definition/{family}:{revision}"


def trust(*services: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": list(services)},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def role(name: str, *services: str, **fields: Any) -> dict[str, Any]:
    return {
        "RoleName": name,
        "Arn": role_arn(name),
        "Path": "/",
        "AssumeRolePolicyDocument": trust(*(services or ("ecs-tasks.amazonaws.com",))),
        **fields,
    }


def user(name: str, **fields: Any) -> dict[str, Any]:
    return {"UserName": name, "Arn": user_arn(name), "GroupList": [], **fields}


def row(name: str, password: bool = False, **fields: Any) -> dict[str, Any]:
    """A credential report row."""
    return {
        "user": name,
        "arn": user_arn(name),
        "password_enabled": str(password).lower(),
        "password_last_used": "no_information" if password else "N/A",
        "password_last_changed": iso(400) if password else "N/A",
        "user_creation_time": iso(400),
        **fields,
    }


def key(owner: str, created: int, used: int | None = None, **fields: Any) -> dict[str, Any]:
    last_used = {"LastUsedDate": iso(used)} if used is not None else {"Region": "N/A"}
    return {
        "AccessKeyId": fields.pop("AccessKeyId", KEY_ID),
        "UserName": owner,
        "Status": "Active",
        "CreateDate": iso(created),
        "LastUsed": last_used,
        **fields,
    }


def at_now(snap: Snapshot) -> Snapshot:
    return snap.model_copy(update={"collected_at": NOW})


def strays(snap: Snapshot, **kwargs: Any) -> dict[str, list[Reason]]:
    snap = at_now(snap)
    return stray_identities(snap, identity_map(snap), **kwargs)


def codes(snap: Snapshot, arn: str, **kwargs: Any) -> list[str]:
    return [r.code for r in strays(snap, **kwargs).get(arn, [])]


def service(cluster: str, name: str, td: str) -> dict[str, Any]:
    return {
        "serviceArn": f"{ECS}:service/{cluster}/{name}",
        "serviceName": name,
        "clusterArn": f"{ECS}:cluster/{cluster}",
        "taskDefinition": td,
        "launchType": "FARGATE",
    }


def served(
    *families: str,
    roles: list[dict[str, Any]],
    uses: dict[str, tuple[str, str]] | None = None,
    **iam: Any,
) -> Snapshot:
    """One service per family (cluster "c"); `uses` gives a family its (task role, execution
    role) names ("" for none); `iam` adds to the IAM section."""
    tds = []
    for family in families:
        task, execution = (uses or {}).get(family, ("", ""))
        fields: dict[str, Any] = {"taskRoleArn": role_arn(task)} if task else {}
        fields |= {"executionRoleArn": role_arn(execution)} if execution else {}
        tds.append(task_definition(family, **fields))
    return snapshot(
        iam={"roles": roles, **iam},
        ecs={
            "task_definitions": tds,
            "services": [service("c", f, td_arn(f)) for f in families],
        },
    )


# --- long-lived keys in workloads ---------------------------------------------------------------


def key_in_env(status: str = "Active", in_env: bool = True) -> Snapshot:
    env = [{"name": "AWS_ACCESS_KEY_ID", "value": KEY_ID if in_env else "none"}]
    return snapshot(
        iam={
            "users": [user("bot")],
            "access_keys": [key("bot", 10, 1, Status=status)],
            "credential_report": [row("bot")],
        },
        ecs={
            "task_definitions": [
                task_definition("report", 3, container={"name": "job", "environment": env})
            ],
            "tasks": [
                {
                    "taskArn": f"{ECS}:task/batch/1",
                    "clusterArn": f"{ECS}:cluster/batch",
                    "taskDefinitionArn": td_arn("report", 3),
                }
            ],
        },
    )


def test_a_key_in_a_task_definition_environment_is_a_long_lived_key_in_a_workload() -> None:
    (reason,) = strays(key_in_env())[user_arn("bot")]
    assert reason.code == "long_lived_key_in_workload"
    assert reason.en == (
        "long-lived access key used by a workload: key AKIAIOSFODNN7EXAMPLE in variable"
        " AWS_ACCESS_KEY_ID of container job, task definition report:3 in cluster batch"
    )
    assert "タスク定義 report:3（クラスター batch）のコンテナ job の環境変数" in reason.ja
    assert reason.evidence == (td_arn("report", 3),)
    assert reason.text("ja") == reason.ja and reason.text() == reason.en


def test_an_inactive_key_in_an_environment_is_still_reported_as_inactive() -> None:
    (reason,) = strays(key_in_env(status="Inactive"))[user_arn("bot")]
    assert reason.en.endswith("(key inactive)") and reason.ja.endswith("（キーは無効）")


def test_a_key_nowhere_in_workloads_is_no_key_in_a_workload() -> None:
    # the user is not a person and nothing uses it: only "unmapped" remains
    assert codes(key_in_env(in_env=False), user_arn("bot")) == ["unmapped"]


# --- access key age and use ---------------------------------------------------------------------


def keyed(*keys: dict[str, Any]) -> Snapshot:
    return snapshot(
        iam={
            "users": [user("ci")],
            "access_keys": list(keys),
            "credential_report": [row("ci", password=True, password_last_used=iso(1))],
        }
    )


def test_an_active_key_older_than_90_days_is_reported() -> None:
    (reason,) = strays(keyed(key("ci", 120, used=1)))[user_arn("ci")]
    assert reason.code == "key_older_than_90_days"
    assert reason.en == f"active access keys older than 90 days: {KEY_ID} (120 days old)"
    assert reason.ja == f"90 日を超えた有効なアクセスキー: {KEY_ID}（作成から 120 日）"


def test_young_and_inactive_keys_are_not_reported() -> None:
    assert strays(keyed(key("ci", 90, used=1))) == {}
    assert strays(keyed(key("ci", 400, used=200, Status="Inactive"))) == {}


def test_a_key_unused_for_90_days_is_reported_and_never_used_counts_from_creation() -> None:
    old_unused = key("ci", 80, used=None, AccessKeyId="AKIAOLDNEVERUSED0001")
    idle = key("ci", 80, used=None, AccessKeyId="AKIAIDLEIDLEIDLE0002")
    snap = keyed(key("ci", 300, used=95), idle, old_unused)
    (age, unused) = strays(snap)[user_arn("ci")]
    assert age.code == "key_older_than_90_days"
    assert unused.code == "key_unused_90_days"
    assert unused.en == (
        f"active access keys unused for 90 days or more: {KEY_ID} (last used 95 days ago)"
    )
    never = strays(keyed(key("ci", 90, used=None)))[user_arn("ci")]
    assert [r.en for r in never] == [
        f"active access keys unused for 90 days or more: {KEY_ID} (never used, created 90 days ago)"
    ]
    assert "未使用、作成から 90 日" in never[0].ja


def test_keys_come_from_the_credential_report_when_not_listed() -> None:
    snap = snapshot(
        iam={
            "users": [user("ci")],
            "credential_report": [
                row(
                    "ci",
                    password=True,
                    password_last_used=iso(1),
                    access_key_1_active="true",
                    access_key_1_last_rotated=iso(200),
                    access_key_1_last_used_date="N/A",
                    access_key_2_active="false",
                )
            ],
        }
    )
    assert [r.evidence for r in strays(snap)[user_arn("ci")]] == [
        ("access key 1",),
        ("access key 1",),
    ]


def test_now_defaults_to_the_snapshot_time_and_may_be_naive() -> None:
    snap = keyed(key("ci", 120, used=1))
    later = (NOW + timedelta(days=400)).replace(tzinfo=None)
    assert codes(snap, user_arn("ci")) == ["key_older_than_90_days"]
    reasons = strays(snap, now=later)[user_arn("ci")]
    # 400 days on, the person has not logged in either: unmapped joins
    assert [r.code for r in reasons] == ["key_older_than_90_days", "key_unused_90_days", "unmapped"]


# --- unused task roles --------------------------------------------------------------------------


def test_a_role_trusted_by_ecs_tasks_that_no_current_task_definition_uses() -> None:
    snap = snapshot(
        iam={"roles": [role("old-task"), role("new-task")]},
        ecs={
            "task_definitions": [
                task_definition("job", 1, taskRoleArn=role_arn("old-task")),
                task_definition("job", 2, taskRoleArn=role_arn("new-task")),
            ]
        },
    )
    found = strays(snap)
    (reason,) = found[role_arn("old-task")]
    assert reason.code == "ecs_task_role_unused"  # and not also "unmapped"
    assert reason.en.endswith("(only older revisions: job:1)")
    assert reason.evidence == (td_arn("job", 1),)
    assert role_arn("new-task") not in found


def test_an_execution_role_use_counts_and_other_trusts_are_not_task_roles() -> None:
    snap = served(
        "web",
        roles=[role("web-exec"), role("lambda-fn", "lambda.amazonaws.com")],
        uses={"web": ("", "web-exec")},
    )
    found = strays(snap)
    assert role_arn("web-exec") not in found
    assert [r.code for r in found[role_arn("lambda-fn")]] == ["unmapped"]


def test_trust_policy_reading() -> None:
    assert trusts_ecs_tasks(role("a"))
    assert trusts_ecs_tasks(role("b", "ec2.amazonaws.com", "ecs-tasks.amazonaws.com"))
    assert not trusts_ecs_tasks(role("c", "ec2.amazonaws.com"))
    deny = trust("ecs-tasks.amazonaws.com")
    deny["Statement"][0]["Effect"] = "Deny"
    assert not trusts_ecs_tasks(role("d", AssumeRolePolicyDocument=deny))
    assert not trusts_ecs_tasks({"RoleName": "e", "Arn": role_arn("e")})  # no document


# --- shared task roles --------------------------------------------------------------------------


def test_a_task_role_shared_by_unrelated_applications() -> None:
    snap = served(
        "api",
        "orders",
        "staging-orders",
        roles=[role("shared-task")],
        uses={f: ("shared-task", "") for f in ("api", "orders", "staging-orders")},
    )
    (reason,) = strays(snap)[role_arn("shared-task")]
    assert reason.code == "task_role_shared"
    assert reason.en == (
        "task role shared by 2 unrelated applications: api (c/api), orders (c/orders),"
        " staging-orders (c/staging-orders)"
    )
    assert reason.evidence == ("api", "orders", "staging-orders")


def test_a_task_role_shared_by_environments_of_one_application_is_fine() -> None:
    snap = served(
        "api",
        "staging-api",
        "api-worker",
        roles=[role("api-task")],
        uses={f: ("api-task", "") for f in ("api", "staging-api", "api-worker")},
    )
    assert strays(snap) == {}


def test_shared_execution_roles_are_not_task_role_sharing() -> None:
    snap = served(
        "api",
        "orders",
        roles=[role("exec"), role("a-task"), role("o-task")],
        uses={"api": ("a-task", "exec"), "orders": ("o-task", "exec")},
    )
    assert strays(snap) == {}


@pytest.mark.parametrize(
    ("first", "second", "related"),
    [
        ("staging-api", "api", True),
        ("api", "prod_api", True),
        ("web-frontend", "staging-web-frontend", True),
        ("orders", "orders-worker", True),
        ("frontend", "web-frontend", True),
        ("staging-api", "staging-orders", False),
        ("api", "orders", False),
        ("web-frontend", "web-backend", False),
        ("staging", "prod", False),  # only environment words: compared as they are
    ],
)
def test_related_families(first: str, second: str, related: bool) -> None:
    assert related_families(first, second) is related
    assert related_families(second, first) is related


def test_application_parts() -> None:
    assert application_parts("Staging_Web.Frontend") == ("web", "frontend")
    assert application_parts("prod") == ("prod",)


# --- unmapped principals ------------------------------------------------------------------------


def test_people_are_users_with_recent_console_use() -> None:
    snap = at_now(
        snapshot(
            iam={
                "users": [user(n) for n in ("active", "new", "gone", "keys-only")],
                "credential_report": [
                    row("active", password=True, password_last_used=iso(3)),
                    row("new", password=True, password_last_changed=iso(10)),
                    row("gone", password=True, password_last_used=iso(200)),
                    row("keys-only"),
                ],
            }
        )
    )
    assert people(snap) == {
        user_arn("active"): "console login 3 days ago",
        user_arn("new"): "console password set 10 days ago",
    }
    found = stray_identities(snap, identity_map(snap))
    assert sorted(found) == [user_arn("gone"), user_arn("keys-only")]
    (reason,) = found[user_arn("gone")]
    assert reason.code == "unmapped"
    assert reason.to_dict() == {
        "code": "unmapped",
        "en": "no service uses this user and no person signs in with it (no console login in"
        " 90 days)",
        "ja": "このユーザーを使うサービスがなく、90 日間コンソールへのログインもない",
        "evidence": [],
    }


def test_a_user_without_a_credential_report_row_is_not_judged() -> None:
    assert strays(snapshot(iam={"users": [user("unknown")]})) == {}


def test_reserved_recently_used_and_mapped_roles_are_not_unmapped() -> None:
    roles = [
        role(
            "AWSServiceRoleForECS", "ecs.amazonaws.com", Path="/aws-service-role/ecs.amazonaws.com/"
        ),
        role("AWSReservedSSO_Admin", "sso.amazonaws.com", Path="/aws-reserved/sso.amazonaws.com/"),
        role("lambda-recent", "lambda.amazonaws.com", RoleLastUsed={"LastUsedDate": iso(5)}),
        role("lambda-stale", "lambda.amazonaws.com", RoleLastUsed={"LastUsedDate": iso(95)}),
        role("web-task"),
    ]
    snap = served("web", roles=roles, uses={"web": ("web-task", "")})
    assert list(strays(snap)) == [role_arn("lambda-stale")]


def test_an_administrators_incidental_deploy_right_does_not_map_it() -> None:
    admin = user(
        "old-admin",
        UserPolicyList=[
            {
                "PolicyName": "all",
                "PolicyDocument": {
                    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]
                },
            }
        ],
    )
    snap = served(
        "web",
        roles=[role("web-task")],
        uses={"web": ("web-task", "")},
        users=[admin],
        credential_report=[row("old-admin")],
    )
    assert codes(snap, user_arn("old-admin")) == ["unmapped"]


def instance_role_estate(profile_known: bool) -> Snapshot:
    profile = f"arn:aws:iam::{ACCOUNT}:instance-profile/host"
    instance: dict[str, Any] = {"InstanceId": "i-1"}
    instance |= {"IamInstanceProfile": {"Arn": profile}} if profile_known else {}
    host = role("host", "ec2.amazonaws.com", InstanceProfileList=[{"Arn": profile}])
    return snapshot(
        iam={"roles": [host, role("spare-host", "ec2.amazonaws.com", InstanceProfileList=[{}])]},
        ecs={
            "container_instances": [
                {
                    "containerInstanceArn": f"{ECS}:container-instance/c/1",
                    "clusterArn": f"{ECS}:cluster/c",
                    "ec2InstanceId": "i-1",
                }
            ]
        },
        ec2={"instances": [instance]},
    )


def test_instance_roles_are_not_called_unmapped_while_an_instance_role_is_unknown() -> None:
    assert list(strays(instance_role_estate(profile_known=True))) == [role_arn("spare-host")]
    assert strays(instance_role_estate(profile_known=False)) == {}


# --- CloudTrail ---------------------------------------------------------------------------------


def call(
    agent: str = "aws-cli/2.15",
    source: str = "203.0.113.7",
    key_id: str = KEY_ID,
    kind: str = "IAMUser",
    time: str = "2025-05-30T01:00:00Z",
    account: str = ACCOUNT,
) -> dict[str, Any]:
    return {
        "eventTime": time,
        "eventSource": "s3.amazonaws.com",
        "eventName": "PutObject",
        "userAgent": agent,
        "sourceIPAddress": source,
        "userIdentity": {
            "type": kind,
            "accessKeyId": key_id,
            "arn": f"arn:aws:iam::{account}:user/bot",
            "accountId": account,
        },
    }


FARGATE_SDK = "aws-sdk-java/2.25.1 Linux/5.10 OpenJDK_64-Bit_Server_VM exec-env/AWS_ECS_FARGATE"


def test_cloudtrail_calls_from_containers_or_private_addresses_are_workload_evidence() -> None:
    records = [
        call(agent=FARGATE_SDK, time="2025-05-30T02:00:00Z"),
        call(agent="Boto3/1.34 md/Botocore#1.34 exec-env/AWS_ECS_EC2", time="2025-05-29T00:00:00Z"),
        call(source="10.20.10.4"),
        call(source="172.31.0.9", key_id="AKIAOTHERKEY00000001"),
        call(),  # a laptop: public address, no ECS user agent
        call(agent=FARGATE_SDK, key_id="ASIATEMPORARYKEY0001"),  # a session key
        call(agent=FARGATE_SDK, kind="AssumedRole"),  # a role's credentials
        "not a record",
        {"userIdentity": "broken"},
    ]
    found = cloudtrail_uses(records)
    assert list(found) == ["AKIAIOSFODNN7EXAMPLE", "AKIAOTHERKEY00000001"]
    evidence = found[KEY_ID]
    assert evidence.calls == 3
    assert evidence.signals == ("ECS user agent", "private address")
    assert (evidence.first_seen, evidence.last_seen) == (
        "2025-05-29T00:00:00Z",
        "2025-05-30T02:00:00Z",
    )
    assert evidence.user_arn == user_arn("bot") and evidence.account == ACCOUNT
    assert "10.20.10.4" in evidence.source_ips


@pytest.mark.parametrize(
    ("text", "private"),
    [
        ("10.0.0.1", True),
        ("172.16.5.4", True),
        ("172.32.0.1", False),
        ("192.168.1.1", True),
        ("203.0.113.9", False),
        ("035.249.253.232", False),  # leading zeros, as in anonymised logs: not an address
        ("ecs-tasks.amazonaws.com", False),
        ("fd00::1", False),
        ("", False),
    ],
)
def test_private_addresses(text: str, private: bool) -> None:
    assert is_private_address(text) is private


def test_cloudtrail_evidence_marks_the_keys_owner() -> None:
    snap = snapshot(
        iam={
            "users": [user("bot")],
            "access_keys": [key("bot", 10, 1)],
            "credential_report": [row("bot", password=True, password_last_used=iso(1))],
        }
    )
    evidence = cloudtrail_uses([call(agent=FARGATE_SDK)])
    (reason,) = strays(snap, cloudtrail=evidence)[user_arn("bot")]
    assert reason.code == "long_lived_key_in_workload"
    assert "CloudTrail: key AKIAIOSFODNN7EXAMPLE made 1 call with" in reason.en
    assert "ECS のユーザーエージェント" in reason.ja
    assert reason.evidence == (KEY_ID,)


def test_cloudtrail_keys_unknown_to_the_snapshot_use_the_records_identity_in_this_account() -> None:
    person = row("bot", password=True, password_last_used=iso(1))
    snap = snapshot(iam={"users": [user("bot")], "credential_report": [person]})
    mine = cloudtrail_uses([call(agent=FARGATE_SDK)])
    theirs = cloudtrail_uses([call(agent=FARGATE_SDK, account="999999999999")])
    assert [r.code for r in strays(snap, cloudtrail=mine)[user_arn("bot")]] == [
        "long_lived_key_in_workload"
    ]
    assert strays(snap, cloudtrail=theirs) == {}


def stratus_records(name: str) -> list[Any]:
    if not STRATUS.is_dir():
        pytest.skip(f"public test data not found at {STRATUS} (see ../shared/testdata/README.md)")
    return load_cloudtrail(STRATUS / name)


def test_stratus_red_team_logs_show_no_workload_keys() -> None:
    """Attack detonations from a laptop (public addresses, the Stratus user agent): IAM user keys,
    but nothing from a container."""
    records = [
        r
        for name in (
            "aws.execution.ssm-send-command.json",
            "aws.credential-access.secretsmanager-retrieve-secrets.json",
            "aws.impact.bedrock-invoke-model.json",
            "aws.persistence.iam-create-admin-user.json",
        )
        for r in stratus_records(name)
    ]
    assert any(r["userIdentity"].get("accessKeyId", "").startswith("AKIA") for r in records)
    assert cloudtrail_uses(records) == {}


def test_stratus_calls_replayed_from_a_fargate_task_are_workload_evidence() -> None:
    records = copy.deepcopy(stratus_records("aws.execution.ssm-send-command.json"))
    for record in records:
        record["userAgent"] = FARGATE_SDK
    found = cloudtrail_uses(records)
    (key_id,) = found
    assert found[key_id].calls == len(records) == 56
    assert found[key_id].account == records[0]["userIdentity"]["accountId"]


# --- reading CloudTrail files -------------------------------------------------------------------


def test_records_from_accepts_the_three_shapes() -> None:
    record = call()
    assert records_from({"Records": [record]}, "f") == [record]
    assert records_from([record], "f") == [record]
    assert records_from(record, "f") == [record]
    with pytest.raises(UserError, match=r"f\.json holds no CloudTrail records"):
        records_from({"something": "else"}, "f.json")


def test_load_cloudtrail_reads_files_gzip_and_directories(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"Records": [call(time="1")]}))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.json.gz").write_bytes(gzip.compress(json.dumps([call()]).encode()))
    (tmp_path / "notes.txt").write_text("ignored")
    assert len(load_cloudtrail(tmp_path)) == 2
    assert load_cloudtrail(tmp_path / "a.json")[0]["eventTime"] == "1"


def test_load_cloudtrail_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_cloudtrail(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match=r"bad\.json is not valid JSON"):
        load_cloudtrail(bad)
    broken = tmp_path / "broken.json.gz"
    broken.write_bytes(b"\x1f\x8b" + b"garbage")
    with pytest.raises(UserError, match=r"cannot read CloudTrail file .*broken\.json\.gz"):
        load_cloudtrail(broken)


# --- the demo estate ----------------------------------------------------------------------------


def test_demo_strays(demo_snapshot: Snapshot) -> None:
    found = stray_identities(demo_snapshot, identity_map(demo_snapshot))
    account = demo_snapshot.account
    bot = f"arn:aws:iam::{account}:user/legacy-batch-bot"
    assert "long_lived_key_in_workload" in [r.code for r in found[bot]]
    # each service's own task and execution roles are well configured: none is stray
    services = (
        "web-frontend",
        "api",
        "payments",
        "orders",
        "auth",
        "notifications",
        "admin-portal",
        "search",
        "orders-worker",
        "email-worker",
        "image-resizer",
        "nightly-report",
    )
    for name in services:
        for suffix in ("task", "execution"):
            assert f"arn:aws:iam::{account}:role/{name}-{suffix}" not in found
    for name in ("ecs-events", "ecs-instance", "cloudtrail-to-logs", "staging-execution"):
        assert f"arn:aws:iam::{account}:role/{name}" not in found
    assert f"arn:aws:iam::{account}:user/ci-deployer" not in found
    # the staging services share one task role across three applications (the estate says so)
    assert [r.code for r in found[f"arn:aws:iam::{account}:role/staging-task"]] == [
        "task_role_shared"
    ]
    assert set(found) == {bot, f"arn:aws:iam::{account}:role/staging-task"}
