"""CloudWatch Logs subscription payloads into the `logs` table.

A subscription message is gzip JSON `{"messageType", "owner", "logGroup", "logStream",
"logEvents": [{"id", "timestamp", "message"}]}`; DATA_MESSAGE is stored, CONTROL_MESSAGE (a
destination health check) dropped and counted. `parse` recognises every envelope it arrives in:

- raw gzip bytes (a file, an S3 object) or the decoded JSON;
- a Kinesis record's data (base64 of the gzip), or `{"Data": ...}` / a Lambda Kinesis event;
- a Firehose HTTP endpoint delivery request `{"requestId", "timestamp", "records": [{"data"}]}`;
- the Lambda subscription event `{"awslogs": {"data": ...}}`.

Columns: account = owner, stream = log stream; an awslogs-driver stream `prefix/container/task`
also fills container and task. The log group goes into `fields` as `"@log": "owner:group"` (the
Insights field of that name), next to the fields of a JSON message.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import zlib
from typing import Any

import orjson

from ecsguard.core.files import is_gzip
from ecsguard.logs.receivers import RECEIVERS
from ecsguard.logs.records import (
    LogRows,
    Parsed,
    Problem,
    ReceiverOptions,
    level_from_text,
    number_to_us,
    parse_json_object,
    record_id,
    structured,
    to_json_text,
)

NAME = "cloudwatch"
_VARYING = ("time", "account", "task", "container", "stream", "level", "message", "fields", "id")


class PayloadError(Exception):
    """A payload part that cannot be decoded; becomes a Problem, never escapes `parse`."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


def _b64(text: Any) -> bytes:
    if not isinstance(text, str | bytes):
        raise PayloadError("invalid_base64", "base64 data is not a string")
    try:
        return base64.b64decode(
            "".join(text.split()) if isinstance(text, str) else text, validate=True
        )
    except (binascii.Error, ValueError) as exc:
        raise PayloadError("invalid_base64", f"invalid base64: {exc}") from None


def _json_values(raw: bytes) -> list[Any]:
    """One JSON value, or several concatenated (Firehose may join records without a separator)."""
    try:
        return [orjson.loads(raw)]
    except orjson.JSONDecodeError:
        pass
    text = raw.decode("utf-8", "replace")
    decoder = json.JSONDecoder()
    values: list[Any] = []
    pos = 0
    try:
        while True:
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos >= len(text):
                return values
            value, pos = decoder.raw_decode(text, pos)
            values.append(value)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise PayloadError("invalid_json", f"invalid JSON: {exc}") from None


def decode_messages(raw: bytes) -> list[Any]:
    """Subscription messages from gzip bytes or from their JSON text."""
    if is_gzip(raw):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise PayloadError("invalid_gzip", f"invalid gzip: {exc}") from None
    return _json_values(raw)


def envelopes(data: bytes) -> list[tuple[str, bytes | Exception]]:
    """(label, message bytes or the error decoding them) for each message-bearing part."""
    head = data.lstrip()[:1]
    if is_gzip(data):
        return [("payload", data)]
    if head not in (b"{", b"["):
        try:
            return [("kinesis data", _b64(data.decode("ascii", "replace")))]
        except PayloadError as exc:
            return [("payload", exc)]
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return [("payload", PayloadError("invalid_json", f"invalid JSON: {exc}"))]
    if not isinstance(doc, dict):
        return [("payload", data)]
    if "messageType" in doc or "logEvents" in doc:
        return [("payload", data)]
    parts: list[tuple[str, Any]] = []
    if isinstance(doc.get("awslogs"), dict):
        parts.append(("awslogs.data", doc["awslogs"].get("data")))
    elif isinstance(doc.get("records"), list):  # Firehose HTTP endpoint delivery request
        parts.extend(
            (f"records[{i}]", r.get("data") if isinstance(r, dict) else None)
            for i, r in enumerate(doc["records"])
        )
    elif isinstance(doc.get("Records"), list):  # Lambda event from a Kinesis stream
        for i, r in enumerate(doc["Records"]):
            kinesis = r.get("kinesis") if isinstance(r, dict) else None
            parts.append(
                (f"Records[{i}]", kinesis.get("data") if isinstance(kinesis, dict) else None)
            )
    elif "Data" in doc:  # a record as GetRecords returns it
        parts.append(("Data", doc["Data"]))
    else:
        return [("payload", PayloadError("bad_record", "not a known CloudWatch Logs envelope"))]
    out: list[tuple[str, bytes | Exception]] = []
    for label, value in parts:
        try:
            out.append((label, _b64(value)))
        except PayloadError as exc:
            out.append((label, exc))
    return out


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _stream_parts(stream: str) -> tuple[str | None, str | None]:
    """(container, task) of an awslogs-driver stream name `prefix/container/task-id`."""
    parts = stream.split("/")
    return (parts[1], parts[2]) if len(parts) == 3 and all(parts) else (None, None)


