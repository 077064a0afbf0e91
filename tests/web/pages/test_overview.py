"""The overview against a real server: the logs rate and the alarms firing come from what the
server received (the findings and IAM cards are tested with mutes in test_findings)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from tests.web.conftest import log_in
from tests.web.pages.alarm_server import CPU_RULE, serve_with


def emf(service: str, value: float, at: datetime) -> dict[str, object]:
    return {
        "_aws": {
            "Timestamp": int(at.timestamp() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": "AWS/ECS",
                    "Dimensions": [["ServiceName"]],
                    "Metrics": [{"Name": "CPUUtilization", "Unit": "Percent"}],
                }
            ],
        },
        "ServiceName": service,
        "CPUUtilization": value,
    }


def test_an_alarm_in_alarm_state_is_firing_on_the_overview(tmp_path: Path) -> None:
    with serve_with(tmp_path / "data", [CPU_RULE]) as server:
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        # the last five minutes and the next two: a minute that turns while the test runs closes
        # a period the alarm then evaluates, and that period must hold a breaching value too
        body = b"\n".join(
            orjson.dumps(emf("api", 97.0, now - timedelta(minutes=m, seconds=-30)))
            for m in range(-2, 6)
        )
        reply = server.client.post("/ingest/metrics", content=body)
        assert reply.status_code == 200, reply.text
        viewer = log_in(server.url, "viewer")
        server.client.post("/ingest/lines", params={"service": "api"}, content=b"hello\n")
        # an alarm evaluates once per period: if the worker's first tick (a second after its
        # start) came before the datapoints, they are evaluated when the next minute begins
        next_minute = 60 - datetime.now(UTC).second
        deadline = time.monotonic() + max(15, next_minute + 10)
        firing: list[str] = []
        while not firing and time.monotonic() < deadline:
            time.sleep(0.2)
            firing = viewer.client.get("/overview.json").json()["alerts"]["firing"]
        assert firing == ["api-cpu-high"]
        html = viewer.client.get("/overview").text
        assert "alarms firing now" in html and "api-cpu-high" in html
        logs = viewer.client.get("/overview.json").json()["logs"]
        assert logs["records"]["logs"] == 1 and logs["per_second"] > 0


def test_the_logs_card_shows_the_pipelines_health(tmp_path: Path) -> None:
    with serve_with(tmp_path / "data") as server:
        viewer = log_in(server.url, "viewer")
        healthy = viewer.client.get("/overview.json").json()["logs"]
        assert (healthy["refused"], healthy["flush_errors"]) == (0, 0)
        assert 'id="pipeline-health" class="muted"' in viewer.client.get("/overview").text
        bad = server.client.post(
            "/ingest/lines", content=b"not gzip", headers={"Content-Encoding": "gzip"}
        )
        assert bad.status_code == 400
        logs = viewer.client.get("/overview.json").json()["logs"]
        assert logs["refused"] == 1 and logs["wal_bytes"] >= 0  # flushed within a second
        html = viewer.client.get("/overview").text
        assert 'id="pipeline-health" class="error"' in html
        assert "1 requests refused, 0 flush errors," in html and "MB waiting in the WAL" in html
