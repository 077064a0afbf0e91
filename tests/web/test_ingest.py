"""The receiver routes against a real server: the public samples, gzip, and every error answer."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import orjson
import pytest
from tests.web.conftest import SAMPLES, TESTDATA, TOKEN, Running

from ecsguard.logs.wal import WalFullError

FIREHOSE_ID = "ed4a4d36-4f32-4d6d-8e4f-a5b8d2e55ed0"


def firehose_body(*payloads: bytes) -> bytes:
    """A Firehose HTTP endpoint delivery request; each record's data is base64."""
    records = [{"data": base64.b64encode(p).decode()} for p in payloads]
    return orjson.dumps({"requestId": FIREHOSE_ID, "timestamp": 1600110569039, "records": records})


def firehose_headers(key: str = TOKEN) -> dict[str, str]:
    return {
        "X-Amz-Firehose-Protocol-Version": "1.0",
        "X-Amz-Firehose-Request-Id": FIREHOSE_ID,
        "X-Amz-Firehose-Access-Key": key,
        "Content-Type": "application/json",
        "Authorization": "",  # Firehose sends only its access key
    }


def test_firelens_json_lines_sample_lands_with_its_metadata(srv: Running) -> None:
    body = (SAMPLES / "fluentbit-http-json_lines.constructed.jsonl").read_bytes()
    reply = srv.client.post(
        "/ingest/firelens", content=body, headers={"Content-Type": "application/x-ndjson"}
    )
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"stored": 2, "duplicates": 0, "problems": [], "problem_count": 0}
    rows = srv.query(
        "SELECT cluster, task_definition, account, region FROM logs "
        "WHERE source = 'firelens' AND time < '2020-01-01' ORDER BY cluster"
    )
    assert rows == [
        ["mycluster", "demo:7", "01234567891011", "us-east-2"],
        ["tf-ecs-fargate", "httpbin-fargate:10", "123456789", "us-east-1"],
    ]
    # a retry of the same body is acknowledged again but stored once
    again = srv.client.post("/ingest/firelens", content=body)
    assert again.json()["stored"] == 0 and again.json()["duplicates"] == 2


def test_firelens_service_comes_from_the_query(srv: Running) -> None:
    sample = (SAMPLES / "fluentbit-http-json_lines.constructed.jsonl").read_text().splitlines()
    records = [{**json.loads(line), "date": 1.4e9} for line in sample]  # not stored before
    body = "\n".join(json.dumps(r) for r in records).encode()
    reply = srv.client.post("/ingest/firelens?service=httpbin&cluster=ignored", content=body)
    assert reply.status_code == 200, reply.text
    rows = srv.query(
        "SELECT DISTINCT service, cluster FROM logs WHERE service = 'httpbin' ORDER BY cluster"
    )
    # the records' own cluster wins over the query's; the service they lack is filled in
    assert rows == [["httpbin", "mycluster"], ["httpbin", "tf-ecs-fargate"]]


