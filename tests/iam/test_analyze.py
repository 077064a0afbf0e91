"""Standalone policy analysis: risks, admin equivalence, access levels, lint, input shapes."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecsguard.core.errors import UserError
from ecsguard.iam import actions, risks
from ecsguard.iam.analyze import analyze_files, analyze_policy, load_policies

MANAGED = (
    Path(__file__).parents[2].parent
    / "shared"
    / "testdata"
    / "iam"
    / "aws-managed-policies"
    / "aws-managed-policies.json"
)


def doc(*statements: dict[str, Any], version: str | None = "2012-10-17") -> dict[str, Any]:
    document: dict[str, Any] = {"Statement": list(statements)}
    if version is not None:
        document["Version"] = version
    return document


def allow(action: str | list[str], resource: str | list[str] = "*", **more: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **more}


def deny(action: str | list[str], resource: str | list[str] = "*", **more: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **more}


CONDITION = {"StringEquals": {"aws:RequestedRegion": "ap-northeast-1"}}
BUCKET = "arn:aws:s3:::reports/*"


def analyze(*statements: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return analyze_policy(doc(*statements), "test", **kwargs)


def risks_of(report: dict[str, Any], category: str) -> list[dict[str, Any]]:
    return [r for r in report["risks"] if r["category"] == category]


def flagged(report: dict[str, Any], category: str) -> set[str]:
    return {a for r in risks_of(report, category) for a in r["actions"]}


def problems(report: dict[str, Any], problem: str) -> list[dict[str, Any]]:
    return [p for p in report["lint"] if p["problem"] == problem]


# ---------------------------------------------------------------------------------------------
# risk categories


def test_privilege_escalation_needs_an_unscoped_unconditional_grant() -> None:
    report = analyze(allow("iam:CreatePolicyVersion"), {"Sid": "Pass", **allow("iam:PassRole")})
    [found] = risks_of(report, "privilege_escalation")
    assert found == {
        "category": "privilege_escalation",
        "actions": ["iam:CreatePolicyVersion"],
        "statement": 0,
        "method": "iam-create-policy-version",
    }
    scoped = analyze(allow("iam:CreatePolicyVersion", "arn:aws:iam::123456789012:policy/app"))
    conditional = analyze(allow("iam:CreatePolicyVersion", Condition=CONDITION))
    assert not risks_of(scoped, "privilege_escalation")
    assert not risks_of(conditional, "privilege_escalation")


def test_privilege_escalation_across_statements_names_each_statement() -> None:
    report = analyze(
        {"Sid": "Pass", **allow("iam:PassRole")},
        allow(["ecs:RegisterTaskDefinition", "ecs:RunTask"]),
    )
    deploy = [
        r for r in risks_of(report, "privilege_escalation") if r["method"] == "ecs-deploy-passrole"
    ]
    assert [(r["statement"], r["actions"]) for r in deploy] == [
        ("Pass", ["iam:PassRole"]),
        (1, ["ecs:RegisterTaskDefinition", "ecs:RunTask"]),
    ]
    denied = analyze(allow("iam:*"), deny("iam:CreatePolicyVersion"))
    methods = {r["method"] for r in risks_of(denied, "privilege_escalation")}
    assert "iam-create-policy-version" not in methods and "iam-attach-policy" in methods


def test_resource_exposure() -> None:
    report = analyze(allow(["s3:PutBucketPolicy", "ec2:ModifyImageAttribute", "s3:GetObject"]))
    assert flagged(report, "resource_exposure") == {
        "s3:PutBucketPolicy",
        "ec2:ModifyImageAttribute",
    }
    assert not risks_of(
        analyze(allow("s3:PutBucketPolicy", "arn:aws:s3:::reports")), "resource_exposure"
    )
    # AWS files this read under Permissions management; reading a policy exposes nothing
    assert not risks_of(analyze(allow("billing:GetResourcePolicy")), "resource_exposure")


def test_credentials_exposure() -> None:
    report = analyze(allow(["iam:CreateAccessKey", "sts:AssumeRole", "ecr:GetAuthorizationToken"]))
    assert flagged(report, "credentials_exposure") == {"iam:CreateAccessKey", "sts:AssumeRole"}
    role = "arn:aws:iam::123456789012:role/app"
    assert not risks_of(analyze(allow("sts:AssumeRole", role)), "credentials_exposure")


def test_data_exfiltration() -> None:
    report = analyze(allow(["s3:GetObject", "secretsmanager:GetSecretValue", "s3:ListBucket"]))
    assert flagged(report, "data_exfiltration") == {"s3:GetObject", "secretsmanager:GetSecretValue"}
    assert not risks_of(analyze(allow("s3:GetObject", BUCKET)), "data_exfiltration")
    assert not risks_of(analyze(allow("s3:*"), deny("s3:GetObject*")), "data_exfiltration")


def test_a_deny_behind_a_condition_or_on_named_resources_removes_nothing() -> None:
    report = analyze(allow("s3:GetObject"), deny("s3:GetObject", Condition=CONDITION))
    assert flagged(report, "data_exfiltration") == {"s3:GetObject"}
    report = analyze(allow("s3:GetObject"), deny("s3:GetObject", BUCKET))
    assert flagged(report, "data_exfiltration") == {"s3:GetObject"}


def test_service_wildcard() -> None:
    assert flagged(analyze(allow(["ecs:*", "s3:Get*"])), "service_wildcard") == {"ecs:*"}
    assert not risks_of(analyze(allow("ecs:*"), deny("ecs:DeleteCluster")), "service_wildcard")
    assert not risks_of(analyze(allow("ecs:*", "arn:aws:ecs:*:*:cluster/x")), "service_wildcard")
    everything = flagged(analyze(allow("*")), "service_wildcard")
    assert {"ecs:*", "iam:*", "s3:*"} <= everything and len(everything) == len(actions.services())
    assert {"ecr:*", "ecs:*"} <= flagged(analyze(allow("ec?:*")), "service_wildcard")
    # every action of today, listed, grants nothing AWS adds tomorrow: not a wildcard
    listed = [i.action for i in actions.expand("ssmmessages:*")]
    assert not risks_of(analyze(allow(listed)), "service_wildcard")
    # a service the database does not know is taken as written
    assert flagged(analyze(allow("codestar:*")), "service_wildcard") == {"codestar:*"}


def test_infrastructure_modification_summarised_per_service() -> None:
    report = analyze(allow(["ecs:UpdateService", "ecs:TagResource", "ecs:Describe*"]))
    [found] = risks_of(report, "infrastructure_modification")
    assert found["actions"] == ["ecs:TagResource", "ecs:UpdateService"]
    assert found["services"] == {"ecs": 2}
    # an action that accepts only "*" cannot be narrowed: no violation to report
    assert not risks_of(analyze(allow("xray:PutTraceSegments")), "infrastructure_modification")
    scoped = analyze(allow("ecs:UpdateService", "arn:aws:ecs:*:*:service/c/s"))
    assert not risks_of(scoped, "infrastructure_modification")


def test_not_action_means_everything_else_and_not_resource_is_unscoped() -> None:
    report = analyze({"Effect": "Allow", "NotAction": ["iam:*", "s3:*"], "Resource": "*"})
    assert not report["admin_equivalent"]
    wildcards = flagged(report, "service_wildcard")
    assert "ecs:*" in wildcards and "iam:*" not in wildcards and "s3:*" not in wildcards
    assert "kms:Decrypt" in flagged(report, "data_exfiltration")
    assert "s3:GetObject" not in flagged(report, "data_exfiltration")
    everything_but = {"Effect": "Allow", "Action": "s3:GetObject", "NotResource": BUCKET}
    assert flagged(analyze(everything_but), "data_exfiltration") == {"s3:GetObject"}


def test_risks_come_in_category_order() -> None:
    report = analyze(allow(["s3:GetObject", "iam:CreateAccessKey", "s3:PutBucketPolicy"]))
    order = [r["category"] for r in report["risks"]]
    assert order == sorted(order, key=risks.CATEGORIES.index)


# ---------------------------------------------------------------------------------------------
# admin equivalence and access levels


def test_admin_equivalent() -> None:
    assert analyze(allow("*"))["admin_equivalent"]
    assert analyze(allow("iam:*"))["admin_equivalent"]
    assert analyze({"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"})["admin_equivalent"]
    assert not analyze(allow("*"), deny("iam:*"))["admin_equivalent"]
    assert not analyze(allow("*", Condition=CONDITION))["admin_equivalent"]
    assert not analyze(allow("*", "arn:aws:s3:::reports"))["admin_equivalent"]
    assert not analyze(allow("ecs:*"))["admin_equivalent"]


def test_access_levels_count_every_grant_after_denies() -> None:
    report = analyze(
        allow(["ecs:DescribeServices", "ecs:ListClusters"]),
        allow("ecs:UpdateService", "arn:aws:ecs:*:*:service/c/s", Condition=CONDITION),
        allow(["s3:GetObject", "s3:PutObject"], BUCKET),
        deny("s3:PutObject"),
    )
    assert report["access_levels"] == {
        "ecs": {"List": 1, "Read": 1, "Write": 1},
        "s3": {"Read": 1},
    }


# ---------------------------------------------------------------------------------------------
# lint


def test_unknown_action_warns_with_a_suggestion_and_the_analysis_goes_on() -> None:
    report = analyze(allow(["ecs:RunTsk", "ecss:RunTask", "s3:GetObject", "ecs:Describe*"]))
    details = [p["detail"] for p in problems(report, "unknown_action")]
    assert len(details) == 2
    assert details[0].startswith("ecs:RunTsk matches no action") and "ecs:RunTask?" in details[0]
    assert "did you mean ecs:RunTask?" in details[1]
    assert flagged(report, "data_exfiltration") == {"s3:GetObject"}
    assert not problems(analyze(allow("zzzz:Nothing")), "unknown_action")[0]["detail"].count("?")


def test_malformed_action() -> None:
    report = analyze(allow(["ecsRunTask", "ecs:RunTask"]))
    assert [p["detail"] for p in problems(report, "malformed_action")] == [
        "'ecsRunTask' is not service:action"
    ]
    assert not problems(report, "unknown_action")


@pytest.mark.parametrize(
    "resource",
    [
        "*",
        "arn:aws:s3:::reports/*",
        "arn:aws:iam::123456789012:role/app",
        "arn:aws:iam::aws:policy/ReadOnlyAccess",
        "arn:aws:iam::${aws:PrincipalAccount}:role/app",
        "arn:aws:iam::*:user/${aws:username}",
        "arn:aws-cn:ecs:cn-north-1:123456789012:cluster/c",
        "arn:*:ecs:*:*:cluster/*",
        "arn:aws:logs:ap-northeast-1:123456789012:log-group:/ecs/app:*",
    ],
)
def test_well_formed_resources(resource: str) -> None:
    assert not problems(analyze(allow("s3:GetObject", resource)), "malformed_arn")


@pytest.mark.parametrize(
    ("resource", "reason"),
    [
        ("reports", "is not arn:partition:service:region:account:resource"),
        ("arn:aws:s3", "is not arn:partition:service:region:account:resource"),
        ("arn:aws:s3:::", "is not arn:partition:service:region:account:resource"),
        ("arn:amazon:s3:::reports", "partition 'amazon'"),
        ("arn:aws:ecs:tokyo:123456789012:cluster/c", "region 'tokyo'"),
        ("arn:aws:iam::12345:role/app", "account '12345' is not 12 digits"),
        ("arn:aws:iam::acme:role/app", "account 'acme' is not an account id"),
        ("arn:aws:E C S:::x", "service 'E C S'"),
    ],
)
def test_malformed_resources(resource: str, reason: str) -> None:
    [problem] = problems(analyze(allow("s3:GetObject", resource)), "malformed_arn")
    assert reason in problem["detail"] and problem["statement"] == 0


def test_redundant_statement() -> None:
    report = analyze(
        {"Sid": "Broad", **allow("ecs:Describe*")},
        allow("ecs:DescribeServices"),
        allow("ecs:DescribeServices", "arn:aws:ecs:*:*:service/c/s"),
        allow("ecs:DescribeClusters", Condition=CONDITION),
    )
    assert [(p["statement"], p["detail"]) for p in problems(report, "redundant_statement")] == [
        (1, "statement Broad allows all it allows, on the same resources"),
        (3, "statement Broad allows all it allows, on the same resources"),
    ]
    conditional_cover = analyze(
        allow("ecs:Describe*", Condition=CONDITION), allow("ecs:DescribeServices")
    )
    assert not problems(conditional_cover, "redundant_statement")
    twice = analyze(allow("ecs:ListClusters"), allow("ecs:ListClusters"))
    assert [p["statement"] for p in problems(twice, "redundant_statement")] == [1]
    unknown = analyze(allow(["ecs:Nope", "ecs:ListClusters"]), allow("ecs:ListClusters"))
    assert [p["statement"] for p in problems(unknown, "redundant_statement")] == [1]


@pytest.mark.parametrize(
    ("version", "problem"),
    [(None, "version_missing"), ("2008-10-17", "version_old"), ("2012-10-18", "version_invalid")],
)
def test_version(version: str | None, problem: str) -> None:
    report = analyze_policy(doc(allow("s3:GetObject"), version=version), "v")
    assert [p["problem"] for p in report["lint"]] == [problem]
    assert not analyze(allow("s3:GetObject"))["lint"]


def test_statements_without_effect_or_action_are_reported_and_grant_nothing() -> None:
    report = analyze(
        {"Action": "*", "Resource": "*"},
        {"Effect": "Permit", "Action": "*", "Resource": "*"},
        {"Effect": "Allow", "Resource": "*"},
        {"Effect": "Allow", "Action": "s3:GetObject", "NotAction": "s3:PutObject", "Resource": "*"},
        {"Effect": "Allow", "Action": "s3:GetObject"},
    )
    assert [(p["problem"], p["statement"]) for p in report["lint"]] == [
        ("missing_effect", 0),
        ("invalid_effect", 1),
        ("missing_action", 2),
        ("action_and_not_action", 3),
        ("missing_resource", 4),
    ]
    assert not report["admin_equivalent"]


def test_malformed_shapes_are_reported_not_raised() -> None:
    number_action = {"Effect": "Allow", "Action": 7, "Resource": "*"}
    report = analyze_policy({"Version": "2012-10-17", "Statement": [5, number_action]}, "odd")
    assert [p["detail"] for p in report["lint"]] == [
        "a statement is a number",
        "Action holds a number; a string or a list of strings is expected",
        "no Action or NotAction",
    ]
    assert problems(analyze_policy({"Version": "2012-10-17"}, "empty"), "no_statements")
    assert problems(
        analyze_policy({"Statement": "x", "Version": "2012-10-17"}, "s"), "malformed_statement"
    )
    assert analyze_policy([], "list")["lint"][0]["problem"] == "not_a_policy"


def padded(characters: int) -> dict[str, Any]:
    """A policy of about `characters` non-whitespace characters."""
    statement = allow("s3:GetObject", "arn:aws:s3:::" + "b" * characters)
    return doc(statement)


@pytest.mark.parametrize(
    ("kind", "size", "over"),
    [
        ("user", 3000, "a user's inline policies (2,048)"),
        ("group", 6000, "a group's inline policies (5,120)"),
        ("managed", 7000, "customer managed policies (6,144)"),
        ("role", 11000, "a role's inline policies (10,240)"),
        ("", 3000, "a user's inline policies (2,048)"),
    ],
)
def test_size_over_limit(kind: str, size: int, over: str) -> None:
    [problem] = problems(analyze_policy(padded(size), "big", kind=kind), "size_over_limit")
    assert problem["detail"].endswith(f"over the limit for {over}")
    assert "non-whitespace characters" in problem["detail"]


def test_size_within_limits_and_aws_managed_exempt() -> None:
    assert not problems(analyze_policy(padded(3000), "big", kind="role"), "size_over_limit")
    assert not problems(analyze_policy(padded(9000), "big", kind="aws-managed"), "size_over_limit")
    unknown_kind = problems(analyze_policy(padded(7000), "big"), "size_over_limit")[0]["detail"]
    assert "2,048" in unknown_kind and "5,120" in unknown_kind and "6,144" in unknown_kind
    assert "10,240" not in unknown_kind


def test_whitespace_does_not_count_towards_the_size() -> None:
    spaced = doc(allow("s3:GetObject", "arn:aws:s3:::" + " " * 3000 + "b"))
    assert not problems(analyze_policy(spaced, "spaced", kind="user"), "size_over_limit")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
statement_keys = st.sampled_from(
    ["Effect", "Action", "NotAction", "Resource", "NotResource", "Condition", "Sid"]
)
statement_values = (
    st.sampled_from(["Allow", "Deny", "*", "s3:Get*", "arn:aws:s3:::b"]) | json_values
)


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["Version", "Statement", "Id"]),
        st.lists(st.dictionaries(statement_keys, statement_values, max_size=6), max_size=4)
        | json_values,
    )
    | json_values
)
def test_no_document_makes_the_analysis_raise(document: Any) -> None:
    report = analyze_policy(document, "fuzz")
    assert set(report) == {"name", "kind", "admin_equivalent", "risks", "access_levels", "lint"}


# ---------------------------------------------------------------------------------------------
# input shapes


def test_a_document_is_named_by_its_input() -> None:
    [policy] = load_policies(json.dumps(doc(allow("*"))), "admin.json")
    assert (policy.name, policy.kind, policy.arn) == ("admin.json", "", "")


def test_managed_policy_records() -> None:
    record = {
        "PolicyName": "Deploy",
        "Arn": "arn:aws:iam::123456789012:policy/Deploy",
        "DefaultVersionId": "v2",
        "PolicyVersionList": [
            {"VersionId": "v1", "IsDefaultVersion": False, "Document": doc(allow("*"))},
            {"VersionId": "v2", "IsDefaultVersion": True, "Document": doc(allow("ecs:*"))},
        ],
    }
    [policy] = load_policies(json.dumps(record), "deploy.json")
    assert (policy.name, policy.kind, policy.arn) == ("Deploy", "managed", record["Arn"])
    assert policy.document == doc(allow("ecs:*"))
    aws = {"PolicyName": "ReadOnly", "Arn": "arn:aws:iam::aws:policy/ReadOnly", "Document": doc()}
    assert load_policies(json.dumps(aws), "x")[0].kind == "aws-managed"
    version = {"PolicyVersion": {"VersionId": "v3", "Document": doc(allow("s3:*"))}}
    assert load_policies(json.dumps(version), "v.json")[0].document == doc(allow("s3:*"))
    inline = {"RoleName": "app", "PolicyName": "logs", "PolicyDocument": doc(allow("logs:*"))}
    assert load_policies(json.dumps(inline), "i.json")[0][:3] == (
        "role/app/inline/logs",
        doc(allow("logs:*")),
        "role",
    )


def test_authorization_details_file() -> None:
    encoded = urllib.parse.quote(json.dumps(doc(allow("sqs:*"))))
    details = {
        "UserDetailList": [
            {"UserName": "ci", "UserPolicyList": [{"PolicyName": "push", "PolicyDocument": doc()}]}
        ],
        "GroupDetailList": [
            {"GroupName": "ops", "GroupPolicyList": [{"PolicyName": "p", "PolicyDocument": doc()}]}
        ],
        "RoleDetailList": [
            {
                "RoleName": "app",
                "AssumeRolePolicyDocument": doc(),
                "RolePolicyList": [{"PolicyName": "queue", "PolicyDocument": encoded}],
            }
        ],
        "Policies": [
            {
                "PolicyName": "Deploy",
                "Arn": "arn:aws:iam::123456789012:policy/Deploy",
                "PolicyVersionList": [{"IsDefaultVersion": True, "Document": doc(allow("ecs:*"))}],
            }
        ],
    }
    found = load_policies(json.dumps(details), "gaad.json")
    assert [(p.name, p.kind) for p in found] == [
        ("Deploy", "managed"),
        ("user/ci/inline/push", "user"),
        ("group/ops/inline/p", "group"),
        ("role/app/inline/queue", "role"),
    ]
    assert found[3].document == doc(allow("sqs:*"))  # URL-encoded, as the IAM API returns it


def test_a_list_of_any_shape() -> None:
    record = {"PolicyName": "Named", "Document": doc()}
    found = load_policies(json.dumps([doc(allow("*")), record, [doc()]]), "many.json")
    assert [p.name for p in found] == ["many.json[0]", "Named", "many.json[2][0]"]
    wrapped = load_policies(json.dumps({"_provenance": {}, "policies": [record]}), "set.json")
    assert [p.name for p in wrapped] == ["Named"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{\n  "Statement": [,]\n}', "p.json: invalid JSON at line 2, column 17"),
        ("   ", "p.json: empty input"),
        ("42", "p.json: expected a JSON object or list, found a number"),
        ('{"Users": []}', "p.json: not an IAM policy (top-level keys: Users)"),
        ("[]", "p.json: no policy found"),
        ('{"PolicyName": "P", "Arn": "arn:aws:iam::aws:policy/P"}', "managed policy P has no"),
        ('{"PolicyName": "P", "PolicyDocument": "%7Bnot"}', "neither JSON nor URL-encoded JSON"),
        ('{"Policies": [7]}', "p.json: Policies is not a list of objects"),
        ('{"RoleDetailList": [{"RoleName": "r", "RolePolicyList": "x"}]}', "RolePolicyList is"),
    ],
)
def test_bad_input_is_a_user_error(text: str, message: str) -> None:
    with pytest.raises(UserError) as error:
        load_policies(text, "p.json")
    assert message in str(error.value)


def test_deep_nesting_is_a_user_error() -> None:
    with pytest.raises(UserError, match="nested too deeply"):
        load_policies("[" * 1000 + "]" * 1000, "deep.json")
    deeper = '{"Statement": ' + "[" * 1100 + "]" * 1100 + "}"
    with pytest.raises(UserError, match="line 1, column"):
        load_policies(deeper, "deeper.json")


@settings(max_examples=250, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                *("Statement", "Policies", "RoleDetailList", "UserDetailList", "policies"),
                *("PolicyName", "Arn", "Document", "PolicyVersionList", "DefaultVersionId"),
                *("PolicyDocument", "PolicyVersion", "RoleName"),
            ]
        ),
        json_values,
    )
    | json_values
)
def test_any_json_loads_or_is_a_user_error(data: Any) -> None:
    try:
        found = load_policies(json.dumps(data), "fuzz.json")
    except UserError as error:
        assert str(error).startswith("fuzz.json")
    else:
        assert found and all(isinstance(p.name, str) for p in found)


def test_analyze_files_reads_files_and_standard_input(tmp_path: Path) -> None:
    path = tmp_path / "admin.json"
    path.write_text(json.dumps(doc(allow("*"))))
    stdin = json.dumps({"PolicyName": "Ro", "Arn": "arn:aws:iam::aws:policy/Ro", "Document": doc()})
    results = analyze_files([str(path), "-"], stdin)
    assert [(r["file"], r["name"], r["admin_equivalent"]) for r in results] == [
        (str(path), str(path), True),
        ("<stdin>", "Ro", False),
    ]
    assert results[1]["arn"] == "arn:aws:iam::aws:policy/Ro" and "arn" not in results[0]
    assert analyze_files([], json.dumps(doc()))[0]["file"] == "<stdin>"


def test_analyze_files_errors_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"Statement": ')
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00")
    cases = [
        ([str(tmp_path / "missing.json")], None, "missing.json: no such file"),
        ([str(tmp_path)], None, "is a directory"),
        ([str(binary)], None, "binary.json: not UTF-8 text"),
        ([str(broken)], None, "broken.json: invalid JSON at line 1, column 15"),
        (["-"], None, "no standard input"),
    ]
    for paths, stdin, message in cases:
        with pytest.raises(UserError) as error:
            analyze_files(paths, stdin)
        assert message in str(error.value)


# ---------------------------------------------------------------------------------------------
# the risk tables


def test_every_action_named_in_the_tables_is_known() -> None:
    for table in (
        risks.CREDENTIALS_EXPOSURE,
        risks.DATA_EXFILTRATION,
        risks.RESOURCE_EXPOSURE_EXTRA,
    ):
        assert [name for name in table if not actions.is_known(name)] == []
    assert set(risks.RULES) | {"privilege_escalation", "service_wildcard"} == set(risks.CATEGORIES)
    assert set(risks.DESCRIPTIONS) == set(risks.CATEGORIES)
    with pytest.raises(KeyError):
        risks.category_actions("service_wildcard")


# ---------------------------------------------------------------------------------------------
# the AWS managed policies


@pytest.fixture(scope="module")
def managed() -> dict[str, Any]:
    if not MANAGED.exists():
        pytest.skip(f"AWS managed policies not found at {MANAGED} (../shared/testdata)")
    found = load_policies(MANAGED.read_text(encoding="utf-8"), MANAGED.name)
    return {p.name: p for p in found}


def test_administrator_access_is_admin_equivalent(managed: dict[str, Any]) -> None:
    policy = managed["AdministratorAccess"]
    assert analyze_policy(policy.document, policy.name, kind=policy.kind)["admin_equivalent"]


def test_read_only_access_is_not(managed: dict[str, Any]) -> None:
    policy = managed["ReadOnlyAccess"]
    report = analyze_policy(policy.document, policy.name, kind=policy.kind)
    assert not report["admin_equivalent"]
    assert not risks_of(report, "privilege_escalation")
    assert not risks_of(report, "infrastructure_modification") or all(
        not a.split(":")[1].startswith(("Put", "Create", "Delete"))
        for r in risks_of(report, "infrastructure_modification")
        for a in r["actions"]
    )


def test_iam_full_access_escalates(managed: dict[str, Any]) -> None:
    policy = managed["IAMFullAccess"]
    report = analyze_policy(policy.document, policy.name, kind=policy.kind)
    methods = {r["method"] for r in risks_of(report, "privilege_escalation")}
    assert {"iam-attach-policy", "iam-put-inline-policy", "iam-create-policy-version"} <= methods


def test_every_managed_policy_is_analysed_without_error(managed: dict[str, Any]) -> None:
    assert len(managed) > 1500
    reports = [analyze_policy(p.document, p.name, kind=p.kind) for p in managed.values()]
    admins = {r["name"] for r in reports if r["admin_equivalent"]}
    assert {"AdministratorAccess", "IAMFullAccess"} <= admins
    assert "PowerUserAccess" not in admins
