"""`ecsguard agent`: a sidecar that reads the ECS task metadata endpoint v4 and posts metrics.

Each round reads `$ECS_CONTAINER_METADATA_URI_V4/task` (names, limits) and `/task/stats` (Docker
stats per container, keyed by Docker id) and turns every running container into one EMF document
of namespace `ecsguard/Task`, dimensions ClusterName, TaskDefinitionFamily, TaskId and
ContainerName:

- `CpuUtilization` (Percent of one vCPU times the online CPUs, as `docker stats` shows it): the
  CPU time used between `precpu_stats` and `cpu_stats` over the host's time in between; when the
  endpoint has no previous sample yet, the agent's own previous round stands in;
- `MemoryUtilized` (Megabytes): usage minus the reclaimable page cache (`inactive_file` on cgroup
  v2, `cache` on v1), and `MemoryUtilization` (Percent) of the container's limit (or the task's);
- `NetworkRxBytes` / `NetworkTxBytes` (Bytes): the counters summed over the interfaces.

The documents go to the server's `POST /ingest/metrics` as NDJSON with the bearer token. The
outside world failing never stops the agent: an unreachable or unset endpoint is one message per
round, and documents the server did not take stay in a bounded buffer (the oldest go first) and
are sent with the next round.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from threading import Event
from typing import Any

import httpx
import orjson

ENV_METADATA = "ECS_CONTAINER_METADATA_URI_V4"
NAMESPACE = "ecsguard/Task"
DIMENSIONS = ["ClusterName", "TaskDefinitionFamily", "TaskId", "ContainerName"]
UNITS = {
    "CpuUtilization": "Percent",
    "MemoryUtilized": "Megabytes",
    "MemoryUtilization": "Percent",
    "NetworkRxBytes": "Bytes",
    "NetworkTxBytes": "Bytes",
}
#: documents per request: a day of a large task's backlog still fits the server's --max-body
POST_BATCH = 500
#: Docker's memory limit of a container without one (PAGE_COUNTER_MAX): not a real limit
_NO_LIMIT = 1 << 60
_MIB = 1024 * 1024


@dataclass(frozen=True)
class AgentSettings:
    server: str
    token: str | None
    metadata_uri: str | None  # None: the variable is unset (not in an ECS task)
    interval: float = 10.0
    max_buffered: int = 10_000  # datapoints kept while the server is away
    timeout: float = 5.0


@dataclass(frozen=True)
class CpuSample:
    total: int  # container CPU time, ns
    system: int  # host CPU time, ns
    online: int


class MetadataError(Exception):
    """The metadata endpoint cannot be read: a one-line reason."""


# ------------------------------------------------------------------------------- computing


def _cpu_sample(stats: Any) -> CpuSample | None:
    if not isinstance(stats, dict):
        return None
    usage = stats.get("cpu_usage") or {}
    total, system = usage.get("total_usage"), stats.get("system_cpu_usage")
    if not isinstance(total, int) or not isinstance(system, int) or system <= 0:
        return None
    online = stats.get("online_cpus")
    if not isinstance(online, int) or online <= 0:
        online = len(usage.get("percpu_usage") or []) or 1
    return CpuSample(total, system, online)


def cpu_percent(now: CpuSample | None, before: CpuSample | None) -> float | None:
    """CPU use between two samples, in percent of one CPU (200 = two CPUs busy)."""
    if now is None or before is None:
        return None
    cpu_delta, system_delta = now.total - before.total, now.system - before.system
    if system_delta <= 0 or cpu_delta < 0:
        return None
    return cpu_delta / system_delta * now.online * 100.0


def container_metrics(
    container: dict[str, Any],
    stats: dict[str, Any],
    task_memory_mib: float | None,
    previous: CpuSample | None,
) -> tuple[dict[str, float], CpuSample | None]:
    """The metrics of one container's Docker stats, and its CPU sample for the next round."""
    metrics: dict[str, float] = {}
    now = _cpu_sample(stats.get("cpu_stats"))
    cpu = cpu_percent(now, _cpu_sample(stats.get("precpu_stats")))
    if cpu is None:
        cpu = cpu_percent(now, previous)
    if cpu is not None:
        metrics["CpuUtilization"] = round(cpu, 3)
    memory = stats.get("memory_stats") or {}
    usage = memory.get("usage")
    if isinstance(usage, int):
        detail = memory.get("stats") or {}
        cache = detail.get("inactive_file", detail.get("total_inactive_file", detail.get("cache")))
        used = usage - cache if isinstance(cache, int) and cache <= usage else usage
        metrics["MemoryUtilized"] = round(used / _MIB, 3)
        limits = container.get("Limits") or {}
        limit_mib = limits.get("Memory") or task_memory_mib
        if not limit_mib and isinstance(memory.get("limit"), int) and memory["limit"] < _NO_LIMIT:
            limit_mib = memory["limit"] / _MIB
        if isinstance(limit_mib, int | float) and limit_mib > 0:
            metrics["MemoryUtilization"] = round(used / _MIB / limit_mib * 100.0, 3)
    networks = stats.get("networks")
    if isinstance(networks, dict) and networks:
        for key, name in (("rx_bytes", "NetworkRxBytes"), ("tx_bytes", "NetworkTxBytes")):
            metrics[name] = float(
                sum(n.get(key) or 0 for n in networks.values() if isinstance(n, dict))
            )
    return metrics, now


