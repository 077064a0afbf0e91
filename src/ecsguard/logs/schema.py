"""The fixed table schemas (DESIGN.md "Tables"): every receiver produces batches of one of these.

Times are UTC `timestamp[us]`. JSON-valued columns hold JSON text. `id` (logs, events, metrics)
and `event_id` (cloudtrail) identify a record across WAL replays and client retries, so neither
duplicates query results.
"""

from __future__ import annotations

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")

LOGS = pa.schema(
    [
        ("time", TS),
        ("ingest_time", TS),
        ("account", pa.string()),
        ("region", pa.string()),
        ("cluster", pa.string()),
        ("service", pa.string()),
        ("task", pa.string()),
        ("task_definition", pa.string()),
        ("container", pa.string()),
        ("stream", pa.string()),
        ("level", pa.string()),
        ("message", pa.string()),
        ("fields", pa.string()),  # JSON object of parsed fields, or null
        ("source", pa.string()),  # receiver: firelens, forward, cloudwatch, ingest, ...
        ("id", pa.string()),
        # the record's request id (records.request_ids): an index for needle lookups, appended
        # last so files and WAL segments written before it read it as null ("not indexed")
        ("request_id", pa.string()),
    ]
)

CLOUDTRAIL = pa.schema(
    [
        ("time", TS),
        ("event_id", pa.string()),
        ("event_source", pa.string()),
        ("event_name", pa.string()),
        ("aws_region", pa.string()),
        ("source_ip", pa.string()),
        ("user_agent", pa.string()),
        ("identity_type", pa.string()),
        ("identity_arn", pa.string()),
        ("access_key_id", pa.string()),
        ("account", pa.string()),
        ("error_code", pa.string()),
        ("read_only", pa.bool_()),
        ("request_parameters", pa.string()),
        ("response_elements", pa.string()),
        ("resources", pa.string()),
        # MFAUsed of a console sign-in, LoginTo, ...: what detections of sign-ins need
        ("additional_event_data", pa.string()),
        ("event_type", pa.string()),  # AwsApiCall, AwsConsoleSignIn, AwsServiceEvent, ...
        ("error_message", pa.string()),
        ("user_identity", pa.string()),  # the whole userIdentity (session context, issuer)
    ]
)

EVENTS = pa.schema(
    [
        ("time", TS),
        ("id", pa.string()),
        ("source", pa.string()),
        ("detail_type", pa.string()),
        ("account", pa.string()),
        ("region", pa.string()),
        ("resources", pa.string()),
        ("detail", pa.string()),
    ]
)

METRICS = pa.schema(
    [
        ("time", TS),
        ("namespace", pa.string()),
        ("name", pa.string()),
        ("dimensions", pa.string()),
        ("value", pa.float64()),
        ("unit", pa.string()),
        # content and position of the datapoint (records.metric_ids): a resent body stores once;
        # appended last, so files and WAL segments written before it read it as null
        ("id", pa.string()),
    ]
)

TABLES: dict[str, pa.Schema] = {
    "logs": LOGS,
    "cloudtrail": CLOUDTRAIL,
    "events": EVENTS,
    "metrics": METRICS,
}

#: the column that identifies a record, for de-duplication after a WAL replay
ID_COLUMN = {"logs": "id", "cloudtrail": "event_id", "events": "id", "metrics": "id"}
#: rows are sorted by these inside a file so row-group statistics prune; a task definition's
#: lines sit together, so repeated texts compress together (3% smaller than by time alone)
SORT_KEYS = {
    "logs": ["cluster", "service", "task_definition", "time"],
    "cloudtrail": ["event_source", "time"],
    "events": ["source", "time"],
    "metrics": ["namespace", "name", "time"],
}


def table_schema(name: str) -> pa.Schema:
    from ecsguard.core.errors import UserError

    if name not in TABLES:
        raise UserError(f"unknown table {name!r}", f"known: {', '.join(TABLES)}")
    return TABLES[name]


def upgrade(data: pa.Table, schema: pa.Schema) -> pa.Table:
    """`data` written under an older schema (a WAL segment, a Parquet file) in `schema`: columns
    added since then are null. New columns are only ever appended and nullable."""
    for index, column in enumerate(schema):
        if column.name not in data.column_names:
            data = data.add_column(index, column, pa.nulls(data.num_rows, column.type))
    return data.select(schema.names).cast(schema)
