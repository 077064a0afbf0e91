"""`ecsguard ingest` and `ecsguard logs query` end to end, through the WAL and the store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.cli.test_errors import assert_one_clear_error, ecsguard

SAMPLES = Path(__file__).parents[2].parent / "shared" / "testdata" / "logs" / "samples"


def run_with_stdin(data: bytes, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ecsguard", *args],
        input=data.decode(),
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )


def test_lines_from_stdin_keep_bad_json_as_text(tmp_path: Path) -> None:
    lines = (
        b'{"time": "2026-11-28T10:00:00Z", "level": "error", "message": "boom req-42"}\n'
        b"plain text line\n{broken json\n"
    )
    run = run_with_stdin(
        lines, "ingest", "-", "--cluster", "prod", "--service", "api", "--data-dir", str(tmp_path)
    )
    assert run.returncode == 0, run.stderr
    assert "stored 3 records in logs" in run.stdout and "1 problems" in run.stdout
    query = ecsguard(
        "logs",
        "query",
        "--data-dir",
        str(tmp_path),
        "--output",
        "json",
        "--sql",
        "SELECT level, message, fields FROM logs ORDER BY message",
    )
    rows = json.loads(query.stdout)
    assert [r["message"] for r in rows] == ["boom req-42", "plain text line", "{broken json"]
    assert json.loads(rows[2]["fields"]) == {"_unparsed": True}
    assert rows[0]["level"] == "ERROR"


def test_firelens_sample_through_the_store(tmp_path: Path) -> None:
    sample = SAMPLES / "fluentbit-http-json_lines.constructed.jsonl"
    run = ecsguard("ingest", str(sample), "--format", "firelens", "--data-dir", str(tmp_path))
    assert run.returncode == 0, run.stderr
    query = ecsguard(
        "logs",
        "query",
        "--data-dir",
        str(tmp_path),
        "--output",
        "json",
        "--sql",
        "SELECT count(*) AS n, count(cluster) AS with_cluster FROM logs",
    )
    [row] = json.loads(query.stdout)
    assert row["n"] >= 1 and row["with_cluster"] == row["n"]
    assert list((tmp_path / "store" / "logs").rglob("*.parquet")), "flushed to Parquet"


def test_query_errors_are_one_line(tmp_path: Path) -> None:
    assert_one_clear_error(
        ecsguard("logs", "query", "--data-dir", str(tmp_path), "--sql", "SELEC nope"),
        "query failed",
    )
    assert_one_clear_error(
        ecsguard("ingest", str(tmp_path / "missing.log"), "--data-dir", str(tmp_path)),
        "missing.log",
    )


def test_ingest_again_says_what_it_skipped(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"one\ntwo\n")
    args = ("ingest", str(log), "--data-dir", str(tmp_path / "data"))
    assert "stored 2 records" in ecsguard(*args).stdout
    again = ecsguard(*args)
    assert again.returncode == 0, again.stderr
    assert "stored 0 records" in again.stdout
    assert "1 file unchanged since stored, skipped (--from-start reads it again)" in again.stdout
    with log.open("ab") as out:
        out.write(b"three\n")
    grown = ecsguard(*args)
    assert (
        "stored 1 records" in grown.stdout and "1 file read from the first new line" in grown.stdout
    )
    assert_one_clear_error(
        ecsguard("ingest", "--from-s3", "s3://bucket/x", "--from-start", *args[2:]),
        "--from-start is for SOURCE files",
    )


def test_ingest_joins_stack_traces_with_multiline(tmp_path: Path) -> None:
    log = tmp_path / "java.log"
    log.write_text(
        "2026-11-29 10:00:00 ERROR request failed\n"
        "java.lang.IllegalStateException: boom\n"
        "\tat com.example.Foo.bar(Foo.java:10)\n"
        "2026-11-29 10:00:01 INFO next\n"
    )
    data = str(tmp_path / "data")
    run = ecsguard("ingest", str(log), "--multiline", "--data-dir", data)
    assert "stored 2 records in logs" in run.stdout, run.stderr
    query = ecsguard(
        "logs", "query", "--data-dir", data, "--output", "json", "--sql",
        "SELECT level, message FROM logs ORDER BY time",
    )  # fmt: skip
    first, second = json.loads(query.stdout)
    assert first["level"] == "ERROR" and first["message"].endswith("(Foo.java:10)")
    assert second["message"] == "2026-11-29 10:00:01 INFO next"
    assert_one_clear_error(
        ecsguard("ingest", str(log), "--format", "firelens", "--multiline", "--data-dir", data),
        "--multiline joins the lines of --format lines",
    )
    assert_one_clear_error(
        ecsguard("ingest", str(log), "--multiline-start", "(?=x)", "--data-dir", data),
        "invalid multiline start pattern",
    )