def _last_segment(arn: Any) -> str:
    return arn.rsplit("/", 1)[-1] if isinstance(arn, str) else ""


def task_documents(
    task: dict[str, Any],
    stats: dict[str, Any],
    previous: dict[str, CpuSample],
    time_ms: int,
) -> list[dict[str, Any]]:
    """One EMF document per container with stats; `previous` is updated for the next round."""
    identity = {
        "ClusterName": _last_segment(task.get("Cluster")),
        "TaskDefinitionFamily": str(task.get("Family") or ""),
        "TaskId": _last_segment(task.get("TaskARN")),
    }
    task_memory = (task.get("Limits") or {}).get("Memory")
    docs = []
    for container in task.get("Containers") or []:
        docker_id = container.get("DockerId")
        container_stats = stats.get(docker_id) if isinstance(docker_id, str) else None
        if not isinstance(container_stats, dict):
            continue  # not running (the endpoint answers null): nothing to measure
        metrics, sample = container_metrics(
            container, container_stats, task_memory, previous.get(docker_id)
        )
        if sample is not None:
            previous[docker_id] = sample
        if not metrics:
            continue
        directive = {
            "Namespace": NAMESPACE,
            "Dimensions": [DIMENSIONS],
            "Metrics": [{"Name": name, "Unit": UNITS[name]} for name in metrics],
        }
        docs.append(
            {
                "_aws": {"Timestamp": time_ms, "CloudWatchMetrics": [directive]},
                **identity,
                "ContainerName": str(container.get("Name") or docker_id),
                **metrics,
            }
        )
    return docs


# ---------------------------------------------------------------------------------- the agent


@dataclass(frozen=True)
class RoundResult:
    collected: int  # datapoints read from the endpoint this round
    sent: int  # datapoints the server acknowledged
    buffered: int  # datapoints waiting for the server
    messages: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.messages


