"""One metric as series: the `metrics` view aggregated per period, one series per dimension set.

The dimension filter is a subset (like CloudWatch's console search): `ServiceName=api` matches the
series of every cluster's `api`, each kept apart. Values travel as SQL parameters, never as text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from ecsguard.core.errors import UserError
from ecsguard.logs.query.timerange import TimeRange

#: --stat name -> DuckDB aggregate over `value`
STATS = {
    "avg": "avg(value)",
    "min": "min(value)",
    "max": "max(value)",
    "sum": "sum(value)",
    "count": "count(value)",
    "p50": "quantile_cont(value, 0.5)",
    "p90": "quantile_cont(value, 0.9)",
    "p95": "quantile_cont(value, 0.95)",
    "p99": "quantile_cont(value, 0.99)",
}


@dataclass(frozen=True)
class Point:
    time: datetime
    dimensions: str  # JSON text, as stored
    value: float
    samples: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "time": self.time.isoformat().replace("+00:00", "Z"),
            "dimensions": self.dimensions,
            "value": self.value,
            "samples": self.samples,
        }


def parse_dimensions(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """`K=V` options as a mapping; a malformed one is a UserError naming it."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or '"' in key:
            raise UserError(
                f"cannot read the dimension {pair!r}",
                "write NAME=VALUE, such as --dimension ServiceName=api",
            )
        out[key.strip()] = value
    return out


def series(
    con: duckdb.DuckDBPyConnection,
    *,
    namespace: str,
    name: str,
    dimensions: Mapping[str, str],
    stat: str,
    period_seconds: int,
    window: TimeRange,
) -> list[Point]:
    """`stat` of each period of each matching series in `window`, oldest first."""
    if stat not in STATS:
        raise UserError(f"unknown statistic {stat!r}", f"known: {', '.join(STATS)}")
    if period_seconds < 1:
        raise UserError("the period must be at least one second", "such as --period 5m")
    filters = ["namespace = ?", "name = ?", window.sql("time")]
    params: list[Any] = [namespace, name]
    for key, value in dimensions.items():
        filters.append("json_extract_string(dimensions, ?) = ?")
        params.extend([f'$."{key}"', value])
    sql = (
        f"SELECT time_bucket(INTERVAL '{int(period_seconds)} seconds', time) AS bucket, "
        f"dimensions, {STATS[stat]} AS value, count(*) AS samples "
        f"FROM metrics WHERE {' AND '.join(filters)} "
        "GROUP BY bucket, dimensions ORDER BY dimensions, bucket"
    )
    rows = con.execute(sql, params).fetchall()
    return [Point(t, d, float(v), int(n)) for t, d, v, n in rows if v is not None]
