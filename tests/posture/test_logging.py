"""Logging checks: CloudTrail trails, ECS log groups, CIS metric-filter alarms, ECS event rules."""

from __future__ import annotations

from typing import Any

import pytest
from tests.posture.builders import ACCOUNT, REGION, findings, snapshot, task_definition

from ecsguard.aws.snapshot import RegionInventory, Snapshot
from ecsguard.core.models import Finding, Status
from ecsguard.posture.checks.logging import WATCHES

HOME = "us-east-1"
TOPIC = f"arn:aws:sns:{HOME}:{ACCOUNT}:security-alerts"


def estate(regions: dict[str, dict[str, Any]]) -> Snapshot:
    """A snapshot over several regions: {region: {section: {...}}}."""
    return Snapshot(
        account=ACCOUNT,
        regions={r: RegionInventory.model_validate(s) for r, s in regions.items()},
    )


def trail(name: str = "main", home: str = HOME, **fields: Any) -> dict[str, Any]:
    """A well-configured multi-Region trail; pass fields to override."""
    return {
        "Name": name,
        "TrailARN": f"arn:aws:cloudtrail:{home}:{ACCOUNT}:trail/{name}",
        "HomeRegion": home,
        "IsMultiRegionTrail": True,
        "LogFileValidationEnabled": True,
        "KmsKeyId": f"arn:aws:kms:{home}:{ACCOUNT}:key/1234",
        "CloudWatchLogsLogGroupArn": f"arn:aws:logs:{home}:{ACCOUNT}:log-group:trail/{name}:*",
        "Status": {"IsLogging": True},
        "EventSelectors": [
            {
                "ReadWriteType": "All",
                "IncludeManagementEvents": True,
                "DataResources": [],
                "ExcludeManagementEventSources": [],
            }
        ],
        **fields,
    }


def trails_everywhere(*trails: dict[str, Any]) -> Snapshot:
    """The trails as DescribeTrails(includeShadowTrails) returns them: in their home region and
    again, as shadow copies, in a second region."""
    return estate({r: {"cloudtrail": {"trails": list(trails)}} for r in (HOME, REGION)})


def only(snap: Snapshot, check_id: str, lang: str = "en") -> Finding:
    [finding] = findings(snap, check_id, lang)
    return finding


# --- account-level trail ---------------------------------------------------------------------

MULTI = "cloudtrail.multi_region_trail"


def test_multi_region_trail_passes_once_despite_shadow_copies() -> None:
    finding = only(trails_everywhere(trail()), MULTI)
    assert finding.status == Status.PASS
    assert finding.region == "global"
    assert finding.resource_arn == f"arn:aws:cloudtrail::{ACCOUNT}:account"
    assert finding.message == "trail main logs all management events in every Region"
    assert finding.controls == ["FSBP:CloudTrail.1", "CIS:3.1"]


def test_multi_region_trail_fails_with_each_trails_shortfall() -> None:
    regional = trail("regional", IsMultiRegionTrail=False)
    stopped = trail("stopped", Status={"IsLogging": False})
    reads = trail(
        "reads", EventSelectors=[{"ReadWriteType": "ReadOnly", "IncludeManagementEvents": True}]
    )
    finding = only(trails_everywhere(regional, stopped, reads), MULTI)
    assert finding.status == Status.FAIL
    assert finding.message == (
        "no trail is multi-Region, logging and records all read and write management events: "
        "reads (not all read and write management events); regional (single-Region); "
        "stopped (not logging)"
    )


def test_multi_region_trail_fails_without_any_trail() -> None:
    finding = only(snapshot(), MULTI)
    assert finding.status == Status.FAIL
    assert finding.message.endswith(": no trails")
    assert only(snapshot(), MULTI, lang="ja").message.endswith(": 証跡なし")


def advanced(*fields: tuple[str, str, list[str]]) -> list[dict[str, Any]]:
    selectors = [{"Field": f, op: values} for f, op, values in fields]
    return [{"Name": "s", "FieldSelectors": selectors}]


