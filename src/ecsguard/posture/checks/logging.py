"""Audit trail and log hygiene: CloudTrail trails, ECS log groups, the CIS metric-filter alarms
on CloudTrail events, and EventBridge rules that pick up ECS events."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from ecsguard.posture.check import Result, check
from ecsguard.posture.context import CheckContext, Resource, alarm_metrics

TRAIL = "AWS::CloudTrail::Trail"
LOG_GROUP = "AWS::Logs::LogGroup"
NEEDS_TRAILS = (
    "cloudtrail:DescribeTrails",
    "cloudtrail:GetTrailStatus",
    "cloudtrail:GetEventSelectors",
)
NEEDS_LOG_GROUPS = ("logs:DescribeLogGroups", "ecs:DescribeTaskDefinition")
NEEDS_ALARMS = (
    "cloudtrail:DescribeTrails",
    "cloudtrail:GetTrailStatus",
    "logs:DescribeMetricFilters",
    "cloudwatch:DescribeAlarms",
)
ECS_LOG_PREFIXES = ("/ecs/", "/aws/ecs/")


def _say(ctx: CheckContext, en: str, ja: str) -> str:
    """Evidence phrases built in code follow the report language too."""
    return ja if ctx.lang == "ja" else en


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


# --- CloudTrail ---------------------------------------------------------------------------


def _trails(ctx: CheckContext) -> list[tuple[str, Resource]]:
    """(home region, trail) once per TrailARN: DescribeTrails lists a multi-Region trail in
    every region (shadow trails); the copy collected in its home region is preferred."""
    chosen: dict[str, tuple[str, Resource]] = {}
    for region, inv in ctx.regions():
        for trail in inv.cloudtrail.trails:
            arn, home = trail.get("TrailARN", ""), trail.get("HomeRegion") or region
            if arn not in chosen or region == home:
                chosen[arn] = (home, trail)
    return [chosen[arn] for arn in sorted(chosen)]


def _own_trails(ctx: CheckContext) -> list[tuple[str, Resource]]:
    """Trails this account can change (an organisation trail belongs to the management account)."""
    return [(r, t) for r, t in _trails(ctx) if t["TrailARN"].split(":")[4] == ctx.account]


_READ_WRITE = {"All": {"read", "write"}, "ReadOnly": {"read"}, "WriteOnly": {"write"}}


def _management_events(trail: Resource) -> set[str]:
    """Which management events ("read", "write") the trail records from every event source."""
    covered: set[str] = set()
    for sel in trail.get("EventSelectors") or []:
        if sel.get("IncludeManagementEvents") and not sel.get("ExcludeManagementEventSources"):
            covered |= _READ_WRITE.get(sel.get("ReadWriteType", "All"), set())
    for sel in trail.get("AdvancedEventSelectors") or []:
        fields = {f.get("Field"): f for f in sel.get("FieldSelectors", [])}
        if "Management" not in fields.get("eventCategory", {}).get("Equals", []):
            continue
        if "eventSource" in fields:  # scoped to, or excluding, some services
            continue
        read_only = fields.get("readOnly", {})
        kinds = {"true": "read", "false": "write"}
        if read_only.get("Equals"):
            covered |= {kinds.get(v, "") for v in read_only["Equals"]} - {""}
        elif read_only.get("NotEquals"):
            covered |= set(kinds.values()) - {kinds.get(v, "") for v in read_only["NotEquals"]}
        else:
            covered |= {"read", "write"}
    return covered


def _trail_gaps(ctx: CheckContext, trail: Resource) -> list[str]:
    """Why a trail does not count as the account's all-Region audit trail (empty: it does)."""
    gaps = []
    if not trail.get("IsMultiRegionTrail"):
        gaps.append(_say(ctx, "single-Region", "単一リージョン"))
    if not (trail.get("Status") or {}).get("IsLogging"):
        gaps.append(_say(ctx, "not logging", "ログ記録停止中"))
    if _management_events(trail) != {"read", "write"}:
        gaps.append(
            _say(
                ctx,
                "not all read and write management events",
                "読み書き両方の管理イベントを記録しない",
            )
        )
    return gaps


