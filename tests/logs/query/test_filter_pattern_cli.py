"""`ecsguard logs filter` over a real data directory, and `ecsguard logs test-metric-filter`."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from ecsguard.cli.main import cli
from ecsguard.core.errors import UserError
from ecsguard.logs.ingest import ingest_source
from ecsguard.logs.pipeline import Pipeline
from ecsguard.logs.receivers import RECEIVERS
from ecsguard.logs.records import ReceiverOptions
from ecsguard.logs.schema import LOGS

LINES = [
    '{"time": "2026-01-05T10:00:00Z", "level": "error", "message": "boom req-1", "status": 500}',
    '{"time": "2026-01-05T10:00:01Z", "level": "info", "message": "ok req-2", "status": 200}',
    '{"time": "2026-01-05T10:00:02Z", "message": "slow req-3", "status": 200, "ms": 2300}',
    '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534',
    '127.0.0.1 - alice [10/Oct/2000:13:25:16 -0700] "GET /a.gif HTTP/1.0" 404 77',
    "ERROR plain text with request-id 7f3a",
]
WINDOW = ["--start", "2026-01-01T00:00:00Z", "--end", "2030-01-01T00:00:00Z"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("store")
    source = root / "app.log"
    source.write_text("\n".join(LINES) + "\n")
    ingest_source(str(source), "lines", root, {"cluster": "prod", "service": "api"})
    other = root / "web.log"
    other.write_text("ERROR from the web service\n")
    ingest_source(str(other), "lines", root, {"cluster": "prod", "service": "web"})
    # written to the WAL only: a search must see records not flushed to Parquet yet
    parsed = RECEIVERS.get("lines")(
        b"ERROR fresh and unflushed\n", ReceiverOptions(cluster="dev", service="api")
    )
    pipeline = Pipeline(root)
    pipeline.ingest("logs", parsed.batch)
    pipeline.close()
    return root


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=True)


def search(data_dir: Path, *args: str) -> list[dict[str, object]]:
    result = run("logs", "filter", *args, *WINDOW, "--data-dir", str(data_dir), "--output", "json")
    assert result.exit_code == 0, result.output
    rows: list[dict[str, object]] = json.loads(result.output)
    return rows


def test_terms_search_flushed_and_unflushed_records(data_dir: Path) -> None:
    rows = search(data_dir, "ERROR")
    assert sorted(str(r["message"]) for r in rows) == [
        "ERROR fresh and unflushed",
        "ERROR from the web service",
        "ERROR plain text with request-id 7f3a",
    ]
    assert [r["message"] for r in search(data_dir, '"request-id 7f3a"')] == [
        "ERROR plain text with request-id 7f3a"
    ]


def test_cluster_service_and_time_window_narrow_the_search(data_dir: Path) -> None:
    assert [r["service"] for r in search(data_dir, "ERROR", "--service", "web")] == ["web"]
    assert [r["cluster"] for r in search(data_dir, "ERROR", "--cluster", "dev")] == ["dev"]
    before = run(
        "logs",
        "filter",
        "req",
        "--start",
        "2026-01-05T10:00:01Z",
        "--end",
        "2026-01-05T10:00:02Z",
        "--data-dir",
        str(data_dir),
        "--output",
        "json",
    )
    assert [r["message"] for r in json.loads(before.output)] == ["ok req-2"]


def test_json_patterns_test_the_fields_of_json_lines(data_dir: Path) -> None:
    rows = search(data_dir, "{ $.status >= 500 || $.ms > 2000 }")
    assert [r["message"] for r in rows] == ["boom req-1", "slow req-3"]
    assert rows[0]["level"] == "ERROR" and rows[0]["time"] == "2026-01-05T10:00:00+00:00"


def test_space_delimited_search_with_limit_and_csv(data_dir: Path) -> None:
    pattern = "[ip, id, user, time, request, status = 404, bytes]"
    assert len(search(data_dir, pattern)) == 2
    per_message = "[..., status = 404, ...]"  # two `...`: SQL prefilter, then `mask`
    assert len(search(data_dir, per_message)) == 2
    assert len(search(data_dir, per_message, "--limit", "1")) == 1
    assert [r["message"] for r in search(data_dir, "{ $.* = 2300 }")] == ["slow req-3"]
    result = run(
        "logs",
        "filter",
        pattern,
        *WINDOW,
        "--limit",
        "1",
        "--output",
        "csv",
        "--data-dir",
        str(data_dir),
    )
    table = list(csv.reader(io.StringIO(result.output)))
    assert table[0] == ["time", "cluster", "service", "container", "level", "message"]
    assert len(table) == 2 and "frank" in table[1][-1]


def test_table_output_counts_rows(data_dir: Path) -> None:
    result = run("logs", "filter", "%req-[12]%", *WINDOW, "--data-dir", str(data_dir))
    assert result.exit_code == 0 and "2 rows" in result.output and "boom req-1" in result.output


def test_a_bad_pattern_is_one_line_and_exit_2(data_dir: Path) -> None:
    result = run("logs", "filter", "{ $.a = 1 ) }", "--data-dir", str(data_dir))
    assert isinstance(result.exception, UserError)
    assert "unexpected ')' at position 11" in result.exception.problem
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "ecsguard",
            "logs",
            "test-metric-filter",
            "--filter-pattern",
            "%a(b%",
            "--log-event-messages",
            "x",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.returncode == 2 and process.stdout == ""
    assert "Traceback" not in process.stderr
    assert process.stderr.startswith("ecsguard: error: '(' is not allowed in a regex at position 3")


def test_a_store_duckdb_cannot_read_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "store" / "logs" / "dt=2026-01-05" / "hour=10"
    broken.mkdir(parents=True)
    (broken / "part-0.parquet").write_bytes(b"not parquet at all")
    result = run("logs", "filter", "ERROR", *WINDOW, "--data-dir", str(tmp_path))
    assert isinstance(result.exception, UserError), result.output
    assert result.exception.problem.startswith("cannot open the store: ")


def test_a_store_with_a_wrong_column_type_is_a_clear_error(tmp_path: Path) -> None:
    partition = tmp_path / "store" / "logs" / "dt=2026-01-05" / "hour=10"
    partition.mkdir(parents=True)
    columns = {field.name: pa.array(["x"], pa.string()) for field in LOGS}  # time as text
    pq.write_table(pa.table(columns), partition / "part-0.parquet")
    result = run("logs", "filter", "ERROR", *WINDOW, "--data-dir", str(tmp_path))
    assert isinstance(result.exception, UserError), result.output
    assert result.exception.problem.startswith("search failed: Binder Error")


def test_metric_filter_prints_the_api_shape(tmp_path: Path) -> None:
    samples = tmp_path / "samples.log"
    samples.write_text('127.0.0.1 - bob [t] "GET /x" 404 10\nnothing here\n')
    result = run(
        "logs",
        "test-metric-filter",
        "--filter-pattern",
        "[ip, ..., status = 4*, size]",
        "--log-event-messages",
        "no",
        f"file://{samples}",
        '1.2.3.4 a b [c] "d" 418 5',
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "matches": [
            {
                "eventNumber": 2,
                "eventMessage": '127.0.0.1 - bob [t] "GET /x" 404 10',
                "extractedValues": {
                    "$ip": "127.0.0.1",
                    "$2": "-",
                    "$3": "bob",
                    "$4": "t",
                    "$5": "GET /x",
                    "$status": "404",
                    "$size": "10",
                },
            },
            {
                "eventNumber": 4,
                "eventMessage": '1.2.3.4 a b [c] "d" 418 5',
                "extractedValues": {
                    "$ip": "1.2.3.4",
                    "$2": "a",
                    "$3": "b",
                    "$4": "c",
                    "$5": "d",
                    "$status": "418",
                    "$size": "5",
                },
            },
        ]
    }


def test_metric_filter_terms_have_no_extracted_values() -> None:
    result = run(
        "logs",
        "test-metric-filter",
        "--filter-pattern",
        "ERROR",
        "--log-event-messages",
        "INFO ok",
        "ERROR bad",
    )
    assert json.loads(result.output) == {
        "matches": [{"eventNumber": 2, "eventMessage": "ERROR bad", "extractedValues": {}}]
    }
    none = run("logs", "test-metric-filter", "--filter-pattern", "ERROR", "INFO")
    assert json.loads(none.output) == {"matches": []}


def test_metric_filter_errors(tmp_path: Path) -> None:
    empty = run("logs", "test-metric-filter", "--filter-pattern", "ERROR", "--log-event-messages")
    assert isinstance(empty.exception, UserError)
    assert empty.exception.problem == "no log event messages to test"
    missing = run(
        "logs", "test-metric-filter", "--filter-pattern", "x", f"file://{tmp_path / 'nope.txt'}"
    )
    assert isinstance(missing.exception, UserError)
    assert (
        "cannot read" in missing.exception.problem and "No such file" in missing.exception.problem
    )
    binary = tmp_path / "binary.log"
    binary.write_bytes(b"\xff\xfe\x00bad")
    undecodable = run("logs", "test-metric-filter", "--filter-pattern", "x", f"file://{binary}")
    assert isinstance(undecodable.exception, UserError)
    assert "not UTF-8 text" in undecodable.exception.problem