MANAGEMENT = ("eventCategory", "Equals", ["Management"])


@pytest.mark.parametrize(
    ("selectors", "passes"),
    [
        ({"AdvancedEventSelectors": advanced(MANAGEMENT)}, True),
        ({"AdvancedEventSelectors": advanced(MANAGEMENT) + advanced(
            ("eventCategory", "Equals", ["Data"]), ("resources.type", "Equals", ["AWS::S3::Object"])
        )}, True),
        ({"AdvancedEventSelectors": advanced(MANAGEMENT, ("readOnly", "Equals", ["true"]))
          + advanced(MANAGEMENT, ("readOnly", "Equals", ["false"]))}, True),
        ({"AdvancedEventSelectors": advanced(MANAGEMENT, ("readOnly", "Equals", ["true"]))}, False),
        ({"AdvancedEventSelectors": advanced(MANAGEMENT, ("readOnly", "NotEquals", ["true"]))},
         False),
        ({"AdvancedEventSelectors": advanced(
            MANAGEMENT, ("eventSource", "NotEquals", ["kms.amazonaws.com"]))}, False),
        ({"EventSelectors": [{"ReadWriteType": "All", "IncludeManagementEvents": True,
                              "ExcludeManagementEventSources": ["kms.amazonaws.com"]}]}, False),
        ({"EventSelectors": [{"ReadWriteType": "All", "IncludeManagementEvents": False}]}, False),
        ({"EventSelectors": [
            {"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True},
            {"ReadWriteType": "ReadOnly", "IncludeManagementEvents": True},
        ]}, True),
        ({"EventSelectors": []}, False),
    ],
)  # fmt: skip
def test_management_events_from_basic_and_advanced_selectors(
    selectors: dict[str, Any], passes: bool
) -> None:
    base = {k: v for k, v in trail().items() if k != "EventSelectors"}
    finding = only(trails_everywhere(base | selectors), MULTI)
    assert (finding.status == Status.PASS) is passes


def test_an_organisation_trail_counts_for_the_account() -> None:
    org = trail("org", TrailARN=f"arn:aws:cloudtrail:{HOME}:999988887777:trail/org")
    assert only(trails_everywhere(org), MULTI).status == Status.PASS


# --- per-trail settings -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("check_id", "field", "control", "fail", "passed"),
    [
        ("cloudtrail.log_file_validation", "LogFileValidationEnabled", "FSBP:CloudTrail.4",
         "trail weak does not validate log files", "trail main validates log files"),
        ("cloudtrail.kms_encryption", "KmsKeyId", "FSBP:CloudTrail.2",
         "trail weak is not encrypted with a KMS key",
         f"trail main is encrypted with arn:aws:kms:{HOME}:{ACCOUNT}:key/1234"),
        ("cloudtrail.cloudwatch_logs", "CloudWatchLogsLogGroupArn", "FSBP:CloudTrail.5",
         "trail weak does not deliver to CloudWatch Logs",
         "trail main delivers to log group trail/main"),
    ],
)  # fmt: skip
def test_trail_settings_once_per_trail_in_its_home_region(
    check_id: str, field: str, control: str, fail: str, passed: str
) -> None:
    weak = trail("weak", home=REGION, **{field: None})
    result = {
        f.resource_arn.rsplit("/", 1)[-1]: f
        for f in findings(trails_everywhere(trail(), weak), check_id)
    }
    assert sorted(result) == ["main", "weak"]
    assert (result["main"].status, result["main"].region, result["main"].message) == (
        Status.PASS, HOME, passed,
    )  # fmt: skip
    assert (result["weak"].status, result["weak"].region, result["weak"].message) == (
        Status.FAIL, REGION, fail,
    )  # fmt: skip
    assert control in result["weak"].controls