@check(
    id="cloudtrail.multi_region_trail",
    severity="high",
    pillar="logging",
    resource_type="AWS::::Account",
    controls=["FSBP:CloudTrail.1", "CIS:3.1"],
    needs=NEEDS_TRAILS,
    title={
        "en": "A multi-Region CloudTrail trail records all management events",
        "ja": "マルチリージョンの CloudTrail 証跡がすべての管理イベントを記録している",
    },
    description={
        "en": "Without a trail that logs read and write management events in every Region, "
        "changes to ECS services, task definitions, roles and secrets leave no durable record, "
        "and activity in Regions you do not use goes unseen.",
        "ja": "全リージョンで読み書きの管理イベントを記録する証跡がないと、ECS サービス、"
        "タスク定義、ロール、シークレットへの変更が永続的な記録に残らず、"
        "使っていないリージョンでの活動も見えない。",
    },
    remediation={
        "en": "Create (or update) a multi-Region trail with management events set to Read and "
        "Write and no excluded event sources, and make sure it is logging.",
        "ja": "管理イベントを「読み取り」「書き込み」両方にし、"
        "除外するイベントソースのないマルチリージョン証跡を作成（または更新）し、"
        "ログ記録が有効であることを確認する。",
    },
    fail={
        "en": "no trail is multi-Region, logging and records all read and write management "
        "events: {trails}",
        "ja": "マルチリージョンでログ記録中かつ読み書き全管理イベントを記録する証跡がない: "
        "{trails}",
    },
    passed={
        "en": "trail {trail} logs all management events in every Region",
        "ja": "証跡 {trail} が全リージョンの管理イベントをすべて記録している",
    },
)
def multi_region_trail(ctx: CheckContext) -> Iterator[Result]:
    gaps = {str(t.get("Name") or t["TrailARN"]): _trail_gaps(ctx, t) for _, t in _trails(ctx)}
    good = [name for name, why in gaps.items() if not why]
    trails = "; ".join(f"{name} ({', '.join(why)})" for name, why in gaps.items())
    params = {"trail": ", ".join(good), "trails": trails or _say(ctx, "no trails", "証跡なし")}
    yield Result(f"arn:aws:cloudtrail::{ctx.account}:account", "global", bool(good), params)


@check(
    id="cloudtrail.log_file_validation",
    severity="low",
    pillar="logging",
    resource_type=TRAIL,
    controls=["FSBP:CloudTrail.4", "CIS:3.2"],
    needs=NEEDS_TRAILS[:1],
    title={
        "en": "CloudTrail log file validation is enabled",
        "ja": "CloudTrail のログファイル検証が有効",
    },
    description={
        "en": "Digest files let you prove that a log file was not changed or deleted after "
        "delivery; without them an intruder who reaches the bucket can rewrite history.",
        "ja": "ダイジェストファイルにより、"
        "配信後にログファイルが改ざんや削除されていないことを証明できる。これがないと、"
        "バケットに到達した侵入者が記録を書き換えられる。",
    },
    remediation={
        "en": "Enable log file validation on the trail (UpdateTrail --enable-log-file-validation).",
        "ja": "証跡のログファイル検証を有効にする（UpdateTrail --enable-log-file-validation）。",
    },
    fail={
        "en": "trail {trail} does not validate log files",
        "ja": "証跡 {trail} はログファイル検証を行っていない",
    },
    passed={
        "en": "trail {trail} validates log files",
        "ja": "証跡 {trail} はログファイルを検証している",
    },
)
def log_file_validation(ctx: CheckContext) -> Iterator[Result]:
    for region, trail in _own_trails(ctx):
        ok = bool(trail.get("LogFileValidationEnabled"))
        yield Result(trail["TrailARN"], region, ok, {"trail": trail.get("Name", "")})


