"""`ecsguard metrics poll` and `metrics query` end to end, and the series read behind `query`."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from tests.cli.test_errors import assert_one_clear_error, ecsguard
from tests.monitor.test_cloudwatch import MINUTE, put, service, session_for, snapshot_of

from ecsguard.aws import snapshot as snapshots
from ecsguard.core.errors import UserError
from ecsguard.logs.pipeline import Pipeline
from ecsguard.logs.query.timerange import TimeRange
from ecsguard.logs.schema import METRICS
from ecsguard.monitor.cloudwatch import floor_time
from ecsguard.monitor.series import parse_dimensions, series

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def ingest(data_dir: Path, rows: list[tuple[datetime, str, float]]) -> None:
    pipeline = Pipeline(data_dir)
    batch = pa.RecordBatch.from_pydict(
        {
            "time": [r[0] for r in rows],
            "namespace": ["AWS/ECS"] * len(rows),
            "name": ["CPUUtilization"] * len(rows),
            "dimensions": [r[1] for r in rows],
            "value": [r[2] for r in rows],
            "unit": ["Percent"] * len(rows),
            "id": [None] * len(rows),  # the pipeline gives each row one
        },
        schema=METRICS,
    )
    pipeline.ingest("metrics", batch)
    pipeline.close()


def test_series_per_period_and_dimension_subset(tmp_path: Path) -> None:
    api = '{"ClusterName":"prod","ServiceName":"api"}'
    web = '{"ClusterName":"prod","ServiceName":"web"}'
    ingest(
        tmp_path,
        [(T0 + timedelta(minutes=m), api, float(m)) for m in range(10)]
        + [(T0, web, 50.0), (T0 + timedelta(hours=2), api, 1000.0)],
    )
    pipeline = Pipeline(tmp_path)
    con = pipeline.connect()
    window = TimeRange(T0, T0 + timedelta(hours=1))
    common = {"namespace": "AWS/ECS", "name": "CPUUtilization", "window": window}
    points = series(
        con, dimensions={"ServiceName": "api"}, stat="max", period_seconds=300, **common
    )
    assert [(p.time, p.value, p.samples) for p in points] == [
        (T0, 4.0, 5),
        (T0 + timedelta(minutes=5), 9.0, 5),
    ], "5-minute buckets, web and the point outside the window left out"
    points = series(
        con, dimensions={"ClusterName": "prod"}, stat="p95", period_seconds=3600, **common
    )
    assert [(p.dimensions, round(p.value, 2)) for p in points] == [(api, 8.55), (web, 50.0)]
    with pytest.raises(UserError, match="unknown statistic"):
        series(con, dimensions={}, stat="median", period_seconds=60, **common)
    pipeline.close()


def test_bad_dimension_is_named() -> None:
    assert parse_dimensions(["ServiceName=a=b"]) == {"ServiceName": "a=b"}
    with pytest.raises(UserError, match="cannot read the dimension 'ServiceName'"):
        parse_dimensions(["ServiceName"])


def test_poll_then_query_through_the_cli(moto_server: Any, aws_env: Any, tmp_path: Path) -> None:
    session = session_for(moto_server)
    cluster = f"c-{uuid.uuid4().hex[:8]}"
    end = floor_time(datetime.now(UTC), 60)
    dims = {"ClusterName": cluster, "ServiceName": "api"}
    put(
        session,
        "AWS/ECS",
        "CPUUtilization",
        dims,
        at=[(end - 2 * MINUTE, 40.0), (end - MINUTE, 60.0)],
    )
    snapshot_file = snapshots.save(snapshot_of(service(cluster, "api")), tmp_path / "s.json.gz")
    data = str(tmp_path / "data")
    env = moto_server.env()
    poll = ecsguard(
        "metrics",
        "poll",
        "--snapshot",
        str(snapshot_file),
        "--since",
        "15m",
        "--data-dir",
        data,
        "--output",
        "json",
        env=env,
    )
    assert poll.returncode == 0, poll.stderr
    summary = json.loads(poll.stdout)
    assert summary["queries"] == 7 and summary["calls"] == 1 and summary["problems"] == []
    assert summary["stored"] == 2
    query = ecsguard(
        "metrics",
        "query",
        "--namespace",
        "AWS/ECS",
        "--name",
        "CPUUtilization",
        "--dimension",
        f"ClusterName={cluster}",
        "--stat",
        "avg",
        "--period",
        "1h",
        "--since",
        "1h",
        "--data-dir",
        data,
        "--output",
        "json",
    )
    assert query.returncode == 0, query.stderr
    points = json.loads(query.stdout)
    assert len(points) in (1, 2) and sum(p["samples"] for p in points) == 2
    assert json.loads(points[0]["dimensions"]) == dims


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    bad_period = ecsguard("metrics", "poll", "--period", "45", "--data-dir", str(tmp_path))
    assert_one_clear_error(bad_period, "--period 45 is not a CloudWatch period", "multiple of 60")
    bad_dim = ecsguard(
        "metrics",
        "query",
        "--namespace",
        "AWS/ECS",
        "--name",
        "CPUUtilization",
        "--dimension",
        "oops",
        "--data-dir",
        str(tmp_path),
    )
    assert_one_clear_error(bad_dim, "cannot read the dimension 'oops'")
    assert bad_dim.returncode == 2
