"""ECS cluster, service and runtime checks: a pass, a fail with its evidence, and a case each check
does not apply to."""

from __future__ import annotations

from typing import Any

from tests.posture.builders import ACCOUNT, REGION, findings, snapshot, statuses, task_definition

from ecsguard.core.models import Status

CLUSTER_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/prod"
TD_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/web:1"


def arn(name: str) -> str:
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/prod/{name}"


def service(name: str = "web", **fields: Any) -> dict[str, Any]:
    """A well-configured Fargate service on cluster prod; pass fields to override."""
    return {
        "serviceArn": arn(name),
        "serviceName": name,
        "clusterArn": CLUSTER_ARN,
        "taskDefinition": TD_ARN,
        "launchType": "FARGATE",
        "platformVersion": "LATEST",
        "platformFamily": "Linux",
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": ["subnet-a"],
                "securityGroups": ["sg-1"],
                "assignPublicIp": "DISABLED",
            }
        },
        "deploymentController": {"type": "ECS"},
        "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": True, "rollback": True}},
        "deployments": [
            {
                "id": "ecs-svc/1",
                "status": "PRIMARY",
                "taskDefinition": TD_ARN,
                "rolloutState": "COMPLETED",
                "failedTasks": 0,
            }
        ],
        "tags": [{"key": "team", "value": "web"}],
        **fields,
    }


def cluster(**fields: Any) -> dict[str, Any]:
    return {
        "clusterArn": CLUSTER_ARN,
        "clusterName": "prod",
        "settings": [{"name": "containerInsights", "value": "enabled"}],
        "tags": [{"key": "team", "value": "platform"}],
        **fields,
    }


def one(snap: Any, check_id: str, lang: str = "en") -> Any:
    (finding,) = findings(snap, check_id, lang)
    return finding


# --- public IPs ---------------------------------------------------------------------------------


def test_service_public_ip() -> None:
    public = service("api")
    public["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] = "ENABLED"
    bridge = service("legacy", networkConfiguration=None)
    snap = snapshot(ecs={"services": [service(), public, bridge]})
    assert statuses(snap, "ecs.service_public_ip") == {
        arn("web"): Status.PASS,
        arn("api"): Status.FAIL,
    }
    bad = next(f for f in findings(snap, "ecs.service_public_ip") if f.status == Status.FAIL)
    assert bad.message == "assignPublicIp ENABLED (subnets: subnet-a)"
    assert bad.controls == ["FSBP:ECS.2"]


def test_task_set_public_ip() -> None:
    vpc = {"subnets": ["subnet-b"], "assignPublicIp": "ENABLED"}
    task_sets = [
        {"taskSetArn": "arn:ts/blue", "networkConfiguration": {"awsvpcConfiguration": vpc}},
        {
            "taskSetArn": "arn:ts/green",
            "networkConfiguration": {
                "awsvpcConfiguration": {"subnets": ["subnet-c"], "assignPublicIp": "DISABLED"}
            },
        },
    ]
    snap = snapshot(ecs={"services": [service(taskSets=task_sets), service("plain")]})
    result = {f.resource_arn: f for f in findings(snap, "ecs.task_set_public_ip")}
    assert set(result) == {"arn:ts/blue", "arn:ts/green"}
    assert result["arn:ts/green"].status == Status.PASS
    assert result["arn:ts/blue"].message == (
        "task set of service web: assignPublicIp ENABLED (subnets: subnet-b)"
    )


# --- Fargate platform version --------------------------------------------------------------------


def test_fargate_platform_version() -> None:
    snap = snapshot(
        ecs={
            "services": [
                service("latest"),
                service("pinned_current", platformVersion="1.4.0"),
                service("unset", platformVersion=None),
                service("old", platformVersion="1.3.0"),
                service(
                    "spot_old",
                    launchType=None,
                    capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}],
                    platformVersion="1.2.0",
                ),
                service("ec2", launchType="EC2", platformVersion=None),
            ]
        }
    )
    result = {
        f.resource_arn.rsplit("/", 1)[1]: f for f in findings(snap, "ecs.fargate_platform_latest")
    }
    assert "ec2" not in result
    assert {name for name, f in result.items() if f.status == Status.FAIL} == {"old", "spot_old"}
    assert result["old"].message == "platform version 1.3.0; the latest Linux version is 1.4.0"
    assert result["latest"].message == "platform version LATEST"