def test_trail_settings_skip_other_accounts_trails_and_empty_accounts() -> None:
    org = trail("org", TrailARN=f"arn:aws:cloudtrail:{HOME}:999988887777:trail/org", KmsKeyId=None)
    for check_id in (
        "cloudtrail.log_file_validation",
        "cloudtrail.kms_encryption",
        "cloudtrail.cloudwatch_logs",
    ):
        assert findings(trails_everywhere(org), check_id) == []
        assert findings(snapshot(), check_id) == []


def test_trail_settings_in_japanese() -> None:
    snap = trails_everywhere(trail("weak", LogFileValidationEnabled=False))
    assert only(snap, "cloudtrail.log_file_validation", "ja").message == (
        "証跡 weak はログファイル検証を行っていない"
    )


# --- ECS log groups ---------------------------------------------------------------------------

RETENTION = "logs.ecs_log_group_retention"
KMS = "logs.ecs_log_group_kms"


def awslogs(group: str, **options: str) -> dict[str, Any]:
    return {
        "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": group, **options}}
    }


def log_group(name: str, region: str = REGION, **fields: Any) -> dict[str, Any]:
    return {
        "logGroupName": name,
        "arn": f"arn:aws:logs:{region}:{ACCOUNT}:log-group:{name}:*",
        **fields,
    }


def by_group(snap: Snapshot, check_id: str, lang: str = "en") -> dict[str, Finding]:
    return {f.resource_arn.split(":log-group:")[1]: f for f in findings(snap, check_id, lang)}


def test_log_groups_named_by_task_definitions_and_under_ecs_prefixes() -> None:
    snap = snapshot(
        ecs={"task_definitions": [task_definition("web", container=awslogs("web-logs"))]},
        logs={
            "log_groups": [
                log_group("web-logs"),
                log_group("/ecs/api", retentionInDays=30),
                log_group("/aws/ecs/containerinsights/prod/performance", retentionInDays=1),
                log_group("/aws/lambda/unrelated"),
            ]
        },
    )
    result = by_group(snap, RETENTION)
    assert sorted(result) == ["/aws/ecs/containerinsights/prod/performance", "/ecs/api", "web-logs"]
    assert result["web-logs"].status == Status.FAIL
    assert result["web-logs"].message == "log group web-logs never expires (used by: web)"
    assert result["/ecs/api"].status == Status.PASS
    assert result["/ecs/api"].message == "log group /ecs/api keeps logs for 30 days"
    assert by_group(snap, RETENTION, "ja")["web-logs"].message == (
        "ロググループ web-logs は期限切れにならない（無期限保持）（利用元: web）"
    )


def test_log_groups_follow_the_awslogs_region_option_and_firelens() -> None:
    firelens = {
        "logConfiguration": {
            "logDriver": "awsfirelens",
            "options": {"Name": "cloudwatch_logs", "region": HOME, "log_group_name": "fluent"},
        }
    }
    tds = [
        task_definition("web", container=awslogs("shared", **{"awslogs-region": HOME})),
        task_definition("api", container=firelens),
    ]
    snap = estate(
        {
            REGION: {
                "ecs": {"task_definitions": tds},
                "logs": {"log_groups": [log_group("shared")]},
            },
            HOME: {"logs": {"log_groups": [log_group("shared", HOME), log_group("fluent", HOME)]}},
        }
    )
    found = {(f.region, f.message) for f in findings(snap, RETENTION)}
    assert found == {
        (HOME, "log group shared never expires (used by: web)"),
        (HOME, "log group fluent never expires (used by: api)"),
    }


def test_log_group_kms_pass_and_fail() -> None:
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/abcd"
    snap = snapshot(
        logs={"log_groups": [log_group("/ecs/web", kmsKeyId=key), log_group("/ecs/api")]}
    )
    result = by_group(snap, KMS)
    assert result["/ecs/web"].status == Status.PASS
    assert result["/ecs/web"].message == f"log group /ecs/web is encrypted with {key}"
    assert result["/ecs/api"].status == Status.FAIL
    assert result["/ecs/api"].message == "log group /ecs/api is not encrypted with a KMS key"


