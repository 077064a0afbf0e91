"""Network exposure checks: security groups of ECS services and public subnets."""

from __future__ import annotations

from typing import Any

from tests.posture.builders import ACCOUNT, REGION, findings, snapshot

from ecsguard.core.models import Status

ADMIN = "ec2.security_group_admin_ports_open"
SUBNET = "ecs.service_public_ip_in_public_subnet"


def service(
    name: str, groups: list[str], subnets: list[str], public: bool = False
) -> dict[str, Any]:
    vpc = {
        "subnets": subnets,
        "securityGroups": groups,
        "assignPublicIp": "ENABLED" if public else "DISABLED",
    }
    return {
        "serviceArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/prod/{name}",
        "serviceName": name,
        "clusterArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/prod",
        "networkConfiguration": {"awsvpcConfiguration": vpc},
    }


def rule(protocol: str, low: int | None, high: int | None, *cidrs: str) -> dict[str, Any]:
    permission: dict[str, Any] = {
        "IpProtocol": protocol,
        "IpRanges": [{"CidrIp": c} for c in cidrs if ":" not in c],
        "Ipv6Ranges": [{"CidrIpv6": c} for c in cidrs if ":" in c],
    }
    if low is not None:
        permission |= {"FromPort": low, "ToPort": high}
    return permission


def group(group_id: str, *permissions: dict[str, Any]) -> dict[str, Any]:
    return {"GroupId": group_id, "OwnerId": ACCOUNT, "IpPermissions": list(permissions)}


def by_group(snap: Any, lang: str = "en") -> dict[str, Any]:
    return {f.resource_arn.rsplit("/", 1)[1]: f for f in findings(snap, ADMIN, lang)}


def test_admin_ports_open_to_the_world_name_rule_and_services() -> None:
    groups = [
        group(
            "sg-lb", rule("tcp", 443, 443, "0.0.0.0/0", "::/0"), rule("tcp", 80, 80, "0.0.0.0/0")
        ),
        group("sg-ssh", rule("tcp", 22, 22, "0.0.0.0/0"), rule("tcp", 5432, 5432, "10.0.0.0/8")),
        group("sg-all", rule("-1", None, None, "::/0")),
        group("sg-wide", rule("tcp", 0, 65535, "0.0.0.0/0")),
        group("sg-icmp", rule("icmp", -1, -1, "0.0.0.0/0")),
    ]
    services = [
        service("web", ["sg-lb", "sg-ssh"], ["subnet-a"]),
        service("api", ["sg-ssh"], ["subnet-a"]),
        service("worker", ["sg-all", "sg-wide"], ["subnet-a"]),
    ]
    result = by_group(snapshot(ecs={"services": services}, ec2={"security_groups": groups}))
    assert {k for k, f in result.items() if f.status == Status.PASS} == {"sg-lb", "sg-icmp"}
    assert result["sg-ssh"].message == (
        "open to the internet: 0.0.0.0/0 → tcp 22 (22 SSH) (used by prod/api, prod/web)"
    )
    assert (
        result["sg-all"].message == "open to the internet: ::/0 → all traffic (used by prod/worker)"
    )
    assert result["sg-wide"].message.startswith(
        "open to the internet: 0.0.0.0/0 → tcp 0-65535 (22 SSH, 23 Telnet, 135 MS RPC, …)"
    )
    assert result["sg-lb"].message == (
        "no administrative port open to the internet (used by prod/web)"
    )
    assert result["sg-ssh"].controls == ["CIS:5.2", "CIS:5.3"]
    assert result["sg-ssh"].resource_arn == f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/sg-ssh"