def test_fargate_windows_family_from_task_definition() -> None:
    windows_td = task_definition(
        "web", runtimePlatform={"operatingSystemFamily": "WINDOWS_SERVER_2022_CORE"}
    )
    snap = snapshot(
        ecs={
            "services": [service(platformFamily=None, platformVersion="1.0.0")],
            "task_definitions": [windows_td],
        }
    )
    assert one(snap, "ecs.fargate_platform_latest").status == Status.PASS
    snap.regions[REGION].ecs.services[0]["platformVersion"] = "0.9.0"
    assert one(snap, "ecs.fargate_platform_latest").message == (
        "platform version 0.9.0; the latest Windows version is 1.0.0"
    )


# --- clusters -------------------------------------------------------------------------------------


def test_container_insights_uses_the_cluster_setting_not_the_account_default() -> None:
    account = [{"name": "containerInsights", "value": "enabled"}]
    off = cluster(
        clusterArn=CLUSTER_ARN + "-old",
        settings=[{"name": "containerInsights", "value": "disabled"}],
    )
    unset = cluster(clusterArn=CLUSTER_ARN + "-bare", settings=[])
    enhanced = cluster(settings=[{"name": "containerInsights", "value": "enhanced"}])
    snap = snapshot(ecs={"clusters": [enhanced, off, unset], "account_settings": account})
    result = {f.resource_arn: f for f in findings(snap, "ecs.cluster_container_insights")}
    assert result[CLUSTER_ARN].status == Status.PASS
    assert result[CLUSTER_ARN + "-old"].message == (
        "Container Insights disabled (account default for new clusters: enabled)"
    )
    assert result[CLUSTER_ARN + "-bare"].status == Status.FAIL
    assert result[CLUSTER_ARN].pillar == "monitoring"
    ja = findings(snap, "ecs.cluster_container_insights", lang="ja")
    assert "新規クラスター向けアカウント既定値: enabled" in ja[1].message


def test_container_insights_without_clusters_yields_nothing() -> None:
    assert findings(snapshot(), "ecs.cluster_container_insights") == []


def test_tags_ignore_aws_system_tags() -> None:
    system_only = [{"key": "aws:cloudformation:stack-name", "value": "s"}]
    snap = snapshot(
        ecs={
            "clusters": [cluster(tags=system_only)],
            "services": [service(), service("bare", tags=[]), service("cfn", tags=system_only)],
        }
    )
    assert one(snap, "ecs.cluster_tagged").message == "no tags besides aws: system tags"
    assert statuses(snap, "ecs.service_tagged") == {
        arn("web"): Status.PASS,
        arn("bare"): Status.FAIL,
        arn("cfn"): Status.FAIL,
    }
    ok = next(f for f in findings(snap, "ecs.service_tagged") if f.status == Status.PASS)
    assert ok.message == "tag keys: team"
    assert ok.controls == ["SecurityHub:ECS.13"] and ok.severity == "low"
    assert findings(snapshot(), "ecs.service_tagged") == []


def test_capacity_provider_termination_protection() -> None:
    def provider(name: str, protection: str, scaling: str) -> dict[str, Any]:
        return {
            "capacityProviderArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:capacity-provider/{name}",
            "name": name,
            "autoScalingGroupProvider": {
                "autoScalingGroupArn": "arn:asg",
                "managedScaling": {"status": scaling},
                "managedTerminationProtection": protection,
            },
        }

    managed = {"capacityProviderArn": "arn:cp/managed-instances", "managedInstancesProvider": {}}
    providers = [
        provider("good", "ENABLED", "ENABLED"),
        provider("off", "DISABLED", "ENABLED"),
        provider("no_scaling", "ENABLED", "DISABLED"),
        managed,
    ]
    result = {
        f.resource_arn.rsplit("/", 1)[1]: f
        for f in findings(
            snapshot(ecs={"capacity_providers": providers}),
            "ecs.capacity_provider_termination_protection",
        )
    }
    assert set(result) == {"good", "off", "no_scaling"}
    assert result["good"].status == Status.PASS
    assert result["off"].message == "managedTerminationProtection DISABLED, managedScaling ENABLED"
    assert result["no_scaling"].status == Status.FAIL


# --- ECS Exec -------------------------------------------------------------------------------------


