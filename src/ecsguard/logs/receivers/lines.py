"""NDJSON or plain-text lines (`ecsguard ingest FILE|-`) into the `logs` table.

A JSON object line gives its time (`time`, `timestamp`, `@timestamp`), level (`level`,
`severity`) and message (`message`, `msg`, `log`); the whole object is kept in `fields`. A
plain line is its own message, with a leading ISO time and a level word detected. A line that
looks like JSON but is not is kept as text, flagged `{"_unparsed": true}`, and counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from ecsguard.logs.multiline import MultilineJoiner
from ecsguard.logs.receivers import RECEIVERS
from ecsguard.logs.records import (
    LogRows,
    Parsed,
    Problem,
    ReceiverOptions,
    body_ids,
    leading_time,
    levels_from_texts,
    record_ids,
    request_id_of,
    structured_rows,
)

NAME = "lines"
DEFAULT_SOURCE = "ingest"
UNPARSED = '{"_unparsed":true}'


def split_lines(text: str) -> list[str]:
    """Lines split on \\n only (a stray \\r or \\x0b inside a message is data), blanks dropped."""
    return [line.removesuffix("\r") for line in text.split("\n") if line.strip()]


def _records(lines: list[str], options: ReceiverOptions) -> Iterable[str]:
    if not (options.multiline or options.multiline_start):
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
    text = data.decode("utf-8", "replace")
    return parse_text(text, options, body=data)


def parse_text(
    text: str, options: ReceiverOptions, first_line: int = 1, body: bytes | None = None
) -> Parsed:
    """`body`, the bytes `text` was decoded from, gives the ids (records.body_ids); without it
    each line's id hashes its time, text and place."""
    source = options.source or DEFAULT_SOURCE
    ingest_us = options.ingest_us()
    stream_key = f"{options.task or ''}/{options.container or ''}/{options.stream or ''}"
    event_times: list[int | None] = []
    levels: list[str | None] = []
    messages: list[str] = []
    fields: list[str | None] = []
    problems: list[Problem] = []
    json_at: list[int] = []  # JSON object lines: time, level and message worked out in bulk
    objs: list[dict[str, Any]] = []
    raws: list[str] = []
    text_at: list[int] = []  # text lines (and malformed JSON): level from the text, in bulk
    loads = orjson.loads
    decode_error = orjson.JSONDecodeError

    for seq, record in enumerate(_records(split_lines(text), options)):
        stripped = record.strip()
        if stripped.startswith("{"):
            try:
                obj = loads(stripped)
            except decode_error as exc:
                obj = exc  # marks "looked like JSON, was not"
            if isinstance(obj, dict):
                json_at.append(seq)
                objs.append(obj)
                raws.append(stripped)
                event_times.append(None)
                levels.append(None)
                messages.append(stripped)
                fields.append(stripped)  # the object as received: no re-serialisation
                continue
            if isinstance(obj, decode_error):
                problems.append(
                    Problem(
                        "unparsed",
                        f"{options.input_name} record {first_line + seq}",
                        f"not valid JSON, kept as text: {obj}",
                    )
                )
                text_at.append(seq)
                event_times.append(leading_time(record))
                levels.append(None)
                messages.append(record)
                fields.append(UNPARSED)
                continue
        text_at.append(seq)
        event_times.append(leading_time(record))
        levels.append(None)
        messages.append(record)
        fields.append(None)

    # the request-id index from the objects parsed here (the pipeline would parse `fields` again);
    # a text line, or one kept as text with UNPARSED fields, holds no request-id key
    request: list[str | None] = [""] * len(messages)
    if objs:
        times, json_levels, json_messages = structured_rows(objs, raws)
        for i, event_us, level, message, rid in zip(
            json_at, times, json_levels, json_messages, map(request_id_of, objs, raws), strict=True
        ):
            event_times[i], levels[i], messages[i], request[i] = event_us, level, message, rid
    if text_at:
        found = levels_from_texts([messages[i] for i in text_at])
        for i, level in zip(text_at, found, strict=True):
            levels[i] = level
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
    return Parsed("logs", rows.batch(options, source, ingest_us), problems)
