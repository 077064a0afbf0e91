"""Athena: the DDL (parsed as Athena/Hive SQL), the DuckDB-to-Trino translation, and the query
plumbing against the moto server (which runs no SQL: results are queued through its moto-api,
and what moto cannot answer, a failed query and a paged result, is S3-style injected at
botocore's send hook)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import sqlglot
from botocore.awsrequest import AWSResponse
from click.testing import CliRunner
from sqlglot import exp

from ecsguard.aws.athena import run_query
from ecsguard.aws.session import AwsOptions, AwsSession
from ecsguard.cli.main import cli
from ecsguard.core.errors import UserError
from ecsguard.demo.emulator import REGION, MotoServer, set_transition
from ecsguard.logs.athena_ddl import statements
from ecsguard.logs.query.insights import compile_query
from ecsguard.logs.query.timerange import resolve
from ecsguard.logs.query.trino import json_pointer_to_path, to_athena
from ecsguard.logs.schema import TABLES
from ecsguard.logs.store import HOURLY, partition_name


def test_ddl_parses_and_matches_the_store() -> None:
    found = statements("s3://bkt/ecs/prod/", "ecs_logs", "2024-01-01")
    assert found[0] == "CREATE DATABASE IF NOT EXISTS `ecs_logs`"
    assert len(found) == 1 + len(TABLES)
    for table, text in zip(TABLES, found[1:], strict=True):
        for dialect in ("athena", "hive"):
            tree = sqlglot.parse_one(text, read=dialect)
            assert isinstance(tree, exp.Create)
        tree = sqlglot.parse_one(text, read="athena")
        columns = [c.name for c in tree.this.expressions]
        assert columns == TABLES[table].names
        partitioned = tree.find(exp.PartitionedByProperty)
        assert partitioned is not None
        keys = [c.name for c in partitioned.this.expressions]
        assert keys == (["dt", "hour"] if table in HOURLY else ["dt"])
        assert f"LOCATION 's3://bkt/ecs/prod/{table}/'" in text
        # the projected location template names partitions as the store does
        template = f"s3://bkt/ecs/prod/{table}/" + (
            "dt=${dt}/hour=${hour}/" if table in HOURLY else "dt=${dt}/"
        )
        assert f"'storage.location.template' = '{template}'" in text
        example = partition_name(table, 490_000 if table in HOURLY else 20_000)
        filled = template.replace("${dt}", example[3:13]).replace("${hour}", example[-2:])
        assert filled == f"s3://bkt/ecs/prod/{table}/{example}/"
        assert "'projection.dt.format' = 'yyyy-MM-dd'" in text
        assert "'projection.dt.range' = '2024-01-01,NOW'" in text
        assert ("'projection.hour.digits' = '2'" in text) == (table in HOURLY)


def test_ddl_refuses_what_athena_cannot_use() -> None:
    with pytest.raises(UserError, match="only on S3"):
        statements("/var/lib/ecsguard/store")
    with pytest.raises(UserError, match="Glue database"):
        statements("s3://bkt/x", "Bad-Name")
    with pytest.raises(UserError, match="not a date"):
        statements("s3://bkt/x", first_day="last year")


def test_ddl_command() -> None:
    result = CliRunner().invoke(cli, ["athena", "ddl", "--store", "s3://bkt/p", "--database", "x"])
    assert result.exit_code == 0, result.output
    assert result.output.count(";\n") == 1 + len(TABLES)
    assert "CREATE EXTERNAL TABLE IF NOT EXISTS `x`.`cloudtrail`" in result.output
    refused = CliRunner().invoke(cli, ["athena", "ddl"], env={"ECSGUARD_STORE": ""})
    assert refused.exit_code != 0


def test_translation_of_compiled_insights() -> None:
    window = resolve(None, "2026-03-01T09:00Z", "2026-03-01T11:00Z")
    query = "filter status >= 500 | stats pct(latency_ms, 95), count(*) by service, bin(5m)"
    translated = to_athena(compile_query(query, window).sql)
    sqlglot.parse_one(translated, read="athena")  # valid Athena SQL
    text = translated
    assert "APPROX_PERCENTILE" in text and "QUANTILE" not in text.upper()
    assert 'JSON_EXTRACT_SCALAR("fields", \'$["status"]\')' in text
    assert "FROM_UNIXTIME(FLOOR(" in text and "/ 300) * 300)" in text
    assert "CAST('2026-03-01 09:00:00.000000 UTC' AS TIMESTAMP WITH TIME ZONE)" in text
    assert "CAST('2026-03-01' AS DATE)" in text  # dt is a date partition on both engines
    assert "time_bucket" not in text.lower()


def test_translation_refuses_what_has_no_athena_form() -> None:
    with pytest.raises(UserError, match="Athena reads its tables"):
        to_athena("SELECT * FROM read_parquet('x.parquet')")
    with pytest.raises(UserError, match="from the epoch"):
        to_athena(
            "SELECT time_bucket(INTERVAL 5 MINUTE, time, TIMESTAMPTZ '2020-01-01 00:00:00+00') "
            "FROM logs"
        )
    with pytest.raises(UserError, match="cannot read the SQL"):
        to_athena("SELECT FROM WHERE (")
    assert json_pointer_to_path("/a~1b/c~0d") == '$["a/b"]["c~d"]'


# -- the query plumbing against moto ---------------------------------------------------------


def queue_results(server: MotoServer, rows: list[list[str | None]], types: list[str]) -> None:
    """The next Athena query's result, through moto's own API (moto does not run SQL)."""
    header, *data = rows
    body = {
        "region": REGION,
        "results": [
            {
                "rows": [
                    {"Data": [{"VarCharValue": v} if v is not None else {} for v in row]}
                    for row in [header, *data]
                ],
                "column_info": [
                    {"Name": name, "Label": name, "Type": kind, "Nullable": "UNKNOWN"}
                    for name, kind in zip(header, types, strict=True)
                ],
            }
        ],
    }
    request = urllib.request.Request(
        f"{server.endpoint}/moto-api/static/athena/query-results",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert reply.status == 201


@pytest.fixture
def stepwise(aws_env: MotoServer) -> Iterator[MotoServer]:
    """Queries advance QUEUED -> RUNNING -> SUCCEEDED one poll at a time."""
    set_transition(aws_env.endpoint, "athena::execution", {"progression": "manual", "times": 2})
    try:
        yield aws_env
    finally:
        set_transition(aws_env.endpoint, "athena::execution", {"progression": "immediate"})


def session(server: MotoServer) -> AwsSession:
    return AwsSession(AwsOptions(regions=(REGION,), endpoint_url=server.endpoint))


def test_run_query_polls_until_done_and_types_the_rows(stepwise: MotoServer) -> None:
    queue_results(
        stepwise,
        [
            ["service", "count", "avg", "ok"],
            ["api", "12", "3.5", "true"],
            ["web", "7", None, "false"],
        ],
        ["varchar", "bigint", "double", "boolean"],
    )
    slept: list[float] = []
    result = run_query(
        session(stepwise),
        "SELECT service, count(*) FROM logs GROUP BY 1",
        database="ecsguard",
        output="s3://results-bucket/athena/",
        poll_seconds=0.01,
        sleep=slept.append,
    )
    assert result.states == ["QUEUED", "RUNNING", "SUCCEEDED"]
    assert len(slept) == 3  # QUEUED, RUNNING, RUNNING, then SUCCEEDED
    assert result.columns == ["service", "count", "avg", "ok"]
    assert result.rows == [("api", 12, 3.5, True), ("web", 7, None, False)]


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def answer(aws: AwsSession, operation: str, reply: Any) -> dict[str, int]:
    """Answer Athena's `operation` with `reply(request_body)` (a JSON document) instead of moto."""
    state = {"calls": 0}

    def handler(request: Any, **_: Any) -> AWSResponse | None:
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else target
        if not target.endswith(f".{operation}"):
            return None
        state["calls"] += 1
        body = json.dumps(reply(json.loads(request.body or b"{}"))).encode()
        headers = {"Content-Type": "application/x-amz-json-1.1"}
        return AWSResponse(request.url, 200, headers, _Raw(body))

    aws._session.events.register("before-send.athena", handler)
    return state


