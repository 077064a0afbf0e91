"""ECS clusters, services and their runtime: public IPs, Fargate platform, Container Insights, tags,
capacity providers, ECS Exec, deployment safety, failed deployments and tasks stopped by OOM or
failed health checks."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ecsguard.posture.check import Result, check
from ecsguard.posture.context import CheckContext, Resource, family_and_revision

SERVICE = "AWS::ECS::Service"
CLUSTER = "AWS::ECS::Cluster"
NEEDS_SERVICES = ("ecs:ListServices", "ecs:DescribeServices")
NEEDS_CLUSTERS = ("ecs:ListClusters", "ecs:DescribeClusters")
NEEDS_TASKS = ("ecs:ListTasks", "ecs:DescribeTasks")
FARGATE_PROVIDERS = frozenset({"FARGATE", "FARGATE_SPOT"})
# Security Hub controls ECS.13 and ECS.14 belong to its Resource Tagging standard and ECS.19 to no
# FSBP version, so they are cited as "SecurityHub:" (the cross-standard security control id).

#: The newest Fargate platform version per OS family. Source: "Fargate platform versions for
#: Amazon ECS" in the Amazon ECS Developer Guide, and Security Hub control ECS.10, whose fixed
#: parameters are latestLinuxVersion 1.4.0 and latestWindowsVersion 1.0.0. Update with AWS.
FARGATE_LATEST = {"LINUX": "1.4.0", "WINDOWS": "1.0.0"}


def _name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def _vpc(config: Resource | None) -> Resource:
    return (config or {}).get("awsvpcConfiguration") or {}


def _clusters(ctx: CheckContext) -> dict[str, Resource]:
    return {c["clusterArn"]: c for _, inv in ctx.regions() for c in inv.ecs.clusters}


def _user_tag_keys(resource: Resource) -> list[str]:
    """Tag keys a person set; `aws:` system tags do not count (as in Security Hub)."""
    keys = {t.get("key", "") for t in resource.get("tags") or []}
    return sorted(k for k in keys if k and not k.lower().startswith("aws:"))


def _at_least(version: str, latest: str) -> bool:
    """True for LATEST or a version number not older than `latest` ("1.10.0" > "1.4.0")."""
    if version == "LATEST":
        return True
    parts = version.split(".")
    if not all(p.isdigit() for p in parts):
        return False
    return tuple(map(int, parts)) >= tuple(map(int, latest.split(".")))


# --- network exposure --------------------------------------------------------------------------


@check(
    id="ecs.service_public_ip",
    severity="high",
    pillar="security",
    resource_type=SERVICE,
    controls=["FSBP:ECS.2"],
    needs=NEEDS_SERVICES,
    title={
        "en": "ECS services do not assign public IP addresses",
        "ja": "ECS サービスはパブリック IP を自動割り当てしていない",
    },
    description={
        "en": "With assignPublicIp ENABLED every task's network interface gets an address "
        "reachable from the internet; only its security group stands between the container and "
        "the world.",
        "ja": "assignPublicIp が ENABLED だと各タスクの ENI にインターネットから到達可能な"
        "アドレスが付き、コンテナとインターネットの間にはセキュリティグループしか残らない。",
    },
    remediation={
        "en": "Run the tasks in private subnets with assignPublicIp DISABLED; reach the internet "
        "through a NAT gateway or VPC endpoints and publish the service through a load balancer.",
        "ja": "assignPublicIp を DISABLED にしてプライベートサブネットで実行し、外向き通信は NAT "
        "ゲートウェイか VPC エンドポイント、公開はロードバランサー経由にする。",
    },
    fail={
        "en": "assignPublicIp ENABLED (subnets: {subnets})",
        "ja": "assignPublicIp が ENABLED（サブネット: {subnets}）",
    },
    passed={"en": "assignPublicIp DISABLED", "ja": "assignPublicIp は DISABLED"},
)
def service_public_ip(ctx: CheckContext) -> Iterator[Result]:
    for region, service in ctx.services():
        vpc = _vpc(service.get("networkConfiguration"))
        if vpc:
            public = vpc.get("assignPublicIp") == "ENABLED"
            subnets = ", ".join(vpc.get("subnets", []))
            yield Result(service["serviceArn"], region, not public, {"subnets": subnets})


@check(
    id="ecs.task_set_public_ip",
    severity="high",
    pillar="security",
    resource_type="AWS::ECS::TaskSet",
    controls=["FSBP:ECS.16"],
    needs=NEEDS_SERVICES,
    title={
        "en": "ECS task sets do not assign public IP addresses",
        "ja": "ECS タスクセットはパブリック IP を自動割り当てしていない",
    },
    description={
        "en": "Task sets (blue/green and external deployments) carry their own network "
        "configuration; with assignPublicIp ENABLED their tasks are reachable from the internet.",
        "ja": "タスクセット（Blue/Green・外部デプロイ）は独自のネットワーク設定を持ち、"
        "assignPublicIp が ENABLED だとそのタスクはインターネットから到達可能になる。",
    },
    remediation={
        "en": "Create the task set again with assignPublicIp DISABLED in private subnets, then "
        "shift traffic to it and delete the old one.",
        "ja": "プライベートサブネットで assignPublicIp を DISABLED にしたタスクセットを作り直し、"
        "トラフィックを移してから古いタスクセットを削除する。",
    },
    fail={
        "en": "task set of service {service}: assignPublicIp ENABLED (subnets: {subnets})",
        "ja": "サービス {service} のタスクセット: assignPublicIp が ENABLED"
        "（サブネット: {subnets}）",
    },
    passed={
        "en": "task set of service {service}: assignPublicIp DISABLED",
        "ja": "サービス {service} のタスクセット: assignPublicIp は DISABLED",
    },
)
def task_set_public_ip(ctx: CheckContext) -> Iterator[Result]:
    for region, service in ctx.services():
        for task_set in sorted(service.get("taskSets") or [], key=lambda t: t["taskSetArn"]):
            vpc = _vpc(task_set.get("networkConfiguration"))
            if vpc:
                params = {"service": service["serviceName"], "subnets": ", ".join(vpc["subnets"])}
                public = vpc.get("assignPublicIp") == "ENABLED"
                yield Result(task_set["taskSetArn"], region, not public, params)


# --- runtime and cluster configuration ---------------------------------------------------------


def _is_fargate(service: Resource) -> bool:
    providers = {p.get("capacityProvider") for p in service.get("capacityProviderStrategy") or []}
    return service.get("launchType") == "FARGATE" or bool(providers & FARGATE_PROVIDERS)


def _os_family(ctx: CheckContext, service: Resource) -> str:
    family = service.get("platformFamily") or ""
    if not family:
        _, td = ctx.task_definitions_by_arn.get(service.get("taskDefinition", ""), ("", {}))
        family = (td.get("runtimePlatform") or {}).get("operatingSystemFamily") or ""
    return "WINDOWS" if family.upper().startswith("WINDOWS") else "LINUX"


@check(
    id="ecs.fargate_platform_latest",
    severity="medium",
    pillar="security",
    resource_type=SERVICE,
    controls=["FSBP:ECS.10"],
    needs=NEEDS_SERVICES,
    title={
        "en": "Fargate services run on the latest platform version",
        "ja": "Fargate サービスは最新のプラットフォームバージョンで実行されている",
    },
    description={
        "en": "A Fargate platform version is the kernel and container runtime under the tasks. A "
        "service pinned to an older version keeps its tasks on that older runtime; LATEST follows "
        "AWS's current version at each deployment.",
        "ja": "Fargate プラットフォームバージョンはタスクの下のカーネルとコンテナランタイムである。"
        "古いバージョンに固定したサービスのタスクは古いランタイムのまま動き、LATEST ならデプロイ"
        "のたびに AWS の最新版になる。",
    },
    remediation={
        "en": "Update the service with platformVersion LATEST (or the latest version number) and "
        "deploy it; test the runtime change in a staging service first.",
        "ja": "platformVersion を LATEST（または最新のバージョン番号）にしてサービスを更新・"
        "デプロイする。ランタイムの変更は先にステージングで確認する。",
    },
    fail={
        "en": "platform version {version}; the latest {family} version is {latest}",
        "ja": "プラットフォームバージョン {version}（{family} の最新は {latest}）",
    },
    passed={"en": "platform version {version}", "ja": "プラットフォームバージョン {version}"},
)
def fargate_platform_latest(ctx: CheckContext) -> Iterator[Result]:
    for region, service in ctx.services():
        if _is_fargate(service):
            family = _os_family(ctx, service)
            version, latest = service.get("platformVersion") or "LATEST", FARGATE_LATEST[family]
            params = {"version": version, "family": family.title(), "latest": latest}
            yield Result(service["serviceArn"], region, _at_least(version, latest), params)


@check(
    id="ecs.cluster_container_insights",
    severity="medium",
    pillar="monitoring",
    resource_type=CLUSTER,
    controls=["FSBP:ECS.12"],
    needs=NEEDS_CLUSTERS,
    title={
        "en": "ECS clusters have Container Insights on",
        "ja": "ECS クラスターで Container Insights が有効になっている",
    },
    description={
        "en": "Container Insights collects per-task and per-container CPU, memory, network and "
        "restart metrics; without it a failing or starved task leaves little trace. The account "
        "setting containerInsights applies only to clusters created after it is set, so each "
        "cluster's own setting is what counts.",
        "ja": "Container Insights はタスク・コンテナ単位の CPU、メモリ、ネットワーク、再起動の"
        "メトリクスを収集する。無効だと異常やリソース不足のタスクの痕跡がほとんど残らない。"
        "アカウント設定 containerInsights は設定後に作成したクラスターにしか効かないため、"
        "クラスターごとの設定で判定する。",
    },
    remediation={
        "en": "aws ecs update-cluster-settings --cluster NAME --settings "
        "name=containerInsights,value=enhanced (or enabled); set the account default too so new "
        "clusters start with it.",
        "ja": "aws ecs update-cluster-settings --cluster NAME --settings "
        "name=containerInsights,value=enhanced（または enabled）を実行し、新規クラスター用に"
        "アカウント既定値も設定する。",
    },
    fail={
        "en": "Container Insights {value} (account default for new clusters: {account_default})",
        "ja": "Container Insights は {value}"
        "（新規クラスター向けアカウント既定値: {account_default}）",
    },
    passed={"en": "Container Insights {value}", "ja": "Container Insights は {value}"},
)
def cluster_container_insights(ctx: CheckContext) -> Iterator[Result]:
    for region, inv in ctx.regions():
        default = next(
            (
                s.get("value")
                for s in inv.ecs.account_settings
                if s.get("name") == "containerInsights"
            ),
            "-",
        )
        for cluster in sorted(inv.ecs.clusters, key=lambda c: c["clusterArn"]):
            settings = {s.get("name"): s.get("value") for s in cluster.get("settings") or []}
            value = settings.get("containerInsights") or "disabled"
            params = {"value": value, "account_default": default}
            yield Result(cluster["clusterArn"], region, value in ("enabled", "enhanced"), params)


_TAGS_REMEDIATION = {
    "en": "aws ecs tag-resource --resource-arn ARN --tags key=owner,value=TEAM (with the keys your "
    "tagging policy requires); with propagateTags, tasks inherit them.",
    "ja": "aws ecs tag-resource --resource-arn ARN --tags key=owner,value=TEAM でタグポリシーが"
    "求めるキーを付ける。propagateTags を使えばタスクにも引き継がれる。",
}
_TAGS_FAIL = {
    "en": "no tags besides aws: system tags",
    "ja": "aws: システムタグ以外のタグがない",
}
_TAGS_PASSED = {"en": "tag keys: {keys}", "ja": "タグキー: {keys}"}


@check(
    id="ecs.service_tagged",
    severity="low",
    pillar="security",
    resource_type=SERVICE,
    controls=["SecurityHub:ECS.13"],
    needs=NEEDS_SERVICES,
    title={"en": "ECS services are tagged", "ja": "ECS サービスにタグが付いている"},
    description={
        "en": "Tags name an owner, an environment and a cost centre; an untagged service is hard "
        "to attribute in an incident, a cost report or a tag-based (ABAC) policy.",
        "ja": "タグは所有者、環境、コストセンターを示す。タグのないサービスはインシデント対応、"
        "コストレポート、タグベース（ABAC）のポリシーで帰属を判断しにくい。",
    },
    remediation=_TAGS_REMEDIATION,
    fail=_TAGS_FAIL,
    passed=_TAGS_PASSED,
)
def service_tagged(ctx: CheckContext) -> Iterator[Result]:
    for region, service in ctx.services():
        keys = _user_tag_keys(service)
        yield Result(service["serviceArn"], region, bool(keys), {"keys": ", ".join(keys)})


@check(
    id="ecs.cluster_tagged",
    severity="low",
    pillar="security",
    resource_type=CLUSTER,
    controls=["SecurityHub:ECS.14"],
    needs=NEEDS_CLUSTERS,
    title={"en": "ECS clusters are tagged", "ja": "ECS クラスターにタグが付いている"},
    description={
        "en": "Tags name an owner, an environment and a cost centre; an untagged cluster is hard "
        "to attribute in an incident, a cost report or a tag-based (ABAC) policy.",
        "ja": "タグは所有者、環境、コストセンターを示す。タグのないクラスターはインシデント対応、"
        "コストレポート、タグベース（ABAC）のポリシーで帰属を判断しにくい。",
    },
    remediation=_TAGS_REMEDIATION,
    fail=_TAGS_FAIL,
    passed=_TAGS_PASSED,
)
def cluster_tagged(ctx: CheckContext) -> Iterator[Result]:
    for region, inv in ctx.regions():
        for cluster in sorted(inv.ecs.clusters, key=lambda c: c["clusterArn"]):
            keys = _user_tag_keys(cluster)
            yield Result(cluster["clusterArn"], region, bool(keys), {"keys": ", ".join(keys)})


@check(
    id="ecs.capacity_provider_termination_protection",
    severity="medium",
    pillar="security",
    resource_type="AWS::ECS::CapacityProvider",
    controls=["SecurityHub:ECS.19"],
    needs=("ecs:DescribeCapacityProviders",),
    title={
        "en": "EC2 capacity providers have managed termination protection on",
        "ja": "EC2 キャパシティープロバイダーでマネージド終了保護が有効になっている",
    },
    description={
        "en": "Without managed termination protection, an Auto Scaling scale-in can terminate an "
        "instance that still runs tasks, killing them without draining. The protection only "
        "works together with managed scaling, so both must be ENABLED.",
        "ja": "マネージド終了保護がないと、Auto Scaling のスケールインがタスク実行中のインスタンス"
        "を終了させ、ドレインせずにタスクを止める。保護はマネージドスケーリングと併用した場合"
        "のみ働くため、両方が ENABLED である必要がある。",
    },
    remediation={
        "en": "Turn on scale-in protection for new instances in the Auto Scaling group, then "
        "update the capacity provider with managedScaling and managedTerminationProtection "
        "ENABLED.",
        "ja": "Auto Scaling グループで新規インスタンスのスケールイン保護を有効にし、キャパシティー"
        "プロバイダーの managedScaling と managedTerminationProtection を ENABLED に更新する。",
    },
    fail={
        "en": "managedTerminationProtection {protection}, managedScaling {scaling}",
        "ja": "managedTerminationProtection は {protection}、managedScaling は {scaling}",
    },
    passed={
        "en": "managedTerminationProtection and managedScaling ENABLED",
        "ja": "managedTerminationProtection と managedScaling は ENABLED",
    },
)
def capacity_provider_termination_protection(ctx: CheckContext) -> Iterator[Result]:
    for region, inv in ctx.regions():
        for provider in sorted(inv.ecs.capacity_providers, key=lambda p: p["capacityProviderArn"]):
            asg = provider.get("autoScalingGroupProvider")
            if asg:  # Fargate and ECS Managed Instances providers have no Auto Scaling group
                protection = asg.get("managedTerminationProtection") or "DISABLED"
                scaling = (asg.get("managedScaling") or {}).get("status") or "DISABLED"
                ok = protection == scaling == "ENABLED"
                params = {"protection": protection, "scaling": scaling}
                yield Result(provider["capacityProviderArn"], region, ok, params)


# --- ECS Exec ----------------------------------------------------------------------------------


#: (en, ja) for each thing an ECS Exec configuration lacks
_EXEC_GAPS = {
    "NONE": (
        "logging NONE: sessions are not recorded",
        "logging が NONE: セッションが記録されない",
    ),
    "DEFAULT": (
        "logging DEFAULT but no awslogs driver in: {}",
        "logging が DEFAULT だが awslogs ドライバーがない: {}",
    ),
    "OVERRIDE": (
        "logging OVERRIDE without a log group or S3 bucket",
        "logging が OVERRIDE だがロググループも S3 バケットもない",
    ),
    "KMS": ("no kmsKeyId", "kmsKeyId がない"),
}


def _exec_gaps(ctx: CheckContext, service: Resource, exec_config: Resource) -> list[str]:
    """What is missing for ECS Exec sessions to be recorded and encrypted with a KMS key."""
    gaps: list[tuple[str, str]] = []
    logging = exec_config.get("logging") or "DEFAULT"
    if logging == "DEFAULT":  # sessions go to each container's own awslogs configuration
        _, td = ctx.task_definitions_by_arn.get(service.get("taskDefinition", ""), ("", {}))
        unlogged = [
            c["name"]
            for c in td.get("containerDefinitions", [])
            if (c.get("logConfiguration") or {}).get("logDriver") != "awslogs"
        ]
        if unlogged:
            gaps.append(("DEFAULT", ", ".join(unlogged)))
    elif logging == "NONE":
        gaps.append(("NONE", ""))
    else:
        target = exec_config.get("logConfiguration") or {}
        if not (target.get("cloudWatchLogGroupName") or target.get("s3BucketName")):
            gaps.append(("OVERRIDE", ""))
    if not exec_config.get("kmsKeyId"):
        gaps.append(("KMS", ""))
    return [_EXEC_GAPS[key][ctx.lang == "ja"].format(arg) for key, arg in gaps]


@check(
    id="ecs.exec_sessions_logged_encrypted",
    severity="medium",
    pillar="logging",
    resource_type=SERVICE,
    needs=(*NEEDS_SERVICES, "ecs:DescribeClusters"),
    title={
        "en": "ECS Exec sessions are logged and encrypted with a KMS key",
        "ja": "ECS Exec のセッションが記録され KMS キーで暗号化されている",
    },
    description={
        "en": "ECS Exec opens an interactive shell in a running container. CloudTrail records "
        "only that a session started; what was typed is kept only if the cluster's "
        "executeCommandConfiguration logs it: DEFAULT uses the awslogs driver of each container "
        "(a container without one is not logged), OVERRIDE needs a CloudWatch log group or S3 "
        "bucket, NONE logs nothing. A kmsKeyId adds your own key's encryption to the session "
        "data on top of TLS.",
        "ja": "ECS Exec は実行中のコンテナで対話シェルを開く。CloudTrail にはセッション開始しか"
        "残らず、入力内容はクラスターの executeCommandConfiguration で記録した場合のみ残る。"
        "DEFAULT は各コンテナの awslogs ドライバーを使い（ないコンテナは記録されない）、OVERRIDE "
        "は CloudWatch ロググループか S3 バケットが必要で、NONE は何も記録しない。kmsKeyId を"
        "指定すると TLS に加えて自社キーでセッションデータを暗号化する。",
    },
    remediation={
        "en": "aws ecs update-cluster --cluster NAME --configuration "
        "'executeCommandConfiguration={kmsKeyId=KEY,logging=OVERRIDE,logConfiguration="
        "{cloudWatchLogGroupName=/ecs/exec,cloudWatchEncryptionEnabled=true}}', or turn "
        "enableExecuteCommand off where nobody needs a shell.",
        "ja": "aws ecs update-cluster --cluster NAME --configuration "
        "'executeCommandConfiguration={kmsKeyId=KEY,logging=OVERRIDE,logConfiguration="
        "{cloudWatchLogGroupName=/ecs/exec,cloudWatchEncryptionEnabled=true}}' を実行する。"
        "シェルが不要なサービスでは enableExecuteCommand を無効にする。",
    },
    fail={
        "en": "ECS Exec enabled; cluster {cluster}: {gaps}",
        "ja": "ECS Exec が有効。クラスター {cluster}: {gaps}",
    },
    passed={
        "en": "ECS Exec enabled; cluster {cluster} logs ({logging}) and encrypts sessions",
        "ja": "ECS Exec が有効。クラスター {cluster} はセッションを記録（{logging}）し"
        "暗号化している",
    },
)
def exec_sessions_logged_encrypted(ctx: CheckContext) -> Iterator[Result]:
    clusters = _clusters(ctx)
    for region, service in ctx.services():
        cluster = clusters.get(service.get("clusterArn", ""))
        if service.get("enableExecuteCommand") and cluster:
            config = (cluster.get("configuration") or {}).get("executeCommandConfiguration") or {}
            gaps = _exec_gaps(ctx, service, config)
            params = {
                "cluster": cluster.get("clusterName", _name(cluster["clusterArn"])),
                "gaps": "; ".join(gaps),
                "logging": config.get("logging") or "DEFAULT",
            }
            yield Result(service["serviceArn"], region, not gaps, params)


# --- deployments -------------------------------------------------------------------------------


def _flag(config: Resource, key: str) -> str:
    return "true" if config.get(key) else "false"


@check(
    id="ecs.service_deployment_rollback",
    severity="medium",
    pillar="monitoring",
    resource_type=SERVICE,
    needs=NEEDS_SERVICES,
    title={
        "en": "ECS services roll back failed deployments automatically",
        "ja": "ECS サービスは失敗したデプロイを自動でロールバックする",
    },
    description={
        "en": "A rolling (ECS controller) deployment whose tasks never become healthy keeps "
        "replacing them indefinitely unless a failure detector stops it: the deployment circuit "
        "breaker, or CloudWatch alarms, each with rollback. Either passes. CODE_DEPLOY and "
        "EXTERNAL deployments are controlled elsewhere and are not evaluated.",
        "ja": "ローリング（ECS コントローラー）デプロイでタスクが正常にならない場合、障害検出"
        "（デプロイサーキットブレーカーまたは CloudWatch アラーム、いずれもロールバック付き）"
        "がなければ置き換えを延々と繰り返す。どちらかがあれば合格。CODE_DEPLOY と EXTERNAL の"
        "デプロイは別の仕組みで制御されるため対象外。",
    },
    remediation={
        "en": "aws ecs update-service --cluster C --service S --deployment-configuration "
        "'deploymentCircuitBreaker={enable=true,rollback=true}'",
        "ja": "aws ecs update-service --cluster C --service S --deployment-configuration "
        "'deploymentCircuitBreaker={enable=true,rollback=true}' を実行する。",
    },
    fail={
        "en": "no automatic rollback: deploymentCircuitBreaker enable={enable}, "
        "rollback={rollback}; alarms enable={alarm_enable}, rollback={alarm_rollback}",
        "ja": "自動ロールバックなし: deploymentCircuitBreaker enable={enable}、"
        "rollback={rollback}。alarms enable={alarm_enable}、rollback={alarm_rollback}",
    },
    passed={
        "en": "failed deployments roll back ({by})",
        "ja": "失敗したデプロイはロールバックされる（{by}）",
    },
)
def service_deployment_rollback(ctx: CheckContext) -> Iterator[Result]:
    for region, service in ctx.services():
        if (service.get("deploymentController") or {}).get("type", "ECS") != "ECS":
            continue
        config = service.get("deploymentConfiguration") or {}
        breaker = config.get("deploymentCircuitBreaker") or {}
        alarms = config.get("alarms") or {}
        by_breaker = bool(breaker.get("enable") and breaker.get("rollback"))
        by_alarms = bool(
            alarms.get("enable") and alarms.get("rollback") and alarms.get("alarmNames")
        )
        params = {
            "enable": _flag(breaker, "enable"),
            "rollback": _flag(breaker, "rollback"),
            "alarm_enable": _flag(alarms, "enable"),
            "alarm_rollback": _flag(alarms, "rollback"),
            "by": "deploymentCircuitBreaker" if by_breaker else "CloudWatch alarms",
        }
        yield Result(service["serviceArn"], region, by_breaker or by_alarms, params)


def _deployment_line(deployment: Resource) -> str:
    family, revision = family_and_revision(deployment.get("taskDefinition", ""))
    line = (
        f"{deployment.get('id', '?')} ({family}:{revision}) "
        f"rolloutState={deployment.get('rolloutState', '-')}, "
        f"failedTasks={deployment.get('failedTasks', 0)}"
    )
    reason = deployment.get("rolloutStateReason")
    return f'{line} "{reason}"' if reason else line


@check(
    id="ecs.service_deployment_failed",
    severity="medium",
    pillar="monitoring",
    resource_type=SERVICE,
    needs=NEEDS_SERVICES,
    title={
        "en": "ECS services show no failed deployments",
        "ja": "ECS サービスに失敗したデプロイがない",
    },
    description={
        "en": "A deployment whose rolloutState is FAILED, or a PRIMARY deployment whose tasks "
        "failed to start, means the running version is not the intended one or the service is "
        "short of healthy tasks. This reflects the moment the snapshot was taken.",
        "ja": "rolloutState が FAILED のデプロイや、タスクの起動に失敗している PRIMARY デプロイは、"
        "意図したバージョンが動いていないか正常なタスクが不足していることを示す。スナップショット"
        "取得時点の状態である。",
    },
    remediation={
        "en": "Read the service events and the stopped tasks' stoppedReason, fix the task "
        "definition or its dependencies (image, secrets, health check), and deploy again.",
        "ja": "サービスイベントと停止タスクの stoppedReason を確認し、タスク定義や依存先"
        "（イメージ、シークレット、ヘルスチェック）を修正して再デプロイする。",
    },
    fail={"en": "failed deployments: {deployments}", "ja": "失敗したデプロイ: {deployments}"},
    passed={"en": "no failed deployment", "ja": "失敗したデプロイはない"},
)
def service_deployment_failed(ctx: CheckContext) -> Iterator[Result]:
    for region, service in ctx.services():
        deployments = sorted(service.get("deployments") or [], key=lambda d: d.get("id", ""))
        if not deployments:
            continue
        failed = [
            _deployment_line(d)
            for d in deployments
            if d.get("rolloutState") == "FAILED"
            or (d.get("status") == "PRIMARY" and (d.get("failedTasks") or 0) > 0)
        ]
        yield Result(service["serviceArn"], region, not failed, {"deployments": "; ".join(failed)})


# --- stopped tasks -----------------------------------------------------------------------------

#: ECS returns stopped tasks for a limited time only (AWS promises at least an hour).
_RECENT = {
    "en": " ECS lists stopped tasks for a limited time (at least an hour), so a pass means no "
    "such stop was visible when the snapshot was taken.",
    "ja": " ECS が停止タスクを返すのは限られた時間（最低 1 時間）のため、合格はスナップショット"
    "取得時に該当する停止が見えなかったことを意味する。",
}


def _quote(name: str, text: str) -> str:
    return f'{name}: "{text}"' if name else f'"{text}"'


def _oom(task: Resource) -> str | None:
    for container in sorted(task.get("containers") or [], key=lambda c: c.get("name", "")):
        if "OutOfMemoryError" in (container.get("reason") or ""):
            return _quote(container.get("name", ""), container["reason"])
    reason = task.get("stoppedReason") or ""
    return _quote("", reason) if "OutOfMemoryError" in reason else None


_HEALTH_MARKERS = ("failed elb health checks", "failed container health checks")


def _health(task: Resource) -> str | None:
    reason = task.get("stoppedReason") or ""
    if any(marker in reason.lower() for marker in _HEALTH_MARKERS):
        return _quote("", reason)
    if task.get("stopCode") == "EssentialContainerExited":
        for container in sorted(task.get("containers") or [], key=lambda c: c.get("name", "")):
            if container.get("healthStatus") == "UNHEALTHY":
                return _quote(container.get("name", ""), reason or "UNHEALTHY")
    return None


def _stopped_by(ctx: CheckContext, classify: Callable[[Resource], str | None]) -> Iterator[Result]:
    """One result per service (every service, and every standalone task family seen), counting
    its stopped tasks that `classify` recognises and quoting the latest one."""
    groups: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    services: dict[tuple[str, str, str], str] = {}
    for region, service in ctx.services():
        groups[(region, service["serviceArn"])] = []
        key = (region, service.get("clusterArn", ""), service["serviceName"])
        services[key] = service["serviceArn"]
    for region, inv in ctx.regions():
        for task in inv.ecs.tasks:
            arn = _task_owner(ctx, region, task, services)
            hits = groups.setdefault((region, arn), [])
            stopped = "STOPPED" in (task.get("lastStatus"), task.get("desiredStatus"))
            reason = classify(task) if stopped else None
            if reason:
                hits.append((task.get("stoppedAt") or "", _name(task.get("taskArn", "")), reason))
    for (region, arn), hits in sorted(groups.items()):
        latest = max(hits, default=("", "", ""))
        params = {"count": len(hits), "task": latest[1], "reason": latest[2]}
        yield Result(arn, region, not hits, params)


def _task_owner(
    ctx: CheckContext, region: str, task: Resource, services: dict[tuple[str, str, str], str]
) -> str:
    """The service ARN for a service's task (group "service:NAME"), else its family's ARN."""
    group = task.get("group") or ""
    cluster = task.get("clusterArn", "")
    if group.startswith("service:"):
        name = group.removeprefix("service:")
        return services.get(
            (region, cluster, name),
            f"arn:aws:ecs:{region}:{ctx.account}:service/{_name(cluster)}/{name}",
        )
    family, _ = family_and_revision(task.get("taskDefinitionArn", ""))
    return f"arn:aws:ecs:{region}:{ctx.account}:task-definition/{family}"


@check(
    id="ecs.tasks_stopped_out_of_memory",
    severity="medium",
    pillar="monitoring",
    resource_type=SERVICE,
    needs=NEEDS_TASKS,
    title={
        "en": "ECS tasks are not stopped for running out of memory",
        "ja": "ECS タスクがメモリ不足で停止していない",
    },
    description={
        "en": "A container that exceeds its memory limit is killed (OutOfMemoryError) and its "
        "task replaced: requests in flight fail and the service may crash-loop. One finding per "
        "service, or per task family for standalone tasks." + _RECENT["en"],
        "ja": "メモリ上限を超えたコンテナは強制終了（OutOfMemoryError）され、タスクが置き換え"
        "られる。処理中のリクエストは失敗し、サービスが再起動を繰り返すことがある。サービスごと（単独"
        "タスクはタスク定義ファミリーごと）に 1 件。" + _RECENT["ja"],
    },
    remediation={
        "en": "Check the MemoryUtilization of the service, then raise the task/container memory or "
        "fix the leak; set a memoryReservation below the hard limit on EC2.",
        "ja": "サービスの MemoryUtilization を確認し、タスク／コンテナのメモリを増やすかリークを"
        "修正する。EC2 ではハードリミットより小さい memoryReservation を設定する。",
    },
    fail={
        "en": "{count} task(s) stopped for OutOfMemoryError; latest {task}: {reason}",
        "ja": "OutOfMemoryError で停止したタスク {count} 件。最新 {task}: {reason}",
    },
    passed={
        "en": "no task seen stopped for OutOfMemoryError",
        "ja": "OutOfMemoryError で停止したタスクは見当たらない",
    },
)
def tasks_stopped_out_of_memory(ctx: CheckContext) -> Iterator[Result]:
    yield from _stopped_by(ctx, _oom)


@check(
    id="ecs.tasks_stopped_health_check",
    severity="medium",
    pillar="monitoring",
    resource_type=SERVICE,
    needs=NEEDS_TASKS,
    title={
        "en": "ECS tasks are not stopped by failed health checks",
        "ja": "ECS タスクがヘルスチェック失敗で停止していない",
    },
    description={
        "en": "Tasks stopped because they failed load balancer target health checks or their "
        "container health check mean the application is not answering (or answers too slowly "
        "for the grace period). One finding per service, or per task family for standalone "
        "tasks." + _RECENT["en"],
        "ja": "ロードバランサーのターゲットヘルスチェックやコンテナのヘルスチェックに失敗して停止"
        "したタスクは、アプリケーションが応答していない（猶予期間内に応答できない）ことを示す。"
        "サービスごと（単独タスクはタスク定義ファミリーごと）に 1 件。" + _RECENT["ja"],
    },
    remediation={
        "en": "Compare the health check path, port and timeouts with what the application serves; "
        "raise healthCheckGracePeriodSeconds if it needs longer to start; read the container logs "
        "of the stopped tasks.",
        "ja": "ヘルスチェックのパス、ポート、タイムアウトがアプリケーションの実際と合っているか確認"
        "する。起動に時間がかかる場合は healthCheckGracePeriodSeconds を延ばし、停止タスクの"
        "コンテナログを確認する。",
    },
    fail={
        "en": "{count} task(s) stopped by failed health checks; latest {task}: {reason}",
        "ja": "ヘルスチェック失敗で停止したタスク {count} 件。最新 {task}: {reason}",
    },
    passed={
        "en": "no task seen stopped by a failed health check",
        "ja": "ヘルスチェック失敗で停止したタスクは見当たらない",
    },
)
def tasks_stopped_health_check(ctx: CheckContext) -> Iterator[Result]:
    yield from _stopped_by(ctx, _health)