def test_log_group_checks_ignore_other_groups_and_missing_ones() -> None:
    snap = snapshot(
        ecs={"task_definitions": [task_definition("web", container=awslogs("not-created-yet"))]},
        logs={"log_groups": [log_group("/aws/lambda/x")]},
    )
    assert findings(snap, RETENTION) == [] and findings(snap, KMS) == []


# --- CIS metric filters and alarms --------------------------------------------------------------

#: each item's CIS pattern, with the whitespace and quoting the benchmark's versions differ in
CIS_PATTERNS = {
    "unauthorized_api_calls": '{ ($.errorCode ="*UnauthorizedOperation") || ($.errorCode ='
    '"AccessDenied*") && ($.sourceIPAddress!="delivery.logs.amazonaws.com") && '
    '($.eventName!="HeadBucket") }',
    "console_signin_without_mfa": '{ ($.eventName = "ConsoleLogin") && '
    '($.additionalEventData.MFAUsed != "Yes") }',
    "root_usage": '{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS && '
    '$.eventType != "AwsServiceEvent" }',
    "iam_policy_changes": "{($.eventName=DeleteGroupPolicy)||($.eventName=DeleteRolePolicy)||"
    "($.eventName=DeleteUserPolicy)||($.eventName=PutGroupPolicy)||($.eventName=PutRolePolicy)||"
    "($.eventName=PutUserPolicy)||($.eventName=CreatePolicy)||($.eventName=DeletePolicy)||"
    "($.eventName=CreatePolicyVersion)||($.eventName=DeletePolicyVersion)||"
    "($.eventName=AttachRolePolicy)||($.eventName=DetachRolePolicy)||"
    "($.eventName=AttachUserPolicy)||($.eventName=DetachUserPolicy)||"
    "($.eventName=AttachGroupPolicy)||($.eventName=DetachGroupPolicy)}",
    "cloudtrail_changes": "{ ($.eventName = CreateTrail) || ($.eventName = UpdateTrail) || "
    "($.eventName = DeleteTrail) || ($.eventName = StartLogging) || ($.eventName = StopLogging) }",
    "console_auth_failures": "{ ($.eventName = ConsoleLogin) && "
    '($.errorMessage = "Failed authentication") }',
    "cmk_disable_or_delete": "{($.eventSource = kms.amazonaws.com) && "
    "(($.eventName=DisableKey)||($.eventName=ScheduleKeyDeletion)) }",
    "s3_bucket_policy_changes": "{ ($.eventSource = s3.amazonaws.com) && "
    "(($.eventName = PutBucketAcl) || ($.eventName = PutBucketPolicy) || "
    "($.eventName = PutBucketCors) || ($.eventName = PutBucketLifecycle) || "
    "($.eventName = PutBucketReplication) || ($.eventName = DeleteBucketPolicy) || "
    "($.eventName = DeleteBucketCors) || ($.eventName = DeleteBucketLifecycle) || "
    "($.eventName = DeleteBucketReplication)) }",
    "config_changes": "{ ($.eventSource = config.amazonaws.com) && "
    "(($.eventName=StopConfigurationRecorder)||($.eventName=DeleteDeliveryChannel) "
    "||($.eventName=PutDeliveryChannel)||($.eventName=PutConfigurationRecorder)) }",
    "security_group_changes": "{ ($.eventName = AuthorizeSecurityGroupIngress) || "
    "($.eventName = AuthorizeSecurityGroupEgress) || ($.eventName = RevokeSecurityGroupIngress) "
    "|| ($.eventName = RevokeSecurityGroupEgress) || ($.eventName = CreateSecurityGroup) || "
    "($.eventName = DeleteSecurityGroup) }",
    "nacl_changes": "{ ($.eventName = CreateNetworkAcl) || ($.eventName = CreateNetworkAclEntry) "
    "|| ($.eventName = DeleteNetworkAcl) || ($.eventName = DeleteNetworkAclEntry) || "
    "($.eventName = ReplaceNetworkAclEntry) || ($.eventName = ReplaceNetworkAclAssociation) }",
    "network_gateway_changes": "{ ($.eventName = CreateCustomerGateway) || "
    "($.eventName = DeleteCustomerGateway) || ($.eventName = AttachInternetGateway) || "
    "($.eventName = CreateInternetGateway) || ($.eventName = DeleteInternetGateway) || "
    "($.eventName = DetachInternetGateway) }",
    "route_table_changes": "{($.eventSource = ec2.amazonaws.com) && ($.eventName = CreateRoute) "
    "|| ($.eventName = CreateRouteTable) || ($.eventName = ReplaceRoute) || "
    "($.eventName = ReplaceRouteTableAssociation) || ($.eventName = DeleteRouteTable) || "
    "($.eventName = DeleteRoute) || ($.eventName = DisassociateRouteTable) }",
    "vpc_changes": "{ ($.eventName = CreateVpc) || ($.eventName = DeleteVpc) || "
    "($.eventName = ModifyVpcAttribute) || ($.eventName = AcceptVpcPeeringConnection) || "
    "($.eventName = CreateVpcPeeringConnection) || ($.eventName = DeleteVpcPeeringConnection) || "
    "($.eventName = RejectVpcPeeringConnection) || ($.eventName = AttachClassicLinkVpc) || "
    "($.eventName = DetachClassicLinkVpc) || ($.eventName = DisableVpcClassicLink) || "
    "($.eventName = EnableVpcClassicLink) }",
    "organizations_changes": "{ ($.eventSource = organizations.amazonaws.com) && "
    '(($.eventName = "AcceptHandshake") || ($.eventName = "AttachPolicy") || '
    '($.eventName = "CreateAccount") || ($.eventName = "CreateOrganizationalUnit") || '
    '($.eventName = "CreatePolicy") || ($.eventName = "DeclineHandshake") || '
    '($.eventName = "DeleteOrganization") || ($.eventName = "DeleteOrganizationalUnit") || '
    '($.eventName = "DeletePolicy") || ($.eventName = "DetachPolicy") || '
    '($.eventName = "DisablePolicyType") || ($.eventName = "EnablePolicyType") || '
    '($.eventName = "InviteAccountToOrganization") || ($.eventName = "LeaveOrganization") || '
    '($.eventName = "MoveAccount") || ($.eventName = "RemoveAccountFromOrganization") || '
    '($.eventName = "UpdatePolicy") || ($.eventName = "UpdateOrganizationalUnit")) }',
}


