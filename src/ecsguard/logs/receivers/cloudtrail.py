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
    columns: dict[str, list[Any]] = {name: [] for name in _COLUMNS}
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
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            where = f"{options.input_name} record {i + 1}"
            problems.append(Problem("bad_record", where, "a record is not an object"))
            continue
        if not rec.get("eventName") and not rec.get("eventSource"):
            # not an event at all (an index or digest file in the same folder): reported, and
            # kept out of the cloudtrail table where it would pose as an event
            where = f"{options.input_name} record {i + 1}"
            problems.append(Problem("bad_record", where, "not a CloudTrail event (no eventName)"))
            continue
        identity = rec.get("userIdentity")
        identity = identity if isinstance(identity, dict) else {}
        event_us = parse_time(rec.get("eventTime"))
        if event_us is None:
            where = f"{options.input_name} record {i + 1}"
            problems.append(Problem("bad_record", where, "no valid eventTime; ingest time used"))
        event_id = _str(rec.get("eventID")) or record_id(
            NAME, str(rec.get("eventSource")), event_us, to_json_text(rec), i
        )
        row = {
            "time": ingest_us if event_us is None else event_us,
            "event_id": event_id,
            "event_source": _str(rec.get("eventSource")),
            "event_name": _str(rec.get("eventName")),
            "aws_region": _str(rec.get("awsRegion")),
            "source_ip": _str(rec.get("sourceIPAddress")),
            "user_agent": _str(rec.get("userAgent")),
            "identity_type": _str(identity.get("type")),
            "identity_arn": identity_arn(identity),
            "access_key_id": _str(identity.get("accessKeyId")),
            "account": _str(rec.get("recipientAccountId")) or _str(identity.get("accountId")),
            "error_code": _str(rec.get("errorCode")),
            "read_only": _read_only(rec.get("readOnly")),
            "request_parameters": _json(rec.get("requestParameters")),
            "response_elements": _json(rec.get("responseElements")),
            "resources": _json(rec.get("resources")),
            "additional_event_data": _json(rec.get("additionalEventData")),
            "event_type": _str(rec.get("eventType")),
            "error_message": _str(rec.get("errorMessage")),
            "user_identity": _json(rec.get("userIdentity")),
        }
        for name in _COLUMNS:
            columns[name].append(row[name])
    return Parsed(NAME, build_batch(CLOUDTRAIL, columns), problems)
