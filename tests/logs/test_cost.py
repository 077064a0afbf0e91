"""`ecsguard cost`: the monthly comparison, checked against hand arithmetic on the price file."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ecsguard.cli.main import cli
from ecsguard.core.errors import UserError
from ecsguard.logs.cost import estimate, fargate_tasks, prices


def test_cloudwatch_side_is_the_published_arithmetic() -> None:
    result = estimate(100, 30, "us-east-1")
    lines = {line.item: line for line in result.lines}
    gzip = prices()["measured"]["gzip_bytes_per_raw_byte"]
    assert lines["ingestion"].cloudwatch == pytest.approx(3000 * 0.50)
    assert lines["storage"].cloudwatch == pytest.approx(3000 * gzip * 0.03)
    assert lines["queries"].cloudwatch == pytest.approx(3000 * 0.005)
    assert result.cloudwatch_total == pytest.approx(1500 + 3000 * gzip * 0.03 + 15)


def test_pipeline_side_scales_with_volume_and_is_far_cheaper() -> None:
    small, large = estimate(10, 30, "ap-northeast-1"), estimate(10_000, 30, "ap-northeast-1")
    assert small.ecsguard_total < large.ecsguard_total
    assert large.ecsguard_total < large.cloudwatch_total / 10
    parquet = prices()["measured"]["parquet_bytes_per_raw_byte"]
    storage = {line.item: line for line in large.lines}["storage"]
    assert storage.ecsguard == pytest.approx(10_000 * 30 * parquet * 0.025)
    ratio = large.ecsguard_total / large.cloudwatch_total
    assert large.as_dict()["ratio"] == pytest.approx(ratio, abs=1e-4)


def test_fargate_sizing() -> None:
    assert fargate_tasks(0.1) == (1, 0.5, 1.0)
    assert fargate_tasks(0.8) == (1, 1.0, 2.0)
    assert fargate_tasks(3) == (3, 1.0, 2.0)  # one serve uses one core: more tasks, not bigger
    assert fargate_tasks(8.5) == (9, 1.0, 2.0)


def test_every_region_names_its_sources() -> None:
    data = prices()
    assert data["checked"]
    for region in data["regions"].values():
        for service in region.values():
            assert service["source"].startswith("https://aws.amazon.com/")


@pytest.mark.parametrize(
    ("args", "message"),
    [((0, 30, "us-east-1"), "must be positive"), ((1, 30, "mars-1"), "no prices for region")],
)
def test_bad_input(args: tuple[float, int, str], message: str) -> None:
    with pytest.raises(UserError, match=message):
        estimate(*args)


def test_cli_table_and_json() -> None:
    runner = CliRunner()
    text = runner.invoke(cli, ["cost", "--gb-per-day", "50", "--retention-days", "30"])
    assert text.exit_code == 0, text.output
    assert "CloudWatch Logs" in text.output and "% of CloudWatch Logs" in text.output
    out = runner.invoke(
        cli, ["cost", "--gb-per-day", "50", "--region", "us-east-1", "--output", "json"]
    )
    data = json.loads(out.output)
    assert data["cloudwatch_logs_usd_per_month"] > data["ecsguard_usd_per_month"] > 0
    assert [line["item"] for line in data["lines"]][:3] == ["ingestion", "storage", "queries"]