def metric_filter(key: str, pattern: str, group: str = "trail/main") -> dict[str, Any]:
    return {
        "filterName": f"cis-{key}",
        "filterPattern": pattern,
        "logGroupName": group,
        "metricTransformations": [
            {"metricName": key, "metricNamespace": "CISBenchmark", "metricValue": "1"}
        ],
    }


def alarm(metric: str, **fields: Any) -> dict[str, Any]:
    return {
        "AlarmName": f"cis-{metric}",
        "AlarmArn": f"arn:aws:cloudwatch:{HOME}:{ACCOUNT}:alarm:cis-{metric}",
        "Namespace": "CISBenchmark",
        "MetricName": metric,
        "Dimensions": [],
        "ActionsEnabled": True,
        "AlarmActions": [TOPIC],
        **fields,
    }


def monitored(
    filters: list[dict[str, Any]], alarms: list[dict[str, Any]], *trails: dict[str, Any]
) -> Snapshot:
    """The trails (shadowed in a second region) and, in their home region, filters and alarms."""
    home = {
        "cloudtrail": {"trails": list(trails or [trail()])},
        "logs": {"metric_filters": filters},
        "cloudwatch": {"metric_alarms": alarms},
    }
    return estate({HOME: home, REGION: {"cloudtrail": {"trails": list(trails or [trail()])}}})


def test_the_table_covers_cis_4_1_to_4_15() -> None:
    assert [w.cis for w in WATCHES] == [f"4.{n}" for n in range(1, 16)]
    assert sorted(w.key for w in WATCHES) == sorted(CIS_PATTERNS)


