"""Metrics rows carry content-derived ids: a resent EMF body, a file ingested twice or a poll
that fetches again stores each datapoint once; equal datapoints at different places stay apart;
files written before the column existed still query."""

from __future__ import annotations

import datetime as dt
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.cli.test_errors import ecsguard
from tests.monitor.test_cloudwatch import put, service, session_for, snapshot_of
from tests.monitor.test_emf import APP, INSIGHTS_CONTAINER, OPTIONS, T_MS, logs_batch
from tests.web.conftest import running

from ecsguard.logs.pipeline import Pipeline
from ecsguard.logs.receivers import RECEIVERS
from ecsguard.logs.schema import METRICS
from ecsguard.logs.service import LogService
from ecsguard.monitor.cloudwatch import CloudWatchPoller, floor_time, state_path
from ecsguard.monitor.emf import metrics_from_logs
from ecsguard.monitor.rollups import connect_with_rollups

parse = RECEIVERS.get("emf")


def ids(body: bytes) -> list[str]:
    return parse(body, OPTIONS).batch.column("id").to_pylist()


def ndjson(*docs: dict[str, Any]) -> bytes:
    return b"\n".join(orjson.dumps(doc) for doc in docs)


def doc(value: float, minute: int = 0, **members: Any) -> dict[str, Any]:
    """One EMF document of one metric, `value` at T + `minute` minutes."""
    return {
        "_aws": {
            "Timestamp": T_MS + minute * 60_000,
            "CloudWatchMetrics": [
                {"Namespace": "shop", "Dimensions": [["ServiceName"]], "Metrics": [{"Name": "X"}]}
            ],
        },
        "ServiceName": "cart",
        "X": value,
        **members,
    }


def compact_all(data_dir: Path, table: str = "metrics") -> None:
    store = Pipeline(data_dir).store
    for partition in store.partitions(table):
        store.compact(table, partition)


# ------------------------------------------------------------------------------- the receiver


def test_ids_follow_content_and_place_not_the_ingest_time() -> None:
    first = ids(orjson.dumps(APP))
    assert len(first) == len(set(first)) == 6 and all(len(i) == 20 for i in first)
    later = OPTIONS.__class__(input_name="elsewhere", ingest_time_us=OPTIONS.ingest_time_us + 1)
    assert parse(orjson.dumps(APP), later).batch.column("id").to_pylist() == first
    # a changed datapoint is another one; the unchanged ones of the document keep their ids
    for changed, kept in (
        (dict(APP, Orders=4), 4),  # the Latency rows are the same datapoints
        (dict(APP, ServiceName="web"), 0),
        ({**APP, "_aws": {**APP["_aws"], "Timestamp": T_MS + 1}}, 0),
    ):
        assert len(set(ids(orjson.dumps(changed))) & set(first)) == kept
    # a document without a time of its own gets the ingest time, but not in its id
    untimed = {**APP, "_aws": {**APP["_aws"], "Timestamp": "soon"}}
    assert (
        ids(orjson.dumps(untimed))
        == parse(orjson.dumps(untimed), later).batch.column("id").to_pylist()
    )


def test_equal_datapoints_at_different_places_keep_apart() -> None:
    twice_in_a_value = ids(orjson.dumps(dict(APP, Latency=[12, 12])))
    assert len(set(twice_in_a_value)) == 6
    same_doc_twice = ids(ndjson(APP, APP))
    assert len(set(same_doc_twice)) == 12


def test_a_body_resent_with_documents_around_it_keeps_its_ids() -> None:
    """The agent resends its buffer: older documents may be dropped, new ones added."""
    a, b, c = doc(1.0), doc(2.0, 1), doc(3.0, 2)
    first = ids(ndjson(a, b))
    assert ids(ndjson(b, c))[:1] == first[1:]
    assert ids(ndjson(c, a, b))[1:] == first


documents = st.lists(
    st.builds(
        doc,
        st.sampled_from([0.0, 1.0, 2.5, -3.0]),
        st.integers(0, 2),
        ServiceName=st.sampled_from(["cart", "web"]),
    ),
    max_size=8,
)


@given(documents, documents, documents)
@settings(max_examples=60, deadline=None)
def test_property_ids_are_unique_and_stable_under_resends(
    before: list[dict[str, Any]], body: list[dict[str, Any]], after: list[dict[str, Any]]
) -> None:
    alone = ids(ndjson(*body)) if body else []
    assert len(alone) == len(set(alone)) == len(body)
    if body:
        around = ids(ndjson(*before, *body, *after))
        assert len(around) == len(set(around))
        assert set(alone) <= set(around), "a resent datapoint keeps its id"


# ------------------------------------------------------------------------------- the server


def test_a_resent_body_is_stored_once_by_a_running_server(tmp_path: Path) -> None:
    body = ndjson(APP, INSIGHTS_CONTAINER, APP)  # APP twice: equal content, both kept
    with running(tmp_path) as srv:
        first = srv.client.post("/ingest/metrics", content=body).json()
        assert (first["stored"], first["duplicates"]) == (6 + 3 + 6, 0)
        again = srv.client.post("/ingest/metrics", content=body).json()
        assert (again["stored"], again["duplicates"]) == (0, 15)
        # the agent's next round: the same documents first, a new one after them
        more = srv.client.post("/ingest/metrics", content=ndjson(APP, doc(7.0))).json()
        assert (more["stored"], more["duplicates"]) == (1, 6)
        rows = srv.query("SELECT count(*), count(DISTINCT id), sum(value) FROM metrics")
    once = sum(parse(body, OPTIONS).batch.column("value").to_pylist())
    assert rows == [[16, 16, once + 7.0]]


