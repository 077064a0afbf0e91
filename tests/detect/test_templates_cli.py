"""`ecsguard logs patterns`: templates with counts over the store (Parquet and WAL alike)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from click.testing import CliRunner
from tests.cli.test_errors import assert_one_clear_error, ecsguard

from ecsguard.cli.main import cli
from ecsguard.detect.templates import store_patterns
from ecsguard.logs.pipeline import Pipeline
from ecsguard.logs.query.timerange import TimeRange
from ecsguard.logs.schema import LOGS

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
WINDOW = ["--start", "2026-11-28T09:00Z", "--end", "2026-11-28T10:00Z"]


def logs(lines: list[str], service: str, cluster: str = "prod", minute: int = 0) -> pa.RecordBatch:
    n = len(lines)
    columns: dict[str, list[Any]] = {name: [None] * n for name in LOGS.names}
    columns.update(
        time=[T0 + timedelta(minutes=minute, seconds=i) for i in range(n)],
        cluster=[cluster] * n,
        service=[service] * n,
        message=lines,
    )
    return pa.RecordBatch.from_pydict(columns, schema=LOGS)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    pipeline = Pipeline(tmp_path)
    try:
        orders = [f"GET /api/orders/{i} 200 in {i * 3} ms" for i in range(30)]
        logins = [f"user {i} logged in from 10.0.0.{i}" for i in range(10)]
        pipeline.ingest("logs", logs(orders[:20] + logins, "api"))
        pipeline.flush()  # these in Parquet...
        pipeline.ingest("logs", logs(orders[20:], "api", minute=30))  # ...these in the WAL
        pipeline.ingest("logs", logs([f"job {i} done" for i in range(5)], "worker"))
        pipeline.ingest("logs", logs(["job 1 done"], "worker", cluster="dev"))
        pipeline.ingest("logs", logs(["too late"], "api", minute=90))  # outside the window
    finally:
        pipeline.close()
    return tmp_path


def patterns(store: Path, *args: str) -> Any:
    result = CliRunner().invoke(
        cli, ["logs", "patterns", "--data-dir", str(store), *WINDOW, *args], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_patterns_with_counts_ratios_and_samples(store: Path) -> None:
    found = json.loads(patterns(store, "--output", "json"))
    summary = [(p["cluster"], p["service"], p["pattern"], p["count"]) for p in found]
    assert summary == [
        ("prod", "api", "GET /api/orders/<NUM> <NUM> in <NUM> ms", 30),
        ("prod", "api", "user <NUM> logged in from <IP>", 10),
        ("prod", "worker", "job <NUM> done", 5),
        ("dev", "worker", "job <NUM> done", 1),
    ]
    top = found[0]
    assert top["ratio"] == 0.75 and top["sample"] == "GET /api/orders/0 200 in 0 ms"
    assert top["first_seen"].startswith("2026-11-28T09:00:00")
    assert top["last_seen"].startswith("2026-11-28T09:30:09")


def test_filters_limit_and_table(store: Path) -> None:
    only = json.loads(
        patterns(store, "--service", "worker", "--cluster", "dev", "--output", "json")
    )
    assert [(p["pattern"], p["ratio"], p["sample"]) for p in only] == [
        ("job <NUM> done", 1.0, "job 1 done")
    ]
    text = patterns(store, "--limit", "1")
    assert "GET /api/orders/<NUM> <NUM> in <NUM> ms" in text and "75.0%" in text
    assert "1 patterns (of 4) in 46 lines" in text


def test_an_empty_window(store: Path) -> None:
    text = patterns(store, "--service", "nobody")
    assert "0 patterns in 0 lines" in text


def test_lines_stream_in_batches(store: Path) -> None:
    pipeline = Pipeline(store)
    try:
        window = TimeRange(T0, T0 + timedelta(hours=1))
        small = store_patterns(pipeline.connect(), window, batch_rows=7)
        whole = store_patterns(pipeline.connect(), window)
    finally:
        pipeline.close()
    assert [(p.pattern, p.count) for p in small] == [(p.pattern, p.count) for p in whole]


def test_bad_window_is_one_clear_error(tmp_path: Path) -> None:
    assert_one_clear_error(
        ecsguard("logs", "patterns", "--since", "soon", "--data-dir", str(tmp_path)),
        "cannot read the duration",
    )
