"""The commands that read or write the store take --store s3://… (a real moto server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.logs.s3util import keys, new_bucket

from ecsguard.cli.main import cli
from ecsguard.core.errors import UserError
from ecsguard.demo.emulator import MotoServer

LINES = "\n".join(
    json.dumps(
        {
            "time": f"2026-03-01T10:{i:02}:00Z",
            "level": "ERROR" if i % 3 else "INFO",
            "message": f"request {i} failed",
            "latency_ms": i,
        }
    )
    for i in range(12)
)


def run(args: list[str], tmp_path: Path, store: str) -> str:
    env = {"ECSGUARD_DATA": str(tmp_path / "data"), "ECSGUARD_STORE": store}
    result = CliRunner().invoke(cli, args, env=env)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result.stdout


def test_ingest_and_query_through_the_s3_store(aws_env: MotoServer, tmp_path: Path) -> None:
    bucket = new_bucket(aws_env)
    store = f"s3://{bucket}/ecs"
    source = tmp_path / "app.log"
    source.write_text(LINES)
    out = run(["ingest", str(source), "--service", "api", "--cluster", "prod"], tmp_path, store)
    assert "stored 12 records" in out
    assert keys(aws_env, bucket)[0].startswith("ecs/logs/dt=2026-03-01/hour=10/")
    query = [
        "logs",
        "query",
        "--sql",
        "SELECT level, count(*) AS n FROM logs GROUP BY 1 ORDER BY 1",
        "--output",
        "json",
    ]
    assert json.loads(run(query, tmp_path, store)) == [
        {"level": "ERROR", "n": 8},
        {"level": "INFO", "n": 4},
    ]
    insights = [
        "logs",
        "query",
        "filter latency_ms >= 10 | stats count(*) as n by service",
        "--start",
        "2026-03-01T00:00Z",
        "--end",
        "2026-03-02T00:00Z",
        "--output",
        "json",
    ]
    assert json.loads(run(insights, tmp_path, store)) == [{"service": "api", "n": 2}]
    found = run(
        [
            "logs",
            "filter",
            "failed",
            "--start",
            "2026-03-01T00:00Z",
            "--end",
            "2026-03-02T00:00Z",
            "--output",
            "json",
            "--limit",
            "0",
        ],
        tmp_path,
        store,
    )
    assert len(json.loads(found)) == 12
    # the local store under the data directory stays empty: everything went to S3
    assert not (tmp_path / "data" / "store").exists()
    local = ["logs", "query", "--sql", "SELECT count(*) AS n FROM logs", "--output", "json"]
    assert json.loads(run(local, tmp_path, "")) == [{"n": 0}]


def test_a_missing_bucket_stops_the_command_clearly(aws_env: MotoServer, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="'ecsguard-absent-bucket' of the store does not exist"):
        run(["logs", "query", "--sql", "SELECT 1"], tmp_path, "s3://ecsguard-absent-bucket/x")
