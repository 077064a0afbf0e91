"""Firehose-to-S3 pickup against the session's moto server: each object once, gzip layers undone,
state kept across runs, a missing bucket and a damaged object reported."""

from __future__ import annotations

import gzip
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from tests.cli.test_errors import assert_one_clear_error, ecsguard

from ecsguard.aws.session import AwsOptions, AwsSession
from ecsguard.core.errors import UserError
from ecsguard.demo.emulator import REGION, MotoServer
from ecsguard.logs.s3pickup import S3Pickup, parse_uri
from ecsguard.logs.service import LogService


@pytest.fixture
def service(tmp_path: Path) -> Iterator[LogService]:
    svc = LogService(tmp_path / "data")
    yield svc
    svc.stop()


@pytest.fixture
def s3(aws_env: MotoServer) -> tuple[AwsSession, str]:
    session = AwsSession(AwsOptions(regions=(REGION,), endpoint_url=aws_env.endpoint))
    bucket = f"firehose-{uuid.uuid4().hex[:10]}"
    session.client("s3").create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    return session, bucket


def put(session: AwsSession, bucket: str, key: str, body: bytes) -> None:
    session.client("s3").put_object(Bucket=bucket, Key=key, Body=body)


def cw_record(events: list[str], kind: str = "DATA_MESSAGE") -> bytes:
    doc = {
        "messageType": kind,
        "owner": "123456789012",
        "logGroup": "/ecs/api",
        "logStream": "ecs/api/t1",
        "logEvents": [
            {"id": f"{text}-id", "timestamp": 1_700_000_000_000, "message": text} for text in events
        ],
    }
    return gzip.compress(json.dumps(doc).encode())


def messages(service: LogService) -> list[str]:
    con = service.connect()
    try:
        return sorted(str(row[0]) for row in con.execute("SELECT message FROM logs").fetchall())
    finally:
        con.close()


def test_parse_uri() -> None:
    assert parse_uri("s3://b/fire/2024/") == ("b", "fire/2024/")
    assert parse_uri("s3://b") == ("b", "")
    with pytest.raises(UserError):
        parse_uri("https://b/x")


def test_cloudwatch_objects_once(s3: tuple[AwsSession, str], service: LogService) -> None:
    session, bucket = s3
    # Firehose concatenates the subscription's gzip records and may gzip the object again
    first = cw_record(["a1", "a2"]) + cw_record([], kind="CONTROL_MESSAGE")
    put(session, bucket, "cw/2024/05/01/10/stream-1-2024-05-01-10-00-00-x", first)
    put(session, bucket, "cw/2024/05/01/11/stream-1-x.gz", gzip.compress(cw_record(["b1"])))
    put(session, bucket, "other/2024/05/01/11/ignored", cw_record(["nope"]))
    pickup = S3Pickup(session, f"s3://{bucket}/cw/", "cloudwatch", service)
    summary = pickup.run_once()
    assert (summary.objects, summary.records) == (2, 3)
    assert [p.kind for p in summary.problems] == ["control_message"]
    assert messages(service) == ["a1", "a2", "b1"]
    pickup.close()

    # a later run (a new process) skips what is done and takes only the new object
    put(session, bucket, "cw/2024/05/01/12/stream-1-y", cw_record(["c1"]))
    again = S3Pickup(session, f"s3://{bucket}/cw/", "cloudwatch", service)
    summary = again.run_once()
    again.close()
    assert (summary.objects, summary.skipped) == (1, 2)
    assert messages(service) == ["a1", "a2", "b1", "c1"]


def test_lines_in_two_objects_are_distinct(s3: tuple[AwsSession, str], service: LogService) -> None:
    session, bucket = s3
    put(session, bucket, "raw/1", b"same line\n")
    put(session, bucket, "raw/2", gzip.compress(b"same line\n"))
    pickup = S3Pickup(session, f"s3://{bucket}/raw/", "lines", service)
    assert pickup.run_once().records == 2
    pickup.close()
    assert messages(service) == ["same line", "same line"]


def test_a_reread_object_is_not_stored_twice(
    s3: tuple[AwsSession, str], service: LogService
) -> None:
    """A crash after storing but before recording the key: the next run reads it again and the
    service's id de-duplication drops the copy."""
    session, bucket = s3
    put(session, bucket, "raw/a", b"one\ntwo\n")
    pickup = S3Pickup(session, f"s3://{bucket}/raw/", "lines", service)
    pickup.ingest_object("raw/a", "")
    pickup.done._db.execute("DELETE FROM done")
    pickup.done._db.commit()
    pickup.run_once()
    pickup.close()
    assert messages(service) == ["one", "two"]
    assert service.stats.duplicates == 2


