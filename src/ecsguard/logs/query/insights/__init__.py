"""The CloudWatch Logs Insights query language, compiled to DuckDB SQL over the `logs` view.

API (the CLI and the web console call only this):

    compile_query(text, time_range, table="logs", *, now=None) -> CompiledQuery(sql, columns)
    compile_matches(text, time_range, table="logs", *, now=None) -> str

`text` is an Insights query (untrusted: every name is quoted and every literal escaped in the
SQL); `time_range` a `ecsguard.logs.query.timerange.TimeRange`, compiled into predicates on
`time` (Parquet row-group statistics) and on the Hive partition columns `dt` and `hour`;
`table` a view with the logs schema plus `dt` and `hour` (what `Pipeline.connect()` gives);
`now` fixes what now() returns (default: the clock). `sql` is one DuckDB statement; `columns`
the names of its result columns, in order. Bad queries raise `UserError` naming the line and
column ("unexpected 'by' at line 1, column 23").

Semantics, as Insights has them: commands are separated by |, `#` starts a comment; without
sort, records come newest first and stats rows by their `by` values; at most 10,000 rows
unless `limit` says otherwise; without fields/display a query shows @timestamp and @message.
Fields: @timestamp, @message, @logStream, @log (cluster/service), @ingestionTime, @ptr (id),
the ECS columns (cluster, service, task, task_definition, container, level, source), and any
other name from the record's JSON fields (`a.b` for nested keys; a number compared with a
number is compared numerically). `like "text"` is a substring match, `like /re/` and `=~` a
RE2 search. `sort` without asc/desc sorts descending. Not supported: pattern, diff, unmask,
anomaly, filterIndex, unnest, lookup, join and SOURCE; IPv6 subnets in isIpInSubnet().
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ecsguard.logs.query.insights import ast
from ecsguard.logs.query.insights.compiler import Plan, base_stage
from ecsguard.logs.query.insights.parser import parse
from ecsguard.logs.query.timerange import TimeRange

__all__ = ["CompiledQuery", "compile_matches", "compile_query"]


@dataclass(frozen=True)
class CompiledQuery:
    sql: str
    columns: tuple[str, ...]


def compile_query(
    text: str, time_range: TimeRange, table: str = "logs", *, now: datetime | None = None
) -> CompiledQuery:
    """One DuckDB statement answering the Insights query `text` over `time_range`."""
    commands = parse(text)
    moment = now or datetime.now(UTC)
    plan = Plan(text, int(moment.timestamp()))
    plan.stage(base_stage(table, time_range))
    for command in commands:
        plan.run(command)
    sql, columns = plan.select()
    return CompiledQuery(sql, tuple(columns))


def compile_matches(
    text: str, time_range: TimeRange, table: str = "logs", *, now: datetime | None = None
) -> str:
    """One DuckDB statement selecting the records (every column of `table`) the query keeps
    before its first `stats`, ignoring sort, limit and display: what a console counts in its
    histogram and facets. Raises `UserError` as `compile_query` does, for the whole query."""
    compile_query(text, time_range, table, now=now)  # the whole query must be valid
    moment = now or datetime.now(UTC)
    plan = Plan(text, int(moment.timestamp()))
    plan.stage(base_stage(table, time_range))
    for command in parse(text):
        if isinstance(command, ast.Stats):
            break
        if not isinstance(command, ast.Sort | ast.Limit | ast.Display):
            plan.run(command)
    return f"WITH {', '.join(plan.ctes)} SELECT * FROM {plan.current}"
