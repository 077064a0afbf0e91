"""Glue / Athena DDL for the store's tables (`ecsguard athena ddl`).

One `CREATE EXTERNAL TABLE` per table over `<store>/<table>/`, with the columns of
ecsguard.logs.schema and the Hive partition keys the store writes (store.partition_name):
`dt=YYYY-MM-DD` for every table, `hour=HH` as well for logs. Partition projection computes the
partitions from those names, so no crawler or MSCK REPAIR is needed as new hours arrive. The
partition columns have the types DuckDB gives them (`dt` date, `hour` int), so a query's
partition filters read the same on both engines.
"""

from __future__ import annotations

import re

import pyarrow as pa

from ecsguard.core.errors import UserError
from ecsguard.logs.schema import TABLES
from ecsguard.logs.store import HOURLY

DEFAULT_DATABASE = "ecsguard"
#: the first day projected; Athena lists nothing before it
DEFAULT_FIRST_DAY = "2020-01-01"
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,254}$")


def athena_type(arrow: pa.DataType) -> str:
    if pa.types.is_timestamp(arrow):
        return "timestamp"
    if pa.types.is_string(arrow) or pa.types.is_large_string(arrow):
        return "string"
    if pa.types.is_boolean(arrow):
        return "boolean"
    if pa.types.is_float64(arrow):
        return "double"
    if pa.types.is_int64(arrow):
        return "bigint"
    if pa.types.is_int32(arrow):
        return "int"
    raise ValueError(f"no Athena type for {arrow}")  # a new schema type needs a line here


def check_database(name: str) -> str:
    if not _NAME.match(name):
        raise UserError(
            f"{name!r} is not a Glue database name",
            "use lower-case letters, digits and underscores, such as ecsguard_logs",
        )
    return name


def create_table(table: str, location: str, database: str, first_day: str) -> str:
    """The CREATE EXTERNAL TABLE statement of one table whose files lie under `location`."""
    base = location.rstrip("/") + f"/{table}/"
    columns = ",\n".join(f"  `{field.name}` {athena_type(field.type)}" for field in TABLES[table])
    hourly = table in HOURLY
    partitions = "`dt` date, `hour` int" if hourly else "`dt` date"
    template = base + ("dt=${dt}/hour=${hour}/" if hourly else "dt=${dt}/")
    properties = [
        ("projection.enabled", "true"),
        ("projection.dt.type", "date"),
        ("projection.dt.format", "yyyy-MM-dd"),
        ("projection.dt.range", f"{first_day},NOW"),
        ("projection.dt.interval", "1"),
        ("projection.dt.interval.unit", "DAYS"),
    ]
    if hourly:
        properties += [
            ("projection.hour.type", "integer"),
            ("projection.hour.range", "0,23"),
            ("projection.hour.digits", "2"),
        ]
    properties += [
        ("storage.location.template", template),
        ("parquet.compression", "ZSTD"),
    ]
    props = ",\n".join(f"  '{key}' = '{value}'" for key, value in properties)
    return (
        f"CREATE EXTERNAL TABLE IF NOT EXISTS `{database}`.`{table}` (\n{columns}\n)\n"
        f"PARTITIONED BY ({partitions})\n"
        "STORED AS PARQUET\n"
        f"LOCATION '{base}'\n"
        f"TBLPROPERTIES (\n{props}\n)"
    )


def statements(
    location: str, database: str = DEFAULT_DATABASE, first_day: str = DEFAULT_FIRST_DAY
) -> list[str]:
    """CREATE DATABASE, then one CREATE EXTERNAL TABLE per table (Athena runs one at a time)."""
    if not location.startswith("s3://"):
        raise UserError(
            "Athena reads the store only on S3",
            "pass --store s3://bucket/prefix (or set ECSGUARD_STORE)",
        )
    if "'" in location:
        raise UserError(f"the store URL {location!r} contains a quote", "use a plain S3 prefix")
    check_database(database)
    if not re.match(r"^\d{4}-\d{2}-\d{2}$", first_day):
        raise UserError(f"--first-day {first_day} is not a date", "write YYYY-MM-DD")
    found = [f"CREATE DATABASE IF NOT EXISTS `{database}`"]
    found += [create_table(table, location, database, first_day) for table in TABLES]
    return found