def test_metrics_of_a_resent_logs_batch_are_stored_once(tmp_path: Path) -> None:
    batch = logs_batch([orjson.dumps(APP).decode(), orjson.dumps(APP).decode()])
    derived = metrics_from_logs(batch).batch.column("id").to_pylist()
    assert len(set(derived)) == 12, "two logs rows: two sets of datapoints"
    assert metrics_from_logs(batch).batch.column("id").to_pylist() == derived
    service = LogService(tmp_path, flush_seconds=60)
    try:
        assert service.store("metrics", metrics_from_logs(batch).batch) == 12
        assert service.store("metrics", metrics_from_logs(batch).batch) == 0
    finally:
        service.stop()


# ---------------------------------------------------------------------------- file ingestion


def test_ingesting_a_file_twice_stores_it_once(tmp_path: Path) -> None:
    source = tmp_path / "metrics.ndjson"
    source.write_bytes(ndjson(APP, APP, INSIGHTS_CONTAINER))
    data = tmp_path / "data"
    run = ecsguard("ingest", str(source), "--format", "emf", "--data-dir", str(data))
    assert run.returncode == 0, run.stderr
    assert "stored 15 records in metrics" in run.stdout
    again = ecsguard("ingest", str(source), "--format", "emf", "--data-dir", str(data))
    assert again.returncode == 0, again.stderr
    assert "stored 0 records from" in again.stdout and "1 file unchanged" in again.stdout
    # read whole again, the datapoints' ids still recognise every one of them
    forced = ecsguard(
        "ingest", str(source), "--format", "emf", "--data-dir", str(data), "--from-start"
    )
    assert forced.returncode == 0, forced.stderr
    assert "stored 0 records in metrics" in forced.stdout
    assert "15 already stored (same ids), skipped" in forced.stdout
    query = "SELECT count(*), count(DISTINCT id) FROM metrics"
    assert Pipeline(data).connect().execute(query).fetchone() == (15, 15)


# ------------------------------------------------------------------------------- CloudWatch


def test_a_poll_repeated_after_a_lost_state_file_adds_no_datapoint(
    moto_server: Any, aws_env: Any, tmp_path: Path
) -> None:
    session = session_for(moto_server)
    cluster = f"c-{uuid.uuid4().hex[:8]}"
    dims = {"ClusterName": cluster, "ServiceName": "api"}
    end = floor_time(datetime.now(UTC), 60)
    minute = timedelta(minutes=1)
    put(
        session,
        "AWS/ECS",
        "CPUUtilization",
        dims,
        at=[(end - 3 * minute, 1.0), (end - minute, 2.0)],
    )
    snapshot = snapshot_of(service(cluster, "api"))
    first = CloudWatchPoller(session, tmp_path, since=timedelta(minutes=30)).poll(snapshot, now=end)
    assert first.stored == 2
    state_path(tmp_path).unlink()  # a crash after the rows were durable, before the state
    again = CloudWatchPoller(session, tmp_path, since=timedelta(minutes=30)).poll(snapshot, now=end)
    assert again.stored == 2
    query = "SELECT count(*), count(DISTINCT id) FROM metrics"
    assert Pipeline(tmp_path).connect().execute(query).fetchone() == (4, 2)
    compact_all(tmp_path)
    assert Pipeline(tmp_path).connect().execute(query).fetchone() == (2, 2)


# -------------------------------------------------------------------------- older files


def old_metrics_file(data_dir: Path, day: str, values: list[float]) -> Path:
    """A metrics Parquet file as written before the `id` column existed."""
    schema = pa.schema([f for f in METRICS if f.name != "id"])
    at = dt.datetime.fromisoformat(f"{day}T10:00:00+00:00")
    table = pa.table(
        {
            "time": [at + dt.timedelta(minutes=i) for i in range(len(values))],
            "namespace": ["AWS/ECS"] * len(values),
            "name": ["CPUUtilization"] * len(values),
            "dimensions": ['{"ClusterName":"prod"}'] * len(values),
            "value": values,
            "unit": ["Percent"] * len(values),
        },
        schema=schema,
    )
    path = data_dir / "store" / "metrics" / f"dt={day}" / "old.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(table, path)
    return path


def test_files_without_the_id_column_still_query_and_compact(tmp_path: Path) -> None:
    old_metrics_file(tmp_path, "2024-05-01", [1.0, 1.0, 2.0])  # equal rows: null ids, all kept
    pipeline = Pipeline(tmp_path)
    pipeline.ingest("metrics", parse(orjson.dumps(APP), OPTIONS).batch)
    query = "SELECT count(*), count(id), sum(value) FROM metrics"
    assert pipeline.connect().execute(query).fetchone() == (9, 6, 4.0 + 2 * (12 + 15.5 + 3))
    pipeline.flush()
    assert pipeline.connect().execute(query).fetchone() == (9, 6, 4.0 + 2 * (12 + 15.5 + 3))
    with connect_with_rollups(tmp_path) as con:
        assert con.execute("SELECT count(*) FROM metrics WHERE id IS NULL").fetchone() == (3,)
    compact_all(tmp_path)
    assert pipeline.connect().execute(query).fetchone() == (9, 6, 4.0 + 2 * (12 + 15.5 + 3))


def test_a_service_starts_over_a_recent_file_without_the_id_column(tmp_path: Path) -> None:
    old_metrics_file(tmp_path, "2024-05-01", [1.0])
    service = LogService(tmp_path, flush_seconds=60)
    try:
        with service.connect() as con:
            assert con.execute("SELECT count(*) FROM metrics").fetchone() == (1,)
    finally:
        service.stop()