@check(
    id="cloudtrail.kms_encryption",
    severity="medium",
    pillar="logging",
    resource_type=TRAIL,
    controls=["FSBP:CloudTrail.2", "CIS:3.5"],
    needs=NEEDS_TRAILS[:1],
    title={
        "en": "CloudTrail logs are encrypted with a KMS key",
        "ja": "CloudTrail のログは KMS キーで暗号化されている",
    },
    description={
        "en": "With SSE-KMS, reading the logs needs kms:Decrypt on your key as well as read access "
        "to the bucket, and every decryption is itself logged.",
        "ja": "SSE-KMS を使うと、ログの読み取りにはバケットの読み取り権限に加えてキーの "
        "kms:Decrypt が必要になり、復号のたびに記録も残る。",
    },
    remediation={
        "en": "Set a customer managed KMS key on the trail (UpdateTrail --kms-key-id) and allow "
        "CloudTrail to use it in the key policy.",
        "ja": "証跡にカスタマーマネージド KMS キーを設定し（UpdateTrail --kms-key-id）、"
        "キーポリシーで CloudTrail による利用を許可する。",
    },
    fail={
        "en": "trail {trail} is not encrypted with a KMS key",
        "ja": "証跡 {trail} は KMS キーで暗号化されていない",
    },
    passed={
        "en": "trail {trail} is encrypted with {key}",
        "ja": "証跡 {trail} は {key} で暗号化されている",
    },
)
def kms_encryption(ctx: CheckContext) -> Iterator[Result]:
    for region, trail in _own_trails(ctx):
        key = trail.get("KmsKeyId") or ""
        yield Result(
            trail["TrailARN"], region, bool(key), {"trail": trail.get("Name", ""), "key": key}
        )


@check(
    id="cloudtrail.cloudwatch_logs",
    severity="low",
    pillar="logging",
    resource_type=TRAIL,
    controls=["FSBP:CloudTrail.5"],
    needs=NEEDS_TRAILS[:1],
    title={
        "en": "CloudTrail trails deliver to CloudWatch Logs",
        "ja": "CloudTrail 証跡は CloudWatch Logs に配信している",
    },
    description={
        "en": "Events in CloudWatch Logs can be searched at once and drive metric filters and "
        "alarms; events only in S3 are found after the fact, if at all.",
        "ja": "CloudWatch Logs にあるイベントはすぐに検索でき、"
        "メトリクスフィルターとアラームに使える。S3 にしかないイベントは、"
        "見つかるとしても事後になる。",
    },
    remediation={
        "en": "Configure the trail's CloudWatch Logs log group and delivery role.",
        "ja": "証跡に CloudWatch Logs のロググループと配信ロールを設定する。",
    },
    fail={
        "en": "trail {trail} does not deliver to CloudWatch Logs",
        "ja": "証跡 {trail} は CloudWatch Logs に配信していない",
    },
    passed={
        "en": "trail {trail} delivers to log group {group}",
        "ja": "証跡 {trail} はロググループ {group} に配信している",
    },
)
def cloudwatch_logs(ctx: CheckContext) -> Iterator[Result]:
    for region, trail in _own_trails(ctx):
        arn = trail.get("CloudWatchLogsLogGroupArn") or ""
        params = {"trail": trail.get("Name", ""), "group": _log_group_of(arn)[1]}
        yield Result(trail["TrailARN"], region, bool(arn), params)


def _log_group_of(arn: str) -> tuple[str, str]:
    """`arn:aws:logs:REGION:ACCOUNT:log-group:NAME:*` -> (REGION, NAME)."""
    parts = arn.split(":")
    return (parts[3], parts[6]) if len(parts) > 6 else ("", "")


# --- ECS log groups -----------------------------------------------------------------------


def _log_group_users(ctx: CheckContext) -> dict[tuple[str, str], set[str]]:
    """(region, log group name) -> task definition families whose containers write there."""
    users: dict[tuple[str, str], set[str]] = defaultdict(set)
    for region, td, container in ctx.containers():
        conf = container.get("logConfiguration") or {}
        options = conf.get("options") or {}
        if conf.get("logDriver") == "awslogs":
            group, where = options.get("awslogs-group"), options.get("awslogs-region")
        elif conf.get("logDriver") == "awsfirelens":  # Fluent Bit's cloudwatch output
            group, where = options.get("log_group_name"), options.get("region")
        else:
            continue
        if group:
            users[(where or region, group)].add(td.get("family", ""))
    return users


def _ecs_log_groups(ctx: CheckContext) -> Iterator[tuple[str, Resource, list[str]]]:
    """(region, log group, families using it): groups task definitions name, and /ecs/ groups."""
    users = _log_group_users(ctx)
    for region, inv in ctx.regions():
        for group in sorted(inv.logs.log_groups, key=lambda g: g.get("logGroupName", "")):
            name = group.get("logGroupName", "")
            families = sorted(users.get((region, name), ()))
            if families or name.startswith(ECS_LOG_PREFIXES):
                yield region, group, families


