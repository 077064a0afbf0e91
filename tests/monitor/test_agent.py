"""`ecsguard agent` against a fake task metadata endpoint v4 (http.server on 127.0.0.1) and a
real `ecsguard serve` app: the datapoints land in the metrics view; outages are messages."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from tests.web.conftest import TOKEN, running

from ecsguard.cli.main import cli
from ecsguard.core.errors import UserError
from ecsguard.monitor.agent import (
    Agent,
    AgentSettings,
    CpuSample,
    container_metrics,
)

CLUSTER_ARN = "arn:aws:ecs:us-west-2:111122223333:cluster/prod"
TASK_ID = "158d1c8083dd49d6b527399fd6414f5c"
APP_ID = "ea32192c8553fbff06c9340478a2ff089b2bb5646fb718b4ee206641c9086d66"
SIDECAR_ID = "b2b1f2e8b5c1f6d1ec8a8e5b6a8fd36e0c3c3a4b0e9a8a8b9c0d1e2f3a4b5c6d"
MIB = 1024 * 1024

# the shape of `${ECS_CONTAINER_METADATA_URI_V4}/task` on Fargate (trimmed)
TASK = {
    "Cluster": CLUSTER_ARN,
    "TaskARN": f"arn:aws:ecs:us-west-2:111122223333:task/prod/{TASK_ID}",
    "Family": "web",
    "Revision": "26",
    "DesiredStatus": "RUNNING",
    "KnownStatus": "RUNNING",
    "Limits": {"CPU": 0.5, "Memory": 1024},
    "LaunchType": "FARGATE",
    "AvailabilityZone": "us-west-2d",
    "Containers": [
        {
            "DockerId": APP_ID,
            "Name": "app",
            "DockerName": "ecs-web-26-app-e4e7e8dd9bc7e9f3a101",
            "Image": "public.ecr.aws/nginx/nginx:1.27",
            "Limits": {"CPU": 256, "Memory": 512},
            "DesiredStatus": "RUNNING",
            "KnownStatus": "RUNNING",
            "Type": "NORMAL",
        },
        {
            "DockerId": SIDECAR_ID,
            "Name": "ecsguard-agent",
            "Limits": {"CPU": 2},
            "KnownStatus": "RUNNING",
            "Type": "NORMAL",
        },
        {"DockerId": "c0ffee", "Name": "init", "KnownStatus": "STOPPED", "Type": "NORMAL"},
    ],
}


def docker_stats(total: int, pre_total: int, system: int, pre_system: int) -> dict[str, Any]:
    """One container's entry of `/task/stats`: Docker's stats JSON (cgroup v2 memory)."""
    return {
        "read": "2026-11-28T20:10:05.262474523Z",
        "preread": "2026-11-28T20:10:04.260293405Z",
        "pids_stats": {"current": 3},
        "num_procs": 0,
        "cpu_stats": {
            "cpu_usage": {
                "total_usage": total,
                "usage_in_kernelmode": total // 4,
                "usage_in_usermode": total - total // 4,
            },
            "system_cpu_usage": system,
            "online_cpus": 2,
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        },
        "precpu_stats": {
            "cpu_usage": {"total_usage": pre_total},
            "system_cpu_usage": pre_system,
            "online_cpus": 2,
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        },
        "memory_stats": {
            "usage": 300 * MIB,
            "stats": {"anon": 200 * MIB, "file": 100 * MIB, "inactive_file": 44 * MIB},
            "limit": 9223372036854771712,  # no container limit: Docker's "unlimited"
        },
        "name": "ecs-web-26-app",
        "id": APP_ID,
        "networks": {
            "eth1": {"rx_bytes": 1500, "rx_packets": 10, "tx_bytes": 700, "tx_packets": 8},
        },
    }


STATS = {
    # 0.1 s of CPU over 1 s of host time on 2 CPUs: 20 %
    APP_ID: docker_stats(5_100_000_000, 5_000_000_000, 2_001_000_000_000, 2_000_000_000_000),
    SIDECAR_ID: docker_stats(2_000_000, 1_000_000, 2_001_000_000_000, 2_000_000_000_000),
    "c0ffee": None,  # a stopped container
}


class FakeEndpoint(ThreadingHTTPServer):
    """Serves /task and /task/stats; /ingest/metrics answers `ingest_status` and keeps bodies."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.ingest_status = 200
        self.bodies: list[bytes] = []
        self.headers_seen: list[dict[str, str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: FakeEndpoint

    def do_GET(self) -> None:
        doc = {"/v4/task": TASK, "/v4/task/stats": STATS}.get(self.path)
        self._answer(200 if doc else 404, json.dumps(doc).encode())

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.headers_seen.append(dict(self.headers))
        if self.server.ingest_status == 200:
            self.server.bodies.append(body)
        self._answer(self.server.ingest_status, b'{"error": "disk full"}')

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[FakeEndpoint]:
    server = FakeEndpoint()
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def closed_url() -> str:
    """An address nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def make_agent(server: str, metadata: str | None, **settings: Any) -> tuple[Agent, list[str]]:
    said: list[str] = []
    agent = Agent(
        AgentSettings(server=server, token=TOKEN, metadata_uri=metadata, **settings),
        said.append,
    )
    return agent, said


def test_cpu_and_memory_from_docker_stats() -> None:
    container = TASK["Containers"][0]  # type: ignore[index]
    metrics, sample = container_metrics(container, STATS[APP_ID], 1024, None)  # type: ignore[arg-type]
    assert metrics == {
        "CpuUtilization": 20.0,
        "MemoryUtilized": 256.0,  # 300 MiB used minus 44 MiB of reclaimable page cache
        "MemoryUtilization": 50.0,  # of the container's 512 MiB
        "NetworkRxBytes": 1500.0,
        "NetworkTxBytes": 700.0,
    }
    assert sample == CpuSample(5_100_000_000, 2_001_000_000_000, 2)


def test_cpu_without_a_previous_sample_uses_the_last_round() -> None:
    first = docker_stats(5_000_000_000, 0, 2_000_000_000_000, 0)  # the endpoint's first read
    metrics, sample = container_metrics({"Limits": {}}, first, None, None)
    assert "CpuUtilization" not in metrics and "MemoryUtilization" not in metrics  # no limit
    later = docker_stats(5_400_000_000, 0, 2_002_000_000_000, 0)
    metrics, _ = container_metrics({"Limits": {}}, later, None, sample)
    assert metrics["CpuUtilization"] == 40.0


def test_one_round_lands_in_the_metrics_view_of_a_real_server(
    endpoint: FakeEndpoint, tmp_path: Path
) -> None:
    with running(tmp_path, token=TOKEN) as srv:
        agent, said = make_agent(srv.url, f"{endpoint.url}/v4")
        result = agent.round()
        agent.close()
        assert said == [] and result.ok
        assert (result.collected, result.sent, result.buffered) == (10, 10, 0)
        rows = srv.query(
            "SELECT namespace, name, dimensions, value, unit FROM metrics "
            "WHERE name IN ('CpuUtilization', 'MemoryUtilized') ORDER BY dimensions, name"
        )
    dims = {"ClusterName": "prod", "TaskDefinitionFamily": "web", "TaskId": TASK_ID}
    assert [(r[0], r[1], json.loads(str(r[2])), r[3], r[4]) for r in rows] == [
        ("ecsguard/Task", "CpuUtilization", {**dims, "ContainerName": "app"}, 20.0, "Percent"),
        ("ecsguard/Task", "MemoryUtilized", {**dims, "ContainerName": "app"}, 256.0, "Megabytes"),
        (
            "ecsguard/Task",
            "CpuUtilization",
            {**dims, "ContainerName": "ecsguard-agent"},
            0.2,
            "Percent",
        ),
        (
            "ecsguard/Task",
            "MemoryUtilized",
            {**dims, "ContainerName": "ecsguard-agent"},
            256.0,
            "Megabytes",
        ),
    ]


def test_endpoint_down_is_a_message_each_round_and_the_agent_keeps_going() -> None:
    down = closed_url()
    agent, said = make_agent(down, f"{down}/v4", interval=0.01)
    stop = threading.Event()

    def say(line: str) -> None:
        said.append(line)
        if len(said) == 3:
            stop.set()

    agent.say = say
    agent.run(stop)  # returns once stopped: three rounds, no exception
    agent.close()
    assert len(said) == 3
    assert all(
        line.startswith(f"task metadata endpoint {down}/v4/task is unreachable") for line in said
    )


def test_unset_variable_is_a_message(endpoint: FakeEndpoint) -> None:
    agent, said = make_agent(endpoint.url, None)
    result = agent.round()
    agent.close()
    assert not result.ok and result.collected == 0
    assert said == [
        "ECS_CONTAINER_METADATA_URI_V4 is not set: run the agent as a container of an ECS task "
        "(platform 1.4+ on Fargate, agent 1.39+ on EC2)"
    ]


def test_server_down_buffers_a_bounded_number_and_resends(endpoint: FakeEndpoint) -> None:
    agent, said = make_agent(endpoint.url, f"{endpoint.url}/v4", max_buffered=25)
    endpoint.ingest_status = 503
    first = agent.round()
    assert (first.sent, first.buffered) == (0, 10)
    assert said == [
        f"server {endpoint.url}/ingest/metrics answered 503: disk full; "
        "10 datapoint(s) kept for the next round"
    ]
    agent.round()
    third = agent.round()  # 30 datapoints: the oldest document (5) goes
    assert third.buffered == 25
    assert said[-1] == "5 datapoint(s) dropped: the buffer is full"
    endpoint.ingest_status = 200
    fourth = agent.round()
    agent.close()
    assert fourth.ok and (fourth.sent, fourth.buffered) == (35, 0)
    documents = [json.loads(line) for body in endpoint.bodies for line in body.splitlines()]
    assert len(documents) == 7
    assert endpoint.headers_seen[-1]["Authorization"] == f"Bearer {TOKEN}"
    assert endpoint.headers_seen[-1]["Content-Type"] == "application/x-ndjson"


def test_server_unreachable_keeps_the_datapoints(endpoint: FakeEndpoint) -> None:
    down = closed_url()
    agent, said = make_agent(down, f"{endpoint.url}/v4")
    result = agent.round()
    agent.close()
    assert result.buffered == 10
    assert said[0].startswith(f"server {down}/ingest/metrics is unreachable")


def test_cli_once(endpoint: FakeEndpoint) -> None:
    runner = CliRunner()
    ok = runner.invoke(
        cli,
        ["agent", "--server", endpoint.url, "--once"],
        env={"ECS_CONTAINER_METADATA_URI_V4": f"{endpoint.url}/v4", "ECSGUARD_TOKEN": TOKEN},
    )
    assert ok.exit_code == 0, ok.output
    assert "10 datapoint(s) read, 10 sent" in ok.output
    unset = runner.invoke(
        cli,
        ["agent", "--server", endpoint.url, "--once"],
        env={"ECS_CONTAINER_METADATA_URI_V4": ""},
    )
    assert unset.exit_code == 1
    assert "ECS_CONTAINER_METADATA_URI_V4 is not set" in unset.output


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ([], "no server to post to"),
        (["--server", "ecsguard:8080"], "is not an http(s) URL"),
        (["--server", "http://x", "--interval", "soon"], "cannot read the duration"),
        (["--server", "http://x", "--interval", "0.5s"], "is too short"),
    ],
)
def test_cli_bad_options(args: list[str], problem: str) -> None:
    result = CliRunner().invoke(cli, ["agent", *args], env={"ECSGUARD_SERVER": ""})
    assert isinstance(result.exception, UserError)
    assert problem in result.exception.problem
