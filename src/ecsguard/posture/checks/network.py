"""Network exposure of ECS services: security groups (of services, and of the container instances
that bridge- and host-mode tasks share) open to the internet on administrative ports, and services
that get public IPs in public subnets."""

from __future__ import annotations

from collections.abc import Iterator

from ecsguard.posture.check import Result, check
from ecsguard.posture.context import CheckContext, Resource

WORLD = ("0.0.0.0/0", "::/0")

#: Ports that must never face the internet: remote administration (CIS AWS Foundations 5.2/5.3
#: name SSH 22 and RDP 3389; Telnet, VNC, WinRM, Windows RPC and SMB carry the same risk),
#: container runtimes (a Docker API is root on the host) and data stores or their consoles, which
#: are unauthenticated by default (Redis, Memcached, MongoDB, Elasticsearch) or invite password
#: guessing. Deliberately left out: 80/443 (load balancers and public services serve them by
#: design) and generic application ports such as 3000, 5000, 8080, 8443, 8888, which are ECS
#: services' own listeners far more often than admin consoles; flagging them would bury the real
#: exposures. TCP and UDP are treated alike (RDP and Memcached also listen on UDP).
ADMIN_PORTS: dict[int, str] = {
    22: "SSH",
    23: "Telnet",
    135: "MS RPC",
    445: "SMB",
    1433: "SQL Server",
    1521: "Oracle",
    2375: "Docker API",
    2376: "Docker API",
    3306: "MySQL",
    3389: "RDP",
    5432: "PostgreSQL",
    5601: "Kibana",
    5900: "VNC",
    5985: "WinRM",
    5986: "WinRM",
    6379: "Redis",
    9042: "Cassandra",
    9200: "Elasticsearch",
    9300: "Elasticsearch",
    11211: "Memcached",
    27017: "MongoDB",
}
_PORT_PROTOCOLS = {"tcp": "tcp", "6": "tcp", "udp": "udp", "17": "udp"}
_ALL_TRAFFIC = ("all traffic", "全トラフィック")
_FARGATE_PROVIDERS = frozenset({"FARGATE", "FARGATE_SPOT"})
#: network modes in which a task has no interface of its own: the instance's security groups
#: guard it (no mode set means bridge on Linux, "default" is Windows' NAT mode)
_INSTANCE_NETWORK_MODES = frozenset({"bridge", "host", "default", ""})


def _vpc_configs(service: Resource) -> list[Resource]:
    """awsvpcConfiguration of the service and of each task set and deployment (they can differ)."""
    items = [service, *(service.get("taskSets") or []), *(service.get("deployments") or [])]
    configs = [(i.get("networkConfiguration") or {}).get("awsvpcConfiguration") for i in items]
    return [c for c in configs if c]


def _cluster_name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def _on_instance_network(
    ctx: CheckContext, service: Resource, clusters: dict[str, Resource]
) -> bool:
    """The service's tasks run on EC2 container instances and use the instances' network
    (bridge or host mode), so the instances' security groups are theirs too."""
    strategy = service.get("capacityProviderStrategy") or []
    if not service.get("launchType") and not strategy:  # the cluster's default strategy applies
        cluster = clusters.get(service.get("clusterArn", ""), {})
        strategy = cluster.get("defaultCapacityProviderStrategy") or []
    providers = {item.get("capacityProvider") for item in strategy}
    on_ec2 = service.get("launchType") == "EC2" or bool(providers - _FARGATE_PROVIDERS)
    if not on_ec2:
        return False
    _, td = ctx.task_definitions_by_arn.get(service.get("taskDefinition", ""), ("", None))
    if td is None:  # revision not collected: awsvpc services carry their own network settings
        return not _vpc_configs(service)
    return str(td.get("networkMode") or "") in _INSTANCE_NETWORK_MODES


def _instance_groups(instance: Resource) -> set[str]:
    """Security groups on any of an EC2 instance's network interfaces."""
    groups = {g["GroupId"] for g in instance.get("SecurityGroups") or [] if g.get("GroupId")}
    for interface in instance.get("NetworkInterfaces") or []:
        groups |= {g["GroupId"] for g in interface.get("Groups") or [] if g.get("GroupId")}
    return groups


