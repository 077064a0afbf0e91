"""CloudTrail log files (`{"Records": [...]}`, .json or .json.gz bytes) into the `cloudtrail` table.

A bare list of records (as exported by tools such as Stratus Red Team) and a single record are
read too. The identity ARN is `userIdentity.arn`, else the session issuer's ARN (assumed roles
seen from another account); JSON-valued parts are kept as JSON text.

A file of well-formed events (every one with a name or source, an id and a time) is decoded by
msgspec into flat structs whose JSON-valued parts stay undecoded text (`_fast`): no dict is
built for any record. Anything else goes the general path, which reports what is wrong.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Sequence
from typing import Any

import msgspec
import orjson
import pyarrow as pa

from ecsguard.core.files import is_gzip
from ecsguard.logs.receivers import RECEIVERS
from ecsguard.logs.receivers.firelens import NATIVE
from ecsguard.logs.records import (
    RAW_NULL,
    Parsed,
    Problem,
    ReceiverOptions,
    build_batch,
    compact_json,
    native_records,
    parse_time,
    parse_times,
    raw_json_column,
    record_id,
    to_json_text,
    valid_utf8,
)
from ecsguard.logs.schema import CLOUDTRAIL

NAME = "cloudtrail"
_COLUMNS = tuple(field.name for field in CLOUDTRAIL)


def _records(data: bytes) -> list[Any]:
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
    if is_gzip(data):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            problem = Problem("invalid_gzip", options.input_name, f"invalid gzip: {exc}")
            return Parsed(NAME, build_batch(CLOUDTRAIL, {}, rows=0), [problem])
    return _fast(data, options) or _general(data, options)


class _Issuer(msgspec.Struct, gc=False):
    arn: str | None = None


class _Session(msgspec.Struct, gc=False):
    sessionIssuer: _Issuer | None = None


class _Identity(msgspec.Struct, gc=False):
    type: str | None = None
    arn: str | None = None
    accessKeyId: str | None = None
    accountId: str | None = None
    sessionContext: _Session | None = None


class _Record(msgspec.Struct, gc=False):
    """The keys the table keeps, texts where it keeps a text (another type: the general path),
    the JSON-valued ones as their text."""

    eventID: str | None = None
    eventTime: str | None = None
    eventSource: str | None = None
    eventName: str | None = None
    awsRegion: str | None = None
    sourceIPAddress: str | None = None
    userAgent: str | None = None
    recipientAccountId: str | None = None
    errorCode: str | None = None
    errorMessage: str | None = None
    eventType: str | None = None
    readOnly: bool | str | None = None
    requestParameters: msgspec.Raw = RAW_NULL
    responseElements: msgspec.Raw = RAW_NULL
    resources: msgspec.Raw = RAW_NULL
    additionalEventData: msgspec.Raw = RAW_NULL
    userIdentity: msgspec.Raw = RAW_NULL


class _File(msgspec.Struct, gc=False):
    Records: list[_Record]


_FILE = msgspec.json.Decoder(_File)
_LIST = msgspec.json.Decoder(list[_Record])
_IDENTITIES = msgspec.json.Decoder(list[_Identity | None])
_NO_IDENTITY = _Identity()


def _fast(data: bytes, options: ReceiverOptions) -> Parsed | None:
    """The batch of a file whose every record is a well-formed event, as `_general` makes it;
    None for any other file. The native reader (firelens_native.cpp) answers the files it can
    answer exactly so; msgspec the others."""
    if not valid_utf8(data):  # orjson refuses such a file; msgspec would skip what it keeps raw
        return None
    try:
        body = compact_json(data)
        built = None if NATIVE is None else NATIVE.parse_cloudtrail(body)
        if built is not None:
            return _from_native(built)
        records = _FILE.decode(body).Records if body[:1] == b"{" else _LIST.decode(body)
        # one call for all the identities: a call per record cost more than its decoding
        found = _IDENTITIES.decode(b"[" + b",".join(r.userIdentity for r in records) + b"]")
        identities = [identity or _NO_IDENTITY for identity in found]
    except (msgspec.DecodeError, ValueError):
        return None
    names = [r.eventName or None for r in records]
    sources = [r.eventSource or None for r in records]
    ids = [r.eventID or None for r in records]
    times = parse_times([r.eventTime for r in records])
    unnamed = any(n is s is None for n, s in zip(names, sources, strict=True))
    if None in ids or None in times or unnamed:
        return None  # the general path says what is missing, or hashes an id
    columns: dict[str, Sequence[Any]] = {
        "time": times,
        "event_id": ids,
        "event_source": sources,
        "event_name": names,
        "aws_region": [r.awsRegion or None for r in records],
        "source_ip": [r.sourceIPAddress or None for r in records],
        "user_agent": [r.userAgent or None for r in records],
        "identity_type": [i.type or None for i in identities],
        "identity_arn": [_arn_of(i) for i in identities],
        "access_key_id": [i.accessKeyId or None for i in identities],
        "account": [
            r.recipientAccountId or i.accountId or None
            for r, i in zip(records, identities, strict=True)
        ],
        "error_code": [r.errorCode or None for r in records],
        "read_only": [_read_only(r.readOnly) for r in records],
        "request_parameters": raw_json_column([r.requestParameters for r in records]),
        "response_elements": raw_json_column([r.responseElements for r in records]),
        "resources": raw_json_column([r.resources for r in records]),
        "additional_event_data": raw_json_column([r.additionalEventData for r in records]),
        "event_type": [r.eventType or None for r in records],
        "error_message": [r.errorMessage or None for r in records],
        "user_identity": raw_json_column([r.userIdentity for r in records]),
    }
    return Parsed(NAME, build_batch(CLOUDTRAIL, columns, rows=len(records)), [])


def _from_native(built: dict[str, Any]) -> Parsed | None:
    """The batch of the native reader's columns; None when a time does not read (the general
    path reports it)."""
    rows, values, valid, nulls = built.pop("read_only")
    columns = native_records(built)
    if columns is None:
        return None
    validity = pa.py_buffer(valid) if nulls else None
    columns["read_only"] = pa.BooleanArray.from_buffers(
        pa.bool_(), rows, [validity, pa.py_buffer(values)], nulls
    )
    return Parsed(NAME, build_batch(CLOUDTRAIL, columns, rows=rows), [])


def _arn_of(identity: _Identity) -> str | None:
    """`identity_arn` of a decoded identity."""
    if identity.arn:
        return identity.arn
    context = identity.sessionContext
    issuer = context.sessionIssuer if context is not None else None
    return (issuer.arn or None) if issuer is not None else None


def _general(data: bytes, options: ReceiverOptions) -> Parsed:
    problems: list[Problem] = []
    try:
        records = _records(data)
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