def _log_group_arn(ctx: CheckContext, region: str, group: Resource) -> str:
    return str(
        group.get("logGroupArn")
        or group.get("arn", "").removesuffix(":*")
        or f"arn:aws:logs:{region}:{ctx.account}:log-group:{group['logGroupName']}"
    )


def _used_by(ctx: CheckContext, families: list[str]) -> str:
    if not families:
        return ""
    return _say(ctx, " (used by: ", "（利用元: ") + ", ".join(families) + _say(ctx, ")", "）")


@check(
    id="logs.ecs_log_group_retention",
    severity="low",
    pillar="logging",
    resource_type=LOG_GROUP,
    needs=NEEDS_LOG_GROUPS,
    title={
        "en": "ECS log groups have a retention period",
        "ja": "ECS のロググループに保持期間が設定されている",
    },
    description={
        "en": "A log group without retention keeps every line forever: storage cost only "
        "grows, and personal data or leaked secrets in application logs are kept far longer "
        "than anyone needs them.",
        "ja": "保持期間のないロググループはすべてのログを永久に保存する。"
        "ストレージ費用は増え続け、"
        "アプリケーションログ中の個人データや漏れたシークレットが必要以上に長く残る。",
    },
    remediation={
        "en": "Set a retention period that matches your policy (for example 30-400 days) with "
        "PutRetentionPolicy, or in the task's infrastructure code; archive to S3 if logs must "
        "be kept longer.",
        "ja": "PutRetentionPolicy またはインフラのコードで方針に合った保持期間（例: 30〜400 日）"
        "を設定する。より長く保管が必要なら S3 にアーカイブする。",
    },
    fail={
        "en": "log group {group} never expires{used_by}",
        "ja": "ロググループ {group} は期限切れにならない（無期限保持）{used_by}",
    },
    passed={
        "en": "log group {group} keeps logs for {days} days",
        "ja": "ロググループ {group} のログ保持期間は {days} 日",
    },
)
def ecs_log_group_retention(ctx: CheckContext) -> Iterator[Result]:
    for region, group, families in _ecs_log_groups(ctx):
        days = group.get("retentionInDays")
        params = {"group": group["logGroupName"], "days": days, "used_by": _used_by(ctx, families)}
        yield Result(_log_group_arn(ctx, region, group), region, bool(days), params)


@check(
    id="logs.ecs_log_group_kms",
    severity="low",
    pillar="logging",
    resource_type=LOG_GROUP,
    needs=NEEDS_LOG_GROUPS,
    title={
        "en": "ECS log groups are encrypted with a KMS key",
        "ja": "ECS のロググループは KMS キーで暗号化されている",
    },
    description={
        "en": "Application logs often carry request data, tokens and personal data. With a KMS "
        "key, reading them also needs kms:Decrypt, so access can be limited and audited "
        "separately from logs:GetLogEvents.",
        "ja": "アプリケーションログにはリクエストデータ、トークン、個人データが含まれがち。KMS "
        "キーで暗号化すると読み取りに kms:Decrypt も必要になり、logs:GetLogEvents "
        "とは別に権限の制限と監査ができる。",
    },
    remediation={
        "en": "Associate a customer managed KMS key with the log group (AssociateKmsKey) and "
        "allow the CloudWatch Logs service principal in the key policy.",
        "ja": "ロググループにカスタマーマネージド KMS キーを関連付け（AssociateKmsKey）、"
        "キーポリシーで CloudWatch Logs のサービスプリンシパルを許可する。",
    },
    fail={
        "en": "log group {group} is not encrypted with a KMS key{used_by}",
        "ja": "ロググループ {group} は KMS キーで暗号化されていない{used_by}",
    },
    passed={
        "en": "log group {group} is encrypted with {key}",
        "ja": "ロググループ {group} は {key} で暗号化されている",
    },
)
def ecs_log_group_kms(ctx: CheckContext) -> Iterator[Result]:
    for region, group, families in _ecs_log_groups(ctx):
        key = group.get("kmsKeyId") or ""
        params = {"group": group["logGroupName"], "key": key, "used_by": _used_by(ctx, families)}
        yield Result(_log_group_arn(ctx, region, group), region, bool(key), params)


# --- CIS metric filters and alarms on CloudTrail events -----------------------------------