def exec_cluster(config: dict[str, Any] | None) -> dict[str, Any]:
    return cluster(configuration={"executeCommandConfiguration": config} if config else {})


def test_exec_passes_with_override_logging_and_a_key() -> None:
    config = {
        "kmsKeyId": "arn:kms/key",
        "logging": "OVERRIDE",
        "logConfiguration": {"cloudWatchLogGroupName": "/ecs/exec"},
    }
    snap = snapshot(
        ecs={"clusters": [exec_cluster(config)], "services": [service(enableExecuteCommand=True)]}
    )
    finding = one(snap, "ecs.exec_sessions_logged_encrypted")
    assert finding.status == Status.PASS
    assert finding.message == "ECS Exec enabled; cluster prod logs (OVERRIDE) and encrypts sessions"


def test_exec_fails_naming_what_is_missing() -> None:
    sidecar = {"name": "proxy", "image": "envoy", "logConfiguration": {"logDriver": "fluentd"}}
    td = task_definition("web", containers=[task_definition()["containerDefinitions"][0], sidecar])
    cases = {
        None: "cluster prod: logging DEFAULT but no awslogs driver in: proxy; no kmsKeyId",
        "NONE": "cluster prod: logging NONE: sessions are not recorded; no kmsKeyId",
        "OVERRIDE": "cluster prod: logging OVERRIDE without a log group or S3 bucket; no kmsKeyId",
    }
    for logging, expected in cases.items():
        config = {"logging": logging} if logging else None
        snap = snapshot(
            ecs={
                "clusters": [exec_cluster(config)],
                "task_definitions": [td],
                "services": [service(enableExecuteCommand=True)],
            }
        )
        assert one(snap, "ecs.exec_sessions_logged_encrypted").message == (
            f"ECS Exec enabled; {expected}"
        )
    ja = one(snap, "ecs.exec_sessions_logged_encrypted", lang="ja")
    assert ja.message == (
        "ECS Exec が有効。クラスター prod: logging が OVERRIDE だがロググループも S3 バケットも"
        "ない; kmsKeyId がない"
    )


def test_exec_disabled_is_not_evaluated() -> None:
    snap = snapshot(ecs={"clusters": [exec_cluster(None)], "services": [service()]})
    assert findings(snap, "ecs.exec_sessions_logged_encrypted") == []


# --- deployments ----------------------------------------------------------------------------------


def test_deployment_rollback() -> None:
    no_breaker = service(
        "fragile",
        deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": False}},
    )
    alarms = service(
        "alarmed",
        deploymentConfiguration={
            "alarms": {"alarmNames": ["5xx"], "enable": True, "rollback": True}
        },
    )
    codedeploy = service(
        "bluegreen", deploymentController={"type": "CODE_DEPLOY"}, deploymentConfiguration={}
    )
    snap = snapshot(ecs={"services": [service(), no_breaker, alarms, codedeploy]})
    result = {f.resource_arn: f for f in findings(snap, "ecs.service_deployment_rollback")}
    assert arn("bluegreen") not in result
    assert result[arn("web")].message == "failed deployments roll back (deploymentCircuitBreaker)"
    assert result[arn("alarmed")].message == "failed deployments roll back (CloudWatch alarms)"
    assert result[arn("fragile")].message == (
        "no automatic rollback: deploymentCircuitBreaker enable=true, rollback=false; "
        "alarms enable=false, rollback=false"
    )


def test_failed_deployments() -> None:
    failed = {
        "id": "ecs-svc/2",
        "status": "ACTIVE",
        "taskDefinition": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/web:2",
        "rolloutState": "FAILED",
        "rolloutStateReason": "ECS deployment circuit breaker: tasks failed to start.",
        "failedTasks": 4,
    }
    starting = {
        "id": "ecs-svc/3",
        "status": "PRIMARY",
        "taskDefinition": TD_ARN,
        "rolloutState": "IN_PROGRESS",
        "failedTasks": 2,
    }
    snap = snapshot(
        ecs={
            "services": [
                service(),
                service("broken", deployments=[failed]),
                service("flaky", deployments=[starting]),
                service("external", deployments=[]),
            ]
        }
    )
    result = {f.resource_arn: f for f in findings(snap, "ecs.service_deployment_failed")}
    assert arn("external") not in result
    assert result[arn("web")].status == Status.PASS
    assert result[arn("broken")].message == (
        "failed deployments: ecs-svc/2 (web:2) rolloutState=FAILED, failedTasks=4 "
        '"ECS deployment circuit breaker: tasks failed to start."'
    )
    assert result[arn("flaky")].message == (
        "failed deployments: ecs-svc/3 (web:1) rolloutState=IN_PROGRESS, failedTasks=2"
    )


