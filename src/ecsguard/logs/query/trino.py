"""DuckDB SQL (what the Insights compiler emits, and `--sql`) as Trino SQL for Athena.

sqlglot transpiles the dialects; this module adds what it cannot know about our queries, and
refuses clearly what has no Trino form:
- JSON paths: DuckDB's JSON pointers (`/a/b`) become JSONPath (`$["a"]["b"]`);
- `time_bucket` (sqlglot: DateBin) with the epoch as origin becomes whole seconds since the epoch,
  floored to the bin, as a timestamp (Trino has no date_bin);
- `TIMESTAMPTZ '…T…+00:00'` literals are rewritten as `'YYYY-MM-DD hh:mm:ss.ffffff UTC'`, the
  form Trino's cast reads;
- exact percentiles (`quantile_disc`, `quantile_cont`) become `approx_percentile`: Athena has
  no exact one, so `pct()` through Athena is approximate (documented).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError, UnsupportedError

from ecsguard.core.errors import UserError

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROS = {
    "MICROSECOND": Decimal(1),
    "MICROSECONDS": Decimal(1),
    "MILLISECOND": Decimal(1000),
    "MILLISECONDS": Decimal(1000),
    "SECOND": Decimal(1_000_000),
    "SECONDS": Decimal(1_000_000),
    "MINUTE": Decimal(60_000_000),
    "MINUTES": Decimal(60_000_000),
    "HOUR": Decimal(3_600_000_000),
    "HOURS": Decimal(3_600_000_000),
    "DAY": Decimal(86_400_000_000),
    "DAYS": Decimal(86_400_000_000),
}
_HINT = "run it with the default engine (DuckDB), or write Athena SQL with --sql"


def to_athena(sql: str) -> str:
    """`sql` (DuckDB dialect) in Athena's (Trino) dialect; UserError for what cannot be."""
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except ParseError as err:
        raise UserError(f"cannot read the SQL to translate it for Athena: {err}", _HINT) from None
    for table in tree.find_all(exp.Table):
        if isinstance(table.this, exp.Func):  # read_parquet(...) and other table functions
            raise UserError(
                f"Athena reads its tables, not {table.this.sql(dialect='duckdb')}",
                "query the tables logs, cloudtrail, events, metrics (see `ecsguard athena ddl`)",
            )
    # values first, then the functions around them (a replaced node's children are not revisited)
    tree = tree.transform(_rewrite_values).transform(_rewrite_functions)
    try:
        return tree.sql(dialect="athena", unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as err:
        raise UserError(f"Athena has no equivalent for part of this query: {err}", _HINT) from None


def _rewrite_values(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.JSONExtractScalar | exp.JSONExtract):
        path = node.expression
        if isinstance(path, exp.Literal) and path.is_string and path.this.startswith("/"):
            node.set("expression", exp.Literal.string(json_pointer_to_path(path.this)))
    elif isinstance(node, exp.Cast) and node.to.this == exp.DataType.Type.TIMESTAMPTZ:
        value = node.this
        if isinstance(value, exp.Literal) and value.is_string:
            node.set("this", exp.Literal.string(_utc_text(value.this)))
    return node


def _rewrite_functions(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.DateBin):
        return _time_bucket(node)
    if isinstance(node, exp.PercentileDisc | exp.PercentileCont):
        return exp.ApproxQuantile(this=node.this, quantile=node.expression)
    return node


def json_pointer_to_path(pointer: str) -> str:
    """`/a/b~1c` (RFC 6901) as the JSONPath `$["a"]["b/c"]`."""
    keys = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    return "$" + "".join('["' + k.replace("\\", "\\\\").replace('"', '\\"') + '"]' for k in keys)


def _utc_text(text: str) -> str:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return text  # not ours to reinterpret: Trino will say what it thinks
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def _time_bucket(node: exp.DateBin) -> exp.Expression:
    interval, value, origin = node.this, node.expression, node.args.get("unit")
    if origin is not None:
        text = origin.this if isinstance(origin, exp.Cast) else origin
        if not (isinstance(text, exp.Literal) and _parses_to_epoch(text.this)):
            raise UserError("Athena can bin times only from the epoch (1970-01-01 UTC)", _HINT)
    if not isinstance(interval, exp.Interval) or not isinstance(interval.this, exp.Literal):
        raise UserError("Athena needs a fixed bin width", _HINT)
    unit = interval.unit.name.upper() if interval.unit else "SECOND"
    if unit not in _MICROS:
        raise UserError(f"Athena cannot bin by {unit.lower()} (only fixed-length units)", _HINT)
    seconds = Decimal(interval.this.this) * _MICROS[unit] / Decimal(1_000_000)
    width = exp.Literal.number(format(seconds.normalize(), "f"))
    floored = exp.Floor(this=exp.Div(this=exp.TimeToUnix(this=value), expression=width))
    return exp.UnixToTime(this=exp.Mul(this=floored, expression=width.copy()))


def _parses_to_epoch(text: str) -> bool:
    text = text.removesuffix(" UTC")  # as _utc_text wrote it
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return False
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment == _EPOCH