@dataclass(frozen=True)
class Watch:
    """One CIS "ensure ... is monitored" item: the CloudTrail terms its metric filter must test.

    Each term is `field=value` or `field!=value` (the field without `$.`); `a|b` accepts either
    form. Terms are compared without case, spaces, quotes or `*`, so the benchmark's patterns
    pass in any of their published spellings; extra terms in a filter are allowed.
    """

    key: str
    cis: str
    hub: str
    en: str
    ja: str
    terms: tuple[str, ...]


def _events(*names: str) -> tuple[str, ...]:
    return tuple(f"eventName={name}" for name in names)


WATCHES = (
    Watch("unauthorized_api_calls", "4.1", "CloudWatch.2", "unauthorized API calls",
          "権限のない API 呼び出し",
          ("errorCode=*UnauthorizedOperation", "errorCode=AccessDenied*")),
    Watch("console_signin_without_mfa", "4.2", "CloudWatch.3",
          "console sign-in without MFA", "MFA なしのコンソールサインイン",
          ("eventName=ConsoleLogin|userIdentity.invokedBy=signin.amazonaws.com",
           "additionalEventData.MFAUsed!=Yes"
           "|userIdentity.sessionContext.attributes.mfaAuthenticated!=true")),
    Watch("root_usage", "4.3", "CloudWatch.1", "use of the root user", "ルートユーザーの使用",
          ("userIdentity.type=Root",)),
    Watch("iam_policy_changes", "4.4", "CloudWatch.4", "IAM policy changes", "IAM ポリシーの変更",
          _events("DeleteGroupPolicy", "DeleteRolePolicy", "DeleteUserPolicy", "PutGroupPolicy",
                  "PutRolePolicy", "PutUserPolicy", "CreatePolicy", "DeletePolicy",
                  "CreatePolicyVersion", "DeletePolicyVersion", "AttachRolePolicy",
                  "DetachRolePolicy", "AttachUserPolicy", "DetachUserPolicy",
                  "AttachGroupPolicy", "DetachGroupPolicy")),
    Watch("cloudtrail_changes", "4.5", "CloudWatch.5", "CloudTrail configuration changes",
          "CloudTrail の設定変更",
          _events("CreateTrail", "UpdateTrail", "DeleteTrail", "StartLogging", "StopLogging")),
    Watch("console_auth_failures", "4.6", "CloudWatch.6", "console authentication failures",
          "コンソール認証の失敗",
          ("eventName=ConsoleLogin", "errorMessage=Failed authentication")),
    Watch("cmk_disable_or_delete", "4.7", "CloudWatch.7",
          "disabling or scheduled deletion of customer managed KMS keys",
          "カスタマーマネージド KMS キーの無効化と削除予定",
          _events("DisableKey", "ScheduleKeyDeletion")),
    Watch("s3_bucket_policy_changes", "4.8", "CloudWatch.8", "S3 bucket policy changes",
          "S3 バケットポリシーの変更",
          _events("PutBucketAcl", "PutBucketPolicy", "PutBucketCors", "PutBucketLifecycle",
                  "PutBucketReplication", "DeleteBucketPolicy", "DeleteBucketCors",
                  "DeleteBucketLifecycle", "DeleteBucketReplication")),
    Watch("config_changes", "4.9", "CloudWatch.9", "AWS Config configuration changes",
          "AWS Config の設定変更",
          _events("StopConfigurationRecorder", "DeleteDeliveryChannel", "PutDeliveryChannel",
                  "PutConfigurationRecorder")),
    Watch("security_group_changes", "4.10", "CloudWatch.10", "security group changes",
          "セキュリティグループの変更",
          _events("AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress",
                  "RevokeSecurityGroupIngress", "RevokeSecurityGroupEgress",
                  "CreateSecurityGroup", "DeleteSecurityGroup")),
    Watch("nacl_changes", "4.11", "CloudWatch.11", "network ACL changes", "ネットワーク ACL の変更",
          _events("CreateNetworkAcl", "CreateNetworkAclEntry", "DeleteNetworkAcl",
                  "DeleteNetworkAclEntry", "ReplaceNetworkAclEntry",
                  "ReplaceNetworkAclAssociation")),
    Watch("network_gateway_changes", "4.12", "CloudWatch.12", "network gateway changes",
          "ネットワークゲートウェイの変更",
          _events("CreateCustomerGateway", "DeleteCustomerGateway", "AttachInternetGateway",
                  "CreateInternetGateway", "DeleteInternetGateway", "DetachInternetGateway")),
    Watch("route_table_changes", "4.13", "CloudWatch.13", "route table changes",
          "ルートテーブルの変更",
          _events("CreateRoute", "CreateRouteTable", "ReplaceRoute",
                  "ReplaceRouteTableAssociation", "DeleteRouteTable", "DeleteRoute",
                  "DisassociateRouteTable")),
    Watch("vpc_changes", "4.14", "CloudWatch.14", "VPC changes", "VPC の変更",
          _events("CreateVpc", "DeleteVpc", "ModifyVpcAttribute", "AcceptVpcPeeringConnection",
                  "CreateVpcPeeringConnection", "DeleteVpcPeeringConnection",
                  "RejectVpcPeeringConnection")),
    Watch("organizations_changes", "4.15", "", "AWS Organizations changes",
          "AWS Organizations の変更",
          _events("AcceptHandshake", "AttachPolicy", "CreateAccount", "CreateOrganizationalUnit",
                  "CreatePolicy", "DeclineHandshake", "DeleteOrganization",
                  "DeleteOrganizationalUnit", "DeletePolicy", "DetachPolicy",
                  "DisablePolicyType", "EnablePolicyType", "InviteAccountToOrganization",
                  "LeaveOrganization", "MoveAccount", "RemoveAccountFromOrganization",
                  "UpdatePolicy", "UpdateOrganizationalUnit")),
)  # fmt: skip

