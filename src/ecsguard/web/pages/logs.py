"""Logs: search the store with a CloudWatch filter pattern or a Logs Insights query.

The whole search lives in the URL's query string (mode, q, since or start/end, cluster, service,
level), so a reload or a sent link shows the same search. One request runs two bounded queries
over the same records: one GROUP BY GROUPING SETS pass for the histogram's time buckets and the
cluster/service/level facets, then the rows (newest first, at most LIMIT). In filter mode the
counts tell which buckets hold the newest LIMIT matches, and the rows query reads only those, so
a rare match costs one scan of the range, not two. The compilers are the CLI's (`logs filter`,
`logs query`); a bad query comes back as `error` with the compiler's message, never as a server
error.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from ecsguard.core.errors import UserError
from ecsguard.logs.query.filter_pattern import FilterPattern, compile_pattern
from ecsguard.logs.query.filter_pattern.search import search_logs, text_column, where_clause
from ecsguard.logs.query.insights import compile_matches, compile_query
from ecsguard.logs.query.timerange import DEFAULT_SINCE, TimeRange, resolve
from ecsguard.web.page import PAGES, Page, PageContext

#: result rows shown (and sent) at most
LIMIT = 500
MODES = ("filter", "insights")
SINCE_CHOICES = ("15m", "1h", "6h", "24h", "7d")
FACETS = ("cluster", "service", "level")
#: values listed per facet, the most frequent first
FACET_VALUES = 20
#: the histogram has at most this many bars; bucket widths are chosen from NICE_SECONDS
MAX_BARS = 120
NICE_SECONDS = (
    1,
    5,
    10,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    10800,
    21600,
    43200,
    86400,
    604800,
)
#: what a filter-mode row carries (the detail view shows all of it)
RECORD_COLUMNS = (
    "time",
    "cluster",
    "service",
    "level",
    "message",
    "container",
    "task",
    "task_definition",
    "stream",
    "account",
    "region",
    "source",
    "fields",
    "ingest_time",
    "id",
)
#: the columns of a filter-mode row the table shows
SHOWN = ("time", "cluster", "service", "level", "message")
#: the view an Insights query reads when facet filters apply
FILTERED_VIEW = "console_logs"
DEFAULT_INSIGHTS = "fields @timestamp, cluster, service, level, @message"
BATCH_ROWS = 65_536


@dataclass(frozen=True)
class Search:
    """A search as the URL states it."""

    mode: str = "filter"
    q: str = ""
    since: str = ""
    start: str = ""
    end: str = ""
    cluster: str = ""
    service: str = ""
    level: str = ""

    @classmethod
    def from_params(cls, params: dict[str, str]) -> Search:
        fields = {name: params.get(name, "").strip() for name in cls.__dataclass_fields__}
        fields["q"] = params.get("q", "")  # a query's own spacing is kept
        search = cls(**fields)
        if not (search.since or search.start or search.end):
            search = replace(search, since=DEFAULT_SINCE)
        return replace(search, mode=search.mode or "filter")

    def state(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    def link(self, **changes: str) -> str:
        """The page's URL for this search with `changes`; empty values are left out."""
        state = {**self.state(), **changes}
        return "/logs?" + urlencode({k: v for k, v in state.items() if v})

    def window(self) -> TimeRange:
        return resolve(self.since or None, self.start or None, self.end or None)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _bucket_seconds(window: TimeRange) -> int:
    span = (window.end - window.start).total_seconds()
    wanted = span / MAX_BARS
    return next((s for s in NICE_SECONDS if s >= wanted), math.ceil(wanted))


