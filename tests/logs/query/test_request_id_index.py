"""The request_id index: queries answer the same with it, without it (files an older version
wrote) and without the index condition at all; and DuckDB skips row groups by its Bloom filter."""

from __future__ import annotations

import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecsguard.logs.pipeline import Pipeline, conform
from ecsguard.logs.query.filter_pattern import compile_pattern
from ecsguard.logs.query.filter_pattern.search import search_logs, text_column
from ecsguard.logs.query.filter_pattern.sql import request_id_sql, request_id_values
from ecsguard.logs.query.insights import compile_query
from ecsguard.logs.query.timerange import TimeRange
from ecsguard.logs.receivers import lines
from ecsguard.logs.records import REQUEST_ID_KEYS, ReceiverOptions, request_id_of, request_ids
from ecsguard.logs.schema import LOGS

WINDOW = TimeRange(datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 2, tzinfo=UTC))
NOW = datetime(2024, 5, 2, tzinfo=UTC)
# keys a filter pattern selector and an Insights field can both name
NAMED = [k for k in REQUEST_ID_KEYS if re.fullmatch(r"[A-Za-z_]\w*", k)]
VALUES = st.sampled_from(["a", "b", "", 7, None, ["a"], "a b"])


@st.composite
def lines_(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["json", "json", "json", "text", "broken"]))
    if kind == "text":
        return draw(st.sampled_from(["plain a", "request_id=a", '  {"request_id": "a"'])) + "\n"
    if kind == "broken":  # not JSON to orjson: kept as an unparsed text record
        return '{"request_id": "a", "n": 1e999, "x": NaN}\n'
    keys = draw(st.lists(st.sampled_from([*REQUEST_ID_KEYS, "other"]), max_size=3))
    record = {"time": "2024-05-01T07:00:00Z", "msg": "m"}
    record.update({key: draw(VALUES) for key in keys})
    return orjson.dumps(record).decode() + "\n"


def _stores(text: str, root: Path) -> tuple[Pipeline, Pipeline]:
    """The same records as a new version stores them and as an older version's file."""
    parsed = lines.parse(text.encode(), ReceiverOptions(input_name="t", source="ingest"))
    new = Pipeline(root / "new")
    new.ingest("logs", parsed.batch)
    new.flush()
    old = Pipeline(root / "old")
    older = pa.Table.from_batches([parsed.batch]).drop_columns(["request_id"])
    directory = root / "old" / "store" / "logs" / "dt=2024-05-01" / "hour=07"
    directory.mkdir(parents=True)
    pq.write_table(older, directory / "older.parquet")
    return new, old


def _filter_ids(pipeline: Pipeline, pattern: str, *, indexed: bool = True) -> list[str]:
    con = pipeline.connect()
    compiled = compile_pattern(pattern)
    if indexed:
        _, rows = search_logs(con, compiled, WINDOW, columns=("id",), limit=None)
        return sorted(r[0] for r in rows)
    exact = compiled.sql(text_column(compiled))
    return sorted(r[0] for r in con.sql(f"SELECT id FROM logs WHERE {exact}").fetchall())