_PATTERN_TERM = re.compile(r'\$\.([\w.]+)\s*(!?=)\s*(?:"([^"]*)"|([^\s()&|}]+))')


def _norm(field: str, op: str, value: str) -> tuple[str, str, str]:
    return field.lower(), op, re.sub(r'[\s"*]', "", value).lower()


def _pattern_terms(pattern: str) -> set[tuple[str, str, str]]:
    """The `$.field = value` comparisons of a JSON filter pattern."""
    return {_norm(f, op, a or b) for f, op, a, b in _PATTERN_TERM.findall(pattern or "")}


def _term(text: str) -> tuple[str, str, str]:
    field, op, value = re.split(r"(!?=)", text, maxsplit=1)
    return _norm(field, op, value)


def _missing(watch: Watch, pattern: str) -> list[str]:
    found = _pattern_terms(pattern)
    return [
        term
        for term in watch.terms
        if not any(_term(alternative) in found for alternative in term.split("|"))
    ]


def _notifies(alarm: Resource) -> bool:
    return bool(alarm.get("AlarmActions")) and alarm.get("ActionsEnabled") is not False


def _trail_log_groups(ctx: CheckContext) -> list[tuple[str, str]]:
    """(region, name) of log groups that multi-Region, logging trails deliver to."""
    groups = {
        _log_group_of(t.get("CloudWatchLogsLogGroupArn") or "")
        for _, t in _trails(ctx)
        if t.get("IsMultiRegionTrail") and (t.get("Status") or {}).get("IsLogging")
    }
    return sorted(g for g in groups if g[1])


def _filters_on(ctx: CheckContext, groups: list[tuple[str, str]]) -> list[tuple[str, Resource]]:
    """(region, metric filter) for every filter on one of `groups`, in name order."""
    found = []
    for region, group in groups:
        inv = ctx.snapshot.regions.get(region)
        for flt in inv.logs.metric_filters if inv else []:
            if flt.get("logGroupName") == group:
                found.append((region, flt))
    return sorted(
        found, key=lambda rf: (rf[1].get("logGroupName", ""), rf[1].get("filterName", ""))
    )


def _alarms_on(ctx: CheckContext, region: str, flt: Resource) -> list[str]:
    """Names of alarms with an action on any metric the filter publishes."""
    metrics = {
        (m.get("metricNamespace"), m.get("metricName"))
        for m in flt.get("metricTransformations", [])
    }
    return sorted(
        a.get("AlarmName", "")
        for a in ctx.snapshot.regions[region].cloudwatch.metric_alarms
        if _notifies(a)
        and any((m.get("Namespace"), m.get("MetricName")) in metrics for m in alarm_metrics(a))
    )


