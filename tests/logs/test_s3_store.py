"""The Parquet store on S3 (a real moto server): the same tree as on disk, queries read the
objects directly, compaction and retention work there, and every S3 failure is a clear error
that loses nothing acknowledged."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest
from tests.logs.s3util import keys, new_bucket, s3_error

from ecsguard.aws.s3store import S3FS, parse_url
from ecsguard.core.errors import UserError
from ecsguard.demo.emulator import MotoServer
from ecsguard.logs.schema import LOGS
from ecsguard.logs.service import LogService
from ecsguard.logs.store import LocalFS, StoreError, StoreLocation, open_fs

T0 = dt.datetime(2026, 3, 1, 10, 30, tzinfo=dt.UTC)


def batch(start: int, count: int, when: dt.datetime = T0) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist(
        [
            {
                "time": when + dt.timedelta(seconds=i),
                "cluster": "prod",
                "service": f"svc{i % 3}",
                "level": "ERROR" if i % 4 == 0 else "INFO",
                "message": f"line {i}",
                "fields": f'{{"latency_ms": {i}}}',
                "id": f"id-{i}",
            }
            for i in range(start, start + count)
        ],
        schema=LOGS,
    )


def rows(service: LogService) -> list[tuple[str, str]]:
    con = service.connect()
    try:
        return con.sql("SELECT id, message FROM logs ORDER BY id").fetchall()
    finally:
        con.close()


@pytest.fixture
def bucket(aws_env: MotoServer) -> str:
    return new_bucket(aws_env)


def location(bucket: str, prefix: str = "ecs/prod", **extra: int) -> StoreLocation:
    return StoreLocation(url=f"s3://{bucket}/{prefix}", **extra)  # type: ignore[arg-type]


def test_url_forms() -> None:
    assert parse_url("s3://bkt") == ("bkt", "")
    assert parse_url("s3://bkt/a/b/") == ("bkt", "a/b/")
    with pytest.raises(UserError, match="s3://bucket"):
        parse_url("s3:///prefix")
    with pytest.raises(UserError, match="unknown store"):
        open_fs(Path("."), StoreLocation(url="gs://bkt/x"))
    assert isinstance(open_fs(Path("d")), LocalFS)


def test_round_trip_same_layout_as_local(bucket: str, aws_env: MotoServer, tmp_path: Path) -> None:
    s3_service = LogService(tmp_path / "s3", store=location(bucket))
    local_service = LogService(tmp_path / "local")
    for service in (s3_service, local_service):
        assert service.store("logs", batch(0, 40)) == 40
        service.flush_once()
        assert service.stats.flush_errors == 0
    # the WAL stays on local disk; the Parquet files are in the bucket, under the prefix
    assert (tmp_path / "s3" / "wal").is_dir()
    assert not (tmp_path / "s3" / "store").exists()
    s3_keys = keys(aws_env, bucket)
    local_files = sorted(
        p.relative_to(tmp_path / "local" / "store").as_posix()
        for p in (tmp_path / "local" / "store").rglob("*.parquet")
    )
    # same partition paths; file names are unique per WAL segment, so they differ
    assert [k.removeprefix("ecs/prod/").rsplit("/", 1)[0] for k in s3_keys] == [
        f.rsplit("/", 1)[0] for f in local_files
    ]
    assert s3_keys[0].startswith("ecs/prod/logs/dt=2026-03-01/hour=10/w-")
    # DuckDB reads the objects, with the Hive partition columns
    assert rows(s3_service) == rows(local_service)
    assert len(rows(s3_service)) == 40
    con = s3_service.connect()
    assert con.sql("SELECT DISTINCT dt, hour FROM logs").fetchall() == [(T0.date(), 10)]
    assert con.sql(
        "SELECT service, count(*), sum(CAST(json_extract_string(fields, '$.latency_ms') AS INT)) "
        "FROM logs GROUP BY 1 ORDER BY 1"
    ).fetchall() == [(f"svc{k}", len(range(k, 40, 3)), sum(range(k, 40, 3))) for k in range(3)]
    s3_service.stop()
    local_service.stop()


def test_a_new_process_sees_the_store_and_dedups_retries(bucket: str, tmp_path: Path) -> None:
    first = LogService(tmp_path / "a", store=location(bucket))
    first.store("logs", batch(0, 10))
    first.stop()
    # another machine (its own WAL) with the same store: a client's retry is still recognised
    second = LogService(tmp_path / "b", store=location(bucket))
    assert second.store("logs", batch(5, 10)) == 5
    second.flush_once()
    assert [r[0] for r in rows(second)] == sorted(f"id-{i}" for i in range(15))
    second.stop()


def test_compaction_and_retention_on_s3(bucket: str, aws_env: MotoServer, tmp_path: Path) -> None:
    service = LogService(tmp_path, store=location(bucket), retention_days={"logs": 7})
    old = T0 - dt.timedelta(days=30)
    service.store("logs", batch(100, 5, old))
    service.flush_once()
    for start in (0, 10, 20):  # three flushes: three small files in one partition
        service.store("logs", batch(start, 10))
        service.flush_once()
    partition = "ecs/prod/logs/dt=2026-03-01/hour=10/"
    assert len([k for k in keys(aws_env, bucket) if k.startswith(partition)]) == 3
    service.maintain(now=T0 + dt.timedelta(hours=1))
    remaining = keys(aws_env, bucket)
    assert [k.rsplit("/", 1)[0] + "/" for k in remaining] == [partition]  # old day expired
    assert remaining[0].rsplit("/", 1)[1].startswith("c-")  # one merged file, no intent left
    assert [r[0] for r in rows(service)] == sorted(f"id-{i}" for i in range(30))
    service.stop()


def test_missing_bucket_is_a_clear_error(aws_env: MotoServer, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="bucket 'ecsguard-no-such-bucket' of the store does not"):
        LogService(tmp_path, store=location("ecsguard-no-such-bucket"))
    fs = S3FS.from_location(location("ecsguard-no-such-bucket"))
    with pytest.raises(StoreError) as caught:
        fs.check()
    assert "aws s3 mb s3://ecsguard-no-such-bucket" in caught.value.hint


@pytest.mark.parametrize(
    ("code", "status"),
    [("InvalidAccessKeyId", 403), ("SignatureDoesNotMatch", 403), ("AccessDenied", 403)],
)
def test_refused_credentials_are_a_clear_error(bucket: str, code: str, status: int) -> None:
    fs = S3FS.from_location(location(bucket))
    s3_error(fs.client, code, status)
    with pytest.raises(StoreError) as caught:
        fs.list("logs")
    assert f"S3 refused to list objects in bucket {bucket!r}: {code}" in caught.value.problem
    assert "s3:PutObject" in caught.value.hint


def test_throttling_is_retried_with_backoff(bucket: str, tmp_path: Path) -> None:
    service = LogService(tmp_path, store=location(bucket))
    fs = service.pipeline.store.fs
    assert isinstance(fs, S3FS)
    slow = s3_error(fs.client, "SlowDown", 503, "PutObject", times=2)
    service.store("logs", batch(0, 10))
    service.flush_once()
    assert slow == {"sent": 2, "all": 3}  # two refused attempts, the third stored it
    assert service.stats.flush_errors == 0
    assert len(rows(service)) == 10
    service.stop()


def test_a_failed_flush_keeps_the_wal_and_the_retry_stores_everything(
    bucket: str, tmp_path: Path
) -> None:
    service = LogService(tmp_path, store=location(bucket, max_attempts=1))  # 1 retry
    fs = service.pipeline.store.fs
    assert isinstance(fs, S3FS)
    throttled = s3_error(fs.client, "SlowDown", 503, "PutObject", times=2)
    assert service.store("logs", batch(0, 25)) == 25  # acknowledged: in the WAL
    service.flush_once()  # both attempts throttled: the flush fails, the segment stays
    assert throttled["sent"] == 2
    assert service.stats.flush_errors == 1
    segments = list((tmp_path / "wal").rglob("*.wal*"))
    assert segments, "the WAL segment must survive a failed flush"
    assert len(rows(service)) == 25  # still answered, from the WAL
    s3_error(fs.client, "SlowDown", 503, "PutObject", times=2)
    with pytest.raises(StoreError, match="throttling bucket") as caught:
        service.pipeline.store.write("logs", batch(0, 1))  # what the flush met, as an error
    assert "nothing acknowledged is lost" in caught.value.hint
    service.flush_once()  # S3 recovered: flushed now
    assert service.stats.flush_errors == 1
    assert service.stats.flushed["logs"] == 25
    assert not list((tmp_path / "wal").rglob("*.wal*"))
    service.stop()
    reopened = LogService(tmp_path / "other", store=location(bucket))
    assert [r[0] for r in rows(reopened)] == sorted(f"id-{i}" for i in range(25))
    reopened.stop()


def test_listing_pages_through_many_objects(bucket: str) -> None:
    fs = S3FS.from_location(location(bucket, "many"))
    fs.page_size = 2  # S3 pages at 1,000 keys: the same paging, on fewer objects
    requests = s3_error(fs.client, "unused", 500, "ListObjectsV2", times=0)
    for i in range(5):
        fs.write_atomic(f"logs/dt=2026-03-01/hour=10/f{i:04}.parquet", b"x")
    fs.write_atomic("logs/dt=2026-03-01/hour=10/.hidden", b"x")
    fs.write_atomic("logsx/dt=2026-03-01/f.parquet", b"x")  # another prefix, not listed
    found = fs.list("logs")
    assert requests["all"] == 3
    assert len(found) == 5
    assert found[0] == "logs/dt=2026-03-01/hour=10/f0000.parquet"
    assert fs.size(found[-1]) == 1
    fs.delete(found[0])
    assert len(fs.list("logs/")) == 4
    with pytest.raises(FileNotFoundError):
        fs.read(found[0])
