"""Rollups of the metrics table: exact aggregates, percentiles, incremental runs, retention."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from ecsguard.core.errors import UserError
from ecsguard.logs.pipeline import Pipeline
from ecsguard.logs.schema import METRICS
from ecsguard.monitor.rollups import LATE, Rollups, connect_with_rollups, rollup

T0 = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)
API = '{"ClusterName":"prod","ServiceName":"api"}'
WEB = '{"ClusterName":"prod","ServiceName":"web"}'


def _batch(points: list[tuple[dt.datetime, str, float]]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {
            "time": [p[0] for p in points],
            "namespace": ["AWS/ECS"] * len(points),
            "name": ["CPUUtilization"] * len(points),
            "dimensions": [p[1] for p in points],
            "value": [p[2] for p in points],
            "unit": ["Percent"] * len(points),
            "id": [None] * len(points),  # the pipeline gives each row one
        },
        schema=METRICS,
    )


def _ingest(folder: Path, points: list[tuple[dt.datetime, str, float]], flush: bool) -> None:
    pipeline = Pipeline(folder)
    pipeline.ingest("metrics", _batch(points))
    if flush:
        pipeline.flush()
    pipeline.close()


def _minutes(start: dt.datetime, n: int, dims: str, value: float = 0.0) -> list:
    # api: one point a minute valued by its minute number; two points a minute for web
    return [(start + dt.timedelta(minutes=i), dims, value or float(i)) for i in range(n)]


@pytest.fixture
def rolled(tmp_path: Path) -> Path:
    points = _minutes(T0, 120, API)
    points += [
        (T0 + dt.timedelta(minutes=i, seconds=s), WEB, float(s))
        for i in range(60)
        for s in (10, 40)
    ]
    _ingest(tmp_path, points, flush=True)
    result = rollup(tmp_path, T0 + dt.timedelta(hours=2, seconds=30))
    assert result.start == T0 and result.rows["1h"] == 3  # api twice, web once
    return tmp_path


def _rows(folder: Path, sql: str) -> list[tuple]:
    con = connect_with_rollups(folder)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_one_minute_rows_are_exact(rolled: Path) -> None:
    got = _rows(
        rolled,
        "SELECT count, sum, min, max, avg, p50 FROM metrics_1m "
        f"WHERE dimensions = '{WEB}' AND time = TIMESTAMPTZ '{T0.isoformat()}'",
    )
    assert got == [(2, 50.0, 10.0, 40.0, 25.0, 25.0)]
    assert _rows(rolled, "SELECT count(*) FROM metrics_1m") == [(180,)]


def test_five_minutes_and_hours(rolled: Path) -> None:
    five = _rows(
        rolled,
        "SELECT count, sum, min, max, p50 FROM metrics_5m "
        f"WHERE dimensions = '{API}' ORDER BY time LIMIT 1",
    )
    assert five == [(5, 10.0, 0.0, 4.0, 2.0)]
    hours = _rows(
        rolled,
        "SELECT time, count, avg, p95, dt FROM metrics_1h "
        f"WHERE dimensions = '{API}' ORDER BY time",
    )
    # one point a minute: the hour's p95 of per-minute averages is the exact p95 (0..59)
    assert [(h[1], h[2], round(h[3], 2)) for h in hours] == [(60, 29.5, 56.05), (60, 89.5, 116.05)]
    assert hours[0][0] == T0 and hours[0][4] == T0.date()


def test_a_second_run_picks_up_new_and_late_points(rolled: Path) -> None:
    late = [(T0 + dt.timedelta(hours=1, minutes=59, seconds=50), API, 1000.0)]  # in the last hour
    fresh = _minutes(T0 + dt.timedelta(hours=2), 10, API, 7.0)
    _ingest(rolled, late + fresh, flush=False)  # still in the WAL: rollups read it too
    result = rollup(rolled, T0 + dt.timedelta(hours=2, minutes=10))
    assert result.start == T0 + dt.timedelta(hours=2) - LATE  # the last run's end, less LATE
    hours = _rows(
        rolled,
        f"SELECT count, max FROM metrics_1h WHERE dimensions = '{API}' ORDER BY time",
    )
    assert hours == [(60, 59.0), (61, 1000.0), (10, 7.0)]
    # running it again changes nothing (idempotent): the same rows, not twice as many
    rollup(rolled, T0 + dt.timedelta(hours=2, minutes=10))
    assert _rows(rolled, f"SELECT sum(count) FROM metrics_1m WHERE dimensions = '{API}'") == [
        (131,)
    ]


def test_open_minute_waits_for_the_next_run(tmp_path: Path) -> None:
    _ingest(tmp_path, _minutes(T0, 3, API), flush=True)
    rollup(tmp_path, T0 + dt.timedelta(minutes=2, seconds=5))  # minute 2 is still open
    assert _rows(tmp_path, "SELECT count(*) FROM metrics_1m") == [(2,)]


def test_retention_per_level(tmp_path: Path) -> None:
    old = T0 - dt.timedelta(days=10)
    _ingest(tmp_path, _minutes(old, 5, API) + _minutes(T0, 5, API), flush=True)
    result = rollup(tmp_path, T0 + dt.timedelta(minutes=10), retention_days={"1m": 3})
    assert result.expired["1m"] == [f"dt={old.date().isoformat()}"]
    assert result.expired["1h"] == []
    assert _rows(tmp_path, "SELECT count(*) FROM metrics_1m") == [(5,)]
    assert _rows(tmp_path, "SELECT count(*) FROM metrics_1h") == [(2,)]


def test_empty_store_has_empty_views(tmp_path: Path) -> None:
    result = rollup(tmp_path, T0)
    assert result.start is None and result.rows == {"1m": 0, "5m": 0, "1h": 0}
    assert _rows(tmp_path, "SELECT count(*), max(p95) FROM metrics_1h") == [(0, None)]


def test_a_damaged_state_file_recomputes_everything(rolled: Path) -> None:
    (rolled / "store" / "_rollup_state.json").write_text("{not json")
    result = rollup(rolled, T0 + dt.timedelta(hours=2, seconds=30))
    assert result.start == T0
    assert _rows(rolled, "SELECT count(*) FROM metrics_1m") == [(180,)]


def test_bad_retention_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no rollup level '2m'"):
        Rollups(tmp_path, {"2m": 3})
    with pytest.raises(UserError, match="at least 1 day"):
        Rollups(tmp_path, {"1h": 0})


def test_points_later_than_late_stay_out_of_the_rollups(rolled: Path) -> None:
    too_late = [(T0 + dt.timedelta(hours=1, minutes=10), API, 5000.0)]
    _ingest(rolled, too_late, flush=True)
    rollup(rolled, T0 + dt.timedelta(hours=2, minutes=1))
    assert _rows(rolled, "SELECT max(value) FROM metrics") == [(5000.0,)]
    assert _rows(rolled, "SELECT max(max) FROM metrics_1m") == [(119.0,)]