@pytest.mark.parametrize("watch", WATCHES, ids=lambda w: w.key)
def test_every_cis_pattern_with_an_alarm_passes(watch: Any) -> None:
    flt = metric_filter(watch.key, CIS_PATTERNS[watch.key])
    finding = only(monitored([flt], [alarm(watch.key)]), f"cloudwatch.monitor_{watch.key}")
    assert finding.status == Status.PASS, finding.message
    assert finding.message == f"metric filter cis-{watch.key} raises alarm cis-{watch.key}"
    assert f"CIS:{watch.cis}" in finding.controls
    assert finding.region == "global"


@pytest.mark.parametrize("watch", WATCHES, ids=lambda w: w.key)
def test_no_cis_pattern_passes_for_another_item(watch: Any) -> None:
    """The items' terms do not overlap: each pattern satisfies its own item only."""
    filters = [metric_filter(k, p) for k, p in CIS_PATTERNS.items() if k != watch.key]
    alarms = [alarm(k) for k in CIS_PATTERNS if k != watch.key]
    finding = only(monitored(filters, alarms), f"cloudwatch.monitor_{watch.key}")
    assert finding.status == Status.FAIL


ROOT = "cloudwatch.monitor_root_usage"
ROUTES = "cloudwatch.monitor_route_table_changes"


def test_monitoring_fails_without_a_trail_delivering_to_cloudwatch_logs() -> None:
    filters, alarms = (
        [metric_filter("root_usage", CIS_PATTERNS["root_usage"])],
        [alarm("root_usage")],
    )
    for trails in ([trail(CloudWatchLogsLogGroupArn=None)], [trail(IsMultiRegionTrail=False)],
                   [trail(Status={"IsLogging": False})]):  # fmt: skip
        finding = only(monitored(filters, alarms, *trails), ROOT)
        assert finding.status == Status.FAIL
        assert finding.message == (
            "not monitored: no multi-Region trail that is logging delivers to CloudWatch Logs"
        )


def test_monitoring_fails_on_a_filter_on_another_log_group() -> None:
    flt = metric_filter("root_usage", CIS_PATTERNS["root_usage"], group="some/other/group")
    finding = only(monitored([flt], [alarm("root_usage")]), ROOT)
    assert (
        finding.message
        == "not monitored: no metric filter on trail/main tests for use of the root user"
    )
    unrelated = metric_filter("routes", CIS_PATTERNS["route_table_changes"])
    finding = only(monitored([unrelated], [alarm("routes")]), ROOT, "ja")
    assert finding.message == (
        "監視されていない: trail/main にルートユーザーの使用を判定するメトリクスフィルターがない"
    )


def test_monitoring_names_what_the_closest_filter_lacks() -> None:
    partial = "{ ($.eventName = CreateRoute) || ($.eventName = CreateRouteTable) }"
    far = "{ ($.eventName = CreateRoute) }"
    snap = monitored([metric_filter("far", far), metric_filter("partial", partial)], [])
    finding = only(snap, ROUTES)
    assert finding.status == Status.FAIL
    assert finding.message == (
        "not monitored: closest metric filter cis-partial lacks eventName=ReplaceRoute, "
        "eventName=ReplaceRouteTableAssociation, eventName=DeleteRouteTable, "
        "eventName=DeleteRoute, eventName=DisassociateRouteTable"
    )


@pytest.mark.parametrize(
    "alarms",
    [
        [],
        [alarm("root_usage", AlarmActions=[])],
        [alarm("root_usage", ActionsEnabled=False)],
        [alarm("root_usage", Namespace="Other")],
    ],
)
def test_monitoring_needs_an_alarm_with_an_action_on_the_filters_metric(
    alarms: list[dict[str, Any]],
) -> None:
    flt = metric_filter("root_usage", CIS_PATTERNS["root_usage"])
    finding = only(monitored([flt], alarms), ROOT)
    assert finding.status == Status.FAIL
    assert finding.message == (
        "not monitored: metric filter cis-root_usage matches, but no alarm with an action "
        "watches CISBenchmark/root_usage"
    )
    assert only(monitored([flt], alarms), ROOT, "ja").message == (
        "監視されていない: メトリクスフィルター cis-root_usage は一致するが、"
        "CISBenchmark/root_usage にアクション付きのアラームがない"
    )


