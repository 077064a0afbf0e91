from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.logs.request_id_promise import assert_request_id_promise

from ecsguard.logs.receivers import RECEIVERS
from ecsguard.logs.receivers.firelens import (
    _common_lines,
    cluster_name,
    parse,
    parse_records,
    records_of,
    task_definition,
    task_parts,
)
from ecsguard.logs.records import REQUEST_ID_KEYS, ReceiverOptions
from ecsguard.logs.schema import LOGS

SAMPLES = Path(__file__).parents[2].parent / "shared" / "testdata" / "logs" / "samples"
NOW = 1_800_000_000_000_000
OPTS = ReceiverOptions(input_name="POST /firelens", ingest_time_us=NOW)


def sample(name: str) -> bytes:
    if not SAMPLES.is_dir():
        pytest.skip(f"public test data not found at {SAMPLES}")
    return (SAMPLES / name).read_bytes()


def test_registered() -> None:
    assert RECEIVERS.get("firelens") is parse


def test_arn_helpers() -> None:
    assert cluster_name("arn:aws:ecs:us-east-1:123:cluster/tf-ecs") == "tf-ecs"
    assert cluster_name("mycluster") == "mycluster"
    assert task_definition("arn:aws:ecs:us-east-1:123:task-definition/web:7") == "web:7"
    assert task_parts("arn:aws:ecs:us-east-1:123:task/c1/abc") == ("abc", "c1", "123", "us-east-1")
    assert task_parts("arn:aws:ecs:us-east-1:123:task/abc") == ("abc", None, "123", "us-east-1")


def test_json_lines_body_from_the_samples() -> None:
    table, batch, problems, _ = parse(sample("fluentbit-http-json_lines.constructed.jsonl"), OPTS)
    assert table == "logs" and batch.schema == LOGS and problems == []
    ec2, fargate = batch.to_pylist()
    assert ec2["cluster"] == "mycluster"
    assert ec2["task"] == "3de392df-6bfa-470b-97ed-aa6f482cd7a6"
    assert ec2["task_definition"] == "demo:7"
    assert ec2["container"] == "ecs-demo-6-container2-a4eafbb3d4c7f1e16e00"
    assert ec2["stream"] == "stdout" and ec2["region"] == "us-east-2"
    assert ec2["time"].timestamp() == 1574646926.0
    fields = json.loads(ec2["fields"])
    assert fields["requestInfo"]["user"] == "TheDoctor"
    assert fields["ec2_instance_id"] == "i-06bc83dbc2ac2fdf8"
    assert fargate["cluster"] == "tf-ecs-fargate"
    assert fargate["task"] == "9355824e63ee43d49dfbd3b33edeed7e"
    assert fargate["task_definition"] == "httpbin-fargate:10"
    assert fargate["account"] == "123456789"
    assert fargate["message"].startswith("10.0.2.45 - - [25/Nov/2019")
    assert fargate["fields"] is None


def test_json_array_body_equals_json_lines() -> None:
    records = [
        json.loads(s)
        for s in [
            sample("firelens-record-fargate.json"),
            sample("firelens-record-ec2-json-log.before-parse.json"),
        ]
    ]
    as_array = parse(orjson.dumps(records), OPTS).batch
    as_lines = parse(b"\n".join(orjson.dumps(r) for r in records), OPTS).batch
    assert as_array.num_rows == 2
    assert as_array.drop_columns(["id"]).equals(as_lines.drop_columns(["id"]))
    # ids come from the body: two bodies, two sets (a resend is the same body)
    assert set(as_array.column("id").to_pylist()).isdisjoint(as_lines.column("id").to_pylist())


def test_before_and_after_parse_records_give_the_same_fields() -> None:
    before = parse(
        sample("firelens-record-ec2-json-log.before-parse.json"), OPTS
    ).batch.to_pylist()[0]
    after = parse(sample("firelens-record-ec2-json-log.after-parse.json"), OPTS).batch.to_pylist()[
        0
    ]
    assert json.loads(before["fields"]) == json.loads(after["fields"])
    assert before["time"].timestamp() * 1_000_000 == NOW  # no `date`: ingest time


def test_log_json_gives_level_message_and_time() -> None:
    log = json.dumps({"level": "error", "msg": "db down", "time": "2024-01-01T00:00:00Z"})
    body = orjson.dumps({"date": 1.0e9, "log": log, "source": "stderr", "container_name": "app"})
    row = parse(body, OPTS).batch.to_pylist()[0]
    assert (row["level"], row["message"], row["container"]) == ("ERROR", "db down", "app")
    assert row["time"].timestamp() == 1704067200


def test_malformed_line_kept_and_counted() -> None:
    body = sample("fluentbit-http-json_lines.constructed.jsonl") + b'\n{"log": "cut\n'
    _, batch, problems, _ = parse(body, OPTS)
    assert batch.num_rows == 3
    assert batch.column("fields").to_pylist()[2] == '{"_unparsed":true}'
    assert [p.kind for p in problems] == ["unparsed"]


