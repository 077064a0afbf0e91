"""Spark in local mode reads the store as it is (Hive partitions, zstd Parquet) and computes
the same aggregates as DuckDB."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from ecsguard.logs.schema import LOGS
from ecsguard.logs.service import LogService

pytestmark = pytest.mark.slow

T0 = dt.datetime(2026, 3, 1, 22, 40, tzinfo=dt.UTC)


def records(count: int) -> pa.RecordBatch:
    # across a day boundary, so the store writes several dt=/hour= partitions
    return pa.RecordBatch.from_pylist(
        [
            {
                "time": T0 + dt.timedelta(seconds=37 * i),
                "cluster": "prod",
                "service": ["api", "web", "worker"][i % 3],
                "level": ["INFO", "WARN", "ERROR", "INFO"][i % 4],
                "message": f"request {i}",
                "fields": f'{{"latency_ms": {i % 250}}}',
                "id": f"id-{i}",
            }
            for i in range(count)
        ],
        schema=LOGS,
    )


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    pyspark_sql = pytest.importorskip("pyspark.sql")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.fail("Spark needs Java 17 (apt-get install openjdk-17-jre-headless)")
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    session = (
        pyspark_sql.SparkSession.builder.master("local[1]")
        .appName("ecsguard-store-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def test_spark_reads_the_store_with_duckdbs_answers(spark: Any, tmp_path: Path) -> None:
    service = LogService(tmp_path)
    for start in range(0, 6000, 2000):  # several flushes: several files per partition
        batch = records(6000).slice(start, 2000)
        service.store("logs", batch)
        service.flush_once()
    con = service.connect()
    duck_counts = con.sql(
        "SELECT service, level, count(*) FROM logs GROUP BY ALL ORDER BY 1, 2"
    ).fetchall()
    duck_sum = con.execute(
        "SELECT sum(CAST(json_extract_string(fields, '$.latency_ms') AS BIGINT)) FROM logs"
    ).fetchall()[0]
    duck_parts = con.sql(
        "SELECT dt, hour, count(*) FROM logs GROUP BY ALL ORDER BY 1, 2"
    ).fetchall()
    service.stop()

    root = str(tmp_path / "store" / "logs")
    frame = spark.read.option("basePath", root).parquet(root)
    assert {"dt", "hour"} <= set(frame.columns)  # partition columns from the Hive paths
    frame.createOrReplaceTempView("logs")
    spark_counts = [
        tuple(row)
        for row in spark.sql(
            "SELECT service, level, count(*) FROM logs GROUP BY service, level ORDER BY 1, 2"
        ).collect()
    ]
    spark_sum = spark.sql(
        "SELECT sum(CAST(get_json_object(fields, '$.latency_ms') AS BIGINT)) FROM logs"
    ).collect()[0][0]
    spark_parts = [
        (row[0], row[1], row[2])
        for row in spark.sql(
            "SELECT dt, hour, count(*) FROM logs GROUP BY dt, hour ORDER BY 1, 2"
        ).collect()
    ]
    assert sum(c for *_, c in spark_counts) == 6000
    assert spark_counts == duck_counts
    assert spark_sum == duck_sum[0] == sum(i % 250 for i in range(6000))
    assert spark_parts == duck_parts
    assert len(spark_parts) > 2  # the day boundary was crossed
