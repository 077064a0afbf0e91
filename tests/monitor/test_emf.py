"""EMF documents into `metrics` rows: the receiver, the logs-batch extractor, and every fault."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.web.conftest import running

from ecsguard.logs.receivers import RECEIVERS
from ecsguard.logs.records import ReceiverOptions
from ecsguard.logs.service import LogService
from ecsguard.monitor.emf import EmfExtractor, _rows_with, metrics_from_logs

T_MS = 1_700_000_000_000
T_US = T_MS * 1000
OPTIONS = ReceiverOptions(input_name="POST /ingest/metrics", ingest_time_us=1_800_000_000_000_000)

# what aws-embedded-metrics (Node/Python) writes for an app: two dimension sets, an array value
APP = {
    "_aws": {
        "Timestamp": T_MS,
        "CloudWatchMetrics": [
            {
                "Namespace": "shop",
                "Dimensions": [["ServiceName"], ["ServiceName", "Route"]],
                "Metrics": [
                    {"Name": "Latency", "Unit": "Milliseconds", "StorageResolution": 60},
                    {"Name": "Orders", "Unit": "Count"},
                ],
            }
        ],
    },
    "ServiceName": "cart",
    "Route": "/buy",
    "Latency": [12, 15.5],
    "Orders": 3,
    "requestId": "a1b2",
}

# a Container Insights performance event for ECS as the agent writes it (EMF with `_aws`)
INSIGHTS_TASK = {
    "Version": "0",
    "Type": "Task",
    "TaskId": "7ac4dfba69214411b4783a3b8189c9ba",
    "TaskDefinitionFamily": "sleep360",
    "TaskDefinitionRevision": "1",
    "ClusterName": "MyCluster",
    "ServiceName": "sleep-svc",
    "Timestamp": T_MS,
    "CpuUtilized": 0.25,
    "CpuReserved": 256.0,
    "MemoryUtilized": 21,
    "MemoryReserved": 512,
    "_aws": {
        "Timestamp": T_MS,
        "CloudWatchMetrics": [
            {
                "Namespace": "ECS/ContainerInsights",
                "Dimensions": [
                    ["ClusterName"],
                    ["ClusterName", "ServiceName"],
                    ["ClusterName", "TaskDefinitionFamily"],
                ],
                "Metrics": [
                    {"Name": "CpuUtilized", "Unit": "None"},
                    {"Name": "MemoryUtilized", "Unit": "Megabytes"},
                ],
            }
        ],
    },
}

# the documented form of a container event, without `_aws`
INSIGHTS_CONTAINER = {
    "Version": "0",
    "Type": "Container",
    "ContainerName": "sleep",
    "TaskId": "7ac4dfba69214411b4783a3b8189c9ba",
    "TaskDefinitionFamily": "sleep360",
    "TaskDefinitionRevision": "1",
    "ContainerInstanceId": "0d7650e6dec34c1a9200f72098071e8f",
    "EC2InstanceId": "i-0c470579dbcdbd2f3",
    "ClusterName": "MyCluster",
    "Image": "busybox",
    "ContainerKnownStatus": "RUNNING",
    "Timestamp": T_MS,
    "CpuUtilized": 0.5,
    "MemoryUtilized": 8,
    "NetworkRxPackets": 14,
}


def rows(data: bytes) -> tuple[list[tuple[Any, ...]], list[str]]:
    parsed = RECEIVERS.get("emf")(data, OPTIONS)
    assert parsed.table == "metrics"
    table = parsed.batch.to_pydict()
    out = [
        (t, ns, n, json.loads(d), v, u)
        for t, ns, n, d, v, u in zip(
            [x.timestamp() * 1e6 for x in table["time"]],
            table["namespace"],
            table["name"],
            table["dimensions"],
            table["value"],
            table["unit"],
            strict=True,
        )
    ]
    return out, [str(p) for p in parsed.problems]


def test_app_document_one_row_per_metric_dimension_set_and_value() -> None:
    found, problems = rows(orjson.dumps(APP))
    assert problems == []
    one, two = {"ServiceName": "cart"}, {"ServiceName": "cart", "Route": "/buy"}
    assert sorted(found, key=str) == sorted(
        [
            (T_US, "shop", "Latency", one, 12.0, "Milliseconds"),
            (T_US, "shop", "Latency", one, 15.5, "Milliseconds"),
            (T_US, "shop", "Latency", two, 12.0, "Milliseconds"),
            (T_US, "shop", "Latency", two, 15.5, "Milliseconds"),
            (T_US, "shop", "Orders", one, 3.0, "Count"),
            (T_US, "shop", "Orders", two, 3.0, "Count"),
        ],
        key=str,
    )


def test_container_insights_events_with_and_without_aws() -> None:
    body = orjson.dumps(INSIGHTS_TASK) + b"\n" + orjson.dumps(INSIGHTS_CONTAINER) + b"\n"
    found, problems = rows(body)
    assert problems == []
    task = [r for r in found if r[3].get("TaskId") is None]
    assert len(task) == 6  # two metrics x three dimension sets
    assert (
        T_US,
        "ECS/ContainerInsights",
        "MemoryUtilized",
        {"ClusterName": "MyCluster", "TaskDefinitionFamily": "sleep360"},
        21.0,
        "Megabytes",
    ) in task
    container_dims = {
        "ClusterName": "MyCluster",
        "TaskDefinitionFamily": "sleep360",
        "TaskId": "7ac4dfba69214411b4783a3b8189c9ba",
        "ContainerName": "sleep",
    }
    assert sorted((r[2], r[4], r[5]) for r in found if r[3] == container_dims) == [
        ("CpuUtilized", 0.5, "None"),
        ("MemoryUtilized", 8.0, "Megabytes"),
        ("NetworkRxPackets", 14.0, None),
    ]


def test_json_array_body_is_read_like_ndjson() -> None:
    found, problems = rows(orjson.dumps([APP, INSIGHTS_CONTAINER]))
    assert problems == [] and len(found) == 9


def broken(**changes: Any) -> dict[str, Any]:
    doc = json.loads(json.dumps(APP))
    for path, value in changes.items():
        target = doc
        *parents, last = path.split("__")
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        key: Any = int(last) if isinstance(target, list) else last
        if value is None:
            del target[key]
        else:
            target[key] = value
    return doc


@pytest.mark.parametrize(
    ("doc", "expected_rows", "problem"),
    [
        ({"msg": "hello"}, 0, "no `_aws` member"),
        ([1], 0, "must be a JSON object"),
        (broken(_aws="x"), 0, "`_aws` must be an object"),
        (broken(_aws__CloudWatchMetrics={}), 0, "`_aws.CloudWatchMetrics` must be a list"),
        (broken(_aws__Timestamp="soon"), 6, "`_aws.Timestamp` is not epoch milliseconds"),
        (broken(_aws__CloudWatchMetrics__0__Namespace=7), 0, "`Namespace` must be"),
        (broken(_aws__CloudWatchMetrics__0__Metrics=None), 0, "must be lists"),
        # a missing dimension: that set is skipped, the other one stored
        (broken(Route=None), 3, "Dimensions[1] names 'Route', which is not a member"),
        (broken(Route=5), 3, "Dimensions[1] names 'Route', whose value is not a string"),
        (broken(Orders="three"), 4, "metric 'Orders': \"three\" is not a number"),
        (broken(Orders=None), 4, "metric 'Orders' is not a member"),
        (broken(Latency=[12, "x", True]), 4, "metric 'Latency' value 1: \"x\" is not a number"),
        (broken(_aws__CloudWatchMetrics__0__Metrics__0={"Unit": "Count"}), 2, "Metrics[0]"),
    ],
)
def test_malformed_emf_is_a_problem_and_the_rest_continues(
    doc: Any, expected_rows: int, problem: str
) -> None:
    body = orjson.dumps(doc) + b"\n{oops\n" + orjson.dumps(INSIGHTS_CONTAINER)
    found, problems = rows(body)
    assert len(found) == expected_rows + 3  # the good document after it is stored
    assert any(problem in p for p in problems), problems
    assert any("line 2: invalid JSON" in p for p in problems)
    assert all(p.startswith("POST /ingest/metrics line ") for p in problems)


def test_every_dimension_set_missing_stores_nothing_for_it() -> None:
    doc = broken(ServiceName=None)
    found, problems = rows(orjson.dumps(doc))
    assert found == []
    assert len(problems) == 2  # each set names what it lacks


def test_missing_timestamp_uses_the_ingest_time() -> None:
    found, _ = rows(orjson.dumps(broken(_aws__Timestamp=None)))
    assert {r[0] for r in found} == {OPTIONS.ingest_time_us}


# --------------------------------------------------------------------------- from log lines


def logs_batch(lines: list[str]) -> pa.RecordBatch:
    options = ReceiverOptions(input_name="app.log", ingest_time_us=T_US)
    parsed = RECEIVERS.get("lines")("\n".join(lines).encode(), options)
    assert parsed.batch.num_rows == len(lines)
    return parsed.batch


def test_extractor_finds_emf_among_log_lines_and_ignores_prose() -> None:
    batch = logs_batch(
        [
            '{"level": "info", "message": "GET /buy 200"}',
            json.dumps(APP),
            "the _aws key is documented in the EMF spec",  # prose: not EMF, not a problem
            json.dumps(INSIGHTS_CONTAINER),
            json.dumps(broken(Orders="three")),
        ]
    )
    parsed = metrics_from_logs(batch)
    assert parsed.batch.num_rows == 6 + 3 + 4
    assert len(parsed.problems) == 1 and "'Orders'" in str(parsed.problems[0])
    assert str(parsed.problems[0]).startswith("logs record ")


@given(
    texts=st.lists(st.none() | st.text(alphabet='_aws"Tye x', max_size=12), max_size=30),
    start=st.integers(0, 5),
    needle=st.sampled_from([b"_aws", b'"Type"']),
)
def test_rows_with_finds_every_row_holding_the_needle(
    texts: list[str | None], start: int, needle: bytes
) -> None:
    """Every row holding the needle is found, in a sliced array too; a row found without it
    holds the start of an occurrence that runs on into the next texts."""
    array = pa.array(["_aws", *texts], pa.string()).slice(min(start, len(texts)))
    values = array.to_pylist()
    (found,) = _rows_with(array, needle)
    word = needle.decode()
    assert {i for i, text in enumerate(values) if text and word in text} <= found
    for row in found:
        rest = "".join(text or "" for text in values[row:])
        assert word in rest[: len(values[row] or "") + len(word) - 1]


def test_extractor_reads_a_sliced_batch() -> None:
    batch = logs_batch(["plain text", json.dumps(APP), "more text", json.dumps(APP)])
    assert metrics_from_logs(batch.slice(2)).batch.num_rows == 6
    assert metrics_from_logs(batch.slice(0, 1)).batch.num_rows == 0


def test_extractor_skips_batches_without_emf_and_other_tables() -> None:
    stored: list[tuple[str, pa.RecordBatch]] = []

    def store(table: str, batch: pa.RecordBatch) -> int:
        stored.append((table, batch))
        return batch.num_rows

    extractor = EmfExtractor(store)
    extractor("logs", logs_batch(['{"message": "no metrics here"}', "plain text"]))
    extractor("metrics", RECEIVERS.get("emf")(orjson.dumps(APP), OPTIONS).batch)
    assert stored == []
    extractor("logs", logs_batch([json.dumps(APP)]))
    assert [(t, b.num_rows) for t, b in stored] == [("metrics", 6)] and extractor.stored == 6


def test_listener_on_a_real_service_stores_the_metrics(tmp_path: Path) -> None:
    service = LogService(tmp_path, flush_seconds=60)
    service.add_listener(EmfExtractor(service.store))
    service.start()
    try:
        options = ReceiverOptions(input_name="app.log")
        service.accept(RECEIVERS.get("lines")(orjson.dumps(APP), options))
        with service.connect() as db:
            count = db.execute("SELECT count(*), sum(value) FROM metrics WHERE namespace = 'shop'")
            assert count.fetchone() == (6, 2 * (12 + 15.5 + 3))
            logs = db.execute("SELECT count(*) FROM logs").fetchone()
            assert logs == (1,)  # the line itself stays a log record
    finally:
        service.stop()


def test_server_routes_emf_to_metrics_and_extracts_it_from_log_lines(tmp_path: Path) -> None:
    with running(tmp_path) as srv:
        line = dict(APP, ServiceName="from-logs")
        reply = srv.client.post("/ingest/lines", content=orjson.dumps(line))
        assert reply.status_code == 200 and reply.json()["stored"] == 1
        reply = srv.client.post("/ingest/metrics", content=orjson.dumps(INSIGHTS_CONTAINER))
        assert reply.json() == {"stored": 3, "duplicates": 0, "problems": [], "problem_count": 0}
        bad = srv.client.post("/ingest/metrics", content=b'{"no": "aws"}')
        assert bad.status_code == 400
        assert "document 1: no `_aws` member" in bad.json()["error"]
        rows = srv.query(
            "SELECT namespace, count(*) FROM metrics GROUP BY namespace ORDER BY namespace"
        )
    assert rows == [["ECS/ContainerInsights", 3], ["shop", 6]]