class Agent:
    """Rounds of read, convert, send. `say` receives one line per problem."""

    def __init__(
        self,
        settings: AgentSettings,
        say: Callable[[str], None] = lambda line: None,
        client: httpx.Client | None = None,
    ) -> None:
        self.settings = settings
        self.say = say
        self.client = client or httpx.Client(timeout=settings.timeout)
        self.previous: dict[str, CpuSample] = {}
        self.buffer: deque[tuple[dict[str, Any], int]] = deque()  # (document, datapoints)
        self.buffered = 0
        self.dropped = 0

    def read_metadata(self) -> tuple[dict[str, Any], dict[str, Any]]:
        base = self.settings.metadata_uri
        if not base:
            raise MetadataError(
                f"{ENV_METADATA} is not set: run the agent as a container of an ECS task "
                "(platform 1.4+ on Fargate, agent 1.39+ on EC2)"
            )
        return self._get_json(f"{base.rstrip('/')}/task"), self._get_json(
            f"{base.rstrip('/')}/task/stats"
        )

    def _get_json(self, url: str) -> dict[str, Any]:
        try:
            reply = self.client.get(url)
        except httpx.HTTPError as exc:
            raise MetadataError(f"task metadata endpoint {url} is unreachable: {exc}") from None
        if reply.status_code != 200:
            raise MetadataError(f"task metadata endpoint {url} answered {reply.status_code}")
        try:
            value = orjson.loads(reply.content)
        except orjson.JSONDecodeError:
            raise MetadataError(f"task metadata endpoint {url} did not answer JSON") from None
        if not isinstance(value, dict):
            raise MetadataError(f"task metadata endpoint {url} did not answer a JSON object")
        return value

    def collect(self) -> int:
        """Read the endpoint once and buffer its documents; datapoints added."""
        task, stats = self.read_metadata()
        docs = task_documents(task, stats, self.previous, time.time_ns() // 1_000_000)
        added = 0
        for doc in docs:
            points = len(doc["_aws"]["CloudWatchMetrics"][0]["Metrics"])
            self.buffer.append((doc, points))
            self.buffered += points
            added += points
        return added

    def _bound(self) -> None:
        """After a send that failed: the oldest documents go beyond `max_buffered`."""
        while self.buffered > self.settings.max_buffered:
            _, points = self.buffer.popleft()
            self.buffered -= points
            self.dropped += points

    def send(self) -> int:
        """Post the buffer in batches; datapoints acknowledged. Raises SendError when the
        server does not take them (what it did not take stays buffered, except a 400's)."""
        sent = 0
        url = f"{self.settings.server.rstrip('/')}/ingest/metrics"
        headers = {"Content-Type": "application/x-ndjson"}
        if self.settings.token:
            headers["Authorization"] = f"Bearer {self.settings.token}"
        while self.buffer:
            chunk = [self.buffer[i] for i in range(min(POST_BATCH, len(self.buffer)))]
            body = b"\n".join(orjson.dumps(doc) for doc, _ in chunk)
            try:
                reply = self.client.post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                raise SendError(f"server {url} is unreachable: {exc}") from None
            if reply.status_code == 400:  # these documents will never be taken: drop them
                self._drop(len(chunk))
                raise SendError(f"server {url} refused the datapoints: {_error(reply)}")
            if reply.status_code != 200:
                raise SendError(f"server {url} answered {reply.status_code}: {_error(reply)}")
            points = self._drop(len(chunk))
            sent += points
        return sent

    def _drop(self, count: int) -> int:
        points = 0
        for _ in range(count):
            _, n = self.buffer.popleft()
            points += n
        self.buffered -= points
        return points

    def round(self) -> RoundResult:
        messages = []
        collected = sent = 0
        try:
            collected = self.collect()
        except MetadataError as exc:
            messages.append(str(exc))
        try:
            sent = self.send()
        except SendError as exc:
            self._bound()
            messages.append(f"{exc}; {self.buffered} datapoint(s) kept for the next round")
        if self.dropped:
            messages.append(f"{self.dropped} datapoint(s) dropped: the buffer is full")
            self.dropped = 0
        for line in messages:
            self.say(line)
        return RoundResult(collected, sent, self.buffered, tuple(messages))

    def run(self, stop: Event) -> None:
        """Rounds every interval until `stop` is set; the outside world failing is a message."""
        while True:
            started = time.monotonic()
            self.round()
            wait = self.settings.interval - (time.monotonic() - started)
            if stop.wait(max(wait, 0.0)):
                return

    def close(self) -> None:
        self.client.close()


class SendError(Exception):
    """The server did not take the datapoints: a one-line reason."""


def _error(reply: httpx.Response) -> str:
    try:
        body = reply.json()
    except ValueError:
        return reply.text[:200]
    return str(body.get("error", body))[:200] if isinstance(body, dict) else str(body)[:200]