def test_a_failed_query_says_why(aws_env: MotoServer) -> None:
    aws = session(aws_env)
    reason = "COLUMN_NOT_FOUND: line 1:8: Column 'nope' cannot be resolved"
    answer(
        aws,
        "GetQueryExecution",
        lambda body: {
            "QueryExecution": {
                "QueryExecutionId": body["QueryExecutionId"],
                "Status": {"State": "FAILED", "StateChangeReason": reason},
            }
        },
    )
    with pytest.raises(UserError, match="failed: COLUMN_NOT_FOUND") as caught:
        run_query(aws, "SELECT nope FROM logs", database="ecsguard", sleep=lambda _: None)
    assert "ecsguard athena ddl" in caught.value.hint


def test_results_are_read_across_pages(aws_env: MotoServer) -> None:
    aws = session(aws_env)
    info = [{"Name": "n", "Label": "n", "Type": "integer"}]

    def page(body: dict[str, Any]) -> dict[str, Any]:
        if "NextToken" not in body:
            rows = [["n"], ["1"], ["2"]]  # the first page starts with the header row
            token: dict[str, str] = {"NextToken": "page-2"}
        else:
            assert body["NextToken"] == "page-2"
            rows, token = [["3"]], {}
        return {
            "ResultSet": {
                "Rows": [{"Data": [{"VarCharValue": v} for v in row]} for row in rows],
                "ResultSetMetadata": {"ColumnInfo": info},
            },
            **token,
        }

    pages = answer(aws, "GetQueryResults", page)
    result = run_query(aws, "SELECT n FROM t", database="ecsguard", sleep=lambda _: None)
    assert pages["calls"] == 2
    assert result.rows == [(1,), (2,), (3,)]