def test_admin_ports_database_range_and_japanese() -> None:
    groups = [group("sg-db", rule("udp", 6000, 6400, "::/0"))]
    services = [service("cache", ["sg-db"], ["subnet-a"])]
    result = by_group(snapshot(ecs={"services": services}, ec2={"security_groups": groups}), "ja")
    assert result["sg-db"].message == (
        "インターネットに開放: ::/0 → udp 6000-6400 (6379 Redis)（使用サービス: prod/cache）"
    )
    all_traffic = [group("sg-x", rule("-1", None, None, "0.0.0.0/0"))]
    ja = by_group(snapshot(ec2={"security_groups": all_traffic}), "ja")
    assert (
        ja["sg-x"].message == "インターネットに開放: 0.0.0.0/0 → 全トラフィック（使用サービス: -）"
    )


def test_admin_ports_without_security_groups_yields_nothing() -> None:
    assert findings(snapshot(), ADMIN) == []


def subnet(subnet_id: str, public: bool) -> dict[str, Any]:
    return {
        "SubnetId": subnet_id,
        "AvailabilityZone": "ap-northeast-1a",
        "MapPublicIpOnLaunch": public,
    }


def test_public_ip_in_public_subnet() -> None:
    subnets = [subnet("subnet-pub", True), subnet("subnet-priv", False)]
    services = [
        service("exposed", ["sg-1"], ["subnet-pub", "subnet-priv"], public=True),
        service("private_ip", ["sg-1"], ["subnet-pub"], public=False),
        service("private_subnet", ["sg-1"], ["subnet-priv"], public=True),
        service("uncollected", ["sg-1"], ["subnet-unknown"], public=True),
    ]
    result = {
        f.resource_arn.rsplit("/", 1)[1]: f
        for f in findings(snapshot(ecs={"services": services}, ec2={"subnets": subnets}), SUBNET)
    }
    assert set(result) == {"exposed", "private_ip", "private_subnet"}
    assert result["exposed"].message == (
        "service exposed gets public IPs in public subnets: subnet-pub (ap-northeast-1a)"
    )
    assert result["private_ip"].status == Status.PASS
    assert result["private_subnet"].status == Status.PASS


def test_public_ip_in_public_subnet_from_a_task_set() -> None:
    svc = service("bluegreen", [], [])
    svc["networkConfiguration"] = None
    svc["taskSets"] = [
        {
            "taskSetArn": "arn:ts/1",
            "networkConfiguration": {
                "awsvpcConfiguration": {"subnets": ["subnet-pub"], "assignPublicIp": "ENABLED"}
            },
        }
    ]
    snap = snapshot(ecs={"services": [svc]}, ec2={"subnets": [subnet("subnet-pub", True)]})
    (finding,) = findings(snap, SUBNET, "ja")
    assert finding.status == Status.FAIL
    assert finding.message == (
        "サービス bluegreen がパブリックサブネットでパブリック IP を取得: "
        "subnet-pub (ap-northeast-1a)"
    )


def test_public_subnet_check_without_services_yields_nothing() -> None:
    assert findings(snapshot(ec2={"subnets": [subnet("subnet-pub", True)]}), SUBNET) == []


# -- container instances: their groups guard the bridge- and host-mode tasks on them -------------


def cluster_arn(name: str) -> str:
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{name}"


def td_arn(family: str) -> str:
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{family}:1"


def ec2_service(name: str, cluster: str, family: str, **fields: Any) -> dict[str, Any]:
    return {
        "serviceArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/{cluster}/{name}",
        "serviceName": name,
        "clusterArn": cluster_arn(cluster),
        "taskDefinition": td_arn(family),
        **fields,
    }


def instances_of(cluster: str, *groups: str, instance: str = "i-1") -> dict[str, Any]:
    """Sections for one container instance of `cluster` on an EC2 instance with `groups`."""
    return {
        "container_instances": [{"clusterArn": cluster_arn(cluster), "ec2InstanceId": instance}],
        "instances": [{"InstanceId": instance, "SecurityGroups": [{"GroupId": g} for g in groups]}],
    }


