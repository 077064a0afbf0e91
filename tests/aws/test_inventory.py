"""The collectors against the seeded emulated account: every seeded resource, with the fields
later checks need, and drift between two collections."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ecsguard.aws import snapshot as snapshots
from ecsguard.aws.collect import collect
from ecsguard.aws.diff import diff
from ecsguard.aws.session import AwsOptions, AwsSession
from ecsguard.demo.seed import load_estate

REGION = "ap-northeast-1"


def by(items: list[dict[str, Any]], field: str) -> dict[str, dict[str, Any]]:
    return {item[field]: item for item in items}


def test_every_seeded_ecs_resource_is_collected(demo_snapshot: snapshots.Snapshot) -> None:
    estate = load_estate()
    ecs = demo_snapshot.regions[REGION].ecs
    assert {c["clusterName"] for c in ecs.clusters} == {
        c["clusterName"] for c in estate["ecs"]["clusters"]
    }
    seeded_services = {s["serviceName"] for s in estate["ecs"]["services"]}
    assert {s["serviceName"] for s in ecs.services} == seeded_services
    revisions = sum(len(r) for r in estate["ecs"]["task_definitions"].values())
    assert len(ecs.task_definitions) == revisions, "every ACTIVE revision, not just the latest"
    assert {p["name"] for p in ecs.capacity_providers} >= {
        p["name"] for p in estate["ecs"].get("capacity_providers", [])
    }


def test_task_definitions_keep_full_container_definitions(
    demo_snapshot: snapshots.Snapshot,
) -> None:
    tds = demo_snapshot.regions[REGION].ecs.task_definitions
    latest_search = max(
        (td for td in tds if td["family"] == "search"), key=lambda td: td["revision"]
    )
    containers = by(latest_search["containerDefinitions"], "name")
    assert containers["search"]["privileged"] is True
    assert "logConfiguration" not in containers["metrics-exporter"]
    nightly = max(
        (td for td in tds if td["family"] == "nightly-report"), key=lambda td: td["revision"]
    )
    env = {
        e["name"]: e["value"]
        for c in nightly["containerDefinitions"]
        for e in c.get("environment", [])
    }
    keys = {k["UserName"]: k["AccessKeyId"] for k in demo_snapshot.iam.access_keys}
    assert env["AWS_ACCESS_KEY_ID"] == keys["legacy-batch-bot"], "the stray key is traceable"
    assert all(td["taskDefinitionArn"].startswith("arn:aws:ecs:") for td in tds)


def test_services_carry_network_deployments_and_config(demo_snapshot: snapshots.Snapshot) -> None:
    services = by(demo_snapshot.regions[REGION].ecs.services, "serviceName")
    admin = services["admin-portal"]
    assert admin["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] == "ENABLED"
    assert admin["deployments"], "deployments are kept"
    breaker = services["api"]["deploymentConfiguration"]["deploymentCircuitBreaker"]
    assert breaker == {"enable": True, "rollback": True}
    tasks = demo_snapshot.regions[REGION].ecs.tasks
    assert any(t["lastStatus"] == "RUNNING" for t in tasks)
    assert any("OutOfMemory" in (t.get("stoppedReason") or "") for t in tasks)


def test_iam_trust_policies_keys_and_credential_report(demo_snapshot: snapshots.Snapshot) -> None:
    iam = demo_snapshot.iam
    roles = by(iam.roles, "RoleName")
    trust = roles["notifications-task"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    attached = {p["PolicyName"] for p in roles["notifications-task"]["AttachedManagedPolicies"]}
    assert "AdministratorAccess" in attached
    admin_policy = by(iam.policies, "PolicyName")["AdministratorAccess"]
    default = next(v for v in admin_policy["PolicyVersionList"] if v["IsDefaultVersion"])
    assert default["Document"]["Statement"][0]["Action"] == "*", "documents are decoded"
    key = next(k for k in iam.access_keys if k["UserName"] == "legacy-batch-bot")
    assert key["CreateDate"].endswith("Z") and "LastUsed" in key, "key age and last use"
    report = by(iam.credential_report, "user")
    assert report["watanabe.ryo"]["password_enabled"] == "true"
    assert report["watanabe.ryo"]["mfa_active"] == "false"


def test_trails_alarms_logs_rules_ecr_network_secrets(demo_snapshot: snapshots.Snapshot) -> None:
    region = demo_snapshot.regions[REGION]
    trails = by(region.cloudtrail.trails, "Name")
    assert trails["org-audit"]["LogFileValidationEnabled"] is True
    assert trails["org-audit"]["IsMultiRegionTrail"] is True
    assert trails["org-audit"]["Status"]["IsLogging"] is True
    assert trails["legacy-audit"]["LogFileValidationEnabled"] is False
    assert region.cloudwatch.metric_alarms and region.logs.metric_filters
    groups = by(region.logs.log_groups, "logGroupName")
    assert "retentionInDays" not in groups["/ecs/image-resizer"]
    assert groups["/ecs/payments"].get("kmsKeyId")
    assert all(
        rule["Targets"] for rule in region.events.rules if rule["Name"] == "ecs-task-stopped"
    )
    repos = by(region.ecr.repositories, "repositoryName")
    assert repos["shop/api"]["imageTagMutability"] == "IMMUTABLE"
    assert repos["shop/api"]["lifecyclePolicy"] is not None
    assert repos["shop/image-resizer"]["lifecyclePolicy"] is None
    ssh_open = [
        sg
        for sg in region.ec2.security_groups
        if any(
            p.get("FromPort") == 22
            and any(r.get("CidrIp") == "0.0.0.0/0" for r in p.get("IpRanges", []))
            for p in sg["IpPermissions"]
        )
    ]
    assert ssh_open, "the open security group used by a service is collected"
    assert region.secretsmanager.secrets and region.ssm.parameters
    dumped = json.dumps(demo_snapshot.model_dump(mode="json"))
    estate = load_estate()
    values = [s["SecretString"] for s in estate["secretsmanager"]["secrets"]]
    values += [p["Value"] for p in estate["ssm"]["parameters"] if p["Type"] == "SecureString"]
    assert values and not [v for v in values if v in dumped], "secret values are never collected"


def test_snapshot_file_round_trips_and_counts_calls(
    demo_snapshot: snapshots.Snapshot, tmp_path: Path
) -> None:
    path = snapshots.save(demo_snapshot, tmp_path / "demo.json.gz")
    assert snapshots.load(path) == demo_snapshot
    assert demo_snapshot.api.total_calls == sum(demo_snapshot.api.calls.values()) > 50
    assert demo_snapshot.api.calls["ecs:DescribeTaskDefinition"] == len(
        demo_snapshot.regions[REGION].ecs.task_definitions
    )
    assert demo_snapshot.gaps == []


def test_drift_between_two_collections(moto_server, aws_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Another region keeps the shared seeded estate untouched.
    region = "us-west-2"
    session = AwsSession(AwsOptions(regions=(region,), endpoint_url=moto_server.endpoint))
    ecs = session.client("ecs", region)
    ecs.create_cluster(clusterName="drift")
    ecs.register_task_definition(
        family="drift",
        containerDefinitions=[{"name": "app", "image": "app:1", "memory": 128}],
    )
    before = collect(session, only=["ecs"])
    ecs.register_task_definition(
        family="drift",
        containerDefinitions=[{"name": "app", "image": "app:2", "memory": 128, "privileged": True}],
    )
    ecs.create_cluster(
        clusterName="drift", settings=[{"name": "containerInsights", "value": "enabled"}]
    )
    after = collect(
        AwsSession(AwsOptions(regions=(region,), endpoint_url=moto_server.endpoint)), only=["ecs"]
    )
    changes = {(c.kind, c.change) for c in diff(before, after)}
    assert ("ecs.task_definitions", "added") in changes
    old, new = tmp_path / "old.json.gz", tmp_path / "new.json.gz"
    snapshots.save(before, old)
    snapshots.save(after, new)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "ecsguard",
            "inventory",
            "diff",
            str(old),
            str(new),
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1, run.stderr
    listed = json.loads(run.stdout)
    assert any(
        c["kind"] == "ecs.task_definitions"
        and c["key"].endswith("drift:2")
        and c["change"] == "added"
        for c in listed
    )
    same = subprocess.run(
        [sys.executable, "-m", "ecsguard", "inventory", "diff", str(old), str(old)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert same.returncode == 0 and "no changes" in same.stdout


@pytest.mark.parametrize("target", ["snap.json.gz", "into/", "."])
def test_inventory_command_end_to_end(seeded, tmp_path: Path, target: str) -> None:  # type: ignore[no-untyped-def]
    """`-o` names the file, or a folder (ending in /, or one that exists) to put
    ACCOUNT-TIME.json.gz in."""
    server, _ = seeded
    out = tmp_path / target
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "ecsguard",
            "-v",
            "inventory",
            "--endpoint-url",
            server.endpoint,
            "--region",
            REGION,
            "-o",
            f"{tmp_path}/{target}",  # as typed: Path would drop the trailing slash
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**server.env(), "PATH": "/usr/bin:/bin"},
    )
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["resources"]["ecs.services"] >= 12
    assert summary["api_calls_by_operation"]["ecs:DescribeServices"] >= 3
    saved = Path(summary["snapshot"])
    if target == "snap.json.gz":
        assert saved == out
    else:
        assert saved.parent.resolve() == out.resolve()
        assert saved.name.startswith(summary["account"] + "-") and saved.suffix == ".gz"
    assert snapshots.load(saved).account == summary["account"]