def _services_by_group(ctx: CheckContext) -> dict[str, list[str]]:
    """Security group id -> who uses it: "cluster/service" of every service whose tasks it
    guards (its own awsvpc groups, or the groups of the container instances its bridge- or
    host-mode tasks run on), else "container instances of cluster X"."""
    users: dict[str, set[str]] = {}
    clusters: dict[str, Resource] = {}
    instances: dict[str, Resource] = {}
    for _, inv in ctx.regions():
        clusters.update((c["clusterArn"], c) for c in inv.ecs.clusters if c.get("clusterArn"))
        instances.update((i["InstanceId"], i) for i in inv.ec2.instances if i.get("InstanceId"))
    on_instances: dict[str, set[str]] = {}  # cluster ARN -> services on its instances' network
    for _, service in ctx.services():
        cluster = service.get("clusterArn", "")
        name = f"{_cluster_name(cluster)}/{service['serviceName']}"
        for config in _vpc_configs(service):
            for group in config.get("securityGroups", []):
                users.setdefault(group, set()).add(name)
        if _on_instance_network(ctx, service, clusters):
            on_instances.setdefault(cluster, set()).add(name)
    instance_users: dict[str, set[str]] = {}
    for _, inv in ctx.regions():
        for container_instance in inv.ecs.container_instances:
            cluster = container_instance.get("clusterArn", "")
            instance = instances.get(container_instance.get("ec2InstanceId", ""), {})
            for group in _instance_groups(instance):
                services = on_instances.get(cluster)
                if services:
                    users.setdefault(group, set()).update(services)
                else:
                    instance_users.setdefault(group, set()).add(_cluster_name(cluster))
    label = (
        "クラスター {} のコンテナインスタンス"
        if ctx.lang == "ja"
        else "container instances of cluster {}"
    )
    for group, cluster_names in instance_users.items():
        if not users.get(group):  # named only when no service maps to the group
            users[group] = {label.format(c) for c in cluster_names}
    return {group: sorted(names) for group, names in users.items()}


def _exposure(ctx: CheckContext, permission: Resource) -> str | None:
    """What an ingress permission opens: "all traffic", "tcp 20-23 (22 SSH, 23 Telnet)", or
    None when it reaches no administrative port."""
    protocol = str(permission.get("IpProtocol", ""))
    if protocol == "-1":
        return _ALL_TRAFFIC[ctx.lang == "ja"]
    low, high = permission.get("FromPort"), permission.get("ToPort")
    if protocol not in _PORT_PROTOCOLS or low is None or high is None:
        return None  # ICMP and other port-less protocols
    hits = [port for port in ADMIN_PORTS if low <= port <= high]
    if not hits:
        return None
    names = ", ".join(f"{port} {ADMIN_PORTS[port]}" for port in hits[:3])
    ports = str(low) if low == high else f"{low}-{high}"
    return f"{_PORT_PROTOCOLS[protocol]} {ports} ({names}{', …' if len(hits) > 3 else ''})"


def _open_rules(ctx: CheckContext, group: Resource) -> list[str]:
    rules = []
    for permission in group.get("IpPermissions") or []:
        sources = [r.get("CidrIp") for r in permission.get("IpRanges") or []]
        sources += [r.get("CidrIpv6") for r in permission.get("Ipv6Ranges") or []]
        world = [cidr for cidr in WORLD if cidr in sources]
        exposure = _exposure(ctx, permission) if world else None
        if exposure:
            rules += [f"{cidr} → {exposure}" for cidr in world]
    return rules


