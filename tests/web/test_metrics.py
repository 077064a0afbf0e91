"""GET /metrics against a real server: the Prometheus text a scraper reads, its counters moving
with what the server did (records stored and flushed, requests refused, alerts raised, a channel
failing), the token rule of /api/stats, and OpenMetrics when the scraper asks for it."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from tests.cli.test_errors import closed_port
from tests.web.conftest import TOKEN, Running
from tests.web.pages.alarm_server import PLACEMENT_RULE, serve_with, webhook_config
from tests.web.pages.test_alarms import ingest, placement_event

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples_of(text: str) -> Samples:
    """Every sample of an exposition text: (name, sorted labels) -> value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client: httpx.Client) -> Samples:
    """Every sample of one scrape of the server."""
    reply = client.get("/metrics")
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    return samples_of(reply.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_counters_follow_what_the_server_did(srv: Running) -> None:
    before = scrape(srv.client)
    body = b"metrics line one\nmetrics line two\n"
    stored = srv.client.post("/ingest/lines", params={"service": "metrics-svc"}, content=body)
    assert stored.status_code == 200 and stored.json()["stored"] == 2
    resent = srv.client.post("/ingest/lines", params={"service": "metrics-svc"}, content=body)
    assert resent.json() == {"stored": 0, "duplicates": 2, "problems": [], "problem_count": 0}
    wrong = httpx.post(f"{srv.url}/ingest/lines", content=b"x\n", headers={"Authorization": "x"})
    assert wrong.status_code == 401
    big = srv.client.post("/ingest/lines", content=b"y" * (65 * 1024))
    assert big.status_code == 413
    after = scrape(srv.client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("ecsguard_records_stored_total", table="logs") == 2
    assert grew("ecsguard_duplicate_records_total") == 2
    assert grew("ecsguard_received_bytes_total") == 2 * len(body)
    assert grew("ecsguard_ingest_refused_total", status="401") == 1
    assert grew("ecsguard_ingest_refused_total", status="413") == 1
    assert grew("ecsguard_wal_fsyncs_total") >= 1
    assert value(after, "ecsguard_start_time_seconds") <= time.time()
    assert value(after, "process_resident_memory_bytes") > 0
    # a server without detection or channels shows neither
    assert not any(name.startswith(("ecsguard_detection", "ecsguard_notify")) for name, _ in after)


def test_the_wal_backlog_empties_as_records_are_flushed(
    serve: Callable[..., AbstractContextManager[Running]],
) -> None:
    with serve() as server:
        posted = server.client.post("/ingest/lines", content=b"to be flushed\n")
        assert posted.status_code == 200
        deadline = time.monotonic() + 15
        while True:
            samples = scrape(server.client)
            if value(samples, "ecsguard_records_flushed_total", table="logs") == 1:
                break
            assert time.monotonic() < deadline, "the line was never flushed"
            time.sleep(0.1)
        assert value(samples, "ecsguard_wal_bytes", table="logs") == 0
        assert value(samples, "ecsguard_wal_segments", table="logs") == 0
        assert value(samples, "ecsguard_flush_errors_total") == 0


def test_a_token_is_required_as_for_the_stats(srv: Running) -> None:
    bare = httpx.get(f"{srv.url}/metrics")
    assert bare.status_code == 401 and bare.headers["www-authenticate"] == "Bearer"
    wrong = httpx.get(f"{srv.url}/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    right = httpx.get(f"{srv.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert right.status_code == 200 and "ecsguard_records_stored_total" in right.text


def test_openmetrics_when_the_scraper_asks(srv: Running) -> None:
    reply = srv.client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert reply.headers["content-type"].startswith("application/openmetrics-text")
    assert reply.text.endswith("# EOF\n")


def test_alerts_detection_and_a_failing_channel(tmp_path: Path) -> None:
    notify = webhook_config(closed_port(), "metrics")  # nobody listens: every delivery fails
    with serve_with(tmp_path / "data", [PLACEMENT_RULE], notify) as server:
        ingest(server, placement_event("metrics-test"))
        deadline = time.monotonic() + 30
        while True:
            samples = scrape(server.client)
            failing = value(samples, "ecsguard_notify_channel_failures", channel="hook")
            if value(samples, "ecsguard_alerts_total", severity="high") == 1 and failing >= 1:
                break
            assert time.monotonic() < deadline, samples
            time.sleep(0.1)
        assert value(samples, "ecsguard_detection_rules") == 1
        assert value(samples, "ecsguard_detection_batches_total") >= 1
        assert value(samples, "ecsguard_detection_failing_rules") == 0
        assert value(samples, "ecsguard_notify_messages", channel="hook", status="pending") == 1
        assert value(samples, "ecsguard_notify_messages", channel="hook", status="sent") == 0