def test_firelens_format_json_array_gzip(srv: Running) -> None:
    records = [
        json.loads((SAMPLES / name).read_text())
        for name in (
            "firelens-record-ec2-json-log.before-parse.json",
            "firelens-record-fargate.json",
        )
    ]
    body = gzip.compress(orjson.dumps(records))
    reply = srv.client.post(
        "/ingest/firelens",
        content=body,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["stored"] == 2
    rows = srv.query(
        "SELECT json_extract_string(fields, '$.requestInfo.user') FROM logs "
        "WHERE message LIKE '%b5d716fca19a4252ad90e7b8ec7cc8d2%' AND time > '2020-01-01'"
    )
    assert rows == [["TheDoctor"]]


def test_firelens_partly_bad_body_keeps_the_bad_line_as_text(srv: Running) -> None:
    body = b'{"log": "fine", "source": "stdout"}\n{"log": "partly bad\n'
    reply = srv.client.post("/ingest/firelens", content=body)
    assert reply.status_code == 200
    answer = reply.json()
    assert answer["stored"] == 2 and answer["problem_count"] == 1
    assert "record 2" in answer["problems"][0] and "not valid JSON" in answer["problems"][0]
    assert srv.query('SELECT fields FROM logs WHERE message = \'{"log": "partly bad\'') == [
        ['{"_unparsed":true}']
    ]


def test_firehose_cloudwatch_subscription_stores_data_drops_control(srv: Running) -> None:
    data = (SAMPLES / "cwl-subscription-data-message.gz").read_bytes()
    control = (SAMPLES / "cwl-subscription-control-message.gz").read_bytes()
    message = json.loads(gzip.decompress(data))
    reply = srv.client.post(
        "/ingest/firehose", content=firehose_body(data, control), headers=firehose_headers()
    )
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert set(answer) == {"requestId", "timestamp"} and answer["requestId"] == FIREHOSE_ID
    assert isinstance(answer["timestamp"], int) and answer["timestamp"] > 1_600_000_000_000
    assert reply.headers["content-type"] == "application/json"
    owner, group, stream = message["owner"], message["logGroup"], message["logStream"]
    rows = srv.query(
        f"SELECT account, stream, fields->>'$.\"@log\"' FROM logs WHERE stream = '{stream}'"
    )
    assert rows == [[owner, stream, f"{owner}:{group}"]] * len(message["logEvents"])
    assert srv.query("SELECT count(*) FROM logs WHERE message LIKE '%CONTROL MESSAGE%'") == [[0]]


def test_firehose_health_check_alone_is_accepted(srv: Running) -> None:
    control = (SAMPLES / "cwl-subscription-control-message.gz").read_bytes()
    reply = srv.client.post(
        "/ingest/firehose", content=firehose_body(control), headers=firehose_headers()
    )
    assert reply.status_code == 200 and "errorMessage" not in reply.json()


def test_firehose_gzip_request_and_errors_in_its_own_shape(srv: Running) -> None:
    data = (SAMPLES / "cwl-subscription-data-message.gz").read_bytes()
    zipped = gzip.compress(firehose_body(data))
    headers = {**firehose_headers(), "Content-Encoding": "gzip"}
    assert srv.client.post("/ingest/firehose", content=zipped, headers=headers).status_code == 200
    refused = srv.client.post(
        "/ingest/firehose", content=zipped, headers={**headers, "X-Amz-Firehose-Access-Key": "x"}
    )
    assert refused.status_code == 401
    answer = refused.json()
    assert answer["requestId"] == FIREHOSE_ID and "token is not valid" in answer["errorMessage"]
    bad = srv.client.post(
        "/ingest/firehose", content=firehose_body(b"\x1f\x8bnot gzip"), headers=firehose_headers()
    )
    assert bad.status_code == 400 and "invalid gzip" in bad.json()["errorMessage"]


def test_cloudwatch_route_reads_raw_gzip_and_lambda_envelope(srv: Running) -> None:
    message = (SAMPLES / "cwl-subscription-data-message.vector-fixture.json").read_bytes()
    raw = srv.client.post("/ingest/cloudwatch", content=gzip.compress(message))
    assert raw.status_code == 200
    assert raw.json()["stored"] == len(json.loads(message)["logEvents"])
    envelope = (SAMPLES / "cwl-subscription-lambda-event.json").read_bytes()
    lambda_event = srv.client.post("/ingest/cloudwatch", content=envelope).json()
    # the same three events as the Firehose test's: stored once, whichever test runs first
    assert lambda_event["stored"] + lambda_event["duplicates"] == 3


def test_cloudtrail_and_ecs_events_routes(srv: Running) -> None:
    trail = TESTDATA / "cloudtrail" / "stratus-red-team-detonation-logs"
    records = json.loads((trail / "aws.defense-evasion.cloudtrail-stop.json").read_text())
    body = gzip.compress(orjson.dumps({"Records": records}))
    reply = srv.client.post("/ingest/cloudtrail", content=body)
    assert reply.status_code == 200 and reply.json()["stored"] == len(records)
    event = (TESTDATA / "ecs-events" / "ecs-task-state-change-running.json").read_bytes()
    reply = srv.client.post("/ingest/ecs-events", content=event)
    assert reply.status_code == 200 and reply.json()["stored"] == 1
    assert srv.query("SELECT count(*) FROM cloudtrail WHERE event_name = 'StopLogging'") == [[1]]
    assert srv.query("SELECT detail_type FROM events") == [["ECS Task State Change"]]


def test_lines_take_metadata_from_the_query(srv: Running) -> None:
    reply = srv.client.post(
        "/ingest/lines",
        params={"service": "api", "cluster": "prod", "container": "web", "source": "curl"},
        content=b"2026-11-28T10:00:00Z ERROR boom\nsecond line\n",
    )
    assert reply.json()["stored"] == 2
    rows = srv.query(
        "SELECT cluster, service, container, source, level FROM logs WHERE source = 'curl'"
    )
    assert sorted(rows, key=str) == [
        ["prod", "api", "web", "curl", "ERROR"],
        ["prod", "api", "web", "curl", None],
    ]


def test_lines_join_stack_traces_when_asked(srv: Running) -> None:
    body = (
        b"2026-11-28T10:00:00Z ERROR request failed trace-join\n"
        b"java.lang.IllegalStateException: boom\n\tat com.example.Foo.bar(Foo.java:10)\n"
        b"2026-11-28T10:00:01Z INFO next trace-join\n"
    )
    joined = srv.client.post(
        "/ingest/lines", params={"multiline": "true", "source": "mj"}, content=body
    )
    assert joined.json()["stored"] == 2
    started = srv.client.post(
        "/ingest/lines",
        params={"multiline_start": r"\d{4}-", "source": "ms"},
        content=body,
    )
    assert started.json()["stored"] == 2
    rows = srv.query("SELECT source, message FROM logs WHERE source IN ('mj', 'ms') ORDER BY time")
    assert [r[1].count("\n") for r in rows] == [2, 2, 0, 0]
    refused = srv.client.post(
        "/ingest/lines", params={"multiline_start": "(?=x)"}, content=b"line\n"
    )
    assert refused.status_code == 400
    assert "invalid multiline start pattern" in refused.json()["error"]


def test_a_gzip_file_posted_to_lines_without_its_encoding_is_read(srv: Running) -> None:
    body = gzip.compress(b"2026-11-28T10:00:00Z WARN gz-sniffed first\nsecond gz-sniffed\n")
    reply = srv.client.post("/ingest/lines", params={"source": "gz-sniffed"}, content=body)
    assert reply.json()["stored"] == 2
    rows = srv.query("SELECT level, message FROM logs WHERE source = 'gz-sniffed' ORDER BY 2")
    assert rows == [
        ["WARN", "2026-11-28T10:00:00Z WARN gz-sniffed first"],
        [None, "second gz-sniffed"],
    ]


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["missing", "wrong", "not-bearer"],
)
def test_token_is_required(srv: Running, headers: dict[str, str]) -> None:
    before = srv.service.stats.records["logs"]
    for path in ("/ingest/lines", "/api/query?sql=select+1", "/api/stats", "/api/tail"):
        post = path.startswith("/ingest")
        reply = srv.client.request(
            "POST" if post else "GET",
            path,
            content=b"unauthorized\n" if post else None,
            headers={"Authorization": "", **headers},
        )
        assert reply.status_code == 401, path
        assert "token" in reply.json()["error"] and TOKEN not in reply.text
    assert srv.service.stats.records["logs"] == before
    assert srv.client.get("/healthz", headers={"Authorization": ""}).json() == {"status": "ok"}


