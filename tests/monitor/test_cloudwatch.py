"""CloudWatch polling against the moto server: stored rows, the incremental overlap without
doubles, target group dimensions, 500 queries a call, and refused or throttled calls."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.aws.faults import refuse

from ecsguard.aws.session import AwsOptions, AwsSession
from ecsguard.aws.snapshot import EcsSection, RegionInventory, Snapshot
from ecsguard.core.errors import AwsAccessError
from ecsguard.logs.pipeline import Pipeline
from ecsguard.monitor.cloudwatch import CloudWatchPoller, PollResult, floor_time, state_path
from ecsguard.monitor.queries import MetricQuery

REGION = "ap-northeast-1"
ACCOUNT = "123456789012"
MINUTE = timedelta(minutes=1)


def session_for(server: Any, **options: Any) -> AwsSession:
    return AwsSession(AwsOptions(regions=(REGION,), endpoint_url=server.endpoint, **options))


def service(cluster: str, name: str, target_groups: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "serviceName": name,
        "serviceArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/{cluster}/{name}",
        "clusterArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{cluster}",
        "loadBalancers": [
            {"targetGroupArn": arn, "containerName": name, "containerPort": 80}
            for arn in target_groups
        ],
    }


def snapshot_of(*services: dict[str, Any]) -> Snapshot:
    inventory = RegionInventory(ecs=EcsSection(services=list(services)))
    return Snapshot(account=ACCOUNT, regions={REGION: inventory})


def put(
    session: AwsSession, namespace: str, name: str, dims: dict[str, str], **points: Any
) -> None:
    session.client("cloudwatch", REGION).put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
                "Timestamp": moment,
                "Value": value,
            }
            for moment, value in points["at"]
        ],
    )


def stored(data_dir: Path, where: str = "true") -> list[tuple[Any, ...]]:
    pipeline = Pipeline(data_dir)
    try:
        return (
            pipeline.connect()
            .execute(
                f"SELECT name, time, value, dimensions, unit FROM metrics WHERE {where} "
                "ORDER BY name, time"
            )
            .fetchall()
        )
    finally:
        pipeline.close()


def test_poll_stores_datapoints_then_continues_without_doubles(
    moto_server: Any, aws_env: Any, tmp_path: Path
) -> None:
    session = session_for(moto_server)
    cluster = f"c-{uuid.uuid4().hex[:8]}"
    dims = {"ClusterName": cluster, "ServiceName": "api"}
    end = floor_time(datetime.now(UTC), 60)
    # CPU: three closed minutes, one in the overlap of the next poll, one still filling in
    cpu = [(end - 4 * MINUTE, 10.0), (end - 2 * MINUTE, 20.0), (end - MINUTE, 30.0), (end, 99.0)]
    put(session, "AWS/ECS", "CPUUtilization", dims, at=cpu)
    put(session, "ECS/ContainerInsights", "RunningTaskCount", dims, at=[(end - 3 * MINUTE, 2.0)])
    snapshot = snapshot_of(service(cluster, "api"))

    first = CloudWatchPoller(session, tmp_path, since=timedelta(minutes=30)).poll(snapshot, now=end)
    assert (first.queries, first.calls, first.problems) == (7, 1, [])
    assert first.stored == first.datapoints == 4, "the period still filling in is not stored"
    rows = stored(tmp_path)
    assert [(r[0], r[2], r[4]) for r in rows] == [
        ("CPUUtilization", 10.0, "Percent"),
        ("CPUUtilization", 20.0, "Percent"),
        ("CPUUtilization", 30.0, "Percent"),
        ("RunningTaskCount", 2.0, "Count"),
    ]
    assert orjson.loads(rows[0][3]) == dims

    # a datapoint published late, inside the overlap, for a series whose newest is older
    put(session, "ECS/ContainerInsights", "RunningTaskCount", dims, at=[(end - MINUTE, 3.0)])
    later = end + MINUTE
    second_poller = CloudWatchPoller(session, tmp_path, since=timedelta(minutes=30))  # from file
    query = MetricQuery("AWS/ECS", "CPUUtilization", tuple(dims.items()), "Average", "Percent")
    assert second_poller.start_of(query, later) == end - MINUTE, "one period of overlap"
    second = second_poller.poll(snapshot, now=later)
    # fetched again: CPU at end-1 (skipped) and end (new); RunningTaskCount at end-1 (late, new)
    assert (second.datapoints, second.stored, second.problems) == (3, 2, [])
    rows = stored(tmp_path)
    keys = [(r[0], r[1]) for r in rows]
    assert len(keys) == len(set(keys)) == 6, "no datapoint stored twice"
    assert ("CPUUtilization", end, 99.0) in [(r[0], r[1], r[2]) for r in rows]
    assert ("RunningTaskCount", end - MINUTE, 3.0) in [(r[0], r[1], r[2]) for r in rows]
    state = orjson.loads(state_path(tmp_path).read_bytes())
    assert state["series"][query.key] == {"end": later.isoformat(), "last": end.isoformat()}

    third = CloudWatchPoller(session, tmp_path).poll(snapshot, now=later)
    assert third.stored == 0 and len(stored(tmp_path)) == 6


def test_target_group_metrics_use_cloudwatch_dimensions(
    moto_server: Any, aws_env: Any, tmp_path: Path
) -> None:
    session = session_for(moto_server)
    ec2, elb = session.client("ec2", REGION), session.client("elbv2", REGION)
    tag = uuid.uuid4().hex[:8]
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24", AvailabilityZone=f"{REGION}{z}")[
            "Subnet"
        ]["SubnetId"]
        for i, z in enumerate("ac")
    ]
    balancer = elb.create_load_balancer(Name=f"alb-{tag}", Subnets=subnets)["LoadBalancers"][0]
    group = elb.create_target_group(
        Name=f"tg-{tag}", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip"
    )["TargetGroups"][0]
    elb.create_listener(
        LoadBalancerArn=balancer["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group["TargetGroupArn"]}],
    )
    lb_dim = balancer["LoadBalancerArn"].split(":loadbalancer/")[1]
    tg_dim = group["TargetGroupArn"].split(":")[-1]
    assert lb_dim.startswith("app/") and tg_dim.startswith("targetgroup/")
    dims = {"LoadBalancer": lb_dim, "TargetGroup": tg_dim}
    end = floor_time(datetime.now(UTC), 60)
    put(session, "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", dims, at=[(end - MINUTE, 7)])
    snapshot = snapshot_of(service(f"c-{tag}", "web", (group["TargetGroupArn"],)))

    result = CloudWatchPoller(session, tmp_path).poll(snapshot, now=end)
    assert result.queries == 7 + 4 and result.problems == []
    rows = stored(tmp_path, "namespace = 'AWS/ApplicationELB'")
    assert [(r[0], r[2], orjson.loads(r[3])) for r in rows] == [
        ("HTTPCode_Target_5XX_Count", 7.0, dims)
    ]


def test_1200_queries_take_3_calls(moto_server: Any, aws_env: Any, tmp_path: Path) -> None:
    session = session_for(moto_server)
    queries = [
        MetricQuery("AWS/ECS", "CPUUtilization", (("ServiceName", f"s{i}"),), "Average", "Percent")
        for i in range(1200)
    ]
    result = PollResult()
    CloudWatchPoller(session, tmp_path).poll_queries(REGION, queries, result)
    assert result.calls == 3 == session.counter.calls["cloudwatch:GetMetricData"]
    assert result.queries == 1200 and result.problems == []


def test_access_denied_is_reported_and_the_rest_goes_on(
    moto_server: Any, aws_env: Any, tmp_path: Path
) -> None:
    session = session_for(moto_server)
    refuse(session, "elastic-load-balancing-v2", "DescribeTargetGroups", code="AccessDenied")
    cluster = f"c-{uuid.uuid4().hex[:8]}"
    end = floor_time(datetime.now(UTC), 60)
    put(
        session,
        "AWS/ECS",
        "MemoryUtilization",
        {"ClusterName": cluster, "ServiceName": "api"},
        at=[(end - MINUTE, 55.0)],
    )
    group = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/tg/0123456789abcdef"
    others = tuple(f"{group[:-1]}{i}" for i in range(1, 3))
    snapshot = snapshot_of(service(cluster, "api", (group, *others)))
    result = CloudWatchPoller(session, tmp_path).poll(snapshot, now=end)
    assert result.problems == [
        f"elasticloadbalancing:DescribeTargetGroups in {REGION} failed: AccessDenied "
        "(User is not authorized to perform DescribeTargetGroups); "
        "skipped the metrics of 3 target groups"
    ]
    assert [(r[0], r[2]) for r in stored(tmp_path)] == [("MemoryUtilization", 55.0)]


def test_refused_or_throttled_batch_keeps_its_state_and_others_are_stored(
    moto_server: Any, aws_env: Any, tmp_path: Path
) -> None:
    session = session_for(moto_server)
    calls = {"n": 0}

    def throttle_first(**_: Any) -> Any:
        calls["n"] += 1
        if calls["n"] > 1:
            return None
        error = {"Code": "ThrottlingException", "Message": "Rate exceeded"}
        return type("Http", (), {"status_code": 400, "headers": {}, "content": b""})(), {
            "Error": error,
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }

    session._session.events.register("before-call.cloudwatch.GetMetricData", throttle_first)
    queries = [
        MetricQuery("AWS/ECS", "CPUUtilization", (("ServiceName", f"t{i}"),), "Average", "Percent")
        for i in range(600)
    ]
    end = floor_time(datetime.now(UTC), 60)
    put(session, "AWS/ECS", "CPUUtilization", {"ServiceName": "t599"}, at=[(end - MINUTE, 1.5)])
    poller = CloudWatchPoller(session, tmp_path, since=timedelta(hours=1))
    result = PollResult()
    poller.poll_queries(REGION, queries, result, now=end)
    assert result.problems == [
        f"cloudwatch:GetMetricData in {REGION} failed: ThrottlingException (Rate exceeded); "
        "500 series not polled (retried next time)"
    ]
    assert result.calls == 2 and result.stored == 1
    assert poller.start_of(queries[0], end) == end - timedelta(hours=1), "retried from the start"
    assert poller.start_of(queries[599], end) == end - MINUTE


def test_unreachable_endpoint_is_one_clear_error(tmp_path: Path, aws_env: Any) -> None:
    from tests.cli.test_errors import closed_port

    session = AwsSession(
        AwsOptions(
            regions=(REGION,),
            endpoint_url=f"http://127.0.0.1:{closed_port()}",
            max_attempts=1,
            connect_timeout=1,
        )
    )
    with pytest.raises(AwsAccessError, match=r"cannot reach http://127\.0\.0\.1"):
        CloudWatchPoller(session, tmp_path).poll(snapshot_of(service("c", "api")))


def test_corrupt_state_file_says_how_to_recover(tmp_path: Path, aws_env: Any) -> None:
    from ecsguard.core.errors import UserError

    state_path(tmp_path).parent.mkdir(parents=True)
    state_path(tmp_path).write_text("{not json")
    with pytest.raises(UserError, match="cannot read the poll state") as caught:
        CloudWatchPoller(AwsSession(AwsOptions(regions=(REGION,))), tmp_path)
    assert "delete the file" in caught.value.hint


def test_a_deleted_target_group_skips_only_itself(
    moto_server: Any, aws_env: Any, tmp_path: Path
) -> None:
    session = session_for(moto_server)
    tag = uuid.uuid4().hex[:8]
    vpc = session.client("ec2", REGION).create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    live = session.client("elbv2", REGION).create_target_group(
        Name=f"tg-{tag}", Protocol="HTTP", Port=80, VpcId=vpc
    )["TargetGroups"][0]["TargetGroupArn"]
    gone = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/gone/0123456789abcdef"
    snapshot = snapshot_of(service(f"c-{tag}", "api", (gone, live)))
    result = PollResult()
    found = CloudWatchPoller(session, tmp_path).load_balancers(snapshot, REGION, result)
    assert list(found) == [live]
    assert len(result.problems) == 1 and result.problems[0].startswith(
        f"elasticloadbalancing:DescribeTargetGroups in {REGION} failed: TargetGroupNotFound"
    )
    assert result.problems[0].endswith(f"skipped the metrics of {gone}")