@dataclass
class Tally:
    """Counts of matching records per time bucket and per facet value."""

    start_us: int
    width_us: int
    buckets: Counter[int]
    facets: dict[str, Counter[str | None]]

    @classmethod
    def of(cls, window: TimeRange, width: int) -> Tally:
        start_us = int(window.start.timestamp() * 1_000_000)
        return cls(start_us, width * 1_000_000, Counter(), {name: Counter() for name in FACETS})

    def sql(self, matches: str) -> str:
        """One pass over `matches` (a query with time, cluster, service, level) for every count."""
        return (
            "SELECT grouping(b), grouping(cluster), grouping(service), grouping(level), "
            "b, cluster, service, level, count(*) FROM ("
            f"SELECT (epoch_us(time) - {self.start_us}) // {self.width_us} AS b, "
            f"cluster, service, level FROM ({matches})) "
            "GROUP BY GROUPING SETS ((b), (cluster), (service), (level))"
        )

    def add_rows(self, rows: list[tuple[Any, ...]]) -> None:
        for *grouped, b, cluster, service, level, count in rows:
            values = (cluster, service, level)
            if grouped[0] == 0:
                self.buckets[int(b)] += count
            for i, name in enumerate(FACETS):
                if grouped[i + 1] == 0:
                    self.facets[name][values[i]] += count

    def add_batch(self, batch: pa.RecordBatch) -> None:
        """The same counts from an Arrow batch (patterns SQL cannot finish)."""
        micros = pc.cast(batch.column("time"), pa.int64())
        index = pc.divide(pc.subtract(micros, self.start_us), self.width_us)
        for item in pc.value_counts(index).to_pylist():
            self.buckets[int(item["values"])] += item["counts"]
        for name in FACETS:
            for item in pc.value_counts(batch.column(name)).to_pylist():
                self.facets[name][item["values"]] += item["counts"]

    def newest(self, window: TimeRange, rows: int) -> TimeRange | None:
        """The shortest stretch of `window`, in whole buckets, that holds the newest `rows`
        matches (all of them when there are fewer), from its oldest bucket to the newest bucket
        with a match; None without a match."""
        seen, first = 0, None
        newest = sorted((i for i, n in self.buckets.items() if n), reverse=True)
        for index in newest:
            seen, first = seen + self.buckets[index], index
            if seen >= rows:
                break
        if first is None:
            return None
        epoch = datetime.fromtimestamp(0, UTC)
        start = epoch + timedelta(microseconds=self.start_us + first * self.width_us)
        end = epoch + timedelta(microseconds=self.start_us + (newest[0] + 1) * self.width_us)
        return TimeRange(max(start, window.start), min(end, window.end))

    def histogram(self, window: TimeRange) -> dict[str, Any]:
        width = self.width_us // 1_000_000
        bars = max(math.ceil((window.end - window.start).total_seconds() / width), 1)
        start = self.start_us / 1_000_000
        return {
            "bucket_seconds": width,
            "times": [start + i * width for i in range(bars)],
            "counts": [self.buckets.get(i, 0) for i in range(bars)],
            "total": sum(self.buckets.values()),
        }

    def facet_list(self, search: Search) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for name, counts in self.facets.items():
            ranked = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
            out[name] = [
                {
                    "value": value,
                    "count": count,
                    # a missing value cannot be asked for with `=`
                    "link": search.link(**{name: value}) if value else None,
                }
                for value, count in ranked[:FACET_VALUES]
            ]
        return out


def _filter_search(
    con: duckdb.DuckDBPyConnection, search: Search, window: TimeRange, tally: Tally
) -> dict[str, Any]:
    pattern = compile_pattern(search.q)
    facets = {name: getattr(search, name) or None for name in FACETS}
    where, params, exact = where_clause(pattern, window, **facets)
    if exact:
        matches = f"SELECT time, cluster, service, level FROM logs WHERE {where}"
        tally.add_rows(con.execute(tally.sql(matches), params).fetchall())
    else:
        _tally_masked(con, pattern, where, params, tally)
    # the counts say where the newest rows lie: the rows query reads only that tail of the range
    tail = tally.newest(window, LIMIT + 1)
    if tail is None:
        return {"columns": list(RECORD_COLUMNS), "rows": []}
    columns, rows = search_logs(
        con, pattern, tail, limit=LIMIT + 1, columns=RECORD_COLUMNS, newest_first=True, **facets
    )
    return {"columns": columns, "rows": rows}


def _tally_masked(
    con: duckdb.DuckDBPyConnection,
    pattern: FilterPattern,
    where: str,
    params: list[Any],
    tally: Tally,
) -> None:
    query = (
        f"SELECT time, cluster, service, level, {text_column(pattern)} AS _text "
        f"FROM logs WHERE {where}"
    )
    for batch in con.sql(query, params=params).to_arrow_reader(BATCH_ROWS):
        tally.add_batch(batch.filter(pattern.mask(batch.column("_text"))))


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _insights_search(
    con: duckdb.DuckDBPyConnection, search: Search, window: TimeRange, tally: Tally
) -> dict[str, Any]:
    table = "logs"
    chosen = [
        f"{name} = {_literal(getattr(search, name))}" for name in FACETS if getattr(search, name)
    ]
    if chosen:
        table = FILTERED_VIEW
        con.execute(f"CREATE TEMP VIEW {table} AS SELECT * FROM logs WHERE {' AND '.join(chosen)}")
    text = search.q if search.q.strip() else DEFAULT_INSIGHTS
    compiled = compile_query(text, window, table)
    result = con.execute(compiled.sql)
    columns = [d[0] for d in result.description or []]
    rows = result.fetchmany(LIMIT + 1)
    tally.add_rows(con.execute(tally.sql(compile_matches(text, window, table))).fetchall())
    return {"columns": columns, "rows": rows, "sql": compiled.sql}