def test_oversized_bodies_get_413(srv: Running) -> None:
    big = b"x" * (64 * 1024 + 1)
    declared = srv.client.post("/ingest/lines", content=big)
    assert declared.status_code == 413 and "65536" in declared.json()["error"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while reading
        for _ in range(20):
            yield b"y" * 4096

    streamed = srv.client.post("/ingest/lines", content=chunks())
    assert streamed.status_code == 413
    bomb = gzip.compress(b"z\n" * 100_000)  # 200 KB inflated from a few hundred bytes
    inflated = srv.client.post("/ingest/lines", content=bomb, headers={"Content-Encoding": "gzip"})
    assert len(bomb) < 2000 and inflated.status_code == 413
    assert "decompresses" in inflated.json()["error"]
    assert srv.query("SELECT count(*) FROM logs WHERE message IN ('x', 'y', 'z')") == [[0]]


def test_bad_bodies_get_400_naming_the_problem(srv: Running) -> None:
    not_gzip = srv.client.post(
        "/ingest/firelens", content=b"plain", headers={"Content-Encoding": "gzip"}
    )
    assert not_gzip.status_code == 400 and "invalid gzip body" in not_gzip.json()["error"]
    truncated = gzip.compress(b'{"log": "x"}\n' * 50)[:-12]
    cut = srv.client.post(
        "/ingest/firelens", content=truncated, headers={"Content-Encoding": "gzip"}
    )
    assert cut.status_code == 400 and "ends before" in cut.json()["error"]
    all_bad = srv.client.post("/ingest/cloudwatch", content=b'{"hello": 1}')
    assert all_bad.status_code == 400
    assert "not a known CloudWatch Logs envelope" in all_bad.json()["error"]
    trail = srv.client.post("/ingest/cloudtrail", content=b"[not json")
    assert trail.status_code == 400 and "not a CloudTrail file" in trail.json()["error"]
    brotli = srv.client.post("/ingest/lines", content=b"x", headers={"Content-Encoding": "br"})
    assert brotli.status_code == 415
    unknown = srv.client.post("/ingest/syslog", content=b"x")
    assert unknown.status_code == 404 and "firelens" in unknown.json()["error"]
    assert srv.query("SELECT count(*) FROM logs WHERE message IN ('x', 'plain')") == [[0]]


def test_full_disk_answers_503_with_retry_after(
    srv: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(table: str, batch: object) -> None:
        raise WalFullError("write-ahead log is full (No space left on device)", "free space")

    monkeypatch.setattr(srv.service.pipeline, "ingest", full)
    reply = srv.client.post("/ingest/lines", content=b"refused line\n")
    assert reply.status_code == 503
    assert reply.headers["retry-after"] == str(WalFullError.retry_after)
    assert "No space left" in reply.json()["error"]
    # a subscription message no other test sends, so de-duplication cannot answer for it
    message = json.loads((SAMPLES / "cwl-subscription-data-message.aws-doc.json").read_text())
    message["logEvents"] = [{"id": "1", "timestamp": 1700000000000, "message": "disk full"}]
    data = gzip.compress(orjson.dumps(message))
    hose = srv.client.post(
        "/ingest/firehose", content=firehose_body(data), headers=firehose_headers()
    )
    assert hose.status_code == 503 and "No space left" in hose.json()["errorMessage"]
    monkeypatch.undo()
    assert srv.query("SELECT count(*) FROM logs WHERE message = 'refused line'") == [[0]]
    # the sender's retry after space is freed is stored
    assert srv.client.post("/ingest/lines", content=b"refused line\n").json()["stored"] == 1


def test_no_token_needed_on_loopback_without_one(
    serve: Callable[..., AbstractContextManager[Running]],
) -> None:
    with serve() as open_server:
        reply = open_server.client.post("/ingest/lines", content=b"hello\n")
        assert reply.status_code == 200 and reply.json()["stored"] == 1
        # a page on another site reaching us through DNS rebinding carries its own Host
        rebound = open_server.client.get("/api/stats", headers={"Host": "attacker.example"})
        assert rebound.status_code == 400
