from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecsguard.logs.receivers import RECEIVERS
from ecsguard.logs.receivers.cloudwatch import parse
from ecsguard.logs.records import ReceiverOptions
from ecsguard.logs.schema import LOGS

SAMPLES = Path(__file__).parents[2].parent / "shared" / "testdata" / "logs" / "samples"
OPTS = ReceiverOptions(input_name="POST /cwl", ingest_time_us=1_800_000_000_000_000)


def sample(name: str) -> bytes:
    if not SAMPLES.is_dir():
        pytest.skip(f"public test data not found at {SAMPLES}")
    return (SAMPLES / name).read_bytes()


def test_registered() -> None:
    assert RECEIVERS.get("cloudwatch") is parse


def _ids(data: bytes) -> list[str]:
    table, batch, problems, _ = parse(data, OPTS)
    assert table == "logs" and batch.schema == LOGS and problems == []
    return batch.column("id").to_pylist()


def test_every_envelope_gives_the_same_records() -> None:
    raw = sample("cwl-subscription-data-message.gz")
    b64 = base64.b64encode(raw).decode()
    firehose = orjson.dumps({"requestId": "r", "timestamp": 1, "records": [{"data": b64}]})
    shapes = [
        raw,
        sample("cwl-subscription-data-message.aws-doc.json"),
        sample("cwl-subscription-kinesis-record-data.b64.txt"),
        sample("cwl-subscription-lambda-event.json"),
        firehose,
        orjson.dumps({"Records": [{"kinesis": {"data": b64}}]}),
    ]
    expected = _ids(shapes[0])
    assert len(expected) == 3 and len(set(expected)) == 3
    for shape in shapes[1:]:
        assert _ids(shape) == expected


def test_data_message_columns() -> None:
    rows = parse(
        sample("cwl-subscription-data-message.vector-fixture.json"), OPTS
    ).batch.to_pylist()
    assert len(rows) == 2
    first = rows[0]
    assert first["account"] == "071959437513" and first["stream"] == "test"
    assert first["time"].timestamp() == 1600110569.039
    fields = json.loads(first["fields"])
    assert fields["@log"] == "071959437513:/jesse/test" and fields["status"] == 301


def test_awslogs_stream_name_gives_container_and_task() -> None:
    msg = {
        "messageType": "DATA_MESSAGE",
        "owner": "1",
        "logGroup": "/ecs/web",
        "logStream": "web/app/0123abcd",
        "logEvents": [{"id": "9", "timestamp": 1_704_067_200_000, "message": "ERROR x"}],
    }
    row = parse(gzip.compress(orjson.dumps(msg), mtime=0), OPTS).batch.to_pylist()[0]
    assert (row["container"], row["task"], row["level"]) == ("app", "0123abcd", "ERROR")


@pytest.mark.parametrize(
    "name", ["cwl-subscription-control-message.gz", "cwl-subscription-control-message.json"]
)
def test_control_message_dropped_and_counted(name: str) -> None:
    _, batch, problems, _ = parse(sample(name), OPTS)
    assert batch.num_rows == 0 and [p.kind for p in problems] == ["control_message"]


def test_firehose_with_data_and_control_records() -> None:
    records = [
        {"data": base64.b64encode(sample(n)).decode()}
        for n in ("cwl-subscription-data-message.gz", "cwl-subscription-control-message.gz")
    ]
    _, batch, problems, _ = parse(orjson.dumps({"requestId": "r", "records": records}), OPTS)
    assert batch.num_rows == 3 and [p.where for p in problems] == ["POST /cwl records[1]"]


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"\x1f\x8b\x08\x00garbage", "invalid_gzip"),
        (b"not base64 at all!", "invalid_base64"),
        (b'{"records": [{"data": "%%%"}]}', "invalid_base64"),
        (b'{"awslogs": {"data": 5}}', "invalid_base64"),
        (base64.b64encode(gzip.compress(b"{nope", mtime=0)), "invalid_json"),
        (b'{"hello": 1}', "bad_record"),
        (b"{", "invalid_json"),
    ],
)
def test_bad_payloads_are_problems(data: bytes, kind: str) -> None:
    _, batch, problems, _ = parse(data, OPTS)
    assert batch.num_rows == 0 and [p.kind for p in problems] == [kind]
    assert str(problems[0]).startswith("POST /cwl")


def test_concatenated_messages_in_one_record() -> None:
    data = sample("cwl-subscription-data-message.aws-doc.json")
    b64 = base64.b64encode(data + data).decode()
    _, batch, problems, _ = parse(orjson.dumps({"records": [{"data": b64}]}), OPTS)
    assert batch.num_rows == 6 and problems == []


@settings(max_examples=200, deadline=None)
@given(st.binary())
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    parse(data, OPTS)
    parse(gzip.compress(data, mtime=0), OPTS)
    parse(base64.b64encode(data), OPTS)
