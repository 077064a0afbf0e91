"""The demo estate: its file, the seeder on a real moto server, and the server wrapper."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from ecsguard.aws.session import AwsOptions, AwsSession
from ecsguard.core.errors import UserError
from ecsguard.demo.emulator import REGION, MotoServer
from ecsguard.demo.seed import (
    container,
    expand_alarms,
    load_estate,
    locate,
    seed,
    task_definition_revisions,
)

REQUIRED_PLANTED = {
    "everyone-administrator",
    "stray-iam-user",
    "access-key-in-task-env",
    "privileged-container",
    "container-without-logging",
    "container-runs-as-root",
    "plaintext-secret-in-env",
    "trail-without-log-validation",
    "open-security-group",
    "task-role-administrator",
    "image-latest-tag",
    "public-ip-service",
    "no-deployment-circuit-breaker",
    "container-insights-disabled",
    "root-without-mfa",
    "ecr-basic-scanning",
    "task-stopped-oom",
    "task-stopped-health-check",
}


@pytest.fixture(scope="module")
def estate() -> dict[str, Any]:
    return load_estate()


def session_for(server: MotoServer, region: str = REGION) -> AwsSession:
    return AwsSession(AwsOptions(regions=(region,), endpoint_url=server.endpoint))


# -- the file ------------------------------------------------------------------------------------


def test_estate_has_the_shape_of_a_small_company(estate: dict[str, Any]) -> None:
    ecs = estate["ecs"]
    assert {c["clusterName"] for c in ecs["clusters"]} >= {"prod", "staging", "batch"}
    services = ecs["services"]
    assert len(services) >= 12
    assert {s["launchType"] for s in services} == {"FARGATE", "EC2"}
    assert len({s["cluster"] for s in services}) == 3
    families = ecs["task_definitions"]
    assert all(2 <= len(revisions) <= 4 for revisions in families.values()), families.keys()
    assert all(s["taskDefinition"].split(":")[0] in families for s in services)
    iam = estate["iam"]
    assert {"ci-deployer", "iam-admin", "service-admin"} <= {u["name"] for u in iam["users"]}
    assert {"ecs-operators", "developers"} <= {g["name"] for g in iam["groups"]}


def test_only_prod_has_container_insights(estate: dict[str, Any]) -> None:
    def insights(cluster: dict[str, Any]) -> str:
        settings = {s["name"]: s["value"] for s in cluster.get("settings", [])}
        return settings.get("containerInsights", "unset")

    assert {c["clusterName"]: insights(c) for c in estate["ecs"]["clusters"]} == {
        "prod": "enabled",
        "staging": "disabled",
        "batch": "unset",
    }


def test_later_revisions_patch_earlier_ones(estate: dict[str, Any]) -> None:
    orders = task_definition_revisions(estate, "orders")
    assert "secrets" in container(orders[0], "orders"), "revision 1 reads Secrets Manager"
    latest = container(orders[-1], "orders")
    assert "secrets" not in latest, "`secrets: null` removed the key"
    assert latest["healthCheck"], "kept from revision 2"
    assert {"name": "DB_PASSWORD", "value": "demo-only-orders-pw"} in latest["environment"]
    search = task_definition_revisions(estate, "search")
    assert [len(r["containerDefinitions"]) for r in search] == [1, 1, 2], "sidecar added by name"
    assert all("note" not in r for r in search)
    assert orders[0]["taskRoleArn"] == orders[-1]["taskRoleArn"] == "${role:orders-task}"


def test_every_planted_and_good_entry_points_at_something_real(estate: dict[str, Any]) -> None:
    entries = estate["planted"] + estate["good_practice"]
    ids = [e["id"] for e in entries]
    assert len(ids) == len(set(ids)), "ids are unique"
    assert {e["id"] for e in estate["planted"]} >= REQUIRED_PLANTED
    for entry in entries:
        assert entry["what"] and entry["where"], entry["id"]
        item = locate(estate, entry["where"])
        assert item, entry["id"]
        if "container" in entry:
            assert container(item, entry["container"]), entry["id"]


@pytest.mark.parametrize(
    ("planted_id", "check"),
    [
        ("privileged-container", lambda c: c.get("privileged") is True),
        ("container-without-logging", lambda c: "logConfiguration" not in c),
        ("container-runs-as-root", lambda c: c.get("user") in ("0", "0:0", "root")),
        ("image-latest-tag", lambda c: c["image"].endswith(":latest")),
        (
            "plaintext-secret-in-env",
            lambda c: any(e["name"] == "DB_PASSWORD" for e in c.get("environment", [])),
        ),
        (
            "access-key-in-task-env",
            lambda c: any(
                e["value"] == "${access_key:legacy-batch-bot}" for e in c.get("environment", [])
            ),
        ),
    ],
)
def test_planted_container_mistakes_are_really_there(
    estate: dict[str, Any], planted_id: str, check: Any
) -> None:
    entry = next(e for e in estate["planted"] if e["id"] == planted_id)
    assert check(container(locate(estate, entry["where"]), entry["container"]))


def test_locate_rejects_unknown_kinds_and_names(estate: dict[str, Any]) -> None:
    with pytest.raises(UserError, match="unknown locator kind"):
        locate(estate, "bucket:nope")
    with pytest.raises(UserError, match="nothing at 'iam_user:nobody'"):
        locate(estate, "iam_user:nobody")
    with pytest.raises(UserError, match="nothing at 'account:admin'"):
        locate(estate, "account:admin")


def test_locate_finds_the_one_registry_and_the_root_user(estate: dict[str, Any]) -> None:
    assert locate(estate, "ecr_registry:default") == {"scanType": "BASIC", "rules": []}
    assert locate(estate, "account:root") == {"mfa": False}
    without = {"format": "ecsguard-estate"}
    with pytest.raises(UserError, match="nothing at 'ecr_registry:default'"):
        locate(without, "ecr_registry:default")


def test_per_service_alarms_expand_for_every_service(estate: dict[str, Any]) -> None:
    alarms = {a["AlarmName"]: a for a in expand_alarms(estate)}
    for service in estate["ecs"]["services"]:
        prefix = f"{service['cluster']}-{service['serviceName']}"
        for kind in ("cpu-high", "memory-high", "tasks-missing"):
            assert f"{prefix}-{kind}" in alarms
    missing = alarms["staging-api-tasks-missing"]
    dimensions = missing["Metrics"][0]["MetricStat"]["Metric"]["Dimensions"]
    assert dimensions == [
        {"Name": "ClusterName", "Value": "staging"},
        {"Name": "ServiceName", "Value": "api"},
    ]
    assert missing["AlarmActions"] == ["${topic:ops-alerts}"]


def test_bad_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "estate.yaml"
    path.write_text("format: ecsguard-estate\necs:\n  clusters: [prod\n  services: {}\n")
    with pytest.raises(UserError) as caught:
        load_estate(path)
    assert str(path) in str(caught.value)
    assert f"{path}:4: invalid YAML" in str(caught.value)


def test_a_file_that_is_not_an_estate_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.yaml"
    path.write_text("just: a mapping\n")
    with pytest.raises(UserError, match="not an estate file"):
        load_estate(path)
    with pytest.raises(UserError, match="cannot read estate file"):
        load_estate(tmp_path / "missing.yaml")


def test_seeding_refuses_anything_but_a_local_emulator() -> None:
    session = AwsSession(
        AwsOptions(regions=(REGION,), endpoint_url="https://ecs.ap-northeast-1.amazonaws.com")
    )
    with pytest.raises(UserError, match="refusing to seed"):
        seed(session, load_estate())


def test_unknown_reference_is_a_clear_error(moto_server: MotoServer) -> None:
    # another region, so the session's seeded account stays untouched
    estate = {
        "format": "ecsguard-estate",
        "region": "us-west-2",
        "sns": {"topics": [{"Name": "t", "Attributes": {"KmsMasterKeyId": "${kms:nope}"}}]},
    }
    with pytest.raises(UserError, match=r"unknown reference \$\{kms:nope\} in SNS topic t"):
        seed(session_for(moto_server, "us-west-2"), estate)


# -- seeded into moto ----------------------------------------------------------------------------


def test_summary_counts(seeded: tuple[MotoServer, dict[str, int]]) -> None:
    _, summary = seeded
    assert summary["clusters"] == 3
    assert summary["services"] >= 12
    assert summary["task_definitions"] >= 30
    assert summary["tasks_running"] > 0 and summary["tasks_stopped"] > 0
    assert summary["iam_access_keys"] == 2
    assert summary["trails"] == 2


def test_clusters_services_and_revisions_exist(
    seeded: tuple[MotoServer, dict[str, int]], estate: dict[str, Any]
) -> None:
    server, _ = seeded
    ecs = session_for(server).client("ecs", REGION)
    clusters = ecs.describe_clusters(clusters=["prod", "staging", "batch"], include=["SETTINGS"])[
        "clusters"
    ]
    insights = {c["clusterName"]: c["settings"][0]["value"] for c in clusters}
    assert insights["prod"] == "enabled" and insights["staging"] == "disabled"
    services = 0
    for cluster in ("prod", "staging", "batch"):
        services += len(ecs.list_services(cluster=cluster)["serviceArns"])
    assert services == len(estate["ecs"]["services"])
    for family, revisions in estate["ecs"]["task_definitions"].items():
        arns = ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"]
        mine = [a for a in arns if a.rsplit("/", 1)[1].rsplit(":", 1)[0] == family]
        assert len(mine) == len(revisions), family
    admin = ecs.describe_services(cluster="prod", services=["admin-portal"])["services"][0]
    assert admin["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] == "ENABLED"
    worker = ecs.describe_services(cluster="batch", services=["orders-worker"])["services"][0]
    assert "deploymentCircuitBreaker" not in worker.get("deploymentConfiguration", {})
    api = ecs.describe_services(cluster="prod", services=["api"])["services"][0]
    assert api["deploymentConfiguration"]["deploymentCircuitBreaker"] == {
        "enable": True,
        "rollback": True,
    }
    assert api["runningCount"] == api["desiredCount"] == 3
    assert len(ecs.list_container_instances(cluster="batch")["containerInstanceArns"]) == 2


def test_tasks_run_and_stay_running(seeded: tuple[MotoServer, dict[str, int]]) -> None:
    server, _ = seeded
    ecs = session_for(server).client("ecs", REGION)
    arns = ecs.list_tasks(cluster="prod")["taskArns"]
    for _ in range(3):  # moto would move tasks towards STOPPED on every describe
        tasks = ecs.describe_tasks(cluster="prod", tasks=arns)["tasks"]
    states = Counter(t["lastStatus"] for t in tasks)
    assert states["RUNNING"] >= 10 and states["STOPPED"] >= 2, states
    reasons = {t["group"]: t.get("stoppedReason") for t in tasks if t["lastStatus"] == "STOPPED"}
    assert reasons["service:orders"] == "Task failed container health checks"
    assert "OutOfMemoryError" not in reasons["service:api"], "the api is in good practice"
    api = [t for t in tasks if t["group"] == "service:api"]
    assert {t["taskDefinitionArn"].rsplit(":", 1)[1] for t in api} == {"3", "4"}
    batch = ecs.list_tasks(cluster="batch", serviceName="image-resizer")["taskArns"]
    resizer = ecs.describe_tasks(cluster="batch", tasks=batch)["tasks"]
    oom = [t for t in resizer if "OutOfMemoryError" in t.get("stoppedReason", "")]
    assert len(oom) == 2


def test_stray_key_really_sits_in_the_task_definition(
    seeded: tuple[MotoServer, dict[str, int]],
) -> None:
    server, _ = seeded
    session = session_for(server)
    keys = session.client("iam", REGION).list_access_keys(UserName="legacy-batch-bot")
    key_id = keys["AccessKeyMetadata"][0]["AccessKeyId"]
    definition = session.client("ecs", REGION).describe_task_definition(
        taskDefinition="nightly-report"
    )["taskDefinition"]
    env = {e["name"]: e["value"] for e in definition["containerDefinitions"][0]["environment"]}
    assert env["AWS_ACCESS_KEY_ID"] == key_id
    assert env["AWS_SECRET_ACCESS_KEY"] and "${" not in env["AWS_SECRET_ACCESS_KEY"]


def test_planted_iam_mistakes(seeded: tuple[MotoServer, dict[str, int]]) -> None:
    server, _ = seeded
    iam = session_for(server).client("iam", REGION)
    admin = "arn:aws:iam::aws:policy/AdministratorAccess"
    attached = iam.list_attached_group_policies(GroupName="developers")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [admin]
    assert len(iam.get_group(GroupName="developers")["Users"]) >= 3
    role = iam.list_attached_role_policies(RoleName="notifications-task")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in role] == [admin]
    assert iam.list_mfa_devices(UserName="watanabe.ryo")["MFADevices"] == []
    assert iam.list_mfa_devices(UserName="tanaka.yuki")["MFADevices"]
    # people and bots get permissions through groups; only the stray bot has a policy of its own
    for user in ("ci-deployer", "service-admin"):
        assert iam.list_attached_user_policies(UserName=user)["AttachedPolicies"] == []
        assert iam.list_user_policies(UserName=user)["PolicyNames"] == []
    deploy = iam.list_attached_group_policies(GroupName="ci")["AttachedPolicies"]
    assert [p["PolicyName"] for p in deploy] == ["ci-deploy"]
    assert [u["UserName"] for u in iam.get_group(GroupName="ci")["Users"]] == ["ci-deployer"]
    full = iam.list_attached_group_policies(GroupName="ecs-admins")["AttachedPolicies"]
    assert [p["PolicyName"] for p in full] == ["AmazonECS_FullAccess"]
    assert iam.list_user_policies(UserName="legacy-batch-bot")["PolicyNames"] == ["legacy-reports"]
    assert iam.get_account_summary()["SummaryMap"]["AccountMFAEnabled"] == 0  # root-without-mfa


def test_planted_logging_and_network_mistakes(seeded: tuple[MotoServer, dict[str, int]]) -> None:
    server, _ = seeded
    session = session_for(server)
    trails = {
        t["Name"]: t for t in session.client("cloudtrail", REGION).describe_trails()["trailList"]
    }
    assert trails["org-audit"]["LogFileValidationEnabled"] is True
    assert trails["org-audit"]["IsMultiRegionTrail"] is True
    assert trails["legacy-audit"]["LogFileValidationEnabled"] is False
    groups = session.client("logs", REGION).describe_log_groups(logGroupNamePrefix="/ecs/")
    by_name = {g["logGroupName"]: g for g in groups["logGroups"]}
    assert "retentionInDays" not in by_name["/ecs/image-resizer"]
    assert all(g["kmsKeyId"].startswith("arn:aws:kms:") for g in by_name.values()), "all ECS"
    assert all(g.get("retentionInDays") for n, g in by_name.items() if n != "/ecs/image-resizer")
    ec2 = session.client("ec2", REGION)
    sg = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["batch-instances"]}]
    )["SecurityGroups"][0]
    assert any(
        p.get("FromPort") == 22
        and {"CidrIp": "0.0.0.0/0", "Description": "debug ssh"} in p["IpRanges"]
        for p in sg["IpPermissions"]
    )
    repos = {
        r["repositoryName"]: r
        for r in session.client("ecr", REGION).describe_repositories()["repositories"]
    }
    assert repos["shop/image-resizer"]["imageScanningConfiguration"]["scanOnPush"] is False
    assert repos["shop/image-resizer"]["imageTagMutability"] == "MUTABLE"
    assert repos["shop/api"]["imageTagMutability"] == "IMMUTABLE"
    scanning = session.client("ecr", REGION).get_registry_scanning_configuration()
    assert scanning["scanningConfiguration"]["scanType"] == "BASIC"


def test_monitoring_and_secrets_exist(seeded: tuple[MotoServer, dict[str, int]]) -> None:
    server, _ = seeded
    session = session_for(server)
    alarms = session.client("cloudwatch", REGION).describe_alarms()["MetricAlarms"]
    names = {a["AlarmName"]: a for a in alarms}
    assert "prod-api-cpu-high" in names
    assert names["prod-orders-memory-high"]["StateValue"] == "ALARM"
    queries = {q["Id"]: q for q in names["batch-email-worker-tasks-missing"]["Metrics"]}
    assert queries["missing"]["Expression"] == "desired - running"
    assert queries["running"]["MetricStat"]["Metric"]["MetricName"] == "RunningTaskCount"
    providers = session.client("ecs", REGION).describe_capacity_providers(
        capacityProviders=["batch-ec2"]
    )["capacityProviders"]
    assert providers[0]["autoScalingGroupProvider"]["managedTerminationProtection"] == "ENABLED"
    key = session.client("kms", REGION).describe_key(KeyId="alias/logs")["KeyMetadata"]["KeyId"]
    policy = session.client("kms", REGION).get_key_policy(KeyId=key, PolicyName="default")
    assert "logs.ap-northeast-1.amazonaws.com" in policy["Policy"]
    events = session.client("events", REGION)
    rules = {r["Name"] for r in events.list_rules()["Rules"]}
    assert {"ecs-task-stopped", "security-iam-changes", "nightly-report"} <= rules
    target = events.list_targets_by_rule(Rule="nightly-report")["Targets"][0]
    assert target["EcsParameters"]["TaskDefinitionArn"].endswith("nightly-report:3")
    secrets = session.client("secretsmanager", REGION).list_secrets()["SecretList"]
    arns = {s["Name"]: s["ARN"] for s in secrets}
    payments = session.client("ecs", REGION).describe_task_definition(taskDefinition="payments")[
        "taskDefinition"
    ]["containerDefinitions"][0]
    assert {s["valueFrom"] for s in payments["secrets"]} >= {
        f"{arns['prod/payments/db']}:password::",
        arns["prod/payments/psp-api-key"],
    }
    params = session.client("ssm", REGION).describe_parameters()["Parameters"]
    assert {p["Type"] for p in params if p["Name"].startswith("/prod/auth/")} == {"SecureString"}


# -- the server wrapper --------------------------------------------------------------------------


def test_server_env_points_at_it(moto_server: MotoServer) -> None:
    env = moto_server.env()
    assert env["AWS_ENDPOINT_URL"] == moto_server.endpoint.rstrip("/")
    assert moto_server.endpoint.startswith("http://127.0.0.1:")
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "ap-northeast-1"
    assert f"export AWS_ENDPOINT_URL={moto_server.endpoint}" in moto_server.env_lines()
    assert moto_server.running


def test_server_that_cannot_start_is_a_user_error() -> None:
    server = MotoServer(command=["/nonexistent/ecsguard-python", "-m", "moto.server"])
    with pytest.raises(UserError, match=f"port {server.port}"):
        server.start()
    assert not server.running


def test_server_that_exits_reports_its_stderr() -> None:
    script = "import sys; sys.stderr.write('no moto here\\n'); sys.exit(3)"
    server = MotoServer(command=[sys.executable, "-c", script])
    with pytest.raises(UserError) as caught:
        server.start()
    message = str(caught.value)
    assert f"port {server.port}" in message and "status 3" in message
    assert "no moto here" in message


def test_server_on_a_busy_port_is_a_user_error(moto_server: MotoServer) -> None:
    # the session's server answers on that port: it must not be mistaken for ours
    with pytest.raises(UserError, match=f"port {moto_server.port}.*in use"):
        MotoServer(port=moto_server.port).start()
    assert moto_server.running
