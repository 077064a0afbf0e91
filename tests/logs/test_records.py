from __future__ import annotations

import pytest

from ecsguard.logs.records import (
    LogRows,
    ReceiverOptions,
    build_batch,
    leading_time,
    level_from_text,
    normalize_level,
    parse_time,
    record_id,
    structured,
)
from ecsguard.logs.schema import EVENTS, LOGS

T0 = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z


@pytest.mark.parametrize(
    "value",
    [
        1_704_067_200,
        1_704_067_200.0,
        1_704_067_200_000,
        1_704_067_200_000_000,
        1_704_067_200_000_000_000,
        "1704067200",
        "2024-01-01T00:00:00Z",
        "2024-01-01T09:00:00+09:00",
        "2024-01-01 00:00:00,000",
        "2024-01-01T00:00:00",
    ],
)
def test_parse_time_units_and_formats(value: object) -> None:
    assert parse_time(value) == T0


@pytest.mark.parametrize(
    "value", [None, True, "soon", float("nan"), -5, "", [1], "9999999999999999999999"]
)
def test_parse_time_rejects_garbage(value: object) -> None:
    assert parse_time(value) is None


def test_leading_time_of_plain_lines() -> None:
    assert leading_time("2024-01-01T00:00:00.123456789Z GET /") == T0 + 123456
    assert leading_time("[2024-01-01 00:00:00] boot") == T0
    assert leading_time("GET / 2024-01-01") is None


def test_levels() -> None:
    assert normalize_level("warning") == "WARN"
    assert normalize_level(50) == "ERROR"
    assert normalize_level("Custom") == "CUSTOM"
    assert normalize_level(True) is None
    assert level_from_text("2024 [ERROR] db down") == "ERROR"
    assert level_from_text('ts=1 level=warn msg="x"') == "WARN"
    assert level_from_text("see the docs for more info") is None
    assert level_from_text("Traceback (most recent call last):") == "ERROR"


def test_structured_picks_time_level_message() -> None:
    obj = {"@timestamp": "2024-01-01T00:00:00Z", "severity": "error", "msg": "boom"}
    assert structured(obj, "raw") == (T0, "ERROR", "boom")
    assert structured({"a": 1}, "raw") == (None, None, "raw")
    # a level word in the message counts when no level field exists
    assert structured({"message": "WARN disk"}, "raw").level == "WARN"


def test_record_id_is_deterministic_and_sensitive() -> None:
    base = record_id("ingest", "t/c/stdout", T0, "hello", 0)
    assert base == record_id("ingest", "t/c/stdout", T0, "hello", 0)
    assert len(base) == 32
    others = {
        record_id("firelens", "t/c/stdout", T0, "hello", 0),
        record_id("ingest", "t/c/stderr", T0, "hello", 0),
        record_id("ingest", "t/c/stdout", T0 + 1, "hello", 0),
        record_id("ingest", "t/c/stdout", None, "hello", 0),
        record_id("ingest", "t/c/stdout", T0, "hello!", 0),
        record_id("ingest", "t/c/stdout", T0, "hello", 1),
    }
    assert base not in others and len(others) == 6
    record_id("x", "y", None, "lone surrogate \ud800", 0)  # must not raise


def test_build_batch_fills_constants_and_nulls() -> None:
    batch = build_batch(EVENTS, {"time": [T0, T0], "id": ["a", "b"]}, {"source": "aws.ecs"})
    assert batch.schema == EVENTS
    assert batch.column("source").to_pylist() == ["aws.ecs", "aws.ecs"]
    assert batch.column("detail").null_count == 2
    with pytest.raises(ValueError):
        build_batch(EVENTS, {"time": [T0], "id": ["a", "b"]})


def test_log_rows_batch_has_the_logs_schema() -> None:
    rows = LogRows()
    for name, value in (("time", T0), ("level", None), ("message", "m"), ("fields", None)):
        rows.columns[name].append(value)
    rows.columns["id"].append("x")
    batch = rows.batch(ReceiverOptions(cluster="prod"), "ingest", T0)
    assert batch.schema == LOGS
    row = batch.to_pylist()[0]
    assert row["cluster"] == "prod" and row["source"] == "ingest" and row["service"] is None
    with pytest.raises(ValueError):
        LogRows(("nope",))
