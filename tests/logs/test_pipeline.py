"""The pipeline: ingest -> WAL -> flush -> Parquet, and the DuckDB views over both."""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ecsguard.core.errors import UserError
from ecsguard.logs.pipeline import Pipeline, segment_file_name
from ecsguard.logs.schema import LOGS, METRICS, TABLES

T = dt.datetime(2024, 5, 1, 7, 30, tzinfo=dt.UTC)


def logs(*ids: str | None, when: dt.datetime = T) -> pa.RecordBatch:
    cols: dict[str, pa.Array] = {f.name: pa.nulls(len(ids), f.type) for f in LOGS}
    cols["time"] = pa.array([when] * len(ids), LOGS.field("time").type)
    cols["cluster"] = pa.array(["prod"] * len(ids), pa.string())
    cols["message"] = pa.array([f"message {i}" for i in ids], pa.string())
    cols["id"] = pa.array(list(ids), pa.string())
    return pa.RecordBatch.from_pydict(cols, schema=LOGS)


def ids(pipeline: Pipeline) -> list[str]:
    rows = pipeline.connect().sql("SELECT id FROM logs ORDER BY id").fetchall()
    return [r[0] for r in rows]


def test_empty_store_has_typed_views(tmp_path: Path) -> None:
    con = Pipeline(tmp_path).connect()
    for table, schema in TABLES.items():
        assert con.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
        described = con.execute(f"DESCRIBE {table}").fetchall()
        assert [r[0] for r in described[: len(schema)]] == schema.names
        assert dict((r[0], r[1]) for r in described)["dt"] == "DATE"
    hour = [r[1] for r in con.execute("DESCRIBE logs").fetchall() if r[0] == "hour"]
    assert hour == ["INTEGER"]


def test_unflushed_records_are_queryable_then_flushed(tmp_path: Path) -> None:
    pipeline = Pipeline(tmp_path)
    pipeline.ingest("logs", logs("a", "b"))
    assert ids(pipeline) == ["a", "b"]  # straight from the WAL
    assert pipeline.flush()["logs"] == 2
    assert pipeline.wal.segments("logs") == []
    assert len(pipeline.store.files("logs")) == 1
    pipeline.ingest("logs", logs("c"))
    con = pipeline.connect()
    assert con.sql("SELECT id, dt, hour FROM logs ORDER BY id").fetchall() == [
        ("a", dt.date(2024, 5, 1), 7),
        ("b", dt.date(2024, 5, 1), 7),
        ("c", dt.date(2024, 5, 1), 7),
    ]
    # the partition columns prune like any column
    assert con.execute("SELECT count(*) FROM logs WHERE dt = DATE '2024-05-01'").fetchone() == (3,)


def test_missing_ids_are_assigned_before_the_acknowledgement(tmp_path: Path) -> None:
    pipeline = Pipeline(tmp_path)
    pipeline.ingest("logs", logs(None, None, "given"))
    got = ids(pipeline)
    assert len(set(got)) == 3 and "given" in got
    pipeline.flush()
    assert sorted(ids(pipeline)) == sorted(got)  # the same ids after the flush


def test_wrong_batch_is_a_user_error(tmp_path: Path) -> None:
    bad = pa.RecordBatch.from_pydict({"time": [T]})
    with pytest.raises(UserError, match="lacks columns"):
        Pipeline(tmp_path).ingest("logs", bad)


def _flush_without_delete(pipeline: Pipeline, table: str) -> None:
    """What a flush does up to a crash: the segment's Parquet written, the segment kept."""
    pipeline.wal.rotate(table)
    for segment in pipeline.wal.read_segments(table):
        data = pa.Table.from_batches(segment.batches)
        pipeline.store.write(table, data, name=segment_file_name(segment.path))


def test_crash_between_parquet_write_and_segment_delete(tmp_path: Path) -> None:
    pipeline = Pipeline(tmp_path)
    pipeline.ingest("logs", logs("a", "b"))
    _flush_without_delete(pipeline, "logs")
    assert ids(pipeline) == ["a", "b"]  # in Parquet and in the WAL, read once
    restarted = Pipeline(tmp_path)
    assert restarted.flush()["logs"] == 2  # the replay writes the same file again
    assert len(restarted.store.files("logs")) == 1
    assert restarted.wal.segments("logs") == []
    assert ids(restarted) == ["a", "b"]


def test_compaction_interrupted_at_any_step_shows_each_record_once(tmp_path: Path) -> None:
    pipeline = Pipeline(tmp_path)
    for name in ("a", "b", "c"):
        pipeline.ingest("logs", logs(name))
        pipeline.flush()
    store, partition = pipeline.store, "dt=2024-05-01/hour=07"
    old = store.files("logs")
    assert len(old) == 3
    real_delete = store.fs.delete
    deleted: list[str] = []

    def crash_after_first_delete(path: str) -> None:
        if deleted:
            raise KeyboardInterrupt  # the process dies here
        deleted.append(path)
        real_delete(path)

    store.fs.delete = crash_after_first_delete  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        store.compact("logs", partition)
    store.fs.delete = real_delete  # type: ignore[method-assign]
    assert len(store.files("logs")) == 3  # two old files and the merged one
    assert ids(pipeline) == ["a", "b", "c"]  # the intent hides the old files
    store.recover()
    assert ids(pipeline) == ["a", "b", "c"]
    assert len(store.files("logs")) == 1
    assert not [p for p in store.fs.list("logs") if not p.endswith(".parquet")]