def test_an_object_that_grew_stores_its_new_lines(
    s3: tuple[AwsSession, str], service: LogService
) -> None:
    """Read again (a crash before its key was recorded) after lines were appended: ids come from
    the object's name and the line's place, so the lines already stored are dropped one by one
    and the new ones are stored."""
    session, bucket = s3
    put(session, bucket, "raw/a", b"one\ntwo\n")
    pickup = S3Pickup(session, f"s3://{bucket}/raw/", "lines", service)
    pickup.run_once()
    put(session, bucket, "raw/a", b"one\ntwo\nthree\n")
    pickup.ingest_object("raw/a", "")
    pickup.close()
    assert sorted(messages(service)) == ["one", "three", "two"]
    assert service.stats.duplicates == 2


def test_damaged_gzip_is_a_problem_not_a_stop(
    s3: tuple[AwsSession, str], service: LogService
) -> None:
    session, bucket = s3
    put(session, bucket, "raw/bad.gz", b"\x1f\x8bnot gzip at all")
    put(session, bucket, "raw/good", b"fine\n")
    pickup = S3Pickup(session, f"s3://{bucket}/raw/", "lines", service)
    summary = pickup.run_once()
    pickup.close()
    assert summary.records == 1
    assert [p.kind for p in summary.problems] == ["invalid_gzip"]


def test_missing_bucket(aws_env: MotoServer, service: LogService) -> None:
    session = AwsSession(AwsOptions(regions=(REGION,), endpoint_url=aws_env.endpoint))
    pickup = S3Pickup(session, "s3://no-such-bucket-ecsguard/x/", "lines", service)
    with pytest.raises(UserError) as err:
        pickup.run_once()
    pickup.close()
    assert "no-such-bucket-ecsguard" in err.value.problem


def test_follow_picks_up_new_objects(s3: tuple[AwsSession, str], service: LogService) -> None:
    session, bucket = s3
    pickup = S3Pickup(session, f"s3://{bucket}/f/", "lines", service)
    stop = threading.Event()
    seen: list[int] = []

    def report(summary: object) -> None:
        seen.append(pickup.summary.records)
        if pickup.summary.records >= 2:
            stop.set()

    thread = threading.Thread(target=pickup.follow, args=(0.1, stop, report))
    thread.start()
    put(session, bucket, "f/1", b"x\n")
    put(session, bucket, "f/2", b"y\n")
    thread.join(20)
    assert not thread.is_alive()
    pickup.close()
    assert seen[-1] == 2
    assert boto3  # the fixture's moto server is the only AWS these tests reach


def test_cli_ingest_from_s3(s3: tuple[AwsSession, str], tmp_path: Path) -> None:
    session, bucket = s3
    put(session, bucket, "fh/2024/05/01/10/a", cw_record(["one", "two"]))
    endpoint = session.options.endpoint_url or ""
    args = ("--region", REGION, "--endpoint-url", endpoint, "--data-dir", str(tmp_path / "d"))
    uri = f"s3://{bucket}/fh/"
    first = ecsguard("ingest", "--from-s3", uri, "--format", "cloudwatch", *args)
    assert first.returncode == 0, first.stderr
    assert "stored 2 records in logs from 1 objects" in first.stdout
    again = ecsguard("ingest", "--from-s3", uri, "--format", "cloudwatch", *args)
    assert "stored 0 records in logs from 0 objects" in again.stdout
    assert "1 done before" in again.stdout
    query = ecsguard(
        "logs",
        "query",
        "--sql",
        "SELECT count(*) AS n FROM logs",
        "--output",
        "json",
        "--data-dir",
        str(tmp_path / "d"),
    )
    assert json.loads(query.stdout) == [{"n": 2}]

    missing = ecsguard("ingest", "--from-s3", "s3://no-such-bucket-ecsguard/x", *args)
    assert_one_clear_error(missing, "no-such-bucket-ecsguard", "does not exist")
    both = ecsguard("ingest", "file.log", "--from-s3", uri, *args)
    assert_one_clear_error(both, "not both")