def estate_on_ec2(services: list[dict[str, Any]], cluster: str = "batch") -> dict[str, Any]:
    """A snapshot's sections: `services`, task definitions in each network mode, one EC2 container
    instance of `cluster` in group sg-hosts (SSH open to the world) and sg-own (an awsvpc group)."""
    modes = {"bridged": "bridge", "hosted": "host", "vpc": "awsvpc", "unset": None}
    tds = [
        {"taskDefinitionArn": td_arn(f), **({"networkMode": m} if m else {})}
        for f, m in modes.items()
    ]
    parts = instances_of(cluster, "sg-hosts")
    clusters = [
        {
            "clusterArn": cluster_arn(cluster),
            "defaultCapacityProviderStrategy": [{"capacityProvider": "batch-ec2", "weight": 1}],
        }
    ]
    return {
        "ecs": {
            "clusters": clusters,
            "services": services,
            "task_definitions": tds,
            "container_instances": parts["container_instances"],
        },
        "ec2": {
            "instances": parts["instances"],
            "security_groups": [
                group("sg-hosts", rule("tcp", 22, 22, "0.0.0.0/0")),
                group("sg-own", rule("tcp", 8080, 8080, "10.0.0.0/8")),
            ],
        },
    }


def test_container_instance_group_names_the_ec2_services_using_the_instance_network() -> None:
    services = [
        ec2_service("worker", "batch", "bridged", launchType="EC2"),
        ec2_service("agent", "batch", "hosted", launchType="EC2"),
        ec2_service("legacy", "batch", "unset", launchType="EC2"),  # no mode: bridge
        # the cluster's default strategy puts it on the EC2 capacity provider
        ec2_service("default-strategy", "batch", "bridged"),
        # awsvpc on EC2 uses its own group, Fargate never touches the instances
        ec2_service(
            "search",
            "batch",
            "vpc",
            launchType="EC2",
            networkConfiguration={"awsvpcConfiguration": {"securityGroups": ["sg-own"]}},
        ),
        ec2_service(
            "spot",
            "batch",
            "bridged",
            capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}],
        ),
        ec2_service("fargate", "batch", "vpc", launchType="FARGATE"),
    ]
    sections = estate_on_ec2(services)
    result = by_group(snapshot(**sections))
    assert result["sg-hosts"].status == Status.FAIL
    assert result["sg-hosts"].message == (
        "open to the internet: 0.0.0.0/0 → tcp 22 (22 SSH) (used by batch/agent, "
        "batch/default-strategy, batch/legacy, batch/worker)"
    )
    assert result["sg-own"].status == Status.PASS
    assert result["sg-own"].message.endswith("(used by batch/search)")


def test_container_instance_group_without_services_names_the_cluster() -> None:
    awsvpc_only = [
        ec2_service(
            "search",
            "prod",
            "vpc",
            launchType="EC2",
            networkConfiguration={"awsvpcConfiguration": {"securityGroups": ["sg-own"]}},
        )
    ]
    sections = estate_on_ec2(awsvpc_only, cluster="prod")
    result = by_group(snapshot(**sections))
    assert result["sg-hosts"].message == (
        "open to the internet: 0.0.0.0/0 → tcp 22 (22 SSH) "
        "(used by container instances of cluster prod)"
    )
    sections["ec2"]["security_groups"][0] = group("sg-hosts", rule("tcp", 443, 443, "0.0.0.0/0"))
    ja = by_group(snapshot(**sections), "ja")
    assert ja["sg-hosts"].status == Status.PASS
    assert ja["sg-hosts"].message == (
        "インターネットに開放された管理用ポートはない"
        "（使用サービス: クラスター prod のコンテナインスタンス）"
    )


def test_container_instances_whose_ec2_instance_was_not_collected_map_nothing() -> None:
    sections = estate_on_ec2([ec2_service("worker", "batch", "bridged", launchType="EC2")])
    sections["ec2"]["instances"] = []  # e.g. DescribeInstances denied
    result = by_group(snapshot(**sections))
    assert result["sg-hosts"].message.endswith("(used by -)")
    # instances but no security groups collected: nothing to assess
    del sections["ec2"]["security_groups"]
    assert findings(snapshot(**sections), ADMIN) == []