def test_metrics_without_ids_do_not_duplicate(tmp_path: Path) -> None:
    pipeline = Pipeline(tmp_path)
    batch = pa.RecordBatch.from_pydict(
        {
            "time": [T],
            "namespace": ["ns"],
            "name": ["cpu"],
            "dimensions": ["{}"],
            "value": [1.5],
            "unit": ["Percent"],
            "id": [None],  # as log metric filters write them: the pipeline gives one
        },
        schema=METRICS,
    )
    pipeline.ingest("metrics", batch)
    _flush_without_delete(pipeline, "metrics")
    assert pipeline.connect().execute("SELECT count(*) FROM metrics").fetchone() == (1,)
    Pipeline(tmp_path).flush()
    assert pipeline.connect().execute("SELECT count(*) FROM metrics").fetchone() == (1,)


def test_flush_skips_a_segment_another_writer_holds(tmp_path: Path) -> None:
    writer = Pipeline(tmp_path)
    writer.ingest("logs", logs("live"))
    other = Pipeline(tmp_path)  # e.g. a second process flushing
    assert other.flush()["logs"] == 0
    assert ids(other) == ["live"]  # but it still sees the record
    writer.ingest("logs", logs("more"))  # and the writer goes on
    assert writer.flush()["logs"] == 2


CHILD = textwrap.dedent(
    """
    import datetime as dt, sys
    import pyarrow as pa
    from ecsguard.logs.pipeline import Pipeline
    from ecsguard.logs.schema import LOGS

    run = sys.argv[2]
    pipeline = Pipeline(sys.argv[1], segment_bytes=8192)
    now = dt.datetime(2024, 5, 1, 7, tzinfo=dt.UTC)
    i = 0
    while True:
        ids = [f"{run}-{i}-{k}" for k in range(3)]
        cols = {f.name: pa.nulls(3, f.type) for f in LOGS}
        cols["time"] = pa.array([now] * 3, LOGS.field("time").type)
        cols["id"] = pa.array(ids)
        pipeline.ingest("logs", pa.RecordBatch.from_pydict(cols, schema=LOGS))
        print(" ".join(ids), flush=True)  # acknowledged
        if i % 7 == 6:
            pipeline.flush()
        i += 1
    """
)


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_no_acknowledged_record(tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("ECSGUARD_TEST_SEED", time.time_ns())))
    src = Path(__file__).parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    acknowledged: list[str] = []
    for run in range(3):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(tmp_path), str(run)],
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        assert child.stdout is not None
        for _ in range(rng.randint(5, 80)):
            line = child.stdout.readline()
            if not line.endswith("\n"):
                break
            acknowledged.extend(line.split())
        time.sleep(rng.uniform(0, 0.05))  # land somewhere inside an append or a flush
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        rest = child.stdout.read()
        child.stdout.close()
        assert child.returncode == -signal.SIGKILL
        acknowledged.extend(_complete_lines(rest))
    assert len(acknowledged) >= 3 * 5 * 3
    pipeline = Pipeline(tmp_path)
    pipeline.flush()
    con = pipeline.connect()
    counts = dict(con.sql("SELECT id, count(*) FROM logs GROUP BY id").fetchall())
    missing = [i for i in set(acknowledged) if i not in counts]
    assert not missing
    assert set(counts.values()) == {1}
    assert pipeline.wal.segments("logs") == []


def _complete_lines(text: str) -> list[str]:
    lines = text.split("\n")
    return [i for line in lines[:-1] for i in line.split()]  # the last piece may be cut short


def test_data_written_before_a_column_was_added_still_reads(tmp_path: Path) -> None:
    old_logs = pa.schema([f for f in LOGS if f.name != "stream"])  # as if `stream` were new
    old = logs("a").select(old_logs.names)
    pipeline = Pipeline(tmp_path)
    pipeline.wal.append("logs", old)  # a segment an older version left behind
    assert ids(pipeline) == ["a"]
    pipeline.flush()
    older_file = tmp_path / "store" / "logs" / "dt=2024-05-01" / "hour=07" / "older.parquet"
    pq.write_table(pa.Table.from_batches([old]), older_file)  # a file an older version wrote
    pipeline.ingest("logs", logs("b"))
    pipeline.flush()
    con = pipeline.connect()
    assert con.sql("SELECT id, stream FROM logs ORDER BY id").fetchall() == [
        ("a", None),
        ("a", None),
        ("b", None),
    ]
    assert pipeline.store.compact("logs", "dt=2024-05-01/hour=07") is not None
