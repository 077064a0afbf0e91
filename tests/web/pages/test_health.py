"""The health page against a real server: services, incidents and CPU/memory charts from ECS
events and EMF metrics posted to the receivers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from tests.web.conftest import TESTDATA, Console, Running

from ecsguard.demo.traffic import cpu_metrics

EVENTS = TESTDATA / "ecs-events"
HOSTILE = '"><img src=x onerror=alert(1)><script>alert(1)</script>'
SERVICE = ("default", "servicetest")


def event(name: str, minutes_ago: float, **detail: Any) -> dict[str, Any]:
    """A documented sample event, moved to `minutes_ago` (and its detail updated)."""
    doc: dict[str, Any] = orjson.loads((EVENTS / name).read_bytes())
    doc["time"] = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat()
    doc["id"] = f"{name}-{minutes_ago}"
    doc["detail"].update(detail)
    return doc


def stopped_task(minutes_ago: float) -> dict[str, Any]:
    doc = event(
        "ecs-task-state-change-running.json",
        minutes_ago,
        lastStatus="STOPPED",
        desiredStatus="STOPPED",
        stopCode="EssentialContainerExited",
        stoppedReason="Essential container in task exited",
        group="service:servicetest",
        clusterArn="arn:aws:ecs:us-west-2:111122223333:cluster/default",
    )
    doc["resources"] = ["arn:aws:ecs:us-west-2:111122223333:task/default/0123456789abcdef"]
    doc["detail"]["taskArn"] = doc["resources"][0]
    for container in doc["detail"]["containers"]:
        container.update(lastStatus="STOPPED", exitCode=1)
    return doc


@pytest.fixture(scope="module")
def seeded(console_srv: Running) -> Iterator[Running]:
    events = [
        event("ecs-deployment-state-change-service-deployment-in-progress.json", 50),
        event("ecs-service-action-service-task-placement-failure.json", 40, reason=HOSTILE),
        stopped_task(30),
        event("ecs-deployment-state-change-service-deployment-failed.json", 20),
    ]
    reply = console_srv.client.post("/ingest/ecs-events", content=orjson.dumps(events))
    assert reply.status_code == 200 and reply.json()["stored"] == 4, reply.text
    metrics = cpu_metrics([(*SERVICE, "x"), ("default", "other", "y")], minutes=60)
    reply = console_srv.client.post("/ingest/metrics", content=metrics)
    assert reply.status_code == 200 and reply.json()["stored"] == 240, reply.text
    yield console_srv


def twin(console: Console, **params: str) -> dict[str, Any]:
    return console.twin("health", **params)


def test_services_and_incidents_from_ecs_events(
    seeded: Running, as_role: Callable[[str], Console]
) -> None:
    page = twin(as_role("viewer"), since="2h")
    (service,) = [s for s in page["services"] if (s["cluster"], s["service"]) == SERVICE]
    assert service["deployment"]["data"]["status"] == "FAILED"
    assert service["stopped"] == {"essential_exit": 1}
    kinds = [e["kind"] for e in service["incidents"]]
    assert kinds == ["deployment_failed", "task_stopped", "placement_failure"]  # newest first
    timeline = [e["kind"] for e in page["timeline"] if e["service"] == SERVICE[1]]
    assert timeline == ["deployment_failed", "task_stopped", "placement_failure", "deployment"]
    assert page["charts"] is None  # no service chosen
    # outside the range: nothing
    assert twin(as_role("viewer"), since="10m")["timeline"] == []


def test_charts_of_a_chosen_service_from_raw_metrics_then_rollups(
    seeded: Running, as_role: Callable[[str], Console]
) -> None:
    from ecsguard.monitor.rollups import rollup

    viewer = as_role("viewer")
    page = twin(viewer, cluster=SERVICE[0], service=SERVICE[1], since="2h")
    assert {(s["cluster"], s["service"]) for s in page["services"]} == {SERVICE}
    cpu, memory = page["charts"]["cpu"], page["charts"]["memory"]
    assert (cpu["namespace"], cpu["name"], cpu["unit"]) == ("AWS/ECS", "CPUUtilization", "Percent")
    assert memory["name"] == "MemoryUtilization" and cpu["source"] == "metrics"
    assert cpu["period"] == 60 and [s["label"] for s in cpu["series"]] == ["default/servicetest"]
    assert 59 <= len(cpu["x"]) <= 61 and all(v is not None for v in cpu["series"][0]["values"])
    # the same series from the raw rows
    expected = {
        int(p["time"].timestamp()): p["value"] for p in _raw(seeded, "CPUUtilization", SERVICE[1])
    }
    assert dict(zip(cpu["x"], cpu["series"][0]["values"], strict=True)) == pytest.approx(expected)
    # once rolled up, the 5-minute rows feed the chart up to the rollup's end: same averages
    rollup(seeded.service.data_dir, datetime.now(UTC))
    page = twin(viewer, service=SERVICE[1], since="2h")
    rolled = page["charts"]["cpu"]
    assert rolled["source"] == "metrics_5m + metrics" and rolled["period"] == 300
    assert all(moment % 300 == 0 for moment in rolled["x"])
    coarse: dict[int, list[float]] = {}
    for moment, value in expected.items():
        coarse.setdefault(moment // 300 * 300, []).append(value)
    averages = {k: sum(v) / len(v) for k, v in coarse.items()}
    assert dict(zip(rolled["x"], rolled["series"][0]["values"], strict=True)) == pytest.approx(
        averages, abs=1e-3
    )


def _raw(server: Running, name: str, service: str) -> list[dict[str, Any]]:
    rows = server.query(
        "SELECT time, value FROM metrics WHERE namespace = 'AWS/ECS' AND name = "
        f"'{name}' AND json_extract_string(dimensions, '$.ServiceName') = '{service}' ORDER BY time"
    )
    return [{"time": datetime.fromisoformat(str(t)), "value": v} for t, v in rows]


def test_a_service_without_metrics_says_so(
    seeded: Running, as_role: Callable[[str], Console]
) -> None:
    viewer = as_role("viewer")
    page = twin(viewer, service="nothing-here")
    assert page["services"] == [] and page["charts"] == {"cpu": None, "memory": None}
    html = viewer.client.get("/health", params={"service": "nothing-here"}).text
    assert 'id="health-cpu-none"' in html and 'id="no-services"' in html


def test_bad_filters_are_400(as_role: Callable[[str], Console]) -> None:
    viewer = as_role("viewer")
    for params in ({"since": "a while"}, {"start": "2030-01-02", "end": "2030-01-01"}):
        reply = viewer.client.get("/health.json", params=params)
        assert reply.status_code == 400 and reply.json()["error"], params


def test_hostile_text_renders_as_text(seeded: Running, as_role: Callable[[str], Console]) -> None:
    viewer = as_role("viewer")
    page = twin(viewer, since="2h")
    assert any(HOSTILE in e["summary"] for e in page["timeline"])
    html = viewer.client.get("/health", params={"since": "2h"}).text
    assert "<img src=x" not in html and "<script>alert(1)" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_the_page_is_quick_over_the_seeded_store(
    seeded: Running, as_role: Callable[[str], Console]
) -> None:
    viewer = as_role("viewer")
    started = time.monotonic()
    twin(viewer, service=SERVICE[1], since="7d")
    assert time.monotonic() - started < 5