def test_ids_stable_across_resends() -> None:
    body = sample("fluentbit-http-json_lines.constructed.jsonl")
    first = parse(body, OPTS).batch.column("id")
    again = parse(body, ReceiverOptions(ingest_time_us=NOW + 5)).batch.column("id")
    assert first.equals(again)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
firelens_keys = st.sampled_from(
    [
        "date",
        "log",
        "source",
        "ecs_cluster",
        "ecs_task_arn",
        "ecs_task_definition",
        "container_name",
    ]
)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.dictionaries(firelens_keys | st.text(max_size=6), json_values, max_size=8), max_size=5
    )
)
def test_arbitrary_objects_never_raise(records: list[dict[str, object]]) -> None:
    # stdlib json: it writes what orjson refuses (ints beyond 64 bits, infinities)
    body = "\n".join(json.dumps(r) for r in records).encode()
    batch = parse(body, OPTS).batch
    assert batch.num_rows == len(records) and batch.column("time").null_count == 0
    array = json.dumps(records).encode()
    _, batch, problems, _ = parse(array, OPTS)
    try:
        orjson.loads(array)
    except orjson.JSONDecodeError:  # the array as a whole is kept as one unparsed record
        assert batch.num_rows == 1 and problems[0].kind == "unparsed"
    else:
        assert batch.num_rows == len(records)


@settings(max_examples=200, deadline=None)
@given(st.binary())
def test_arbitrary_bytes_never_raise(body: bytes) -> None:
    parse(body, OPTS)


def test_common_and_odd_rows_in_one_body() -> None:
    # common rows go the bulk way, the others row by row; the batch keeps the body's order
    task = "arn:aws:ecs:us-east-1:123:task/c1/abc"
    records = [
        {"date": 1.7e9, "log": '{"level":"warn","msg":"slow","time":"2024-01-01T00:00:00.5Z"}',
         "ecs_task_arn": task, "source": "stdout"},
        {"date": 1.7e9, "log": "2024-01-01 ERROR boom", "ecs_task_arn": task, "source": "stderr"},
        {"date": "1700000000", "log": "écrit INFO", "extra": 1, "ecs_task_arn": task},
        {"date": 1.7e9, "log": '{"message":"WARN disk"}', "source": "stdout"},
        {"date": 1.7e9, "level": "error", "message": "parsed already"},
    ]  # fmt: skip
    body = b"\n".join(orjson.dumps(r) for r in records) + b"\n[1]"
    _, batch, problems, _ = parse(body, OPTS)
    rows = batch.to_pylist()
    assert [r["level"] for r in rows] == ["WARN", "ERROR", "INFO", "WARN", "ERROR", None]
    assert [r["message"] for r in rows] == [
        "slow", "2024-01-01 ERROR boom", "écrit INFO", "WARN disk", "parsed already", "[1]"
    ]  # fmt: skip
    assert rows[0]["time"].timestamp() == 1704067200.5
    assert all(r["time"].timestamp() == 1.7e9 for r in rows[1:5])
    assert [r["stream"] for r in rows[:3]] == ["stdout", "stderr", None]
    assert [r["task"] for r in rows] == ["abc", "abc", "abc", None, None, None]
    assert json.loads(rows[2]["fields"]) == {"extra": 1}
    assert [p.where for p in problems] == ["POST /firelens record 6"]
    assert len(set(batch.column("id").to_pylist())) == 6


def test_metadata_from_the_record_then_its_task_arn_then_the_options() -> None:
    arn = "arn:aws:ecs:eu-west-1:111:task/from-arn/t1"
    options = ReceiverOptions(
        ingest_time_us=NOW, cluster="opt-c", task="opt-t", account="opt-a", region="opt-r",
        task_definition="opt:1", container="opt-ctr", stream="opt-s",
    )  # fmt: skip
    records = [
        {"log": "a", "ecs_cluster": "arn:aws:ecs:eu-west-1:111:cluster/named", "ecs_task_arn": arn,
         "ecs_task_definition": "web:3", "container_name": "/app", "source": "stderr"},
        {"log": "b", "ecs_task_arn": arn},
        {"log": "c", "ecs_task_arn": "arn:aws:ecs:eu-west-1:111:task/old-format-id"},
        {"log": "d", "ecs_cluster": "", "container_name": "", "source": ""},
    ]  # fmt: skip
    for body in (b"\n".join(map(orjson.dumps, records)), orjson.dumps(records)):
        rows = parse(body, options).batch.to_pylist()
        columns = ("cluster", "task", "account", "region", "task_definition", "container", "stream")
        assert [tuple(row[c] for c in columns) for row in rows] == [
            ("named", "t1", "111", "eu-west-1", "web:3", "app", "stderr"),
            ("from-arn", "t1", "111", "eu-west-1", "opt:1", "opt-ctr", "opt-s"),
            ("opt-c", "old-format-id", "111", "eu-west-1", "opt:1", "opt-ctr", "opt-s"),
            ("opt-c", "opt-t", "opt-a", "opt-r", "opt:1", "opt-ctr", "opt-s"),
        ]