def test_athena_refusals_are_clear(aws_env: MotoServer) -> None:
    aws = session(aws_env)
    answer_error(aws, "StartQueryExecution", "InvalidRequestException", "No output location")
    with pytest.raises(UserError, match="No output location") as caught:
        run_query(aws, "SELECT 1", database="ecsguard")
    assert "--athena-output" in caught.value.hint
    denied = session(aws_env)
    answer_error(denied, "StartQueryExecution", "AccessDeniedException", "not authorized")
    with pytest.raises(UserError, match="Athena refused the request") as refused:
        run_query(denied, "SELECT 1", database="ecsguard")
    assert "athena:StartQueryExecution" in refused.value.hint


def answer_error(aws: AwsSession, operation: str, code: str, message: str) -> None:
    def handler(request: Any, **_: Any) -> AWSResponse | None:
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else target
        if not target.endswith(f".{operation}"):
            return None
        body = json.dumps({"__type": code, "Message": message}).encode()
        headers = {"Content-Type": "application/x-amz-json-1.1"}
        return AWSResponse(request.url, 400, headers, _Raw(body))

    aws._session.events.register("before-send.athena", handler)


def test_logs_query_engine_athena(aws_env: MotoServer) -> None:
    queue_results(aws_env, [["service", "count(*)"], ["api", "42"]], ["varchar", "bigint"])
    result = CliRunner().invoke(
        cli,
        [
            "logs",
            "query",
            "stats count(*) by service",
            "--since",
            "1h",
            "--engine",
            "athena",
            "--athena-output",
            "s3://results-bucket/x/",
            "--show-sql",
            "--output",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"service": "api", "count(*)": 42}]
    assert 'WITH s0 AS (SELECT * FROM "logs"' in result.stderr
    assert "bytes scanned" in result.stderr
    bad = CliRunner().invoke(
        cli, ["logs", "query", "--sql", "SELECT 1", "--engine", "athena", "--athena-output", "x"]
    )
    assert isinstance(bad.exception, UserError)
    assert "is not an S3 URL" in str(bad.exception)
