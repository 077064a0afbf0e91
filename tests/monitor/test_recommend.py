"""`ecsguard alarms recommend`: a rule file the loader accepts, with each service's alarms."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ecsguard.aws import snapshot as snapshots
from ecsguard.cli.main import cli
from ecsguard.detect.loader import load_text
from ecsguard.monitor.recommend import render

ACCOUNT = "111122223333"
TG = f"arn:aws:elasticloadbalancing:us-west-2:{ACCOUNT}:targetgroup/api-tg/73e2d6bc24d8a067"


def _service(cluster: str, name: str, desired: int, groups: list[str]) -> dict[str, object]:
    return {
        "serviceArn": f"arn:aws:ecs:us-west-2:{ACCOUNT}:service/{cluster}/{name}",
        "serviceName": name,
        "clusterArn": f"arn:aws:ecs:us-west-2:{ACCOUNT}:cluster/{cluster}",
        "desiredCount": desired,
        "loadBalancers": [{"targetGroupArn": g, "containerPort": 80} for g in groups],
    }


@pytest.fixture
def snapshot() -> snapshots.Snapshot:
    snap = snapshots.Snapshot(account=ACCOUNT)
    snap.regions["us-west-2"] = snapshots.RegionInventory()
    snap.regions["us-west-2"].ecs.services.extend(
        [
            _service("prod", "api", 3, [TG]),
            _service("prod", "worker", 0, []),
            _service("prod", "odd name/ü", 2, []),
        ]
    )
    return snap


def test_the_rules_load_and_cover_every_service(snapshot: snapshots.Snapshot) -> None:
    loaded = load_text(render(snapshot, "test"), "alarms.yaml")
    assert loaded.errors == []
    rules = {r.id: r for r in loaded.rules}
    assert sorted(rules) == [
        "prod-api-5xx",
        "prod-api-cpu-high",
        "prod-api-memory-high",
        "prod-api-request-count-anomaly",
        "prod-api-running-below-desired",
        "prod-api-unhealthy-targets",
        "prod-odd-name-cpu-high",
        "prod-odd-name-memory-high",
        "prod-odd-name-running-below-desired",
        "prod-worker-cpu-high",
        "prod-worker-memory-high",
    ]
    cpu = rules["prod-api-cpu-high"].settings
    assert (cpu.namespace, cpu.metric_name, cpu.period, cpu.threshold) == (
        "AWS/ECS",
        "CPUUtilization",
        300,
        80,
    )
    assert (cpu.evaluation_periods, cpu.datapoints_to_alarm) == (3, 3)
    assert cpu.dimensions == {"ClusterName": "prod", "ServiceName": "api"}
    running = rules["prod-api-running-below-desired"].settings
    assert (running.namespace, running.metric_name, running.threshold) == (
        "ECS/ContainerInsights",
        "RunningTaskCount",
        3,
    )
    assert running.comparison_operator == "LessThanThreshold"
    assert rules["prod-odd-name-running-below-desired"].settings.threshold == 2
    assert rules["prod-odd-name-cpu-high"].settings.dimensions["ServiceName"] == "odd name/ü"
    band = rules["prod-api-request-count-anomaly"]
    assert band.type == "anomaly_band"
    assert band.settings.dimensions == {"TargetGroup": "targetgroup/api-tg/73e2d6bc24d8a067"}
    assert rules["prod-api-5xx"].settings.metric_name == "HTTPCode_Target_5XX_Count"


def test_alike_names_get_distinct_ids(snapshot: snapshots.Snapshot) -> None:
    services = snapshot.regions["us-west-2"].ecs.services
    services.append(_service("prod", "odd-name", 1, []))
    services.append(_service("prod", "api", 1, [TG, TG.replace("api-tg", "api-tg2")]))
    loaded = load_text(render(snapshot, "test"), "alarms.yaml")
    assert loaded.errors == []  # the loader refuses duplicate ids
    ids = [r.id for r in loaded.rules]
    assert len(ids) == len(set(ids))
    assert "us-west-2-prod-api-tg2-5xx" in ids


def test_an_empty_estate_gives_an_empty_valid_file() -> None:
    loaded = load_text(render(snapshots.Snapshot(account=ACCOUNT), "test"), "alarms.yaml")
    assert loaded.errors == [] and loaded.rules == []


def test_command_reads_the_newest_snapshot_and_writes_a_file(
    snapshot: snapshots.Snapshot, tmp_path: Path
) -> None:
    snapshots.save(snapshot, tmp_path / "snapshots" / "a.json.gz")
    out = tmp_path / "alarms.yaml"
    runner = CliRunner()
    result = runner.invoke(
        cli, ["alarms", "recommend", "--data-dir", str(tmp_path), "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "prod-api-5xx" in out.read_text()
    result = runner.invoke(cli, ["rules", "validate", str(out)])
    assert result.exit_code == 0, result.output


def test_command_errors_are_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["alarms", "recommend", "--data-dir", str(tmp_path)])
    assert result.exit_code != 0 and "no snapshot in" in str(result.exception)
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    result = runner.invoke(cli, ["alarms", "recommend", "--snapshot", str(bad)])
    assert "not an ecsguard snapshot" in str(result.exception)


def test_an_unwritable_output_is_one_line(snapshot: snapshots.Snapshot, tmp_path: Path) -> None:
    path = snapshots.save(snapshot, tmp_path / "s.json")
    out = tmp_path / "missing" / "alarms.yaml"
    result = CliRunner().invoke(
        cli, ["alarms", "recommend", "--snapshot", str(path), "--output", str(out)]
    )
    assert "cannot write" in str(result.exception)
