"""Service health: each ECS service's timeline, built from ECS events and successive snapshots.

Entries come from two sources:
- the `events` table (EventBridge events as the ecs_events receiver stores them): deployments
  (ECS Deployment State Change: IN_PROGRESS, COMPLETED, FAILED; a circuit-breaker rollback says
  "rolling back" in its reason), service actions (steady state, start impaired, placement
  failures), task state changes (a STOPPED task with its stop code and a classified reason);
- inventory snapshots under DATA_DIR/snapshots/: desired, running and pending counts at the
  time each was collected, the rollout state of the deployments it lists, its stopped tasks
  (DescribeTasks keeps them about an hour) and the services' own event messages (placement
  failures, impaired starts, steady states). What an event and a snapshot both report (or two
  snapshots) is listed once.

A service is identified by (cluster, service). Task events name their service in `group`
("service:NAME"); a task started outside a service keeps its group ("family:NAME"), and one
without a group is listed under "-".
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson

from ecsguard.aws import snapshot as snapshots
from ecsguard.core.errors import UserError
from ecsguard.logs.query.timerange import TimeRange
from ecsguard.logs.store import StoreLocation

NO_SERVICE = "-"
#: entry kinds that are incidents (shown under "latest incidents")
INCIDENTS = frozenset({"task_stopped", "placement_failure", "deployment_failed", "start_impaired"})
#: stop categories of the scheduler's own work: counted, but not incidents
ROUTINE_STOPS = frozenset({"scaling", "deployment", "scheduler"})
_DEPLOYMENT_STATUS = {
    "SERVICE_DEPLOYMENT_IN_PROGRESS": "IN_PROGRESS",
    "SERVICE_DEPLOYMENT_COMPLETED": "COMPLETED",
    "SERVICE_DEPLOYMENT_FAILED": "FAILED",
}
_ECS_TYPES = ("ECS Deployment State Change", "ECS Service Action", "ECS Task State Change")


@dataclass(frozen=True)
class Entry:
    """One thing that happened to a service (or that a snapshot saw)."""

    time: datetime
    cluster: str
    service: str
    kind: str  # counts, deployment, deployment_failed, task_stopped, placement_failure, ...
    summary: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["time"] = self.time.isoformat().replace("+00:00", "Z")
        return out


@dataclass
class ServiceHealth:
    cluster: str
    service: str
    desired: int | None = None
    running: int | None = None
    pending: int | None = None
    counts_at: datetime | None = None
    deployment: Entry | None = None
    incidents: list[Entry] = field(default_factory=list)
    stopped: dict[str, int] = field(default_factory=dict)  # stop category -> tasks

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "service": self.service,
            "desired": self.desired,
            "running": self.running,
            "pending": self.pending,
            "counts_at": _iso(self.counts_at),
            "deployment": self.deployment.to_dict() if self.deployment else None,
            "stopped": self.stopped,
            "incidents": [e.to_dict() for e in self.incidents],
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _arn_name(arn: str, kind: str) -> tuple[str | None, str | None]:
    """(cluster, name) of an ECS ARN of `kind` (service or task); the old format has no
    cluster in the ARN."""
    _, _, resource = arn.rpartition(":")
    if not resource.startswith(kind + "/"):
        return None, None
    parts = resource.split("/")
    if len(parts) >= 3:
        return parts[1], parts[2]
    return None, parts[-1]


def _cluster_of(arn: Any) -> str | None:
    if isinstance(arn, str) and ":cluster/" in arn:
        return arn.rsplit("/", 1)[1]
    return None


# --- stopped tasks --------------------------------------------------------------------------


def classify_stop(detail: dict[str, Any]) -> str:
    """Why a task stopped: oom, spot_interruption, elb_health_check, container_health_check,
    essential_exit, user_stop, scaling, deployment or other."""
    reason = str(detail.get("stoppedReason") or "")
    code = str(detail.get("stopCode") or "")
    containers = [c for c in detail.get("containers") or [] if isinstance(c, dict)]
    lowered = reason.lower()
    if (
        reason.startswith("OutOfMemoryError")
        or any(c.get("exitCode") == 137 for c in containers)
        or any(str(c.get("reason") or "").startswith("OutOfMemoryError") for c in containers)
    ):
        return "oom"
    if code in ("SpotInterruption", "TerminationNotice") or "spot task was interrupted" in lowered:
        return "spot_interruption"
    if "failed elb health checks" in lowered:
        return "elb_health_check"
    if "failed container health checks" in lowered:
        return "container_health_check"
    if code == "EssentialContainerExited" or "essential container in task exited" in lowered:
        return "essential_exit"
    if code == "UserInitiated" or lowered.startswith("task stopped by user"):
        return "user_stop"
    # the scheduler replacing tasks: a scale-in or a deployment, not an incident of the task
    if "scaling activity" in lowered:
        return "scaling"
    if code == "ServiceSchedulerInitiated":
        return "deployment" if "deployment" in lowered else "scheduler"
    return "other"


def _exit_codes(detail: dict[str, Any]) -> dict[str, Any]:
    return {
        str(c.get("name")): c.get("exitCode")
        for c in detail.get("containers") or []
        if isinstance(c, dict) and c.get("exitCode") is not None
    }


# --- events -----------------------------------------------------------------------------------


def entry_from_event(
    time: datetime, detail_type: str, resources: list[Any], detail: dict[str, Any]
) -> Entry | None:
    """The timeline entry of one ECS event, or None for events that say nothing about health."""
    if detail_type == "ECS Task State Change":
        return _task_entry(time, resources, detail)
    service_arn = next((r for r in resources if isinstance(r, str) and ":service/" in r), None)
    if service_arn is None:
        return None
    cluster, service = _arn_name(service_arn, "service")
    cluster = cluster or _cluster_of(detail.get("clusterArn")) or "default"
    service = service or NO_SERVICE
    name = str(detail.get("eventName") or "")
    reason = str(detail.get("reason") or "")
    if detail_type == "ECS Deployment State Change":
        status = _DEPLOYMENT_STATUS.get(name)
        if status is None:
            return None
        data = {
            "deployment_id": detail.get("deploymentId"),
            "status": status,
            "reason": reason,
            "rollback": "rolling back" in reason.lower(),
        }
        kind = "deployment_failed" if status == "FAILED" else "deployment"
        suffix = " (rollback)" if data["rollback"] else ""
        summary = f"deployment {data['deployment_id']} {status}{suffix}: {reason}".rstrip(": ")
        return Entry(time, cluster, service, kind, summary, data)
    if detail_type == "ECS Service Action":
        data = {"event": name, "event_type": detail.get("eventType"), "reason": reason}
        if name == "SERVICE_TASK_PLACEMENT_FAILURE":
            data["capacity_providers"] = [
                str(a).rsplit("/", 1)[-1] for a in detail.get("capacityProviderArns") or []
            ]
            return Entry(
                time,
                cluster,
                service,
                "placement_failure",
                f"task placement failed: {reason}",
                data,
            )
        if name == "SERVICE_TASK_START_IMPAIRED":
            return Entry(
                time, cluster, service, "start_impaired", "tasks fail to start (impaired)", data
            )
        if name in ("SERVICE_STEADY_STATE", "CAPACITY_PROVIDER_STEADY_STATE"):
            return Entry(time, cluster, service, "steady_state", name.lower(), data)
        return Entry(time, cluster, service, "service_action", name or "service action", data)
    return None


def _task_entry(time: datetime, resources: list[Any], detail: dict[str, Any]) -> Entry | None:
    task_arn = detail.get("taskArn") or next((r for r in resources if isinstance(r, str)), "")
    task_cluster, task_id = _arn_name(str(task_arn), "task")
    cluster = _cluster_of(detail.get("clusterArn")) or task_cluster or "default"
    group = str(detail.get("group") or "")
    service = group.removeprefix("service:") if group else NO_SERVICE
    stopping = detail.get("lastStatus") == "STOPPED" or detail.get("desiredStatus") == "STOPPED"
    last = detail.get("lastStatus")
    if not stopping:
        if last not in ("RUNNING", "PENDING"):
            return None
        data = {"task": task_id, "status": last}
        return Entry(time, cluster, service, "task_state", f"task {task_id} {last}", data)
    category = classify_stop(detail)
    data = {
        "task": task_id,
        "status": last,
        "stop_code": detail.get("stopCode"),
        "reason": detail.get("stoppedReason"),
        "category": category,
        "exit_codes": _exit_codes(detail),
    }
    # a Spot termination notice arrives while the task still runs: it is stopping, not stopped
    verb = "stopped" if last == "STOPPED" else "stopping"
    reason = detail.get("stoppedReason") or detail.get("stopCode") or "no reason given"
    return Entry(
        time,
        cluster,
        service,
        "task_stopped",
        f"task {task_id} {verb} ({category}): {reason}",
        data,
    )


def _json(text: str | None, default: Any) -> Any:
    if not text:
        return default
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return default


def event_entries(con: duckdb.DuckDBPyConnection, window: TimeRange) -> list[Entry]:
    """The entries of the ECS events in the `events` view within `window`."""
    types = ", ".join(f"'{t}'" for t in _ECS_TYPES)
    rows = con.execute(
        f"SELECT time, detail_type, resources, detail FROM events WHERE source = 'aws.ecs' "
        f"AND detail_type IN ({types}) AND {window.sql('time')} ORDER BY time"
    ).fetchall()
    out = []
    for time, detail_type, resources, detail in rows:
        res = _json(resources, [])
        det = _json(detail, {})
        if not isinstance(res, list) or not isinstance(det, dict):
            continue  # not an ECS event's shape: nothing to read from it
        entry = entry_from_event(time.astimezone(UTC), detail_type, res, det)
        if entry is not None:
            out.append(entry)
    return out


# --- snapshots --------------------------------------------------------------------------------


def snapshot_files(data_dir: Path) -> list[Path]:
    folder = Path(data_dir) / "snapshots"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.endswith((".json", ".json.gz")))


def snapshot_entries(
    snapshot: snapshots.Snapshot, window: TimeRange, baseline: bool = False
) -> list[Entry]:
    """Counts of every service at the snapshot's time, and its deployments' rollout states.
    `baseline`: the snapshot taken before the window gives the counts the window starts with."""
    out: list[Entry] = []
    taken = snapshot.collected_at.astimezone(UTC)
    counted = (baseline or window.start <= taken) and taken < window.end
    for inventory in snapshot.regions.values():
        for svc in inventory.ecs.services:
            cluster = _cluster_of(svc.get("clusterArn")) or "default"
            service = str(svc.get("serviceName") or NO_SERVICE)
            if counted:
                counts = {k: svc.get(f"{k}Count") for k in ("desired", "running", "pending")}
                summary = "desired {desired}, running {running}, pending {pending}".format(**counts)
                out.append(Entry(taken, cluster, service, "counts", summary, counts))
            for deployment in svc.get("deployments") or []:
                state = deployment.get("rolloutState")
                when = _parse_time(deployment.get("updatedAt")) or taken
                if not state or not window.start <= when < window.end:
                    continue
                reason = str(deployment.get("rolloutStateReason") or "")
                data = {
                    "deployment_id": deployment.get("id"),
                    "status": state,
                    "reason": reason,
                    "rollback": "rolling back" in reason.lower(),
                }
                kind = "deployment_failed" if state == "FAILED" else "deployment"
                summary = f"deployment {deployment.get('id')} {state}: {reason}".rstrip(": ")
                out.append(Entry(when, cluster, service, kind, summary, data))
            out.extend(_service_event_entries(cluster, service, svc, window))
        out.extend(_stopped_task_entries(inventory.ecs.tasks, taken, window))
    return out


# the ECS service event messages that mean the same as an EventBridge service action
_SERVICE_MESSAGES = (
    ("was unable to place a task", "placement_failure"),
    ("is unable to consistently start tasks", "start_impaired"),
    ("has reached a steady state", "steady_state"),
)


def _service_event_entries(
    cluster: str, service: str, svc: dict[str, Any], window: TimeRange
) -> list[Entry]:
    """Placement failures, impaired starts and steady states from the service's own event
    messages (DescribeServices keeps the last 100): there even without EventBridge."""
    out = []
    for event in svc.get("events") or []:
        if not isinstance(event, dict):
            continue
        message = str(event.get("message") or "")
        when = _parse_time(event.get("createdAt"))
        kind = next((k for text, k in _SERVICE_MESSAGES if text in message), None)
        if kind is None or when is None or not window.start <= when < window.end:
            continue
        data = {"event_id": event.get("id"), "reason": message}
        out.append(Entry(when, cluster, service, kind, message, data))
    return out


def _stopped_task_entries(
    tasks: list[dict[str, Any]], taken: datetime, window: TimeRange
) -> list[Entry]:
    """The snapshot's stopped tasks (DescribeTasks has the event's field names)."""
    out = []
    for task in tasks:
        if task.get("lastStatus") != "STOPPED":
            continue
        when = _parse_time(task.get("stoppedAt")) or _parse_time(task.get("stoppingAt")) or taken
        if not window.start <= when < window.end:
            continue
        entry = _task_entry(when, [], task)
        if entry is not None:
            out.append(entry)
    return out


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    with contextlib.suppress(ValueError):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


# --- the timeline -----------------------------------------------------------------------------


def timeline(
    entries: Iterable[Entry], cluster: str | None = None, service: str | None = None
) -> list[Entry]:
    """Entries of the chosen cluster/service, oldest first, a deployment state seen both in an
    event and in a snapshot listed once."""
    seen: set[tuple[Any, ...]] = set()
    out = []
    for entry in sorted(entries, key=lambda e: (e.time, e.cluster, e.service, e.kind)):
        if cluster is not None and entry.cluster != cluster:
            continue
        if service is not None and entry.service != service:
            continue
        key = _identity(entry)
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        out.append(entry)
    return out


def _identity(entry: Entry) -> tuple[Any, ...] | None:
    """What makes an entry the same as one seen already (in an event and a snapshot, or in
    successive snapshots); None for entries that are never repeated."""
    if entry.kind.startswith("deployment"):
        return (
            entry.cluster,
            entry.service,
            entry.data.get("deployment_id"),
            entry.data.get("status"),
            entry.data.get("rollback"),
        )
    if entry.kind == "task_stopped" and entry.data.get("task"):
        return (entry.cluster, "task", entry.data["task"], entry.data.get("status"))
    if entry.data.get("event_id"):
        return (entry.cluster, entry.service, "service event", entry.data["event_id"])
    return None


def summarize(entries: list[Entry], incidents: int = 5) -> list[ServiceHealth]:
    """Each service's latest counts and deployment, its stopped tasks by category and its
    latest `incidents` incidents (newest first); entries must be oldest first."""
    services: dict[tuple[str, str], ServiceHealth] = {}
    for entry in entries:
        health = services.setdefault(
            (entry.cluster, entry.service), ServiceHealth(entry.cluster, entry.service)
        )
        if entry.kind == "counts":
            health.desired = entry.data.get("desired")
            health.running = entry.data.get("running")
            health.pending = entry.data.get("pending")
            health.counts_at = entry.time
        elif entry.kind.startswith("deployment"):
            health.deployment = entry
        if entry.kind == "task_stopped":
            category = entry.data["category"]
            health.stopped[category] = health.stopped.get(category, 0) + 1
        if entry.kind in INCIDENTS and entry.data.get("category") not in ROUTINE_STOPS:
            health.incidents.append(entry)
    for health in services.values():
        health.incidents = health.incidents[::-1][:incidents]
    return [services[k] for k in sorted(services)]


def collect(
    data_dir: Path,
    window: TimeRange,
    cluster: str | None = None,
    service: str | None = None,
    store: StoreLocation | None = None,
) -> tuple[list[Entry], list[str]]:
    """The timeline of a data directory's events and snapshots; and the snapshot files that
    could not be read (they are skipped, not fatal)."""
    from ecsguard.logs.pipeline import Pipeline

    entries: list[Entry] = []
    problems: list[str] = []
    pipeline = Pipeline(data_dir, store=store)
    try:
        try:
            con = pipeline.connect()
        except duckdb.Error as err:
            first = str(err).splitlines()[0]
            raise UserError(f"cannot read the store: {first}", "check the data directory") from None
        entries.extend(event_entries(con, window))
        con.close()
    finally:
        pipeline.close()
    # a file is written after its snapshot was taken: one older than the window holds nothing
    # of it but the counts it starts with, so of those only the newest is read
    files = [(path.stat().st_mtime, path) for path in snapshot_files(data_dir)]
    before = [f for f in files if f[0] < window.start.timestamp()]
    chosen = [(path, False) for mtime, path in files if mtime >= window.start.timestamp()]
    if before:
        chosen.insert(0, (max(before)[1], True))
    for path, baseline in chosen:
        try:
            entries.extend(snapshot_entries(snapshots.load(path), window, baseline))
        except UserError as err:
            problems.append(err.problem)
    return timeline(entries, cluster, service), problems
