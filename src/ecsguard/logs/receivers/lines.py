"""NDJSON or plain-text lines (`ecsguard ingest FILE|-`) into the `logs` table.

A JSON object line gives its time (`time`, `timestamp`, `@timestamp`), level (`level`,
`severity`) and message (`message`, `msg`, `log`); the whole object is kept in `fields`. A
plain line is its own message, with a leading ISO time and a level word detected. A line that
looks like JSON but is not is kept as text, flagged `{"_unparsed": true}`, and counted.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from ecsguard.logs.multiline import MultilineJoiner
from ecsguard.logs.receivers import RECEIVERS
from ecsguard.logs.records import (
    LogRows,
    Parsed,
    Problem,
    ReceiverOptions,
    leading_time,
    level_from_text,
    record_id,
    structured,
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
    return parse_text(text, options)


def parse_text(text: str, options: ReceiverOptions, first_line: int = 1) -> Parsed:
    source = options.source or DEFAULT_SOURCE
    ingest_us = options.ingest_us()
    stream_key = f"{options.task or ''}/{options.container or ''}/{options.stream or ''}"
    rows = LogRows()
    times = rows.columns["time"]
    levels = rows.columns["level"]
    messages = rows.columns["message"]
    fields = rows.columns["fields"]
    ids = rows.columns["id"]
    problems: list[Problem] = []
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
                event_us, level, message = structured(obj, stripped)
                times.append(ingest_us if event_us is None else event_us)
                levels.append(level)
                messages.append(message)
                fields.append(stripped)  # the object as received: no re-serialisation
                ids.append(record_id(source, stream_key, event_us, message, seq))
                continue
            if isinstance(obj, decode_error):
                problems.append(
                    Problem(
                        "unparsed",
                        f"{options.input_name} record {first_line + seq}",
                        f"not valid JSON, kept as text: {obj}",
                    )
                )
                event_us = leading_time(record)
                times.append(ingest_us if event_us is None else event_us)
                levels.append(level_from_text(record))
                messages.append(record)
                fields.append(UNPARSED)
                ids.append(record_id(source, stream_key, event_us, record, seq))
                continue
        event_us = leading_time(record)
        times.append(ingest_us if event_us is None else event_us)
        levels.append(level_from_text(record))
        messages.append(record)
        fields.append(None)
        ids.append(record_id(source, stream_key, event_us, record, seq))
    return Parsed("logs", rows.batch(options, source, ingest_us), problems)
