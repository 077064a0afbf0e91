"""Rollups of the metrics table: 1-minute, 5-minute and 1-hour aggregates, each kept for its own
retention, queried as the DuckDB views metrics_1m, metrics_5m and metrics_1h.

Layout, beside the raw table (Hive, so Athena and Spark read it too):
`DATA_DIR/store/metrics_1m/dt=YYYY-MM-DD/h-HH.parquet` (one file per hour, likewise metrics_5m)
and `DATA_DIR/store/metrics_1h/dt=YYYY-MM-DD/day.parquet`. A row is one bucket of one series
(namespace, name, dimensions): count, sum, min, max, avg and the percentiles p50, p90, p95, p99.

Percentiles are exact at 1 minute (over the raw datapoints). At 5 minutes and 1 hour they are
percentiles of the per-minute averages: exact for a series with at most one datapoint a minute
(CloudWatch's 1-minute metrics, Container Insights), an approximation otherwise (spikes inside a
minute are smoothed). count, sum, min, max and avg are exact at every level.

`rollup(data_dir, now)` is incremental and idempotent: it recomputes the 1-minute rows from
LATE before the last run's end (datapoints that arrive up to that late still count; later ones
are left out of the rollups, not of the raw table) up to the last closed minute, merges them
into the hour files, derives those hours' 5-minute and 1-hour rows from the hours' 1-minute rows,
and replaces the files atomically. A run after a minute reads about LATE of raw datapoints, not
the whole hour. The 5-minute and 1-hour buckets being filled are partial until a later run.
Then each level drops the days older than its retention.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ecsguard.core.errors import UserError
from ecsguard.logs.schema import TS
from ecsguard.logs.store import (
    COMPRESSION,
    StoreLocation,
    open_fs,
    partition_date,
    read_parquet,
)

#: level -> (bucket seconds, default retention in days)
LEVELS: dict[str, tuple[int, int]] = {"1m": (60, 8), "5m": (300, 35), "1h": (3600, 400)}
#: datapoints this much older than the last run's end are still rolled up by the next run
LATE = dt.timedelta(minutes=10)
PERCENTILES = (50, 90, 95, 99)
STATE_FILE = "_rollup_state.json"

ROLLUP_SCHEMA = pa.schema(
    [
        ("time", TS),  # the bucket's start
        ("namespace", pa.string()),
        ("name", pa.string()),
        ("dimensions", pa.string()),
        ("unit", pa.string()),
        ("count", pa.int64()),
        ("sum", pa.float64()),
        ("min", pa.float64()),
        ("max", pa.float64()),
        ("avg", pa.float64()),
        *((f"p{p}", pa.float64()) for p in PERCENTILES),
    ]
)
_SORT = [("namespace", "ascending"), ("name", "ascending"), ("dimensions", "ascending")]


def table_name(level: str) -> str:
    return f"metrics_{level}"


@dataclass
class RollupResult:
    start: dt.datetime | None  # the first hour recomputed (None: nothing to do)
    end: dt.datetime  # the last closed minute's end
    rows: dict[str, int]  # rows written per level
    expired: dict[str, list[str]]  # partitions deleted per level


def _floor(when: dt.datetime, seconds: int) -> dt.datetime:
    stamp = int(when.timestamp())
    return dt.datetime.fromtimestamp(stamp - stamp % seconds, dt.UTC)


def _utc(when: dt.datetime) -> dt.datetime:
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def _lit(when: dt.datetime) -> str:
    return f"TIMESTAMPTZ '{when.isoformat()}'"


def _listing(paths: list[str]) -> str:
    return ", ".join("'" + path.replace("'", "''") + "'" for path in paths)


def _fine_sql(source: str, where: str) -> str:
    """1-minute buckets of raw datapoints (exact percentiles)."""
    quantiles = ", ".join(f"quantile_cont(value, {p / 100}) AS p{p}" for p in PERCENTILES)
    return (
        "SELECT time_bucket(INTERVAL '1 minute', time) AS time, namespace, name, dimensions, "
        "any_value(unit) AS unit, count(*) AS count, sum(value) AS sum, min(value) AS min, "
        f"max(value) AS max, avg(value) AS avg, {quantiles} FROM {source} "
        f"WHERE {where} AND isfinite(value) GROUP BY ALL"
    )


def _coarse_sql(source: str, seconds: int) -> str:
    """Coarser buckets from 1-minute rows: exact count/sum/min/max/avg, percentiles of the
    per-minute averages."""
    quantiles = ", ".join(f"quantile_cont(avg, {p / 100}) AS p{p}" for p in PERCENTILES)
    return (
        f"SELECT time_bucket(INTERVAL '{seconds} seconds', time) AS time, namespace, name, "
        "dimensions, any_value(unit) AS unit, sum(count)::BIGINT AS count, sum(sum) AS sum, "
        "min(min) AS min, max(max) AS max, sum(sum) / sum(count) AS avg, "
        f"{quantiles} FROM {source} GROUP BY ALL"
    )


class Rollups:
    """The rollup tables of one data directory."""

    def __init__(
        self,
        data_dir: Path,
        retention_days: dict[str, int] | None = None,
        store: StoreLocation | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.store = store
        self.fs = open_fs(self.data_dir, store)  # beside the tables they summarise
        self.retention = {level: days for level, (_, days) in LEVELS.items()}
        for level, days in (retention_days or {}).items():
            if level not in LEVELS:
                raise UserError(f"no rollup level {level!r}", f"known: {', '.join(LEVELS)}")
            if days < 1:
                raise UserError(f"retention of {level} must be at least 1 day, not {days}")
            self.retention[level] = days

    # --- state ------------------------------------------------------------------------------

    def done_until(self) -> dt.datetime | None:
        try:
            doc = json.loads(self.fs.read(STATE_FILE))
            return dt.datetime.fromisoformat(doc["done_until"])
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            return None  # unreadable: recompute from the oldest datapoint (idempotent)

    def _save_state(self, end: dt.datetime) -> None:
        self.fs.write_atomic(STATE_FILE, json.dumps({"done_until": end.isoformat()}).encode())

    # --- files ------------------------------------------------------------------------------

    def files(self, level: str) -> list[str]:
        return [p for p in self.fs.list(table_name(level)) if p.endswith(".parquet")]

    def _write(self, level: str, day: dt.date, file: str, data: pa.Table) -> None:
        path = f"{table_name(level)}/dt={day.isoformat()}/{file}.parquet"
        if data.num_rows == 0:
            self.fs.delete(path)
            return
        data = data.select(ROLLUP_SCHEMA.names).cast(ROLLUP_SCHEMA)
        data = data.sort_by([*_SORT, ("time", "ascending")])
        sink = pa.BufferOutputStream()
        pq.write_table(data, sink, compression=COMPRESSION)
        self.fs.write_atomic(path, sink.getvalue().to_pybytes())

    # --- the job ----------------------------------------------------------------------------

    def run(self, now: dt.datetime) -> RollupResult:
        from ecsguard.logs.pipeline import Pipeline

        end = _floor(_utc(now), 60)
        rows = dict.fromkeys(LEVELS, 0)
        pipeline = Pipeline(self.data_dir, store=self.store)
        try:
            con = pipeline.connect()
        except duckdb.Error as err:
            first = str(err).splitlines()[0]
            raise UserError(f"cannot read the store: {first}", "check the data directory") from None
        finally:
            pipeline.close()
        try:
            start = self._start(con, end)
            if start is not None:
                day = start.date()
                while day <= (end - dt.timedelta(microseconds=1)).date():
                    day_start = dt.datetime.combine(day, dt.time(), dt.UTC)
                    low = max(start, day_start)
                    high = min(end, day_start + dt.timedelta(days=1))
                    for level, count in self._roll_day(con, day, low, high).items():
                        rows[level] += count
                    day += dt.timedelta(days=1)
            self._save_state(end)
        finally:
            con.close()
        expired = {level: self.expire(level, now) for level in LEVELS}
        return RollupResult(start, end, rows, expired)

    def _start(self, con: duckdb.DuckDBPyConnection, end: dt.datetime) -> dt.datetime | None:
        done = self.done_until()
        oldest_kept = end - dt.timedelta(days=max(self.retention.values()))
        if done is not None:
            start = done - LATE
        else:
            query = f"SELECT min(time) FROM metrics WHERE time < {_lit(end)}"
            [(first,)] = con.execute(query).fetchall()
            if first is None:
                return None
            start = _utc(first)
        start = _floor(max(start, oldest_kept), 60)
        return start if start < end else None

    def _roll_day(
        self, con: duckdb.DuckDBPyConnection, day: dt.date, low: dt.datetime, high: dt.datetime
    ) -> dict[str, int]:
        """Recompute the minutes [low, high) of one day, an hour file at a time (memory stays
        one hour of 1-minute rows): the 1-minute rows from the raw datapoints, merged with the
        hour's rows before `low`; the hour's 5-minute and 1-hour rows from those 1-minute rows."""
        rows = dict.fromkeys(LEVELS, 0)
        hourly_parts = []
        hour = _floor(low, 3600)
        while hour < high:
            begin, until = max(hour, low), min(hour + dt.timedelta(hours=1), high)
            where = (
                f"dt = DATE '{day.isoformat()}' AND time >= {_lit(begin)} AND time < {_lit(until)}"
            )
            fresh = con.sql(_fine_sql("metrics", where)).to_arrow_table()
            file = f"h-{hour.hour:02d}"
            earlier = self._read_outside("1m", day, file, begin, until)
            minute = pa.concat_tables(
                [earlier, fresh.select(ROLLUP_SCHEMA.names).cast(ROLLUP_SCHEMA)]
            )
            con.register("_minute", minute)
            try:
                five = con.sql(_coarse_sql("_minute", 300)).to_arrow_table()
                hourly_parts.append(con.sql(_coarse_sql("_minute", 3600)).to_arrow_table())
            finally:
                con.unregister("_minute")
            self._write("1m", day, file, minute)
            self._write("5m", day, file, five)
            rows["1m"] += fresh.num_rows
            rows["5m"] += five.num_rows
            hour += dt.timedelta(hours=1)
        # the day's other hours stay as the earlier runs left them
        first_hour = _floor(low, 3600)
        kept = self._read_outside("1h", day, "day", first_hour, hour)
        parts = [kept] + [p.select(ROLLUP_SCHEMA.names).cast(ROLLUP_SCHEMA) for p in hourly_parts]
        self._write("1h", day, "day", pa.concat_tables(parts))
        rows["1h"] = sum(p.num_rows for p in hourly_parts)
        return rows

    def _read_outside(
        self, level: str, day: dt.date, file: str, begin: dt.datetime, until: dt.datetime
    ) -> pa.Table:
        """The rows of a rollup file whose bucket is outside [begin, until)."""
        path = f"{table_name(level)}/dt={day.isoformat()}/{file}.parquet"
        try:
            old = read_parquet(self.fs, path)
        except FileNotFoundError:
            return ROLLUP_SCHEMA.empty_table()
        times = old.column("time")
        outside = pc.or_(
            pc.less(times, pa.scalar(begin, TS)), pc.greater_equal(times, pa.scalar(until, TS))
        )
        return old.filter(outside).select(ROLLUP_SCHEMA.names).cast(ROLLUP_SCHEMA)

    def expire(self, level: str, now: dt.datetime) -> list[str]:
        """Delete the days of `level` older than its retention; the deleted partitions."""
        cutoff = (_utc(now) - dt.timedelta(days=self.retention[level])).date()
        expired = sorted(
            {p.split("/")[1] for p in self.files(level) if partition_date(p.split("/")[1]) < cutoff}
        )
        for partition in expired:
            for path in self.fs.list(f"{table_name(level)}/{partition}"):
                self.fs.delete(path)
        return expired


def rollup(
    data_dir: Path,
    now: dt.datetime,
    retention_days: dict[str, int] | None = None,
    store: StoreLocation | None = None,
) -> RollupResult:
    """Bring the rollup tables up to the last closed minute before `now` and expire old days."""
    return Rollups(data_dir, retention_days, store).run(now)


def connect_with_rollups(
    data_dir: Path, store: StoreLocation | None = None
) -> duckdb.DuckDBPyConnection:
    """Pipeline.connect()'s views (logs, cloudtrail, events, metrics) plus metrics_1m,
    metrics_5m and metrics_1h (each with the partition column dt)."""
    from ecsguard.logs.pipeline import Pipeline

    pipeline = Pipeline(data_dir, store=store)
    try:
        con = pipeline.connect()
    finally:
        pipeline.close()
    rollups = Rollups(data_dir, store=store)
    empty = ROLLUP_SCHEMA.append(pa.field("dt", pa.date32())).empty_table()
    for level in LEVELS:
        name = table_name(level)
        files = [rollups.fs.uri(p) for p in rollups.files(level)]
        if files:
            con.execute(
                f"CREATE VIEW {name} AS SELECT * FROM read_parquet([{_listing(files)}], "
                "hive_partitioning = true, hive_types = {'dt': 'DATE'})"
            )
        else:
            con.register(f"_empty_{name}", empty)
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM _empty_{name}")
    return con