# -- the common-shape fast path (msgspec) against the general path (a dict per record) ----------

_log_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["abc", "", "ERROR", "info", "2024-05-01T10:00:00Z", "1714557600", "x\\y"]),
    st.text(max_size=6),
)
_LOG_KEYS = ["time", "timestamp", "ts", "level", "severity", "msg", "message", "log", "other"]
_log_keys = st.sampled_from([*_LOG_KEYS, *REQUEST_ID_KEYS])
_json_logs = st.dictionaries(_log_keys, _log_values | st.lists(_log_values, max_size=2), max_size=6)
_texts = st.sampled_from(
    ["2024-05-01T10:00:00Z ERROR boom", "WARN disk", "plain", "{not json", "{}", " {\"a\":1} ",
     "Traceback (most recent call last):", "écrit INFO", "", "[1,2]", "{\"a\":1} {\"b\":2}"]
) | st.text(max_size=12)  # fmt: skip
_logs = _texts | _json_logs.map(json.dumps) | _json_logs.map(lambda d: " " + json.dumps(d) + "\t")
_meta_values = st.none() | st.sampled_from(
    ["", "prod", "arn:aws:ecs:us-east-1:123:cluster/prod", "web:7", "/app", "stdout",
     "arn:aws:ecs:ap-northeast-1:123456789012:task/prod/abc", "arn:aws:ecs:r:1:task/old"]
)  # fmt: skip
_common_records = st.fixed_dictionaries(
    {"log": _logs},
    optional={
        "date": st.none() | st.floats(min_value=0, max_value=2e9) | st.integers(0, 2**64)
        | st.sampled_from(["1700000000", "2024-05-01T10:00:00Z", "soon"]),
        "source": _meta_values,
        "ecs_cluster": _meta_values,
        "ecs_task_arn": _meta_values,
        "ecs_task_definition": _meta_values,
        "container_name": _meta_values,
        "container_id": _meta_values,
    },
)  # fmt: skip


def _general(body: bytes) -> pa.RecordBatch:
    return parse_records(records_of(body.decode("utf-8", "replace")), OPTS, body).batch


@settings(max_examples=300, deadline=None)
@given(st.lists(_common_records, min_size=1, max_size=6), st.sampled_from(["\n", "\r\n", "\n\n"]))
def test_fast_path_gives_the_general_paths_batch(records: list[dict[str, Any]], sep: str) -> None:
    lines = sep.join(json.dumps(r) for r in records).encode()
    assert _common_lines(lines) is not None  # the fast path is what is tested
    assert parse(lines, OPTS).batch.equals(_general(lines))
    array = json.dumps(records).encode()
    assert parse(array, OPTS).batch.equals(_general(array))


@pytest.mark.parametrize(
    "body",
    [
        b'{"log":"a"} {"log":"b"}\n{"log":"c"}',  # two records on one line
        b'{"log":"a"},{"log":"b"\n"date":1}',  # a record across lines
        b'{"log":"a",\n"date":1}\n{"log":"b"}',  # across lines, each line a JSON value's part
        b'{"log":"a"}\n{"log":"b"}{"log":"c"}',  # two on the last line, newlines all between
        b'{"log":"a","date":[{}]}\n{"log":"b"}',  # a nested value
        b'{"log":"a"\n}',  # one pretty-printed record
        b'{"log":"a","extra":1}\n{"log":"b"}',  # a key FireLens does not write
        b'{"log":"\xff"}',  # not UTF-8
        b'[{"log":"a"},1]',
    ],
)
def test_bodies_outside_the_common_shape_take_the_general_path(body: bytes) -> None:
    assert parse(body, OPTS).batch.equals(_general(body))


@settings(max_examples=200, deadline=None)
@given(st.lists(_json_logs, min_size=1, max_size=8))
def test_request_id_index_agrees_with_duckdb(objects: list[dict[str, object]]) -> None:
    # the index's promise: a record whose key K DuckDB reads as the text x has request_id x or
    # null, so `request_id = x` never skips a record a JSON test would match
    body = "\n".join(json.dumps({"log": json.dumps(o)}) for o in objects).encode()
    assert_request_id_promise(parse(body, OPTS).batch)


@pytest.mark.parametrize(
    ("log", "indexed"),
    [
        ('{"request_id":"a","msg":"say \\"hi\\"\\n"}', "a"),  # escapes in values: indexed
        ('{"request_id":"a","request\\u005fid":"b"}', None),  # one key spelled twice: unknown
        ('{"request_id":"a","requestId":"a"}', "a"),
        ('{"request_id":"a","traceId":"b"}', None),
        ('{"request_id":"a","ctx":{"request_id":"b"}}', None),  # named twice: unknown
        ('{"msg":"no id"}', ""),
        ('{"request_id":7}', None),
    ],
)
def test_request_id_index_of_chosen_objects(log: str, indexed: str | None) -> None:
    body = orjson.dumps({"log": log})
    assert parse(body, OPTS).batch.column("request_id").to_pylist() == [indexed]
