"""CloudTrail log files (`{"Records": [...]}`, .json or .json.gz bytes) into the `cloudtrail` table.

A bare list of records (as exported by tools such as Stratus Red Team) and a single record are
read too. The identity ARN is `userIdentity.arn`, else the session issuer's ARN (assumed roles
seen from another account); JSON-valued parts are kept as JSON text.
"""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import orjson

from ecsguard.logs.receivers import RECEIVERS
from ecsguard.logs.records import (
    Parsed,
    Problem,
    ReceiverOptions,
    build_batch,
    parse_time,
    record_id,
    to_json_text,
)
from ecsguard.logs.schema import CLOUDTRAIL

NAME = "cloudtrail"
_COLUMNS = tuple(field.name for field in CLOUDTRAIL)


def _records(data: bytes) -> list[Any]:
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    doc = orjson.loads(data)
    if isinstance(doc, dict) and isinstance(doc.get("Records"), list):
        return list(doc["Records"])
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict) and "eventName" in doc:
        return [doc]
    raise ValueError('expected {"Records": [...]}, a list of records or one record')


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _json(value: Any) -> str | None:
    return None if value is None else to_json_text(value)


def _read_only(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def identity_arn(identity: dict[str, Any]) -> str | None:
    arn = _str(identity.get("arn"))
    if arn:
        return arn
    context = identity.get("sessionContext")
    issuer = context.get("sessionIssuer") if isinstance(context, dict) else None
    return _str(issuer.get("arn")) if isinstance(issuer, dict) else None


@RECEIVERS.register(NAME)
def parse(data: bytes, options: ReceiverOptions) -> Parsed:
    problems: list[Problem] = []
    try:
        records = _records(data)
    except (OSError, EOFError, zlib.error) as exc:
        records = []
        problems.append(Problem("invalid_gzip", options.input_name, f"invalid gzip: {exc}"))
    except (orjson.JSONDecodeError, ValueError) as exc:
        records = []
        problems.append(
            Problem("invalid_json", options.input_name, f"not a CloudTrail file: {exc}")
        )
    ingest_us = options.ingest_us()
    rows: list[tuple[Any, ...]] = []  # in _COLUMNS order; one tuple per event, columns at the end
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            where = f"{options.input_name} record {i + 1}"
            problems.append(Problem("bad_record", where, "a record is not an object"))
            continue
        get = rec.get
        if not get("eventName") and not get("eventSource"):
            # not an event at all (an index or digest file in the same folder): reported, and
            # kept out of the cloudtrail table where it would pose as an event
            where = f"{options.input_name} record {i + 1}"
            problems.append(Problem("bad_record", where, "not a CloudTrail event (no eventName)"))
            continue
        identity = get("userIdentity")
        identity = identity if isinstance(identity, dict) else {}
        event_us = parse_time(get("eventTime"))
        if event_us is None:
            where = f"{options.input_name} record {i + 1}"
            problems.append(Problem("bad_record", where, "no valid eventTime; ingest time used"))
        event_id = _str(get("eventID")) or record_id(
            NAME, str(get("eventSource")), event_us, to_json_text(rec), i
        )
        rows.append(
            (
                ingest_us if event_us is None else event_us,
                event_id,
                _str(get("eventSource")),
                _str(get("eventName")),
                _str(get("awsRegion")),
                _str(get("sourceIPAddress")),
                _str(get("userAgent")),
                _str(identity.get("type")),
                identity_arn(identity),
                _str(identity.get("accessKeyId")),
                _str(get("recipientAccountId")) or _str(identity.get("accountId")),
                _str(get("errorCode")),
                _read_only(get("readOnly")),
                _json(get("requestParameters")),
                _json(get("responseElements")),
                _json(get("resources")),
                _json(get("additionalEventData")),
                _str(get("eventType")),
                _str(get("errorMessage")),
                _json(get("userIdentity")),
            )
        )
    columns = dict(zip(_COLUMNS, map(list, zip(*rows, strict=True)), strict=True)) if rows else {}
    return Parsed(NAME, build_batch(CLOUDTRAIL, columns, rows=len(rows)), problems)