@RECEIVERS.register(NAME)
def parse(data: bytes, options: ReceiverOptions) -> Parsed:
    source = options.source or NAME
    ingest_us = options.ingest_us()
    rows = LogRows(_VARYING)
    problems: list[Problem] = []
    for label, raw in envelopes(data):
        where = f"{options.input_name} {label}"
        try:
            if isinstance(raw, Exception):
                raise raw
            messages = decode_messages(raw)
        except PayloadError as exc:
            problems.append(Problem(exc.kind, where, str(exc)))
            continue
        for message in messages:
            _add_message(rows, message, options, source, ingest_us, where, problems)
    return Parsed("logs", rows.batch(options, source, ingest_us), problems)


def _add_message(
    rows: LogRows,
    doc: Any,
    options: ReceiverOptions,
    source: str,
    ingest_us: int,
    where: str,
    problems: list[Problem],
) -> None:
    if not isinstance(doc, dict):
        problems.append(Problem("bad_record", where, "a subscription message is not an object"))
        return
    kind = doc.get("messageType")
    events = doc.get("logEvents")
    if kind == "CONTROL_MESSAGE":
        problems.append(Problem("control_message", where, "CONTROL_MESSAGE dropped"))
        return
    if kind != "DATA_MESSAGE" or not isinstance(events, list):
        problems.append(Problem("bad_record", where, f"not a DATA_MESSAGE: {str(kind)[:40]}"))
        return
    owner = _str(doc.get("owner"))
    group = _str(doc.get("logGroup")) or ""
    stream = _str(doc.get("logStream")) or ""
    container, task = _stream_parts(stream)
    log_field = {"@log": f"{owner or ''}:{group}"}
    col = rows.columns
    for i, event in enumerate(events):
        if not isinstance(event, dict) or not isinstance(event.get("message"), str):
            problems.append(Problem("bad_record", f"{where} logEvents[{i}]", "no message"))
            continue
        text: str = event["message"]
        stamp = event.get("timestamp")
        event_us = number_to_us(stamp / 1000) if isinstance(stamp, int | float) else None
        obj = parse_json_object(text.strip())
        if obj is not None:
            own_us, level, message = structured(obj, text)
            event_us = event_us if event_us is not None else own_us
            fields = to_json_text({**log_field, **obj})
        else:
            level, message = level_from_text(text), text
            fields = to_json_text(log_field)
        col["time"].append(ingest_us if event_us is None else event_us)
        col["account"].append(owner or options.account)
        col["task"].append(task or options.task)
        col["container"].append(container or options.container)
        col["stream"].append(stream or options.stream)
        col["level"].append(level)
        col["message"].append(message)
        col["fields"].append(fields)
        # the CloudWatch event id is unique per event: it stands in for the sequence number
        col["id"].append(
            record_id(source, f"{group}/{stream}", event_us, text, event.get("id") or i)
        )
