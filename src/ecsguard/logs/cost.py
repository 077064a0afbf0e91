"""A month of CloudWatch Logs beside a month of this pipeline on S3, from published prices
(prices.yaml, with sources and the date they were checked) and this pipeline's measured ratios.

The model is steady state: the month is one in which the retention window is already full.
CloudWatch Logs bills ingestion on raw bytes, storage on gzip-compressed bytes and Insights on raw
bytes scanned. This pipeline stores zstd Parquet on S3 (storage and requests), answers ad-hoc
queries with Athena (billed on compressed Parquet bytes scanned, before column pruning, so the
figure is an upper bound) and runs its receivers on Fargate with twice the average load's cores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from ecsguard.core.errors import UserError

DAYS_PER_MONTH = 30
HOURS_PER_MONTH = 730
#: cores provisioned per core of average load (peaks, restarts, compaction)
HEADROOM = 2.0
#: a worker flushes every table to S3 at least once a minute; compaction rewrites those files once
FLUSHES_PER_WORKER_MONTH = DAYS_PER_MONTH * 24 * 60
#: Athena reads Parquet in ranged GETs of about this size
GET_BYTES = 8 * 1024 * 1024
#: Fargate task sizes (vCPU, GB) the estimate chooses from: one `ecsguard serve` per task, whose
#: receivers use one core (its Python threads take turns on the interpreter lock, and serve keeps
#: them on one CPU), so more is many 1-vCPU tasks, not bigger ones (the price is the same)
TASK_SIZES = [(0.5, 1.0), (1.0, 2.0)]


def prices() -> dict[str, Any]:
    text = resources.files("ecsguard.logs").joinpath("prices.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


@dataclass(frozen=True)
class Line:
    item: str
    cloudwatch: float
    ecsguard: float
    basis: str


@dataclass
class Estimate:
    region: str
    gb_per_day: float
    retention_days: int
    scanned_gb_per_day: float
    checked: str
    lines: list[Line] = field(default_factory=list)

    @property
    def cloudwatch_total(self) -> float:
        return sum(line.cloudwatch for line in self.lines)

    @property
    def ecsguard_total(self) -> float:
        return sum(line.ecsguard for line in self.lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "gb_per_day": self.gb_per_day,
            "retention_days": self.retention_days,
            "scanned_gb_per_day": self.scanned_gb_per_day,
            "prices_checked": self.checked,
            "lines": [line.__dict__ for line in self.lines],
            "cloudwatch_logs_usd_per_month": round(self.cloudwatch_total, 2),
            "ecsguard_usd_per_month": round(self.ecsguard_total, 2),
            "ratio": round(self.ecsguard_total / self.cloudwatch_total, 4)
            if self.cloudwatch_total
            else None,
        }


def fargate_tasks(cores: float) -> tuple[int, float, float]:
    """(tasks, vCPU each, GB each): the smallest task size that fits, else 1-vCPU tasks."""
    for vcpu, gb in TASK_SIZES:
        if cores <= vcpu:
            return 1, vcpu, gb
    vcpu, gb = TASK_SIZES[-1]
    return math.ceil(cores / vcpu), vcpu, gb


def estimate(
    gb_per_day: float,
    retention_days: int,
    region: str,
    scanned_gb_per_day: float | None = None,
) -> Estimate:
    """The monthly cost lines; `scanned_gb_per_day` defaults to scanning each day's logs once."""
    if gb_per_day <= 0 or retention_days <= 0:
        raise UserError(
            "--gb-per-day and --retention-days must be positive",
            "e.g. --gb-per-day 50 --retention-days 30",
        )
    data = prices()
    if region not in data["regions"]:
        raise UserError(
            f"no prices for region {region!r}", f"known: {', '.join(sorted(data['regions']))}"
        )
    p = data["regions"][region]
    m = data["measured"]
    scanned = gb_per_day if scanned_gb_per_day is None else scanned_gb_per_day
    month_gb = gb_per_day * DAYS_PER_MONTH
    stored_raw_gb = gb_per_day * retention_days
    parquet_gb = stored_raw_gb * m["parquet_bytes_per_raw_byte"]
    scanned_parquet_gb = scanned * DAYS_PER_MONTH * m["parquet_bytes_per_raw_byte"]

    cores = HEADROOM * gb_per_day * 1000 / 86400 / m["ingest_mb_per_second_per_core"]
    tasks, vcpu, memory = fargate_tasks(cores)
    tables = 4
    # a busy table's files are its full WAL segments (measured per raw GB; never compacted),
    # on top of the once-a-minute flushes of every table and their compaction
    puts = month_gb * m["parquet_files_per_raw_gb"] + tasks * tables * FLUSHES_PER_WORKER_MONTH * 2
    gets = tasks * tables * FLUSHES_PER_WORKER_MONTH + scanned_parquet_gb * 1024**3 / GET_BYTES
    cwl, s3, athena, fargate = p["cloudwatch_logs"], p["s3"], p["athena"], p["fargate"]
    compute = (
        tasks
        * HOURS_PER_MONTH
        * (vcpu * fargate["per_vcpu_hour"] + memory * fargate["per_gb_hour"])
    )
    lines = [
        Line(
            "ingestion",
            month_gb * cwl["ingest_per_gb"],
            0.0,
            f"{month_gb:,.0f} GB/month; receiving into ecsguard has no per-GB fee",
        ),
        Line(
            "storage",
            stored_raw_gb * m["gzip_bytes_per_raw_byte"] * cwl["storage_per_gb_month"],
            parquet_gb * s3["storage_per_gb_month"],
            f"{stored_raw_gb:,.0f} GB raw kept: gzip x{m['gzip_bytes_per_raw_byte']} in "
            f"CloudWatch, Parquet x{m['parquet_bytes_per_raw_byte']} on S3",
        ),
        Line(
            "queries",
            scanned * DAYS_PER_MONTH * cwl["insights_per_gb_scanned"],
            scanned_parquet_gb / 1024 * athena["per_tb_scanned"],
            f"{scanned * DAYS_PER_MONTH:,.0f} GB raw scanned: Insights on raw bytes, "
            "Athena on Parquet bytes",
        ),
        Line(
            "S3 requests",
            0.0,
            puts / 1000 * s3["put_per_1000"] + gets / 1000 * s3["get_per_1000"],
            f"{puts:,.0f} PUT, {gets:,.0f} GET",
        ),
        Line(
            "compute",
            0.0,
            compute,
            f"{tasks} Fargate task(s) of {vcpu:g} vCPU / {memory:g} GB "
            f"at {m['ingest_mb_per_second_per_core']:g} MB/s per core measured",
        ),
    ]
    return Estimate(region, gb_per_day, retention_days, scanned, str(data["checked"]), lines)