def test_monitoring_accepts_a_metric_math_alarm() -> None:
    flt = metric_filter("root_usage", CIS_PATTERNS["root_usage"])
    query = {
        "Id": "m1",
        "MetricStat": {"Metric": {"Namespace": "CISBenchmark", "MetricName": "root_usage"}},
    }
    math = alarm("root_usage", MetricName=None, Namespace=None, Metrics=[query])
    assert only(monitored([flt], [math]), ROOT).status == Status.PASS


def test_console_signin_accepts_the_older_cis_pattern() -> None:
    older = (
        '{ ($.eventName = "ConsoleLogin") && '
        '($.userIdentity.sessionContext.attributes.mfaAuthenticated != "true") }'
    )
    flt = metric_filter("no_mfa", older)
    finding = only(
        monitored([flt], [alarm("no_mfa")]), "cloudwatch.monitor_console_signin_without_mfa"
    )
    assert finding.status == Status.PASS


def test_monitoring_without_any_trail_is_one_global_failure_per_item() -> None:
    result = findings(snapshot(), ROOT)
    assert [(f.status, f.region) for f in result] == [(Status.FAIL, "global")]


# --- EventBridge rules for ECS events ---------------------------------------------------------

EVENTS = "events.ecs_event_rule"
CLUSTER = {"clusterArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/prod", "clusterName": "prod"}
LOGS_TARGET = {"Id": "1", "Arn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/events/ecs"}


def event_rule(
    name: str, pattern: str = '{"source": ["aws.ecs"]}', **fields: Any
) -> dict[str, Any]:
    return {
        "Name": name,
        "Arn": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{name}",
        "EventPattern": pattern,
        "State": "ENABLED",
        "EventBusName": "default",
        "Targets": [LOGS_TARGET],
        **fields,
    }


def with_rules(*rules: dict[str, Any]) -> Snapshot:
    return snapshot(ecs={"clusters": [CLUSTER]}, events={"rules": list(rules)})


def test_ecs_event_rule_passes_with_an_enabled_targeted_rule() -> None:
    pattern = '{"source": [{"prefix": "aws.ec"}], "detail-type": ["ECS Task State Change"]}'
    finding = only(with_rules(event_rule("ecs-tasks", pattern)), EVENTS)
    assert finding.status == Status.PASS
    assert finding.resource_arn == f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default"
    assert finding.message == f"rule ecs-tasks sends ECS events to {LOGS_TARGET['Arn']}"


def test_ecs_event_rule_fails_naming_disabled_and_untargeted_rules() -> None:
    rules = [
        event_rule("off", State="DISABLED"),
        event_rule("nowhere", Targets=[]),
        event_rule("other-bus", EventBusName="apps"),
        event_rule("ec2", '{"source": ["aws.ec2"]}'),
        event_rule("broken", "{not json"),
    ]
    finding = only(with_rules(*rules), EVENTS)
    assert finding.status == Status.FAIL
    assert finding.message == (
        f"no enabled rule with a target receives ECS events in {REGION} "
        "(rules on aws.ecs: nowhere (no target); off (DISABLED))"
    )
    assert only(with_rules(), EVENTS).message == (
        f"no enabled rule with a target receives ECS events in {REGION}"
    )
    assert only(with_rules(*rules), EVENTS, "ja").message == (
        f"{REGION} で ECS イベントを受け取る有効かつターゲット付きのルールがない"
        "（aws.ecs のルール: nowhere (ターゲットなし); off (DISABLED)）"
    )


def test_ecs_event_rule_skips_regions_without_clusters() -> None:
    assert findings(snapshot(events={"rules": [event_rule("ecs")]}), EVENTS) == []
