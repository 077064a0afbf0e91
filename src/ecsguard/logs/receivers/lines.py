"""NDJSON or plain-text lines (`ecsguard ingest FILE|-`) into the `logs` table.

A JSON object line gives its time (`time`, `timestamp`, `@timestamp`), level (`level`,
`severity`) and message (`message`, `msg`, `log`); the whole object is kept in `fields`. A
plain line is its own message, with a leading ISO time and a level word detected. A line that
looks like JSON but is not is kept as text, flagged `{"_unparsed": true}`, and counted.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson
import pyarrow.compute as pc

from ecsguard.core.native import native_strings
from ecsguard.logs.multiline import MultilineJoiner
from ecsguard.logs.receivers import RECEIVERS
from ecsguard.logs.receivers.firelens import NATIVE, native_logs
from ecsguard.logs.records import (
    LogRows,
    Parsed,
    Problem,
    ReceiverOptions,
    body_ids,
    json_rows,
    leading_time,
    leading_times,
    levels_from_texts,
    record_ids,
)

NAME = "lines"
DEFAULT_SOURCE = "ingest"
UNPARSED = '{"_unparsed":true}'


def split_lines(text: str) -> list[str]:
    """Lines split on \\n only (a stray \\r or \\x0b inside a message is data), blanks dropped."""
    return [line.removesuffix("\r") for line in text.split("\n") if line.strip()]


def _records(lines: list[str], options: ReceiverOptions) -> Iterable[str]:
    if not options.joins_lines:
        return lines
    joiner = MultilineJoiner(options.multiline_start)
    out: list[str] = []
    for line in lines:
        out.extend(joiner.feed(line))
    out.extend(joiner.flush())
    return out


@RECEIVERS.register(NAME)
def parse(data: bytes, options: ReceiverOptions) -> Parsed:
    """Parse a whole payload; invalid UTF-8 is replaced (U+FFFD), never refused."""
    parsed = None if options.joins_lines else _parse_native(data, options)
    if parsed is not None:
        return parsed
    text = data.decode("utf-8", "replace")
    return parse_text(text, options, body=data)


def _parse_native(data: bytes, options: ReceiverOptions) -> Parsed | None:
    """`parse` by firelens_native.cpp's parser of text lines, or None for a body it leaves to
    Python (not UTF-8, a line that starts like JSON but is not, a log object only Python
    decides) or when it was not built. The JSON lines come back as FireLens logs do, their
    times and levels worked out in Arrow (firelens.times_and_levels); a text line's time is
    the one it starts with, as below."""
    built = None if NATIVE is None else NATIVE.parse_text(data)
    if built is None:
        return None
    own, levels, messages, fields = native_logs(built)
    text_rows = pc.is_null(fields)
    if pc.any(text_rows).as_py():
        own = pc.replace_with_mask(own, text_rows, leading_times(messages.filter(text_rows)))
    source = options.source or DEFAULT_SOURCE
    ingest_us = options.ingest_us()
    rows = LogRows(("time", "level", "message", "fields", "id", "request_id"))
    rows.columns.update(
        time=pc.fill_null(own, ingest_us),
        level=levels,
        message=messages,
        fields=fields,
        id=body_ids(options.id_context(source), data, len(messages)),
        request_id=native_strings(built["request_id"]),
    )
    return Parsed("logs", rows.batch(options, source, ingest_us), [], whole=True)


def parse_text(
    text: str, options: ReceiverOptions, first_line: int = 1, body: bytes | None = None
) -> Parsed:
    """`body`, the bytes `text` was decoded from, gives the ids (records.body_ids); without it
    each line's id hashes its time, text and place."""
    source = options.source or DEFAULT_SOURCE
    ingest_us = options.ingest_us()
    stream_key = f"{options.task or ''}/{options.container or ''}/{options.stream or ''}"
    records = list(_records(split_lines(text), options))
    stripped = [record.strip() for record in records]
    candidates = [seq for seq, line in enumerate(stripped) if line.startswith("{")]
    found = json_rows([stripped[seq] for seq in candidates])
    event_times: list[int | None] = [None] * len(records)
    levels: list[str | None] = [None] * len(records)
    messages = list(records)
    fields: list[str | None] = [None] * len(records)
    # the request-id index from the objects read here (the pipeline would parse `fields` again);
    # a text line, or one kept as text with UNPARSED fields, holds no request-id key
    request: list[str | None] = [""] * len(records)
    json_at = [candidates[k] for k in found.at]
    for seq, event_us, level, message, rid in zip(
        json_at,
        found.times,
        found.levels,
        found.messages,
        found.request_ids,
        strict=True,
    ):
        event_times[seq], levels[seq], messages[seq], request[seq] = event_us, level, message, rid
        fields[seq] = stripped[seq]  # the object as received: no re-serialisation
    problems: list[Problem] = []
    is_json = set(json_at)
    for seq in (seq for seq in candidates if seq not in is_json):
        problems.append(
            Problem(
                "unparsed",
                f"{options.input_name} record {first_line + seq}",
                f"not valid JSON, kept as text: {_json_error(stripped[seq])}",
            )
        )
        fields[seq] = UNPARSED
    # text lines (and malformed JSON): the time leads the line, the level from the text, in bulk
    text_at = [seq for seq in range(len(records)) if seq not in is_json]
    for seq in text_at:
        event_times[seq] = leading_time(records[seq])
    if text_at:
        found_levels = levels_from_texts([messages[seq] for seq in text_at])
        for seq, level in zip(text_at, found_levels, strict=True):
            levels[seq] = level
    rows = LogRows(("time", "level", "message", "fields", "id", "request_id"))
    rows.columns.update(
        time=[ingest_us if t is None else t for t in event_times],
        level=levels,
        message=messages,
        fields=fields,
        id=(
            body_ids(options.id_context(source), body, len(messages))
            if body is not None
            else record_ids(
                source, [stream_key] * len(messages), event_times, messages, range(len(messages))
            )
        ),
        request_id=request,
    )
    return Parsed("logs", rows.batch(options, source, ingest_us), problems, whole=body is not None)


def _json_error(text: str) -> str:
    """Why `text`, which starts like a JSON object but is none, is not one (orjson's words)."""
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return str(exc)
    return "not a JSON object"
