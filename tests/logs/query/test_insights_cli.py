"""`ecsguard logs query QUERY`: Insights queries over records still in the WAL, and --sql."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner, Result

from ecsguard.cli.main import cli
from ecsguard.core.errors import UserError
from ecsguard.logs.pipeline import Pipeline
from ecsguard.logs.schema import LOGS

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six records, none flushed: only the WAL holds them."""
    path = Path(tmp_path_factory.mktemp("cli"))
    rows = [
        ("api", "ERROR", '{"status": 500, "path": "/a"}', 5),
        ("api", "ERROR", '{"status": 503, "path": "/b"}', 10),
        ("api", "INFO", '{"status": 200, "path": "/a"}', 15),
        ("web", "ERROR", '{"status": 500, "path": "/c"}', 20),
        ("web", "INFO", None, 25),
        ("web", "ERROR", '{"status": 502, "path": "/old"}', 180),  # outside the default hour
    ]
    batch = pa.RecordBatch.from_pylist(
        [
            {
                "time": NOW - timedelta(minutes=minutes),
                "cluster": "prod",
                "service": service,
                "level": level,
                "message": f"{service} {level} {minutes}",
                "fields": fields,
                "id": f"r{minutes}",
            }
            for service, level, fields, minutes in rows
        ],
        schema=LOGS,
    )
    pipeline = Pipeline(path)
    pipeline.ingest("logs", batch)
    pipeline.close()
    return path


def query(data_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["logs", "query", "--data-dir", str(data_dir), *args])


def test_insights_query_as_json(data_dir: Path) -> None:
    result = query(
        data_dir, 'filter level = "ERROR" | stats count(*) as n by service', "--output", "json"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"service": "api", "n": 2}, {"service": "web", "n": 1}]


def test_start_and_end_choose_the_window(data_dir: Path) -> None:
    start = (NOW - timedelta(hours=4)).isoformat()
    end = (NOW - timedelta(hours=2)).isoformat()
    result = query(data_dir, "fields service, path, status", "--start", start, "--end", end)
    assert result.exit_code == 0, result.output
    assert "/old" in result.stdout and "502" in result.stdout and "1 rows" in result.stdout


def test_since_and_csv(data_dir: Path) -> None:
    result = query(
        data_dir,
        "filter ispresent(status) | sort status desc | display path, status",
        "--since",
        "4h",
        "--output",
        "csv",
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["path", "status"]
    assert [r[1] for r in rows[1:]] == ["503", "502", "500", "500", "200"]


def test_show_sql_prints_the_compiled_statement(data_dir: Path) -> None:
    result = query(data_dir, "stats count(*) as n", "--show-sql", "--output", "json")
    assert result.exit_code == 0, result.output
    assert 'WITH s0 AS (SELECT * FROM "logs" WHERE "time" >=' in result.stderr
    assert json.loads(result.stdout) == [{"n": 5}]


def test_sql_still_runs_raw_duckdb(data_dir: Path) -> None:
    result = query(data_dir, "--sql", "SELECT count(*) AS n FROM logs", "--output", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"n": 6}]


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ((), "give an Insights QUERY or --sql SQL"),
        (("stats count(*)", "--sql", "SELECT 1"), "give an Insights QUERY or --sql SQL, not both"),
        (("--sql", "SELECT 1", "--since", "1h"), "apply to Insights queries, not to --sql"),
        (("stats count(*) by by",), "unexpected 'by' at line 1, column 19"),
        (("pattern @message",), "'pattern' is not supported"),
        (("stats count(*)", "--since", "5 parsecs"), "cannot read the duration"),
        (("stats count(*)", "--since", "1h", "--end", "2026-01-01"), "cannot be combined"),
        (("filter @message like /(unclosed/",), "query failed"),
    ],
)
def test_errors_are_user_errors(data_dir: Path, args: tuple[str, ...], problem: str) -> None:
    result = query(data_dir, *args)
    assert isinstance(result.exception, UserError), result.output
    assert problem in result.exception.problem