def _watch_result(ctx: CheckContext, watch: Watch) -> Result:
    resource = f"arn:aws:cloudwatch::{ctx.account}:account"
    groups = _trail_log_groups(ctx)
    filters = _filters_on(ctx, groups)
    matching = [(r, f) for r, f in filters if not _missing(watch, f.get("filterPattern", ""))]
    for region, flt in matching:
        alarms = _alarms_on(ctx, region, flt)
        if alarms:
            params = {"filter": flt.get("filterName", ""), "alarm": alarms[0]}
            return Result(resource, "global", True, params)
    reason = _why_unwatched(ctx, watch, groups, [f for _, f in filters], [f for _, f in matching])
    return Result(resource, "global", False, {"reason": reason})


def _why_unwatched(
    ctx: CheckContext,
    watch: Watch,
    groups: list[tuple[str, str]],
    filters: list[Resource],
    matching: list[Resource],
) -> str:
    """The nearest miss: a matching filter without an alarm, the closest filter and what it
    lacks, no filter at all, or no trail feeding CloudWatch Logs."""
    if matching:
        name = matching[0].get("filterName", "")
        metric = ", ".join(
            f"{m.get('metricNamespace')}/{m.get('metricName')}"
            for m in matching[0].get("metricTransformations", [])
        )
        return _say(
            ctx,
            f"metric filter {name} matches, but no alarm with an action watches {metric}",
            f"メトリクスフィルター {name} は一致するが、{metric} にアクション付きのアラームがない",
        )
    if not groups:
        return _say(
            ctx,
            "no multi-Region trail that is logging delivers to CloudWatch Logs",
            "ログ記録中のマルチリージョン証跡で CloudWatch Logs に配信しているものがない",
        )
    gaps = sorted(
        (len(missing), f.get("filterName", ""), missing)
        for f in filters
        if len(missing := _missing(watch, f.get("filterPattern", ""))) < len(watch.terms)
    )
    if gaps:
        _, name, missing = gaps[0]
        lacks = ", ".join(missing)
        return _say(
            ctx,
            f"closest metric filter {name} lacks {lacks}",
            f"最も近いメトリクスフィルター {name} に不足: {lacks}",
        )
    names = ", ".join(name for _, name in groups)
    return _say(
        ctx,
        f"no metric filter on {names} tests for {watch.en}",
        f"{names} に{watch.ja}を判定するメトリクスフィルターがない",
    )


def _register_watch(watch: Watch) -> None:
    controls = [f"CIS:{watch.cis}"] + ([f"SecurityHub:{watch.hub}"] if watch.hub else [])

    @check(
        id=f"cloudwatch.monitor_{watch.key}",
        severity="low",
        pillar="monitoring",
        resource_type="AWS::Logs::MetricFilter",
        controls=controls,
        needs=NEEDS_ALARMS,
        title={
            "en": f"A metric filter and alarm watch for {watch.en}",
            "ja": f"{watch.ja}を監視するメトリクスフィルターとアラームがある",
        },
        description={
            "en": f"CIS {watch.cis}: {watch.en} should reach a person within minutes. That takes "
            "a metric filter on the CloudWatch Logs group of a multi-Region trail that matches "
            f"the events ({_term_names(watch)}) and an alarm on its metric with an action, "
            "such as an SNS topic somebody reads.",
            "ja": f"CIS {watch.cis}: {watch.ja}は数分以内に担当者へ届くべきである。そのためには、"
            "マルチリージョン証跡の CloudWatch Logs ロググループに、対象イベント"
            f"（{_term_names(watch)}）に一致するメトリクスフィルターと、そのメトリクスに対する"
            "アクション（誰かが読む SNS トピックなど）付きのアラームが必要。",
        },
        remediation={
            "en": "Create the metric filter with the CIS pattern on the trail's log group, then "
            "an alarm on its metric (Sum >= 1 over 5 minutes) that notifies an SNS topic with a "
            "subscriber. EventBridge rules or a SIEM are alternatives CIS also accepts.",
            "ja": "証跡のロググループに CIS のパターンでメトリクスフィルターを作成し、"
            "そのメトリクスに（5 分間の合計 >= 1 で）購読者のいる SNS "
            "トピックへ通知するアラームを作成する。EventBridge ルールや SIEM も CIS "
            "が認める代替手段。",
        },
        fail={"en": "not monitored: {reason}", "ja": "監視されていない: {reason}"},
        passed={
            "en": "metric filter {filter} raises alarm {alarm}",
            "ja": "メトリクスフィルター {filter} がアラーム {alarm} を発報する",
        },
    )
    def watch_check(ctx: CheckContext) -> Iterator[Result]:
        yield _watch_result(ctx, watch)


