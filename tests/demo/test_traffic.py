"""The demo's synthetic FireLens traffic parses into the logs table as FireLens would post it."""

from __future__ import annotations

from ecsguard.demo.traffic import firelens_bodies
from ecsguard.logs.receivers import RECEIVERS
from ecsguard.logs.records import ReceiverOptions


def test_bodies_parse_with_levels_request_ids_and_traces() -> None:
    bodies = list(firelens_bodies([("prod", "api", "api:4")], lines_per_service=300))
    assert [service for service, _ in bodies] == ["api"]
    parsed = RECEIVERS.get("firelens")(bodies[0][1], ReceiverOptions(service="api"))
    rows = parsed.batch.to_pylist()
    assert len(rows) == 300 and not parsed.problems
    assert {r["cluster"] for r in rows} == {"prod"} and {r["service"] for r in rows} == {"api"}
    assert {r["level"] for r in rows} >= {"INFO", "WARN", "ERROR"}
    errors = [r for r in rows if r["level"] == "ERROR"]
    assert all("Traceback" in r["message"] and "request_id" in r["fields"] for r in errors)
    again = list(firelens_bodies([("prod", "api", "api:4")], lines_per_service=300))
    assert again[0][1].count(b"req-") == bodies[0][1].count(b"req-")
