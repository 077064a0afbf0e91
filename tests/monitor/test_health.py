"""Service health from the ECS guide's sample events (through the ecs_events receiver) and
from snapshots."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from ecsguard.aws import snapshot as snapshots
from ecsguard.cli.main import cli
from ecsguard.logs.pipeline import Pipeline
from ecsguard.logs.query.timerange import TimeRange
from ecsguard.logs.receivers import RECEIVERS
from ecsguard.logs.records import ReceiverOptions
from ecsguard.monitor import health

EVENTS = Path(__file__).parents[3] / "shared" / "testdata" / "ecs-events"
# the Spot termination notice has no time: it gets this ingest time
INGEST = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
EVERYTHING = TimeRange(datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


def _stopped(task: str, group: str, **detail: object) -> dict[str, object]:
    arn = f"arn:aws:ecs:us-west-2:111122223333:task/prod/{task}"
    return {
        "id": f"stop-{task}",
        "detail-type": "ECS Task State Change",
        "source": "aws.ecs",
        "account": "111122223333",
        "time": "2026-11-28T08:00:00Z",
        "region": "us-west-2",
        "resources": [arn],
        "detail": {
            "clusterArn": "arn:aws:ecs:us-west-2:111122223333:cluster/prod",
            "taskArn": arn,
            "group": group,
            "lastStatus": "STOPPED",
            "desiredStatus": "STOPPED",
            **detail,
        },
    }


STOPPED = [
    _stopped(
        "t1",
        "service:api",
        stopCode="EssentialContainerExited",
        stoppedReason="Essential container in task exited",
        containers=[{"name": "app", "exitCode": 137, "reason": "OutOfMemoryError: Container"}],
    ),
    _stopped(
        "t2",
        "service:api",
        stopCode="EssentialContainerExited",
        stoppedReason="Essential container in task exited",
        containers=[{"name": "app", "exitCode": 1}],
    ),
    _stopped(
        "t3",
        "service:api",
        stopCode="ServiceSchedulerInitiated",
        stoppedReason="Task failed ELB health checks in (target-group arn:tg)",
    ),
    _stopped(
        "t4",
        "service:api",
        stopCode="ServiceSchedulerInitiated",
        stoppedReason="Task failed container health checks",
    ),
    _stopped("t5", "service:api", stopCode="SpotInterruption", stoppedReason="Spot interrupted"),
    _stopped("t6", "service:api", stopCode="UserInitiated", stoppedReason="Task stopped by user"),
    _stopped("t7", "service:api", stoppedReason="Scaling activity initiated by (deployment x)"),
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("health")
    pipeline = Pipeline(folder)
    index = json.loads((EVENTS / "index.json").read_text())
    payloads = [(EVENTS / item["file"]).read_bytes() for item in index]
    payloads.append(orjson.dumps(STOPPED))
    options = ReceiverOptions(ingest_time_us=int(INGEST.timestamp() * 1_000_000))
    for data in payloads:
        parsed = RECEIVERS.get("ecs_events")(data, options)
        pipeline.ingest("events", parsed.batch)
    pipeline.flush()
    pipeline.close()
    return folder


def _entries(data_dir: Path, **where: str) -> list[health.Entry]:
    entries, problems = health.collect(data_dir, EVERYTHING, **where)
    assert problems == []
    return entries


def test_the_guide_events_build_the_servicetest_timeline(data_dir: Path) -> None:
    entries = _entries(data_dir, cluster="default", service="servicetest")
    kinds = sorted(
        (e.time.isoformat(), e.kind, e.data.get("status") or e.data.get("event")) for e in entries
    )
    assert kinds == [
        ("2019-11-19T19:27:22+00:00", "steady_state", "SERVICE_STEADY_STATE"),
        ("2019-11-19T19:37:00+00:00", "steady_state", "CAPACITY_PROVIDER_STEADY_STATE"),
        ("2019-11-19T19:55:38+00:00", "placement_failure", "SERVICE_TASK_PLACEMENT_FAILURE"),
        ("2019-11-19T19:55:38+00:00", "placement_failure", "SERVICE_TASK_PLACEMENT_FAILURE"),
        ("2019-11-19T19:55:38+00:00", "start_impaired", "SERVICE_TASK_START_IMPAIRED"),
        ("2020-05-23T12:31:14+00:00", "deployment", "COMPLETED"),
        ("2020-05-23T12:31:14+00:00", "deployment", "IN_PROGRESS"),
        ("2020-05-23T12:31:14+00:00", "deployment", "IN_PROGRESS"),
        ("2020-05-23T12:31:14+00:00", "deployment_failed", "FAILED"),
    ]
    placements = sorted(e.data["reason"] for e in entries if e.kind == "placement_failure")
    assert placements == ["RESOURCE:CPU", "RESOURCE:FARGATE"]
    fargate = next(e for e in entries if e.data.get("reason") == "RESOURCE:FARGATE")
    assert fargate.data["capacity_providers"] == ["FARGATE_SPOT"]


def test_deployment_states_and_the_rollback(data_dir: Path) -> None:
    entries = _entries(data_dir, service="servicetest")
    deployments = [e for e in entries if e.kind.startswith("deployment")]
    # one deployment id in every state; the second IN_PROGRESS is the circuit breaker's rollback
    statuses = sorted((e.data["status"], e.data["rollback"]) for e in deployments)
    assert statuses == [
        ("COMPLETED", False),
        ("FAILED", False),
        ("IN_PROGRESS", False),
        ("IN_PROGRESS", True),
    ]
    by_status = {e.data["status"]: e for e in deployments}
    assert (
        by_status["FAILED"].data["reason"]
        == "ECS deployment circuit breaker: task failed to start."
    )


def test_rollback_is_flagged() -> None:
    data = orjson.loads(
        (EVENTS / "ecs-deployment-state-change-service-deployment-in-progress-2.json").read_bytes()
    )
    entry = health.entry_from_event(INGEST, data["detail-type"], data["resources"], data["detail"])
    assert entry is not None and entry.data["rollback"] is True
    assert "(rollback)" in entry.summary


def test_spot_termination_notice_and_running_task(data_dir: Path) -> None:
    entries = _entries(data_dir, cluster="default")
    spot = [e for e in entries if e.kind == "task_stopped"]
    assert [(e.service, e.data["category"], e.data["stop_code"], e.time) for e in spot] == [
        ("-", "spot_interruption", "TerminationNotice", INGEST)
    ]
    assert "stopping" in spot[0].summary
    running = _entries(data_dir, cluster="FargateCluster")
    assert [(e.kind, e.service, e.data["status"]) for e in running] == [
        ("task_state", "family:sample-fargate", "RUNNING")
    ]


def test_stop_reasons_are_classified(data_dir: Path) -> None:
    entries = _entries(data_dir, cluster="prod", service="api")
    got = {e.data["task"]: e.data["category"] for e in entries}
    assert got == {
        "t1": "oom",
        "t2": "essential_exit",
        "t3": "elb_health_check",
        "t4": "container_health_check",
        "t5": "spot_interruption",
        "t6": "user_stop",
        "t7": "scaling",
    }
    assert entries[0].data["exit_codes"] == {"app": 137}


def _snapshot(folder: Path, when: datetime, running: int, rollout: str) -> None:
    service = {
        "serviceArn": "arn:aws:ecs:us-west-2:111122223333:service/prod/api",
        "serviceName": "api",
        "clusterArn": "arn:aws:ecs:us-west-2:111122223333:cluster/prod",
        "desiredCount": 3,
        "runningCount": running,
        "pendingCount": 3 - running,
        "deployments": [
            {"id": "ecs-svc/9", "rolloutState": rollout, "updatedAt": when.isoformat()}
        ],
    }
    snap = snapshots.Snapshot(account="111122223333", collected_at=when)
    snap.regions["us-west-2"] = snapshots.RegionInventory()
    snap.regions["us-west-2"].ecs.services.append(service)
    snapshots.save(snap, folder / "snapshots" / f"s-{when:%H%M}.json.gz")


def test_snapshots_give_counts_over_time_and_the_summary(tmp_path: Path) -> None:
    t0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    _snapshot(tmp_path, t0, 1, "IN_PROGRESS")
    _snapshot(tmp_path, t0 + timedelta(minutes=5), 3, "COMPLETED")
    (tmp_path / "snapshots" / "broken.json").write_text("{")
    entries, problems = health.collect(tmp_path, EVERYTHING)
    assert len(problems) == 1 and "broken.json" in problems[0]
    counts = [(e.data["running"], e.data["pending"]) for e in entries if e.kind == "counts"]
    assert counts == [(1, 2), (3, 0)]
    [api] = health.summarize(entries)
    assert (api.desired, api.running, api.pending) == (3, 3, 0)
    assert api.deployment is not None and api.deployment.data["status"] == "COMPLETED"


def test_counts_before_the_window_come_from_the_newest_older_snapshot(tmp_path: Path) -> None:
    t0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    _snapshot(tmp_path, t0, 1, "IN_PROGRESS")
    _snapshot(tmp_path, t0 + timedelta(minutes=5), 2, "IN_PROGRESS")
    for n, path in enumerate(sorted((tmp_path / "snapshots").iterdir())):
        stamp = (t0 + timedelta(minutes=5 * n)).timestamp()
        os.utime(path, (stamp, stamp))  # written when collected
    window = TimeRange(t0 + timedelta(hours=1), t0 + timedelta(hours=2))
    entries, _ = health.collect(tmp_path, window)
    assert [(e.kind, e.data["running"]) for e in entries] == [("counts", 2)]
    [api] = health.summarize(entries)
    assert (api.running, api.deployment) == (2, None)


def test_snapshot_stopped_tasks_and_service_messages(tmp_path: Path) -> None:
    t0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    _snapshot(tmp_path, t0, 2, "COMPLETED")
    snap = snapshots.load(tmp_path / "snapshots" / "s-1000.json.gz")
    inventory = snap.regions["us-west-2"].ecs
    inventory.services[0]["events"] = [
        {
            "id": "e1",
            "createdAt": "2026-11-28T09:58:00Z",
            "message": "(service api) was unable to place a task because no container instance "
            "met all of its requirements.",
        },
        {"id": "e2", "createdAt": "2026-11-28T09:57:00Z", "message": "(service api) other"},
    ]
    inventory.tasks.append(
        {
            "taskArn": "arn:aws:ecs:us-west-2:111122223333:task/prod/t9",
            "clusterArn": "arn:aws:ecs:us-west-2:111122223333:cluster/prod",
            "group": "service:api",
            "lastStatus": "STOPPED",
            "stoppedAt": "2026-11-28T09:59:00Z",
            "stoppedReason": "OutOfMemoryError: Container killed due to memory usage",
        }
    )
    # the same snapshot saved twice: its task and message are listed once
    snapshots.save(snap, tmp_path / "snapshots" / "s-1000.json.gz")
    snapshots.save(snap, tmp_path / "snapshots" / "s-1001.json.gz")
    entries, _ = health.collect(tmp_path, EVERYTHING)
    got = [(e.kind, e.data.get("category")) for e in entries if e.kind != "counts"]
    assert got == [("placement_failure", None), ("task_stopped", "oom"), ("deployment", None)]


def test_health_command_json_and_table(data_dir: Path) -> None:
    runner = CliRunner()
    args = ["health", "--data-dir", str(data_dir), "--start", "2000-01-01T00:00:00Z"]
    result = runner.invoke(cli, [*args, "--output", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    by_name = {(s["cluster"], s["service"]): s for s in doc["services"]}
    api = by_name[("prod", "api")]
    assert api["stopped"]["oom"] == 1 and api["stopped"]["scaling"] == 1
    assert len(api["incidents"]) == 5
    assert all(i["data"]["category"] != "scaling" for i in api["incidents"])
    servicetest = by_name[("default", "servicetest")]
    assert servicetest["deployment"]["data"]["status"] == "FAILED"
    result = runner.invoke(cli, [*args, "--service", "servicetest"])
    assert result.exit_code == 0, result.output
    assert "servicetest" in result.output and "placement" in result.output
    assert "prod" not in result.output


def test_health_command_rejects_a_bad_window(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["health", "--data-dir", str(tmp_path), "--since", "soon"])
    assert result.exit_code != 0
    assert "cannot read the duration" in str(result.exception)