def _term_names(watch: Watch) -> str:
    return ", ".join(t.split("|")[0].removeprefix("eventName=") for t in watch.terms)


for _watch in WATCHES:
    _register_watch(_watch)


# --- EventBridge rules on ECS events ------------------------------------------------------


def _ecs_rule(rule: Resource) -> bool:
    """An EventBridge rule on the default bus whose pattern selects source aws.ecs."""
    if rule.get("EventBusName", "default") != "default":
        return False
    pattern = rule.get("EventPattern") or "{}"
    try:
        parsed = orjson.loads(pattern) if isinstance(pattern, str) else pattern
    except orjson.JSONDecodeError:
        return False
    sources = _as_list(parsed.get("source")) if isinstance(parsed, dict) else []
    return any(
        s == "aws.ecs" or (isinstance(s, dict) and "aws.ecs".startswith(str(s.get("prefix"))))
        for s in sources
    )


@check(
    id="events.ecs_event_rule",
    severity="low",
    pillar="monitoring",
    resource_type="AWS::Events::Rule",
    needs=("events:ListRules", "events:ListTargetsByRule", "ecs:ListClusters"),
    title={
        "en": "An EventBridge rule forwards ECS events",
        "ja": "EventBridge ルールが ECS イベントを転送している",
    },
    description={
        "en": "ECS reports task stops (with the stop reason), failed deployments and service "
        "steady-state changes as EventBridge events. They are kept nowhere unless a rule sends "
        "them to a target such as a log group, SNS topic or ecsguard's receiver.",
        "ja": "ECS はタスクの停止（停止理由付き）、デプロイの失敗、サービスの状態変化を "
        "EventBridge イベントとして通知する。ルールでロググループ、SNS トピック、ecsguard "
        "の受信口などのターゲットに送らない限り、どこにも残らない。",
    },
    remediation={
        "en": 'Create an enabled rule on the default bus with pattern {"source": ["aws.ecs"]} '
        "and at least one target (a CloudWatch Logs group keeps the history).",
        "ja": 'デフォルトバスにパターン {"source": ["aws.ecs"]} の有効なルールを作成し、'
        "ターゲットを 1 つ以上設定する（CloudWatch Logs のロググループなら履歴が残る）。",
    },
    fail={
        "en": "no enabled rule with a target receives ECS events in {region}{rules}",
        "ja": "{region} で ECS イベントを受け取る有効かつターゲット付きのルールがない{rules}",
    },
    passed={
        "en": "rule {rule} sends ECS events to {targets}",
        "ja": "ルール {rule} が ECS イベントを {targets} に送っている",
    },
)
def ecs_event_rule(ctx: CheckContext) -> Iterator[Result]:
    for region, inv in ctx.regions():
        if not inv.ecs.clusters:
            continue
        rules = sorted((r for r in inv.events.rules if _ecs_rule(r)), key=lambda r: r["Name"])
        good = [r for r in rules if r.get("State") == "ENABLED" and r.get("Targets")]
        arn = f"arn:aws:events:{region}:{ctx.account}:event-bus/default"
        if good:
            targets = ", ".join(t.get("Arn", "") for t in good[0]["Targets"])
            yield Result(arn, region, True, {"rule": good[0]["Name"], "targets": targets})
        else:
            params = {"region": region, "rules": _rule_states(ctx, rules)}
            yield Result(arn, region, False, params)


def _rule_states(ctx: CheckContext, rules: list[Resource]) -> str:
    """ " (rules on aws.ecs: a (DISABLED); b (no target))", or "" when there are none."""
    if not rules:
        return ""
    no_target = _say(ctx, "no target", "ターゲットなし")
    states = [
        f"{r['Name']} ({no_target if r.get('State') == 'ENABLED' else r.get('State')})"
        for r in rules
    ]
    head, tail = _say(ctx, " (rules on aws.ecs: ", "（aws.ecs のルール: "), _say(ctx, ")", "）")
    return head + "; ".join(states) + tail
