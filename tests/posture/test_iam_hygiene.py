"""Account IAM hygiene: root user, console MFA, password policy, credentials, policies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.posture.builders import ACCOUNT, findings, snapshot

from ecsguard.aws.snapshot import Gap, Snapshot
from ecsguard.core.models import Status

ROOT_ARN = f"arn:aws:iam::{ACCOUNT}:root"
NOW = datetime(2025, 6, 1, tzinfo=UTC)
ADMIN_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"


def ago(days: int) -> str:
    return (NOW - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def report_ago(days: int) -> str:
    """Credential report dates carry an offset instead of Z."""
    return (NOW - timedelta(days=days)).isoformat()


def user_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:user/{name}"


def row(user: str, **fields: str) -> dict[str, str]:
    base = {
        "user": user,
        "arn": ROOT_ARN if user == "<root_account>" else user_arn(user),
        "user_creation_time": report_ago(400),
        "password_enabled": "false",
        "password_last_used": "N/A",
        "password_last_changed": "N/A",
        "mfa_active": "false",
        "access_key_1_active": "false",
        "access_key_1_last_rotated": "N/A",
        "access_key_1_last_used_date": "N/A",
        "access_key_2_active": "false",
        "access_key_2_last_rotated": "N/A",
        "access_key_2_last_used_date": "N/A",
    }
    return base | fields


def user(name: str, **fields: Any) -> dict[str, Any]:
    return {"UserName": name, "Arn": user_arn(name), "GroupList": [], **fields}


def key(
    owner: str, key_id: str, created: int, used: int | None = None, active: bool = True
) -> dict[str, Any]:
    return {
        "UserName": owner,
        "AccessKeyId": key_id,
        "Status": "Active" if active else "Inactive",
        "CreateDate": ago(created),
        "LastUsed": {"LastUsedDate": ago(used)} if used is not None else {"ServiceName": "N/A"},
    }


def estate(**iam: Any) -> Snapshot:
    snap = snapshot(iam=iam)
    snap.collected_at = NOW
    return snap


def one(snap: Snapshot, check_id: str, lang: str = "en") -> tuple[Status, str]:
    (finding,) = findings(snap, check_id, lang)
    assert finding.region == "global"
    return finding.status, finding.message


def by_user(snap: Snapshot, check_id: str) -> dict[str, tuple[Status, str]]:
    return {
        f.resource_arn.rsplit("/", 1)[1]: (f.status, f.message) for f in findings(snap, check_id)
    }


# --- root ----------------------------------------------------------------------------------------


def test_root_access_keys_from_the_credential_report() -> None:
    bad = estate(credential_report=[row("<root_account>", access_key_2_active="true")])
    (finding,) = findings(bad, "iam.root_access_keys")
    assert (finding.status, finding.resource_arn) == (Status.FAIL, ROOT_ARN)
    assert finding.message == "the root user has access keys: access key 2 active"
    assert finding.controls == ["CIS:1.4", "FSBP:IAM.4"] and finding.severity == "critical"
    assert one(bad, "iam.root_access_keys", "ja")[1] == (
        "root ユーザーにアクセスキーがある: アクセスキー 2 が有効"
    )
    good = estate(
        credential_report=[row("<root_account>")], account_summary={"AccountAccessKeysPresent": 1}
    )  # the report wins
    assert one(good, "iam.root_access_keys") == (Status.PASS, "the root user has no access keys")


def test_root_checks_fall_back_to_the_account_summary() -> None:
    snap = estate(account_summary={"AccountAccessKeysPresent": 1, "AccountMFAEnabled": 0})
    assert one(snap, "iam.root_access_keys") == (
        Status.FAIL,
        "the root user has access keys: AccountAccessKeysPresent = 1",
    )
    assert one(snap, "iam.root_mfa") == (
        Status.FAIL,
        "the root user has no MFA (account summary: AccountMFAEnabled 0)",
    )
    fine = estate(account_summary={"AccountAccessKeysPresent": 0, "AccountMFAEnabled": 1})
    assert one(fine, "iam.root_access_keys")[0] == Status.PASS
    assert one(fine, "iam.root_mfa")[0] == Status.PASS


def test_root_checks_without_data_say_nothing() -> None:
    assert findings(estate(), "iam.root_access_keys") == []
    assert findings(estate(), "iam.root_mfa") == []


def test_root_mfa_from_the_credential_report() -> None:
    snap = estate(
        credential_report=[row("<root_account>")], account_summary={"AccountMFAEnabled": 1}
    )
    assert one(snap, "iam.root_mfa") == (
        Status.FAIL,
        "the root user has no MFA (credential report: mfa_active false)",
    )
    snap = estate(credential_report=[row("<root_account>", mfa_active="true")])
    assert one(snap, "iam.root_mfa") == (Status.PASS, "the root user has MFA")


# --- console users -------------------------------------------------------------------------------


def test_console_users_need_mfa() -> None:
    snap = estate(
        users=[user("alice"), user("bob"), user("ci")],
        credential_report=[
            row("<root_account>", password_enabled="not_supported"),
            row("alice", password_enabled="true", mfa_active="true"),
            row("bob", password_enabled="true", password_last_used=report_ago(3)),
            row("ci"),  # no password: not applicable
        ],
    )
    result = by_user(snap, "iam.user_console_mfa")
    assert set(result) == {"alice", "bob"}
    assert result["alice"][0] == Status.PASS
    assert result["bob"] == (
        Status.FAIL,
        "user bob has a console password and no MFA (password last used: 2025-05-29)",
    )
    never = estate(
        credential_report=[row("new", password_enabled="true", password_last_used="no_information")]
    )
    assert one(never, "iam.user_console_mfa")[1].endswith("(password last used: never)")
    assert findings(estate(), "iam.user_console_mfa") == []


# --- password policy -----------------------------------------------------------------------------

STRONG = {
    "MinimumPasswordLength": 14,
    "PasswordReusePrevention": 24,
    "RequireUppercaseCharacters": True,
    "RequireLowercaseCharacters": True,
    "RequireNumbers": True,
    "RequireSymbols": True,
}


def test_password_policy_lists_every_shortfall() -> None:
    weak = STRONG | {"MinimumPasswordLength": 8, "RequireSymbols": False}
    del weak["PasswordReusePrevention"]
    status, message = one(estate(password_policy=weak), "iam.password_policy")
    assert status == Status.FAIL
    assert message == (
        "the password policy falls short: MinimumPasswordLength 8 < 14; "
        "PasswordReusePrevention 0 < 24; RequireSymbols false"
    )
    assert one(estate(password_policy=STRONG), "iam.password_policy")[0] == Status.PASS


def test_missing_password_policy_fails() -> None:
    assert one(estate(), "iam.password_policy") == (
        Status.FAIL,
        "the password policy falls short: no password policy is set",
    )
    assert one(estate(), "iam.password_policy", "ja")[1] == (
        "パスワードポリシーが基準を満たさない: パスワードポリシーが未設定"
    )


# --- credentials ---------------------------------------------------------------------------------


def test_unused_credentials_counted_to_collection_time() -> None:
    snap = estate(
        users=[user(n) for n in ("alice", "bob", "carol", "dave", "erin")],
        credential_report=[
            row("alice", password_enabled="true", password_last_used=report_ago(10)),
            row(
                "dave",
                password_enabled="true",
                password_last_used="no_information",
                password_last_changed=report_ago(50),
            ),
        ],
        access_keys=[
            key("alice", "AKIAALICE", created=200, used=60),
            key("bob", "AKIABOB", created=10),  # new and not used yet: fine
            key("carol", "AKIACAROL", created=100),  # never used since creation
            key("erin", "AKIAERIN", created=300, active=False),  # inactive: not applicable
        ],
    )
    result = by_user(snap, "iam.unused_credentials")
    assert set(result) == {"alice", "bob", "carol", "dave"}
    assert result["alice"] == (
        Status.FAIL,
        "user alice has credentials unused for 45+ days: AKIAALICE last used 60 days ago",
    )
    assert result["bob"] == (Status.PASS, "user bob used every credential within 45 days")
    assert result["carol"][1].endswith("AKIACAROL never used, created 100 days ago")
    assert result["dave"][1].endswith("password never used, created 50 days ago")
    # the same snapshot gives the same findings whatever the wall clock says
    assert by_user(snap, "iam.unused_credentials") == result


def test_unused_credentials_without_users_and_with_a_gap() -> None:
    assert findings(estate(), "iam.unused_credentials") == []
    snap = estate(users=[user("alice")], access_keys=[key("alice", "AKIA1", created=100)])
    snap.gaps.append(
        Gap(service="iam", action="GetCredentialReport", region="global", error_code="AccessDenied")
    )
    assert [f.status for f in findings(snap, "iam.unused_credentials")] == [Status.NOT_ASSESSED]


def test_access_key_rotation() -> None:
    snap = estate(
        users=[user("old"), user("fresh"), user("idle")],
        access_keys=[
            key("old", "AKIAOLD1", created=120, used=1),
            key("old", "AKIAOLD2", created=20, used=1),
            key("fresh", "AKIAFRESH", created=30, used=1),
            key("idle", "AKIAIDLE", created=500, active=False),
        ],
    )
    result = by_user(snap, "iam.access_key_rotation")
    assert set(result) == {"old", "fresh"}
    assert result["old"] == (
        Status.FAIL,
        "user old has active access keys older than 90 days: AKIAOLD1 (120 days old)",
    )
    assert result["fresh"][0] == Status.PASS
    assert findings(estate(users=[user("nokeys")]), "iam.access_key_rotation") == []


# --- policies on users and groups -----------------------------------------------------------------


def admin_policy() -> dict[str, Any]:
    return {
        "Arn": ADMIN_ARN,
        "PolicyName": "AdministratorAccess",
        "PolicyVersionList": [
            {
                "IsDefaultVersion": True,
                "Document": {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
                },
            }
        ],
    }


def policies_estate() -> Snapshot:
    full_iam = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}],
    }
    read = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}],
    }
    admin = {"PolicyName": "AdministratorAccess", "PolicyArn": ADMIN_ARN}
    return estate(
        users=[
            user("root-like", AttachedManagedPolicies=[admin]),
            user(
                "iam-admin",
                UserPolicyList=[{"PolicyName": "break-glass", "PolicyDocument": full_iam}],
            ),
            user("reader", UserPolicyList=[{"PolicyName": "read", "PolicyDocument": read}]),
            user("member", GroupList=["admins"]),
        ],
        groups=[
            {
                "GroupName": "admins",
                "Arn": f"arn:aws:iam::{ACCOUNT}:group/admins",
                "AttachedManagedPolicies": [admin],
            },
            {
                "GroupName": "readers",
                "Arn": f"arn:aws:iam::{ACCOUNT}:group/readers",
                "GroupPolicyList": [{"PolicyName": "read", "PolicyDocument": read}],
            },
        ],
        policies=[admin_policy()],
    )


def test_admin_policies_on_users() -> None:
    result = by_user(policies_estate(), "iam.user_admin_policy")
    assert result["root-like"] == (
        Status.FAIL,
        "user root-like has full administrator policies: "
        "AdministratorAccess (managed), statement 0: *",
    )
    # iam:* is the IAM-administrator tier: judged by the IAM analysis, not CIS 1.16
    assert result["iam-admin"][0] == Status.PASS
    assert result["reader"][0] == Status.PASS
    assert result["member"][0] == Status.PASS  # its group is reported by the group check
    assert findings(estate(), "iam.user_admin_policy") == []


def test_admin_policies_on_groups() -> None:
    result = by_user(policies_estate(), "iam.group_admin_policy")
    assert result == {
        "admins": (
            Status.FAIL,
            "group admins (members: member) has full administrator policies: "
            "AdministratorAccess (managed), statement 0: *",
        ),
        "readers": (Status.PASS, "group readers has no full administrator policy"),
    }
    (finding, _) = findings(policies_estate(), "iam.group_admin_policy")
    assert (
        finding.controls == ["CIS:1.16", "FSBP:IAM.1"]
        and finding.resource_type == "AWS::IAM::Group"
    )


def test_users_with_their_own_policies() -> None:
    result = by_user(policies_estate(), "iam.user_direct_policies")
    assert result["root-like"] == (
        Status.FAIL,
        "user root-like has policies of its own: AdministratorAccess (managed)",
    )
    assert result["reader"] == (
        Status.FAIL,
        "user reader has policies of its own: inline policy read",
    )
    assert result["member"] == (Status.PASS, "user member has no policy of its own")
    assert findings(estate(), "iam.user_direct_policies") == []