# --- stopped tasks --------------------------------------------------------------------------------


def task(task_id: str, group: str = "service:web", **fields: Any) -> dict[str, Any]:
    return {
        "taskArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/prod/{task_id}",
        "clusterArn": CLUSTER_ARN,
        "taskDefinitionArn": TD_ARN,
        "group": group,
        "lastStatus": "STOPPED",
        "desiredStatus": "STOPPED",
        "containers": [{"name": "web"}],
        **fields,
    }


OOM = "OutOfMemoryError: Container killed due to memory usage"


def test_out_of_memory_counts_per_service_and_quotes_the_latest() -> None:
    tasks = [
        task(
            "t1",
            stoppedAt="2025-01-01T10:00:00Z",
            stopCode="EssentialContainerExited",
            containers=[{"name": "web", "reason": OOM, "exitCode": 137}],
        ),
        task("t2", stoppedAt="2025-01-01T11:00:00Z", stoppedReason=f"{OOM} (task)"),
        task("t3", stoppedAt="2025-01-01T12:00:00Z", stoppedReason="Scaling activity initiated"),
        task(
            "run",
            lastStatus="RUNNING",
            desiredStatus="RUNNING",
            containers=[{"name": "web", "reason": OOM}],
        ),
        task(
            "batch1",
            group="family:report",
            stoppedAt="2025-01-01T09:00:00Z",
            taskDefinitionArn=f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/report:7",
            containers=[{"name": "report", "reason": OOM}],
        ),
    ]
    snap = snapshot(ecs={"services": [service(), service("api")], "tasks": tasks})
    result = {f.resource_arn: f for f in findings(snap, "ecs.tasks_stopped_out_of_memory")}
    report = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/report"
    assert set(result) == {arn("web"), arn("api"), report}
    assert result[arn("api")].status == Status.PASS
    assert result[arn("web")].message == (
        f'2 task(s) stopped for OutOfMemoryError; latest t2: "{OOM} (task)"'
    )
    assert result[report].message == (
        f'1 task(s) stopped for OutOfMemoryError; latest batch1: report: "{OOM}"'
    )
    ja = {f.resource_arn: f for f in findings(snap, "ecs.tasks_stopped_out_of_memory", "ja")}
    assert ja[arn("web")].message.startswith("OutOfMemoryError で停止したタスク 2 件。最新 t2")


def test_health_check_stops() -> None:
    elb = "Task failed ELB health checks in (target-group arn:aws:elasticloadbalancing:tg/web)"
    tasks = [
        task("t1", stoppedAt="2025-01-01T10:00:00Z", stoppedReason=elb),
        task(
            "t2",
            stoppedAt="2025-01-01T11:00:00Z",
            stopCode="EssentialContainerExited",
            stoppedReason="Essential container in task exited",
            containers=[{"name": "web", "healthStatus": "UNHEALTHY"}],
        ),
        task("t3", group="service:api", stoppedReason="Task failed container health checks"),
        task("t4", group="service:ghost", stoppedReason="Scaling activity initiated"),
    ]
    snap = snapshot(ecs={"services": [service(), service("api")], "tasks": tasks})
    result = {f.resource_arn: f for f in findings(snap, "ecs.tasks_stopped_health_check")}
    assert result[arn("web")].message == (
        "2 task(s) stopped by failed health checks; latest t2: web: "
        '"Essential container in task exited"'
    )
    assert result[arn("api")].message == (
        "1 task(s) stopped by failed health checks; latest t3: "
        '"Task failed container health checks"'
    )
    # a service that is gone still gets a finding under its would-be ARN
    assert result[arn("ghost")].status == Status.PASS
    assert result[arn("web")].pillar == "monitoring"


def test_stopped_task_checks_on_an_empty_snapshot() -> None:
    assert findings(snapshot(), "ecs.tasks_stopped_health_check") == []
    assert findings(snapshot(), "ecs.tasks_stopped_out_of_memory") == []