def run_search(ctx: PageContext, search: Search) -> dict[str, Any]:
    """{columns, rows, truncated, histogram, facets, sql?}; UserError for a bad search."""
    from ecsguard.web.api import sandbox

    if search.mode not in MODES:
        raise UserError(f"unknown mode {search.mode[:40]!r}", "choose filter or insights")
    window = search.window()
    tally = Tally.of(window, _bucket_seconds(window))
    service = ctx.app_state.service
    con = service.connect()
    try:
        sandbox(con, service)
        run = _insights_search if search.mode == "insights" else _filter_search
        try:
            found = run(con, search, window, tally)
        except duckdb.Error as err:
            first = str(err).splitlines()[0]
            raise UserError(
                f"query failed: {first}", "check the query's regular expressions and values"
            ) from None
    finally:
        con.close()
    rows = found["rows"]
    return {
        **found,
        "shown": list(SHOWN) if search.mode == "filter" else found["columns"],
        "rows": [[_jsonable(v) for v in row] for row in rows[:LIMIT]],
        "truncated": len(rows) > LIMIT,
        "histogram": tally.histogram(window),
        "facets": tally.facet_list(search),
        "window": {"start": window.start.isoformat(), "end": window.end.isoformat()},
    }


def data(ctx: PageContext) -> dict[str, Any]:
    search = Search.from_params(ctx.params)
    body: dict[str, Any] = {
        "state": search.state(),
        "link": search.link(),
        "filters": [
            {"name": name, "value": getattr(search, name), "remove": search.link(**{name: ""})}
            for name in FACETS
            if getattr(search, name)
        ],
        "limit": LIMIT,
        "since_choices": list(SINCE_CHOICES),
        "columns": [],
        "shown": [],
        "rows": [],
        "truncated": False,
        "histogram": None,
        "facets": {name: [] for name in FACETS},
    }
    try:
        body.update(run_search(ctx, search))
    except UserError as err:
        body["error"] = str(err)
    return body


PAGES.add(
    "logs",
    Page(
        name="logs",
        order=10,
        data=data,
        script=True,
        words={
            "en": {
                "title": "Logs",
                "mode": "Query language",
                "mode_filter": "Filter pattern",
                "mode_insights": "Logs Insights",
                "query": "Query",
                "placeholder_filter": "ERROR -healthcheck   or   { $.status >= 500 }",
                "placeholder_insights": 'filter level = "ERROR" | stats count(*) by service',
                "since": "Time range",
                "custom": "Custom (start / end)",
                "start": "Start (UTC)",
                "end": "End (UTC)",
                "time_hint": "ISO 8601 such as 2026-11-28T09:00Z, or epoch seconds",
                "run": "Search",
                "share": "Link to this search",
                "copy": "Copy link",
                "copied": "Copied",
                "filters": "Filters",
                "remove": "remove",
                "histogram": "Matches over time",
                "histogram_hint": "drag across the chart to zoom into a range",
                "matches": "matches",
                "facets": "Facets",
                "cluster": "Cluster",
                "service": "Service",
                "level": "Level",
                "none": "(none)",
                "results": "Results",
                "count": "{shown} rows, newest first",
                "truncated": "showing the first {limit}; narrow the search to see the rest",
                "no_rows": "No records match.",
                "detail": "Record",
                "detail_hint": "click a row to see every field",
                "sql": "Compiled SQL",
            },
            "ja": {
                "title": "ログ",
                "mode": "クエリ言語",
                "mode_filter": "フィルターパターン",
                "mode_insights": "Logs Insights",
                "query": "クエリ",
                "placeholder_filter": "ERROR -healthcheck   または   { $.status >= 500 }",
                "placeholder_insights": 'filter level = "ERROR" | stats count(*) by service',
                "since": "期間",
                "custom": "指定 (開始 / 終了)",
                "start": "開始 (UTC)",
                "end": "終了 (UTC)",
                "time_hint": "2026-11-28T09:00Z のような ISO 8601、またはエポック秒",
                "run": "検索",
                "share": "この検索へのリンク",
                "copy": "リンクをコピー",
                "copied": "コピーしました",
                "filters": "絞り込み",
                "remove": "解除",
                "histogram": "時間ごとの一致件数",
                "histogram_hint": "グラフ上をドラッグすると期間を拡大します",
                "matches": "一致",
                "facets": "ファセット",
                "cluster": "クラスター",
                "service": "サービス",
                "level": "レベル",
                "none": "(なし)",
                "results": "結果",
                "count": "{shown} 行 (新しい順)",
                "truncated": "先頭 {limit} 行を表示中。条件を絞ると残りを表示できます",
                "no_rows": "一致するレコードはありません。",
                "detail": "レコード",
                "detail_hint": "行をクリックすると全フィールドを表示します",
                "sql": "コンパイルされた SQL",
            },
        },
    ),
)