def _insights_ids(pipeline: Pipeline, query: str) -> list[str]:
    sql = compile_query(query, WINDOW, now=NOW).sql
    return sorted(r[0] for r in pipeline.connect().sql(sql).fetchall())


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(lines_(), min_size=1, max_size=12),
    st.sampled_from(NAMED),
    st.sampled_from(["a", "b", ""]),
)
def test_old_and_new_files_answer_alike(records: list[str], key: str, value: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        new, old = _stores("".join(records), Path(tmp))
        pattern = f'{{ $.{key} = "{value}" }}'
        reference = _filter_ids(new, pattern, indexed=False)
        assert _filter_ids(new, pattern) == reference
        assert _filter_ids(old, pattern) == reference
        both = f'{{ $.{key} = "{value}" && $.msg = "m" }}'
        unindexed = _filter_ids(new, both, indexed=False)
        assert _filter_ids(new, both) == _filter_ids(old, both) == unindexed
        query = f'fields @ptr | filter {key} = "{value}"'
        # the old file's column is null everywhere: the JSON test alone decides there
        assert _insights_ids(new, query) == _insights_ids(old, query)
        for pipeline in (new, old):
            pipeline.close()


def test_request_id_of_keeps_its_promise() -> None:
    assert request_id_of({"request_id": "r1", "msg": "m"}) == "r1"
    assert request_id_of({"traceId": "t", "correlation_id": "t"}) == "t"
    assert request_id_of({"msg": "no id"}) == ""  # no key: no request-id test can match
    assert request_id_of({"request_id": "r1", "trace_id": "t2"}) is None  # disagreeing keys
    assert request_id_of({"request_id": 5}) is None  # a number: JSON tests may match its text
    assert request_id_of({"request_id": ""}) is None
    assert request_id_of(["request_id"]) is None


def test_request_ids_from_stored_texts() -> None:
    fields = pa.array(
        [
            '{"request_id":"a"}',
            '{"x":1}',
            None,
            None,
            '{"req\\u005fid":"b"}',  # an escaped key is a key too
            '{"request_id":"a","request_id":"b"}',  # parsers pick different values
            '{"request_id": "a", "n": 1e999}',  # orjson refuses; "a" is what DuckDB reads
            '{"request_id": 7}',  # not a string: the JSON test decides
            '{"ctx": {"request_id": "n"}}',  # nested: no top-level test matches, any value is safe
            '{"request_id": ""}',
            '{"request_id":"a","trace_id":"b"}',  # disagreeing keys
        ]
    )
    messages = pa.array(["m", "m", "plain", ' {"request_id":"a"}', *["m"] * 7])
    assert request_ids(fields, messages).to_pylist() == [
        *["a", "", "", None, "b", None, "a"],
        *[None, "n", None, None],
    ]


def test_pattern_index_values() -> None:
    def values(text: str) -> set[str] | None:
        return request_id_values(compile_pattern(text).tree)

    assert values('{ $.request_id = "x" }') == {"x"}
    assert values('{ $.traceId = "x" && $.level = "error" }') == {"x"}
    assert values('{ $.req_id = "x" || $.requestId = "y" }') == {"x", "y"}
    assert values('{ $.req_id = "x" || $.level = "error" }') is None  # may match without one
    assert values('{ $.request_id = "x*" }') is None  # a wildcard: no single value
    assert values('{ $.request_id != "x" }') is None
    assert values('{ $.ctx.request_id = "x" }') is None  # nested: not indexed
    assert values("request_id") is None
    assert request_id_sql({"b", "a'"}) == "(request_id IS NULL OR request_id IN ('a''', 'b'))"


def test_insights_uses_the_index_only_for_the_json_field() -> None:
    sql = compile_query('filter requestId = "r1"', WINDOW, now=NOW).sql
    assert "request_id = 'r1'" in sql
    redefined = 'parse @message "* *" as requestId, rest | filter requestId = "r1"'
    assert "request_id IS NULL" not in compile_query(redefined, WINDOW, now=NOW).sql
    assert "request_id IS NULL" not in compile_query('filter user = "r1"', WINDOW, now=NOW).sql


def test_bloom_filter_lets_duckdb_skip_row_groups(tmp_path: Path) -> None:
    n = 300_000  # three row groups
    records = "".join(
        f'{{"time": "2024-05-01T07:00:00Z", "request_id": "rid-{i:07d}", "msg": "m"}}\n'
        for i in range(n)
    )
    pipeline = Pipeline(tmp_path)
    parsed = lines.parse(records.encode(), ReceiverOptions(input_name="t", source="ingest"))
    (path,) = pipeline.store.write("logs", conform("logs", parsed.batch))  # indexed, as ingest
    file = pipeline.store.fs.uri(path)
    metadata = pq.ParquetFile(file).metadata
    assert metadata.num_row_groups == 3
    assert metadata.schema.names == LOGS.names
    con = duckdb.connect()
    probes = con.sql(
        f"SELECT bloom_filter_excludes FROM parquet_bloom_probe('{file}', 'request_id', "
        "'rid-0150000')"
    ).fetchall()
    assert sorted(p[0] for p in probes) == [False, True, True]  # only the second may hold it
    _, rows = search_logs(
        pipeline.connect(), compile_pattern('{ $.request_id = "rid-0150000" }'), WINDOW
    )
    assert len(rows) == 1
