"""The audit-trail page against a real server: CloudTrail records ingested through
/ingest/cloudtrail (Stratus Red Team detonation logs and records of the demo account's own
principals), filters, IAM tiers from the saved demo snapshot, the chart and the top lists."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from tests.web.conftest import TESTDATA, Console, Running, add_console_users, log_in, running
from tests.web.pages.estate_data import IMG, SCRIPT, save_into

from ecsguard.web.pages.audit import tier_lookup

TRAIL = TESTDATA / "cloudtrail" / "stratus-red-team-detonation-logs"
STRATUS = ("aws.defense-evasion.cloudtrail-stop.json", "aws.persistence.iam-create-admin-user.json")
ACCOUNT = "123456789012"
NOW = datetime.now(UTC).replace(microsecond=0)


def stamp(minutes_ago: int) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")


def record(n: int, minutes_ago: int, name: str, identity: dict[str, Any], **extra: Any) -> dict:
    return {
        "eventVersion": "1.10",
        "eventID": f"console-audit-{n}",
        "eventTime": stamp(minutes_ago),
        "eventSource": extra.pop("source", "ecs.amazonaws.com"),
        "eventName": name,
        "awsRegion": "ap-northeast-1",
        "sourceIPAddress": "203.0.113.7",
        "userAgent": "aws-cli/2.15",
        "recipientAccountId": ACCOUNT,
        "userIdentity": identity,
        **extra,
    }


SESSION = {
    "type": "AssumedRole",
    "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/api-task/task-1234",
    "accountId": ACCOUNT,
    "sessionContext": {
        "sessionIssuer": {
            "type": "Role",
            "arn": f"arn:aws:iam::{ACCOUNT}:role/api-task",
            "userName": "api-task",
        }
    },
}
OPERATOR = {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/tanaka.yuki"}
OURS = [
    record(1, 30, "UpdateService", OPERATOR, requestParameters={"service": "api"}),
    record(
        2,
        90,
        "GetSecretValue",
        SESSION,
        source="secretsmanager.amazonaws.com",
        resources=[{"ARN": f"arn:aws:secretsmanager:ap-northeast-1:{ACCOUNT}:secret:db-AbCdEf"}],
    ),
    record(
        3,
        150,
        "DeleteCluster",
        OPERATOR,
        errorCode="AccessDenied",
        errorMessage="not authorized",
        requestParameters={"cluster": "prod"},
    ),
    # hostile text in every field a person reads
    record(
        4,
        200,
        f"Describe{SCRIPT}",
        {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/x{IMG}"},
        requestParameters={"cluster": SCRIPT},
        errorCode=IMG,
        errorMessage=SCRIPT,
    ),
]


def ingest(srv: Running, records: list[dict[str, Any]]) -> None:
    reply = srv.client.post("/ingest/cloudtrail", content=orjson.dumps({"Records": records}))
    assert reply.status_code == 200 and reply.json()["stored"] == len(records), reply.text


def stratus() -> list[dict[str, Any]]:
    return [r for name in STRATUS for r in json.loads((TRAIL / name).read_text())]


@pytest.fixture(scope="module")
def estate_srv(tmp_path_factory: pytest.TempPathFactory, demo_snapshot: Any) -> Iterator[Running]:
    data_dir = tmp_path_factory.mktemp("audit")
    add_console_users(data_dir)
    save_into(data_dir, demo_snapshot)
    with running(data_dir) as server:
        ingest(server, OURS)
        ingest(server, stratus())
        yield server


@pytest.fixture(scope="module")
def viewer(estate_srv: Running) -> Iterator[Console]:
    console = log_in(estate_srv.url, "viewer")
    yield console
    console.client.close()


def twin(console: Console, **params: str) -> dict[str, Any]:
    return console.twin("audit", **params)


ALL_TIME = {"start": "2000-01-01T00:00:00Z"}


def test_last_day_newest_first_with_tiers(viewer: Console) -> None:
    data = twin(viewer)
    events = data["events"]
    assert [e["time"] for e in events] == [stamp(m) for m in (30, 90, 150, 200)]
    assert data["total"] == 4 and data["errors"] == 2 and data["snapshot"] == "demo.json.gz"
    first, session = events[0], events[1]
    assert first["principal"] == OPERATOR["arn"] and first["tier"] == "service-user (operator)"
    assert first["event_name"] == "UpdateService" and first["source_ip"] == "203.0.113.7"
    assert session["principal"] == SESSION["arn"]  # the session, shown as it was
    assert session["tier"] == "service-user (workload)"  # its role's tier
    assert session["resource"].endswith(":secret:db-AbCdEf")
    assert events[2]["error_code"] == "AccessDenied" and '"cluster":"prod"' in events[2]["resource"]
    assert events[3]["tier"] == "unknown"  # a user the snapshot does not know


def test_filters(viewer: Console) -> None:
    def names(**params: str) -> list[str]:
        return [e["event_name"] for e in twin(viewer, **params)["events"]]

    assert names(principal="TANAKA") == ["UpdateService", "DeleteCluster"]
    assert names(principal="api-task") == ["GetSecretValue"]
    assert names(action="update") == ["UpdateService"]  # a prefix, any case
    assert names(action="*Secret*") == ["GetSecretValue"]  # a glob
    assert names(action="secretsmanager:Get*") == ["GetSecretValue"]
    assert names(action="ecs:") == ["UpdateService", "DeleteCluster", f"Describe{SCRIPT}"]
    assert names(resource="db-abcdef") == ["GetSecretValue"]
    assert names(resource='"cluster":"prod"') == ["DeleteCluster"]
    assert names(errors="1") == ["DeleteCluster", f"Describe{SCRIPT}"]
    assert names(limit="1") == ["UpdateService"]
    assert names(since="1h") == ["UpdateService"]
    # the detonation logs are from 2024: only an explicit window reaches them
    old = twin(viewer, start="2024-01-01T00:00:00Z", end="2025-01-01T00:00:00Z")
    assert old["total"] == len(stratus()) and {e["tier"] for e in old["events"]} == {"unknown"}
    stop = twin(viewer, action="StopLogging", **ALL_TIME)["events"]
    assert len(stop) == 1 and stop[0]["principal"].endswith(":user/christophe")


def test_chart_and_top_lists(viewer: Console) -> None:
    data = twin(viewer)
    chart = data["chart"]
    assert data["window"]["bucket"] == "hour"
    assert sum(chart["events"]) == data["total"] and sum(chart["errors"]) == data["errors"]
    assert all(x % 3600 == 0 for x in chart["x"]) and chart["x"] == sorted(chart["x"])
    top = data["top_principals"][0]
    assert top == {"principal": OPERATOR["arn"], "tier": "service-user (operator)", "count": 2}
    assert {a["event_name"] for a in data["top_actions"]} == {e["eventName"] for e in OURS}
    everything = twin(viewer, **ALL_TIME)
    assert everything["window"]["bucket"] == "day"
    assert sum(everything["chart"]["events"]) == everything["total"] == 4 + len(stratus())


def test_bad_input_is_400(viewer: Console) -> None:
    for params, words in (
        ({"since": "yesterday"}, "cannot read the duration"),
        ({"start": "soon"}, "cannot read --start"),
        ({"start": "2026-01-02", "end": "2026-01-01"}, "is not before"),
        ({"since": "1h", "start": "2026-01-01"}, "cannot be combined"),
        ({"limit": "many"}, "whole number"),
        ({"limit": "0"}, "between 1 and"),
    ):
        reply = viewer.client.get("/audit.json", params=params)
        assert reply.status_code == 400 and words in reply.json()["error"], params


def test_hostile_record_renders_as_text(viewer: Console) -> None:
    html = viewer.client.get("/audit", params={"errors": "1"}).text
    body = html.split("<main>", 1)[1]
    assert SCRIPT not in body and "<img" not in body
    assert "Describe&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "x&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in body


def test_assumed_role_sessions_map_to_their_role() -> None:
    analysis = {
        "principals": [
            {"arn": f"arn:aws:iam::{ACCOUNT}:role/team/deploy", "type": "role", "tier": "t"},
            {"arn": f"arn:aws:iam::{ACCOUNT}:user/u", "type": "user", "tier": "u", "role": "ci"},
        ]
    }
    tier = tier_lookup(analysis)
    assert tier(f"arn:aws:sts::{ACCOUNT}:assumed-role/deploy/s1") == "t"  # the path dropped
    assert tier(f"arn:aws:iam::{ACCOUNT}:user/u") == "u (ci)"
    assert tier("arn:aws:sts::999999999999:assumed-role/deploy/s1") == "unknown"
    assert tier(None) == "unknown"
    assert tier_lookup(None)(f"arn:aws:iam::{ACCOUNT}:user/u") == "unknown"


def test_without_a_snapshot_tiers_are_unknown(serve: Callable[..., Any]) -> None:
    with serve() as srv:
        add_console_users(srv.service.data_dir)
        ingest(srv, OURS[:2])
        console = log_in(srv.url, "viewer")
        data = twin(console)
        assert data["snapshot"] is None and [e["tier"] for e in data["events"]] == ["unknown"] * 2
        assert "ecsguard inventory" in console.client.get("/audit").text
