"""Run a query through Athena: StartQueryExecution, poll GetQueryExecution, page GetQueryResults.

Athena answers every value as text with the column's type beside it; `_value` turns the common
types back into Python values so the CLI prints Athena's rows as it prints DuckDB's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions as bce

from ecsguard.aws.session import AwsSession
from ecsguard.core.errors import AwsAccessError, UserError

DONE = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})
_INTEGERS = frozenset({"tinyint", "smallint", "integer", "int", "bigint"})
_FLOATS = frozenset({"double", "float", "real"})


@dataclass
class AthenaResult:
    query_id: str
    columns: list[str]
    rows: list[tuple[Any, ...]]
    scanned_bytes: int = 0
    states: list[str] = field(default_factory=list)  # each state seen while polling


def run_query(
    session: AwsSession,
    sql: str,
    *,
    database: str,
    workgroup: str | None = None,
    output: str | None = None,
    poll_seconds: float = 0.5,
    timeout: float = 600.0,
    sleep: Callable[[float], None] = time.sleep,
) -> AthenaResult:
    """Run `sql` in `database` and return all its rows; UserError if Athena refuses or fails it."""
    client = session.client("athena")
    request: dict[str, Any] = {
        "QueryString": sql,
        "QueryExecutionContext": {"Database": database},
    }
    if workgroup:
        request["WorkGroup"] = workgroup
    if output:
        request["ResultConfiguration"] = {"OutputLocation": output}
    query_id = _call(lambda: client.start_query_execution(**request))["QueryExecutionId"]
    result = AthenaResult(query_id, [], [])
    deadline = time.monotonic() + timeout
    while True:
        execution = _call(lambda: client.get_query_execution(QueryExecutionId=query_id))
        status = execution["QueryExecution"]["Status"]
        state = status["State"]
        if not result.states or result.states[-1] != state:
            result.states.append(state)
        if state in DONE:
            break
        if time.monotonic() > deadline:
            _call(lambda: client.stop_query_execution(QueryExecutionId=query_id))
            raise UserError(
                f"the Athena query {query_id} ran longer than {timeout:.0f} s and was stopped",
                "narrow the time window, or look at it in the Athena console",
            )
        sleep(poll_seconds)
    if state != "SUCCEEDED":
        reason = status.get("StateChangeReason") or status.get("AthenaError", {}).get(
            "ErrorMessage", "no reason given"
        )
        raise UserError(
            f"the Athena query {query_id} {state.lower()}: {reason}",
            "check the table DDL (`ecsguard athena ddl`) and the SQL (--show-sql prints it)",
        )
    stats = execution["QueryExecution"].get("Statistics", {})
    result.scanned_bytes = int(stats.get("DataScannedInBytes", 0))
    _read_results(client, query_id, result)
    return result


def _read_results(client: Any, query_id: str, result: AthenaResult) -> None:
    paginator = client.get_paginator("get_query_results")
    types: list[str] = []
    first = True
    for page in _call(lambda: list(paginator.paginate(QueryExecutionId=query_id))):
        result_set = page.get("ResultSet", {})
        if not types:
            info = result_set.get("ResultSetMetadata", {}).get("ColumnInfo", [])
            result.columns = [c.get("Label") or c["Name"] for c in info]
            types = [c.get("Type", "varchar").lower() for c in info]
        rows = result_set.get("Rows", [])
        if first and rows and _texts(rows[0]) == result.columns:
            rows = rows[1:]  # a SELECT's first row repeats the column names
        first = False
        for row in rows:
            texts = _texts(row)
            result.rows.append(tuple(_value(t, k) for t, k in zip(texts, types, strict=False)))


def _texts(row: dict[str, Any]) -> list[str | None]:
    return [cell.get("VarCharValue") for cell in row.get("Data", [])]


def _value(text: str | None, kind: str) -> Any:
    if text is None:
        return None
    try:
        if kind in _INTEGERS:
            return int(text)
        if kind in _FLOATS or kind.startswith("decimal"):
            return float(text)
    except ValueError:
        return text
    if kind == "boolean":
        return text == "true"
    return text


def _call(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except bce.ClientError as err:
        info = err.response.get("Error", {})
        code, message = info.get("Code", "Error"), info.get("Message", "")
        if code in {"AccessDeniedException", "UnrecognizedClientException", "AccessDenied"}:
            raise AwsAccessError(
                f"Athena refused the request: {code}: {message}",
                "the identity needs athena:StartQueryExecution, GetQueryExecution, "
                "GetQueryResults, glue:GetTable and S3 rights on the store and the output",
            ) from None
        raise UserError(
            f"Athena refused the query: {code}: {message}",
            "check --athena-workgroup, --athena-output (s3://bucket/prefix/) and --athena-database",
        ) from None
    except bce.NoCredentialsError:
        raise AwsAccessError(
            "no AWS credentials for Athena",
            "set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run `aws configure`",
        ) from None
    except (bce.EndpointConnectionError, bce.ConnectTimeoutError) as err:
        raise AwsAccessError(
            f"cannot reach Athena: {err}", "check the network, --region and --endpoint-url"
        ) from None
