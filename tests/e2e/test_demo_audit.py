"""The audit on the emulated account: every planted mistake is found, the well-configured
resources pass, and the demo command does the whole job."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ecsguard.aws.snapshot import Snapshot
from ecsguard.core.models import Finding, Status
from ecsguard.demo.seed import load_estate
from ecsguard.posture.audit import audit


def fragments(where: str, snapshot: Snapshot) -> list[str]:
    """What a finding's resource ARN or message shows for an estate locator `kind:name`."""
    kind, _, name = where.partition(":")
    if kind == "security_group":
        return [
            sg["GroupId"]
            for inv in snapshot.regions.values()
            for sg in inv.ec2.security_groups
            if sg["GroupName"] == name
        ]
    arn_part = {
        "iam_user": f":user/{name}",
        "iam_group": f":group/{name}",
        "iam_role": f"role/{name}",
        "cluster": f":cluster/{name}",
        "capacity_provider": f"capacity-provider/{name}",
        "service": f":service/{name}",
        "task_definition": f":task-definition/{name}:",
        "ecr_repository": f":repository/{name}",
        "ecr_registry": ":registry",
        "log_group": f":log-group:{name}",
        "trail": f":trail/{name}",
        "event_rule": f":rule/{name}",
        "alarm": f":alarm:{name}",
        "account": ":root",
    }
    if kind not in arn_part:
        raise AssertionError(f"no matcher for locator kind {kind!r} ({where})")
    return [arn_part[kind]]


def concerns(finding: Finding, entry: dict[str, Any], snapshot: Snapshot) -> bool:
    """The finding is about the entry's resource (ARN, or the message naming it)."""
    parts = fragments(entry["where"], snapshot)
    kind, _, name = entry["where"].partition(":")
    hit = any(p in finding.resource_arn for p in parts)
    if kind == "iam_role":  # task-role findings sit on task definitions and name the role
        hit = hit or name in finding.message
    if kind == "security_group":
        hit = hit or any(p in finding.message for p in parts)
    if hit and entry.get("container"):
        hit = entry["container"] in finding.message
    return hit


@pytest.fixture(scope="module")
def demo_findings(demo_snapshot: Snapshot) -> list[Finding]:
    return audit(demo_snapshot).findings


def test_every_planted_mistake_is_found(
    demo_findings: list[Finding], demo_snapshot: Snapshot
) -> None:
    failed = [f for f in demo_findings if f.status == Status.FAIL]
    missed = [
        entry["id"]
        for entry in load_estate()["planted"]
        if entry.get("found_by", "audit") == "audit"  # others: the IAM report's tests
        and not any(concerns(f, entry, demo_snapshot) for f in failed)
    ]
    assert missed == []


def test_no_failure_on_well_configured_resources(
    demo_findings: list[Finding], demo_snapshot: Snapshot
) -> None:
    estate = load_estate()
    failed = [f for f in demo_findings if f.status == Status.FAIL]
    wrong = [
        (entry["id"], f.check_id, f.message)
        for entry in estate["good_practice"]
        for f in failed
        if concerns(f, entry, demo_snapshot)
    ]
    assert wrong == []
    unexplained = [
        (f.check_id, f.resource_arn)
        for f in failed
        if not any(concerns(f, entry, demo_snapshot) for entry in estate["planted"])
    ]
    assert unexplained == [], "every failure in the demo is a documented planted mistake"


def test_no_check_breaks_on_real_collected_data(demo_findings: list[Finding]) -> None:
    assert [f for f in demo_findings if f.status in (Status.ERROR, Status.NOT_ASSESSED)] == []
    assert len({f.check_id for f in demo_findings}) >= 60


def test_demo_once_does_the_whole_job_within_a_minute(tmp_path: Path) -> None:
    started = time.monotonic()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    run = subprocess.run(
        [sys.executable, "-m", "ecsguard", "demo", "--once", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    assert time.monotonic() - started < 60
    assert "export AWS_ENDPOINT_URL=http://127.0.0.1:" in run.stdout
    assert "ecs.services" in run.stdout and "Failed checks by pillar" in run.stdout
    assert "FireLens records received over HTTP, stored as Parquet" in run.stdout
    # the live tail printed the burst sent after it subscribed, and Insights answered
    assert run.stdout.count(" handled request") + run.stdout.count("Traceback") >= 9
    assert "stats count(*) as errors by cluster, service" in run.stdout
    assert "one request end to end" in run.stdout
    # the bad minute: the shipped rules raise alerts and the local channel receives them
    for rule in ("ecs-task-oom", "ecs-deployment-failed", "ecs-task-placement-failure"):
        assert rule in run.stdout
    assert "5 notification(s) delivered to the local channel" in run.stdout
    # monitoring: the EMF metrics charted, the ECS events turned into service health
    assert "CPU and memory, last hour" in run.stdout and "▇" in run.stdout
    assert "Service health: latest incidents" in run.stdout and "placement_failure" in run.stdout
    # the web console answered a one-time login with the same figures
    console = re.search(r"web console http://\S+ \(as user demo\): (\d+) open findings", run.stdout)
    assert console and int(console.group(1)) > 0
    assert list((tmp_path / "store" / "logs").rglob("*.parquet"))
    assert (tmp_path / "snapshots" / "demo.json.gz").exists()
    html = (tmp_path / "reports" / "audit-ja.html").read_text()
    assert '<html lang="ja"' in html