@check(
    id="ec2.security_group_admin_ports_open",
    severity="high",
    pillar="security",
    resource_type="AWS::EC2::SecurityGroup",
    controls=["CIS:5.2", "CIS:5.3"],
    needs=(
        "ec2:DescribeSecurityGroups",
        "ecs:DescribeServices",
        "ecs:DescribeContainerInstances",
        "ec2:DescribeInstances",
    ),
    title={
        "en": "Security groups of ECS services do not open administrative ports to the internet",
        "ja": "ECS サービスのセキュリティグループが管理用ポートをインターネットに開放していない",
    },
    description={
        "en": "An ingress rule from 0.0.0.0/0 or ::/0 to a remote administration port (SSH, RDP, "
        "Telnet, VNC, WinRM, SMB), a Docker API or a database lets anyone on the internet try it; "
        "these ports are scanned within minutes. Rules allowing all traffic count too. HTTP and "
        "HTTPS open to the world are expected for load balancers and are not flagged, nor are "
        "generic application ports such as 8080. Evaluated are the security groups ECS services "
        "use and those of the EC2 container instances, which guard every bridge- and host-mode "
        "task on them; an instance group is reported with the EC2 services of its cluster in "
        "those modes (awsvpc services have their own groups), or as the container instances of "
        "the cluster when none runs there.",
        "ja": "0.0.0.0/0 や ::/0 から管理用ポート（SSH、RDP、Telnet、VNC、WinRM、SMB）、Docker "
        "API、データベースへのインバウンドルールは、インターネット上の誰でも接続を試せる状態で"
        "あり、数分でスキャンされる。全トラフィック許可のルールも対象。ロードバランサー向けの "
        "HTTP/HTTPS の全開放や 8080 などの一般的なアプリケーションポートは対象外。評価するのは "
        "ECS サービスが使うセキュリティグループと、EC2 コンテナインスタンスのセキュリティグループ"
        "（その上の bridge・host モードのタスクすべてを守る）。インスタンスのグループは、同じ"
        "クラスターでそれらのモードで動く EC2 サービス（awsvpc のサービスは自身のグループを持つ）"
        "とともに、該当がなければクラスターのコンテナインスタンスとして報告する。",
    },
    remediation={
        "en": "Remove the rule or narrow its source to known CIDRs or a security group (for "
        "example the load balancer's); reach containers with ECS Exec or Session Manager "
        "instead of open SSH/RDP.",
        "ja": "ルールを削除するか、送信元を既知の CIDR またはセキュリティグループ（ロードバランサー"
        "のものなど）に絞る。コンテナへのアクセスは SSH/RDP の開放ではなく ECS Exec や Session "
        "Manager を使う。",
    },
    fail={
        "en": "open to the internet: {rules} (used by {services})",
        "ja": "インターネットに開放: {rules}（使用サービス: {services}）",
    },
    passed={
        "en": "no administrative port open to the internet (used by {services})",
        "ja": "インターネットに開放された管理用ポートはない（使用サービス: {services}）",
    },
)
def security_group_admin_ports_open(ctx: CheckContext) -> Iterator[Result]:
    users = _services_by_group(ctx)
    for region, inv in ctx.regions():
        for group in sorted(inv.ec2.security_groups, key=lambda g: g["GroupId"]):
            owner = group.get("OwnerId") or ctx.account
            arn = f"arn:aws:ec2:{region}:{owner}:security-group/{group['GroupId']}"
            rules = _open_rules(ctx, group)
            params = {
                "rules": "; ".join(rules),
                "services": ", ".join(users.get(group["GroupId"], ["-"])),
            }
            yield Result(arn, region, not rules, params)


@check(
    id="ecs.service_public_ip_in_public_subnet",
    severity="high",
    pillar="security",
    resource_type="AWS::ECS::Service",
    needs=("ecs:DescribeServices", "ec2:DescribeSubnets"),
    title={
        "en": "ECS services do not get public IPs in public subnets",
        "ja": "ECS サービスがパブリックサブネットでパブリック IP を取得していない",
    },
    description={
        "en": "Tasks with assignPublicIp ENABLED in a subnet routed to an internet gateway are "
        "directly reachable from the internet, past any load balancer. The snapshot holds "
        "subnets but not route tables, so a subnet with MapPublicIpOnLaunch true is taken as "
        "public; a public subnet without that flag is not detected.",
        "ja": "インターネットゲートウェイへ経路のあるサブネットで assignPublicIp が ENABLED の"
        "タスクは、ロードバランサーを経由せずインターネットから直接到達できる。スナップショットは"
        "サブネットを持つがルートテーブルを持たないため、MapPublicIpOnLaunch が true のサブネット"
        "をパブリックとみなす。このフラグのないパブリックサブネットは検出できない。",
    },
    remediation={
        "en": "Move the service to private subnets with assignPublicIp DISABLED, with a NAT "
        "gateway or VPC endpoints for outbound traffic and a load balancer for inbound.",
        "ja": "assignPublicIp を DISABLED にしてプライベートサブネットへ移し、外向き通信は NAT "
        "ゲートウェイか VPC エンドポイント、受信はロードバランサー経由にする。",
    },
    fail={
        "en": "service {service} gets public IPs in public subnets: {subnets}",
        "ja": "サービス {service} がパブリックサブネットでパブリック IP を取得: {subnets}",
    },
    passed={
        "en": "service {service} gets no public IP in a public subnet",
        "ja": "サービス {service} はパブリックサブネットでパブリック IP を取得していない",
    },
)
def service_public_ip_in_public_subnet(ctx: CheckContext) -> Iterator[Result]:
    for region, service in ctx.services():
        configs = _vpc_configs(service)
        known = {s for c in configs for s in c.get("subnets", []) if s in ctx.subnets_by_id}
        if not known:
            continue  # no awsvpc networking, or its subnets were not collected
        public = {
            subnet
            for config in configs
            if config.get("assignPublicIp") == "ENABLED"
            for subnet in config.get("subnets", [])
            if ctx.subnets_by_id.get(subnet, {}).get("MapPublicIpOnLaunch")
        }
        zone = {s: ctx.subnets_by_id[s].get("AvailabilityZone", "?") for s in public}
        exposed = [f"{subnet} ({zone[subnet]})" for subnet in sorted(public)]
        params = {"service": service["serviceName"], "subnets": ", ".join(exposed)}
        yield Result(service["serviceArn"], region, not exposed, params)
