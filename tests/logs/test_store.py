"""The Parquet store: layout, sorting, atomic files, compaction, retention."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecsguard.core.errors import UserError
from ecsguard.logs.schema import LOGS, METRICS, SORT_KEYS
from ecsguard.logs.store import LocalFS, Store, _sorted_order

UTC = dt.UTC


def logs(rows: list[tuple[dt.datetime, str, str, str]]) -> pa.Table:
    """Rows of (time, cluster, service, id)."""
    cols: dict[str, pa.Array] = {f.name: pa.nulls(len(rows), f.type) for f in LOGS}
    cols["time"] = pa.array([r[0] for r in rows], LOGS.field("time").type)
    cols["cluster"] = pa.array([r[1] for r in rows], pa.string())
    cols["service"] = pa.array([r[2] for r in rows], pa.string())
    cols["id"] = pa.array([r[3] for r in rows], pa.string())
    return pa.Table.from_pydict(cols, schema=LOGS)


def metrics(times: list[dt.datetime]) -> pa.Table:
    return pa.Table.from_pydict(
        {
            "time": times,
            "namespace": ["AWS/ECS"] * len(times),
            "name": ["CPUUtilization"] * len(times),
            "dimensions": ["{}"] * len(times),
            "value": [1.0] * len(times),
            "unit": ["Percent"] * len(times),
            "id": [f"m{i}" for i in range(len(times))],
        },
        schema=METRICS,
    )


T = dt.datetime(2024, 5, 1, 7, 59, tzinfo=UTC)


def test_partition_layout_and_sorted_rows(tmp_path: Path) -> None:
    store = Store(tmp_path)
    rows = [
        (T + dt.timedelta(minutes=2), "b", "web", "1"),  # 08:01, next hour
        (T, "b", "api", "2"),
        (T - dt.timedelta(minutes=1), "a", "web", "3"),
        (T - dt.timedelta(minutes=5), "b", "api", "4"),
        (
            dt.datetime(2024, 5, 1, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-9))),
            "a",
            "x",
            "5",
        ),  # 2024-05-02 08:30 UTC
    ]
    written = store.write("logs", logs(rows))
    assert sorted(p.rsplit("/", 1)[0] for p in written) == [
        "logs/dt=2024-05-01/hour=07",
        "logs/dt=2024-05-01/hour=08",
        "logs/dt=2024-05-02/hour=08",
    ]
    assert sorted(store.files("logs")) == sorted(written)
    hour7 = next(p for p in written if "hour=07" in p)
    data = store.read(hour7)
    assert data.column("id").to_pylist() == ["3", "4", "2"]  # (cluster, service, time)
    meta = pq.ParquetFile(tmp_path / "store" / hour7).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"
    assert "dt" not in data.column_names  # partition values live in the path only


def test_statistics_only_where_they_can_prune(tmp_path: Path) -> None:
    store = Store(tmp_path)
    table = logs([(T, "a", "web", "1"), (T, "b", "api", "2")])
    table = table.set_column(
        LOGS.get_field_index("request_id"), "request_id", pa.array(["r1", "r2"], pa.string())
    )
    [path] = store.write("logs", table)
    group = pq.ParquetFile(tmp_path / "store" / path).metadata.row_group(0)
    described = {
        group.column(i).path_in_schema
        for i in range(group.num_columns)
        if group.column(i).is_stats_set
    }
    assert {"time", "cluster", "service", "request_id"} <= described
    assert not described & {"id", "message", "fields"}  # free texts and ids: nothing to prune


def test_daily_partitions_for_other_tables(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.write("metrics", metrics([T, T + dt.timedelta(days=1)]).to_batches()[0])
    assert store.partitions("metrics") == ["dt=2024-05-01", "dt=2024-05-02"]


def test_file_names_are_unique_and_no_temp_files_remain(tmp_path: Path) -> None:
    store = Store(tmp_path)
    first = store.write("logs", logs([(T, "a", "s", "1")]))
    second = store.write("logs", logs([(T, "a", "s", "2")]))
    assert first != second and len(store.files("logs")) == 2
    assert not [p for p in (tmp_path / "store").rglob("*") if p.name.startswith(".")]


def test_empty_and_unknown(tmp_path: Path) -> None:
    store = Store(tmp_path)
    assert store.write("logs", logs([])) == []
    assert store.files("logs") == []
    with pytest.raises(UserError, match="unknown table"):
        store.files("nope")


def test_compaction_merges_into_one_sorted_file(tmp_path: Path) -> None:
    store = Store(tmp_path)
    for i, cluster in enumerate(["c", "a", "b"]):
        store.write("logs", logs([(T, cluster, "s", str(i))]))
    store.write("logs", logs([(T + dt.timedelta(hours=1), "z", "s", "other")]))
    new = store.compact("logs", "dt=2024-05-01/hour=07")
    assert new is not None
    part = [p for p in store.files("logs") if "hour=07" in p]
    assert part == [new]
    assert store.read(new).column("cluster").to_pylist() == ["a", "b", "c"]
    assert len(store.files("logs")) == 2  # the other partition is untouched
    assert store.compact("logs", "dt=2024-05-01/hour=07") is None  # nothing left to merge


HOUR7 = "dt=2024-05-01/hour=07"


def three_small_files(store: Store, tag: str = "") -> list[str]:
    for i in range(3):
        store.write("logs", logs([(T, "c", "s", f"{tag}{i}-{j}") for j in range(200)]))
    return store.live_files("logs")


def test_two_workers_compacting_one_store_keep_every_row_once(tmp_path: Path) -> None:
    # workers sharing a store (S3 at scale) compact the same partitions; before, both merged
    # the same files and every row was stored twice
    import threading

    one, two = Store(tmp_path), Store(tmp_path)
    for tag in "abc":
        three_small_files(one, tag)
    start = threading.Barrier(2)

    def compact(store: Store) -> None:
        start.wait()
        store.compact("logs", HOUR7)

    threads = [threading.Thread(target=compact, args=(s,)) for s in (one, two)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = [row for f in one.live_files("logs") for row in one.read(f).column("id").to_pylist()]
    assert len(rows) == len(set(rows)) == 9 * 200
    assert not [p for p in one.fs.list("logs") if p.endswith(".compacting")]


def test_a_compaction_gives_way_to_another_of_the_same_files(tmp_path: Path) -> None:
    store = Store(tmp_path)
    files = three_small_files(store)
    other = f"logs/{HOUR7}/c-{dt.datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-other.compacting"
    store.fs.write_atomic(other, b'["' + files[0].rsplit("/", 1)[1].encode() + b'"]')
    assert store.compact("logs", HOUR7) is None  # the other one has a file it would merge
    assert store.live_files("logs") == files
    assert [p for p in store.fs.list("logs") if p.endswith(".compacting")] == [other]


def test_a_crashed_compactions_intent_is_cleared_once_stale(tmp_path: Path) -> None:
    store = Store(tmp_path)
    files = three_small_files(store)
    crashed = f"logs/{HOUR7}/c-20240501T070000000000Z-crashed.compacting"
    store.fs.write_atomic(crashed, b'["' + files[0].rsplit("/", 1)[1].encode() + b'"]')
    assert store.compact("logs", HOUR7) is not None  # hours old, its merged file never came
    assert not [p for p in store.fs.list("logs") if p.endswith(".compacting")]
    assert len(store.live_files("logs")) == 1


def test_recovery_leaves_a_young_intent_whose_merged_file_is_not_written_yet(
    tmp_path: Path,
) -> None:
    """On a shared store another process may be compacting as this one starts: its intent
    keeps a third compaction off the files until it is done, or stale."""
    store = Store(tmp_path)
    files = three_small_files(store)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    live = f"logs/{HOUR7}/c-{stamp}-elsewhere.compacting"
    store.fs.write_atomic(live, json.dumps([f.rsplit("/", 1)[1] for f in files]).encode())
    crashed = f"logs/{HOUR7}/c-20240501T070000000000Z-crashed.compacting"
    store.fs.write_atomic(crashed, b'["' + files[0].rsplit("/", 1)[1].encode() + b'"]')
    store.recover()
    assert [p for p in store.fs.list("logs") if p.endswith(".compacting")] == [live]
    assert store.compact("logs", HOUR7) is None  # the live one has them
    assert store.live_files("logs") == files


def test_a_compaction_gives_way_when_its_files_went_meanwhile(tmp_path: Path) -> None:
    store = Store(tmp_path)
    files = three_small_files(store)
    write_atomic = store.fs.write_atomic

    def finished_elsewhere(path: str, data: bytes) -> None:
        write_atomic(path, data)
        if path.endswith(".compacting"):
            store.fs.delete(files[1])  # another worker merged it after we read it

    store.fs.write_atomic = finished_elsewhere  # type: ignore[method-assign]
    assert store.compact("logs", HOUR7) is None
    assert store.live_files("logs") == [files[0], files[2]]


def test_compaction_reads_rows_only_up_to_its_memory_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path)
    for i in range(5):
        store.write("logs", logs([(T, "a", "s", f"{i}-{j}") for j in range(100)]))
    one_file = store.read(store.files("logs")[0]).nbytes
    monkeypatch.setattr("ecsguard.logs.store.MAX_COMPACTION_MEMORY", 2 * one_file)
    first = store.compact("logs", "dt=2024-05-01/hour=07")
    assert first is not None and store.read(first).num_rows == 200  # two files, not five
    assert len(store.files("logs")) == 4
    while (merged := store.compact("logs", "dt=2024-05-01/hour=07")) is not None:
        assert store.read(merged).num_rows <= 200  # never more than the budget's worth
    ids = [i for path in store.files("logs") for i in store.read(path).column("id").to_pylist()]
    assert sorted(ids) == sorted(f"{i}-{j}" for i in range(5) for j in range(100))


def test_compaction_fills_the_request_id_index_of_files_written_before_it(tmp_path: Path) -> None:
    store = Store(tmp_path)
    for i, fields in enumerate(['{"request_id":"r-1","msg":"a"}', '{"msg":"b"}']):
        data = logs([(T, "a", "s", str(i))]).drop_columns(["request_id"])
        data = data.set_column(data.schema.get_field_index("fields"), "fields", pa.array([fields]))
        path = tmp_path / "store" / "logs" / "dt=2024-05-01" / "hour=07" / f"old-{i}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(data, path)  # a file from before the index column
    new = store.compact("logs", "dt=2024-05-01/hour=07")
    assert new is not None
    rows = store.read(new).select(["id", "request_id"]).to_pylist()
    assert sorted((r["id"], r["request_id"]) for r in rows) == [("0", "r-1"), ("1", "")]


def test_compaction_writes_sorted_rows_a_row_group_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ecsguard.logs.store.ROW_GROUP_ROWS", 2)
    store = Store(tmp_path)
    for clusters in (["e", "b"], ["d", "a", "c"]):
        store.write("logs", logs([(T, c, "s", c) for c in clusters]))
    new = store.compact("logs", "dt=2024-05-01/hour=07")
    assert new is not None
    assert store.read(new).column("cluster").to_pylist() == ["a", "b", "c", "d", "e"]
    assert pq.ParquetFile(tmp_path / "store" / new).metadata.num_row_groups == 3


def test_compaction_keeps_one_row_per_id(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.write("logs", logs([(T, "a", "s", "same")]))
    store.write("logs", logs([(T, "a", "s", "same"), (T, "b", "s", "other")]))
    new = store.compact("logs", "dt=2024-05-01/hour=07")
    assert new is not None
    assert sorted(store.read(new).column("id").to_pylist()) == ["other", "same"]


def test_named_writes_replace_and_recent_files(tmp_path: Path) -> None:
    store = Store(tmp_path)
    first = store.write("logs", logs([(T, "a", "s", "x")]), name="w-1")
    assert store.write("logs", logs([(T, "a", "s", "x")]), name="w-1") == first
    assert store.files("logs") == first
    assert store.recent_files("logs", 0) == first
    assert store.recent_files("logs", 4_000_000_000) == []
    assert store.read(first[0], ["id"]).column_names == ["id"]


def test_retention_deletes_whole_old_partitions(tmp_path: Path) -> None:
    store = Store(tmp_path)
    days = [dt.datetime(2024, 5, d, 12, tzinfo=UTC) for d in (1, 2, 3, 4)]
    store.write("logs", logs([(d, "a", "s", str(i)) for i, d in enumerate(days)]))
    now = dt.datetime(2024, 5, 4, 6, tzinfo=UTC)
    expired = store.retention("logs", days=2, now=now)  # keep 2024-05-02 06:00 onwards
    assert expired == ["dt=2024-05-01/hour=12"]
    assert store.partitions("logs") == [
        "dt=2024-05-02/hour=12",
        "dt=2024-05-03/hour=12",
        "dt=2024-05-04/hour=12",
    ]
    assert not (tmp_path / "store" / "logs" / "dt=2024-05-01").exists()


def test_localfs_interface(tmp_path: Path) -> None:
    fs = LocalFS(tmp_path)
    fs.write_atomic("a/b/c.bin", b"one")
    fs.write_atomic("a/b/c.bin", b"two")  # replaced whole
    assert fs.read("a/b/c.bin") == b"two"
    assert fs.list("a") == ["a/b/c.bin"]
    assert fs.list("missing") == []
    fs.delete("a/b/c.bin")
    assert fs.list("a") == [] and not (tmp_path / "a").exists()


@given(
    rows=st.lists(
        st.tuples(
            st.none() | st.sampled_from(["prod", "Prod", "stg", "", "é", "prod2"]),
            st.none() | st.text(max_size=3),
            st.none() | st.sampled_from(["web:1", "web:10", "web:2", "api:1"]),
            st.none() | st.integers(0, 5),
        ),
        max_size=40,
    ),
    chunks=st.integers(1, 3),
)
def test_file_order_is_the_plain_sort_of_the_keys(
    rows: list[tuple[str | None, str | None, str | None, int | None]], chunks: int
) -> None:
    """Sorting text keys by their rank among distinct values gives the order of sorting the texts
    themselves (nulls last, ties in row order), over a table of several chunks too."""
    columns = {
        "cluster": pa.array([r[0] for r in rows], pa.string()),
        "service": pa.array([r[1] for r in rows], pa.string()),
        "task_definition": pa.array([r[2] for r in rows], pa.string()),
        "time": pa.array([r[3] for r in rows], pa.timestamp("us", tz="UTC")),
    }
    one = pa.table(columns)
    size = max(1, len(rows) // chunks)
    table = pa.concat_tables([one.slice(i, size) for i in range(0, len(rows), size)] or [one])
    expected = pc.sort_indices(one, sort_keys=[(k, "ascending") for k in SORT_KEYS["logs"]])
    assert _sorted_order("logs", table).to_pylist() == expected.to_pylist()


def test_read_names_a_column_the_file_lacks(tmp_path: Path) -> None:
    """`read` decodes on the calling thread (read_parquet) and keeps read_table's answers: the
    columns asked for, in that order, and ArrowInvalid for one the file does not have (a file
    from before the table had ids, which start-up skips)."""
    store = Store(tmp_path)
    (path,) = store.write("logs", logs([(T, "a", "web", "1")]))
    assert store.read(path, ["service", "id"]).to_pylist() == [{"service": "web", "id": "1"}]
    assert store.read(path).column_names == pq.read_table(tmp_path / "store" / path).column_names
    with pytest.raises(pa.ArrowInvalid, match="has no column nope"):
        store.read(path, ["id", "nope"])
