"""Fluentd forward protocol messages (msgpack) into the `logs` table: FireLens' `forward` output.

A message is a msgpack array; its second element tells the mode:

    Message                  [tag, time, record(, option)]
    Forward                  [tag, [[time, record], ...](, option)]
    PackedForward            [tag, bin or str holding concatenated [time, record] (, option)]
    CompressedPackedForward  the same, gzip-compressed (possibly several gzip members), with
                             option {"compressed": "gzip"}

`time` is integer seconds or an EventTime (msgpack ext type 0: big-endian u32 seconds, u32
nanoseconds); Fluent Bit may send `[time, metadata]` in its place. Options: `chunk` asks for the
answer `{"ack": chunk}` once stored, `size` counts the entries, `fluent_signal` other than 0 is
not a log. A msgpack nil is a heartbeat.

Records are FireLens records (log, source, container_name, ecs_cluster, ecs_task_arn, ...) and go
through the FireLens receiver's mapping. The tag becomes the stream when a record names none; a
FireLens tag (`<container>-firelens-<task id>`) names container and task when the record carries
no ECS metadata. Stack traces are joined within one message only: a message is acknowledged once
stored, so no line may wait in a joiner for the next one.

`decode_message` raises ForwardError for a malformed message (the server then closes that
connection); `parse` reads a byte stream of messages (a capture) and turns errors into problems.
Strings are unpacked with `surrogateescape` because Fluentd sends PackedForward entries and Fluent
Bit its handshake salt as msgpack *str* holding binary; records are cleaned to valid UTF-8 (U+FFFD).
"""

from __future__ import annotations

import math
import re
import struct
import zlib
from collections.abc import Hashable
from dataclasses import dataclass, replace
from typing import Any

import msgpack
import pyarrow as pa

from ecsguard.logs.multiline import MultilineGroup
from ecsguard.logs.receivers import RECEIVERS
from ecsguard.logs.receivers.firelens import parse_records
from ecsguard.logs.records import Parsed, Problem, ReceiverOptions
from ecsguard.logs.schema import LOGS

NAME = "forward"
#: one message larger than this (as received) closes the connection: memory stays bounded
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
#: a CompressedPackedForward message may not inflate beyond this
MAX_DECOMPRESSED_BYTES = 256 * 1024 * 1024
_EVENT_TIME = struct.Struct(">II")
_MAX_US = 7_258_118_400_000_000  # year 2200, as records.py
_MAX_DEPTH = 64  # deeper record values are cut (orjson refuses deeper than 255 anyway)
_SCALARS = (int, float, bool, type(None))
# ECS names the FireLens stream `<container name>-firelens-<task id>` (old and new task ids)
_FIRELENS_TAG = re.compile(
    r"(.+)-firelens-([0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\Z"
)
_UNPACK_ERRORS = (ValueError, TypeError, msgpack.UnpackException)


class ForwardError(Exception):
    """A message that breaks the protocol: nothing of it is stored or acknowledged."""

    def __init__(self, kind: str, detail: str) -> None:
        # kind: bad_message | invalid_msgpack | invalid_gzip | too_large
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ForwardMessage:
    """One decoded message: events as (event time in µs or None, record as unpacked), and the
    msgpack bytes they were read from (PackedForward's entries as sent, inflated; the other modes'
    packed again), which with the chunk id decide the records' ids."""

    tag: str
    events: list[tuple[int | None, Any]]
    option: dict[Any, Any]
    entries: bytes

    @property
    def chunk(self) -> Any:
        """The id to acknowledge (a str or bytes, echoed as received), or None."""
        return self.option.get("chunk")


def new_unpacker(max_buffer_size: int = MAX_MESSAGE_BYTES) -> msgpack.Unpacker:
    """The streaming unpacker for forward traffic; lengths are capped so that a header claiming
    a huge array cannot make it pre-allocate more than about the buffer's size."""
    return msgpack.Unpacker(
        raw=False,
        unicode_errors="surrogateescape",
        strict_map_key=False,
        max_buffer_size=max_buffer_size,
        max_array_len=max(max_buffer_size // 8, 16),
        max_map_len=max(max_buffer_size // 64, 16),
        max_ext_len=1024,
    )


def pack(value: Any) -> bytes:
    """msgpack for answers (HELO, PONG, ack); str that arrived holding binary goes back as sent."""
    return msgpack.packb(value, use_bin_type=True, unicode_errors="surrogateescape")


def raw_bytes(value: Any) -> bytes | None:
    """The bytes a msgpack str or bin carried (None for other types)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    return None


# ------------------------------------------------------------------------------------ decoding


def _describe(value: Any) -> str:
    return "nil" if value is None else type(value).__name__


def _time_us(value: Any, nested: bool = False) -> int | None:
    """Event time in µs; None (stored with the ingest time) for 0 or an out-of-range time."""
    kind = type(value)
    if kind is msgpack.ExtType:
        if value.code != 0 or len(value.data) != 8:
            raise ForwardError("bad_message", f"time is ext type {value.code}, not an EventTime")
        seconds, nanos = _EVENT_TIME.unpack(value.data)
        us = seconds * 1_000_000 + nanos // 1000
    elif kind is int:
        us = value * 1_000_000
    elif kind is float:
        if not math.isfinite(value):
            return None
        us = int(value * 1_000_000)
    elif kind is msgpack.Timestamp:
        us = value.to_unix_nano() // 1000
    elif kind is list and len(value) == 2 and not nested:
        return _time_us(value[0], nested=True)  # Fluent Bit's [time, metadata]
    elif value is None:
        return None
    else:
        raise ForwardError("bad_message", f"time is {_describe(value)}, not seconds or EventTime")
    return us if 0 < us <= _MAX_US else None


def _entry(value: Any) -> tuple[int | None, Any]:
    if type(value) is not list or len(value) != 2:
        raise ForwardError("bad_message", f"an entry is {_describe(value)}, not [time, record]")
    return _time_us(value[0]), value[1]


def gunzip(data: bytes, limit: int = MAX_DECOMPRESSED_BYTES) -> bytes:
    """All gzip members of `data` (Fluentd appends one per buffer write), at most `limit` bytes."""
    out: list[bytes] = []
    total = 0
    while data:
        inflater = zlib.decompressobj(wbits=31)
        try:
            piece = inflater.decompress(data, limit - total + 1)
        except zlib.error as exc:
            raise ForwardError("invalid_gzip", f"entries are not valid gzip: {exc}") from None
        total += len(piece)
        if total > limit:
            raise ForwardError("too_large", f"entries inflate beyond {limit} bytes")
        if not inflater.eof:
            raise ForwardError("invalid_gzip", "entries end inside a gzip member")
        out.append(piece)
        data = inflater.unused_data
    return b"".join(out)


def _packed_entries(blob: bytes) -> list[tuple[int | None, Any]]:
    unpacker = new_unpacker(max(len(blob), 1024))
    unpacker.feed(blob)
    events = []
    end = 0  # tell() after the last whole entry: a partial one also advances tell()
    while True:
        try:
            value = next(unpacker)
        except StopIteration:
            break
        except _UNPACK_ERRORS as exc:
            raise ForwardError("invalid_msgpack", f"packed entries: {exc}") from None
        end = unpacker.tell()
        events.append(_entry(value))
    if end != len(blob):
        raise ForwardError("invalid_msgpack", "packed entries end inside an entry")
    return events


def decode_message(msg: Any, max_decompressed: int = MAX_DECOMPRESSED_BYTES) -> ForwardMessage:
    """One unpacked message (not a heartbeat nil) of any mode; raises ForwardError."""
    if type(msg) is not list or not 2 <= len(msg) <= 4:
        size = f" of {len(msg)} items" if type(msg) is list else ""
        raise ForwardError(
            "bad_message", f"a message is {_describe(msg)}{size}, not an array [tag, ...]"
        )
    tag = msg[0]
    if type(tag) is not str:
        raise ForwardError("bad_message", f"tag is {_describe(tag)}, not a string")
    second = msg[1]
    if type(second) is list and (not second or type(second[0]) is list):
        option = _option(msg, 2)  # Forward: [tag, [[time, record], ...], option]
        events = [_entry(entry) for entry in second]
        entries = b"".join(map(pack, second))  # as PackedForward would carry them
    elif type(second) is bytes or type(second) is str:
        option = _option(msg, 2)  # PackedForward, or CompressedPackedForward
        blob = raw_bytes(second)
        assert blob is not None
        compressed = option.get("compressed")
        if compressed == "gzip":
            blob = gunzip(blob, max_decompressed)
        elif compressed not in (None, "text"):
            raise ForwardError("bad_message", f"unknown compression {compressed!r}")
        events = _packed_entries(blob)
        entries = blob
    else:
        if len(msg) < 3:
            raise ForwardError("bad_message", "a Message-mode message needs [tag, time, record]")
        option = _option(msg, 3)  # Message: [tag, time, record, option]
        events = [(_time_us(second), msg[2])]
        entries = pack(msg[1:3])  # one entry, as PackedForward would carry it
    return ForwardMessage(_clean_str(tag), events, option, entries)


def _option(msg: list[Any], index: int) -> dict[Any, Any]:
    if len(msg) <= index:
        return {}
    if len(msg) > index + 1:
        raise ForwardError("bad_message", f"{len(msg)} items: one too many for this mode")
    option = msg[index]
    if option is None:
        return {}
    if type(option) is not dict:
        raise ForwardError("bad_message", f"option is {_describe(option)}, not a map")
    return option


# ------------------------------------------------------------------------- records to a batch


def _clean_str(text: str) -> str:
    """Valid UTF-8 text: bytes that arrived invalid become U+FFFD (orjson refuses surrogates)."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _plain(value: Any, depth: int = 0) -> Any:
    """A JSON-able copy: bin as text, EventTime as seconds, keys as text, depth capped."""
    kind = type(value)
    if kind is str:
        return _clean_str(value)
    if kind in _SCALARS:
        return value
    if depth >= _MAX_DEPTH:
        return f"<nested deeper than {_MAX_DEPTH} levels>"
    if kind is dict:
        return {_key(k): _plain(v, depth + 1) for k, v in value.items()}
    if kind is list:
        return [_plain(v, depth + 1) for v in value]
    if kind is bytes:
        return value.decode("utf-8", "replace")
    if kind is msgpack.ExtType and value.code == 0 and len(value.data) == 8:
        seconds, nanos = _EVENT_TIME.unpack(value.data)
        return seconds + nanos / 1e9
    if kind is msgpack.Timestamp:
        return value.to_unix_nano() / 1e9
    if kind is msgpack.ExtType:
        return f"<ext {value.code}: {value.data.hex()}>"
    return str(value)


def _key(key: Any) -> str:
    if type(key) is str:
        return _clean_str(key)
    if type(key) is bytes:
        return key.decode("utf-8", "replace")
    return str(_plain(key, _MAX_DEPTH))


def _plain_record(record: dict[Any, Any]) -> dict[str, Any]:
    """The record itself when every key is ASCII text and every value an ASCII or scalar value
    (the usual FireLens record), else a cleaned copy."""
    for key, value in record.items():
        if type(key) is not str or not key.isascii():
            return _plain(record)
        kind = type(value)
        if kind is str:
            if not value.isascii():
                return _plain(record)
        elif kind not in _SCALARS:
            return _plain(record)
    return record


def _date(time_us: int) -> int | float:
    # the FireLens mapping reads `date` by magnitude: µs from 1e14 on, seconds below
    return time_us if time_us >= 100_000_000_000_000 else time_us / 1e6


def _join_multiline(
    records: list[tuple[Any, str | None]], start_pattern: str | None
) -> list[tuple[Any, str | None]]:
    """Stack traces joined per (task, container, stream): the first record keeps its metadata and
    time, its `log` becomes the joined lines."""
    group = MultilineGroup(start_pattern)
    heads: dict[Hashable, dict[str, Any]] = {}
    out: list[tuple[Any, str | None]] = []
    for record, error in records:
        log = record.get("log") if type(record) is dict else None
        if type(log) is not str:
            out.append((record, error))
            continue
        key: Hashable = (
            str(record.get("ecs_task_arn")),
            str(record.get("container_name")),
            str(record.get("source")),
        )
        pending = key in heads
        done = group.feed(key, log)
        for text in done:
            out.append(({**heads[key], "log": text}, None))
        if done or not pending:
            heads[key] = record
    for flushed, text in group.flush():
        out.append(({**heads[flushed], "log": text}, None))
    return out


def to_parsed(message: ForwardMessage, options: ReceiverOptions, context: str) -> Parsed:
    """The message's records as one `logs` batch. Their ids come from `context` and the
    message's entries (records.body_ids): the context is the chunk id when there is one (a resent
    chunk gets the same ids, so it is stored once), otherwise something unique to the message."""
    where = options.input_name
    problems: list[Problem] = []
    signal = message.option.get("fluent_signal")
    if signal not in (None, 0):
        problems.append(Problem("not_logs", where, f"fluent_signal {signal!r} is not logs"))
        return Parsed("logs", _empty_batch(), problems)
    size = message.option.get("size")
    if type(size) is int and size != len(message.events):
        detail = f"option size says {size} entries, the message holds {len(message.events)}"
        problems.append(Problem("size_mismatch", where, detail))

    tag = message.tag
    firelens_tag = _FIRELENS_TAG.match(tag)
    records: list[tuple[Any, str | None]] = []
    for time_us, value in message.events:
        if value is None:
            continue  # Fluentd skips nil records too
        if type(value) is not dict:
            records.append((_plain(value), "record is not a map, kept as text"))
            continue
        record = _plain_record(value)
        if record is value:
            record = dict(value)  # the caller's message stays as it was
        if time_us is not None:
            record["date"] = _date(time_us)
        source = record.get("source")
        if type(source) is not str or not source:
            record["source"] = tag
        if firelens_tag is not None:
            # ECS log metadata disabled: the tag still names the container and the task
            record.setdefault("container_name", firelens_tag.group(1))
            record.setdefault("ecs_task_arn", firelens_tag.group(2))
        records.append((record, None))
    if options.joins_lines:
        records = _join_multiline(records, options.multiline_start)

    body = f"{context}\x1f".encode("utf-8", "surrogatepass") + message.entries
    parsed = parse_records(records, replace(options, source=options.source or NAME), body)
    return parsed._replace(problems=problems + parsed.problems)


def _empty_batch() -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([], schema=LOGS)


def message_context(message: ForwardMessage, fallback: str) -> str:
    """The id context of a message: its chunk id, or `fallback` when it asks for no ack."""
    chunk = raw_bytes(message.chunk)
    return f"chunk {chunk.hex()}" if chunk is not None else fallback


# ----------------------------------------------------------------------------- whole payloads


@RECEIVERS.register(NAME)
def parse(data: bytes, options: ReceiverOptions) -> Parsed:
    """A byte stream of forward messages (a capture of the TCP stream); never raises for bad
    input: a malformed message is a problem, and reading stops at undecodable msgpack."""
    options = replace(options, ingest_time_us=options.ingest_us())  # one ingest time for all
    unpacker = new_unpacker(max(len(data), 1024))
    unpacker.feed(data)
    parsed_messages: list[Parsed] = []
    problems: list[Problem] = []
    number = end = 0
    while True:
        where = f"{options.input_name} message {number + 1}"
        try:
            msg = next(unpacker)
        except StopIteration:
            if end != len(data):
                problems.append(Problem("invalid_msgpack", where, "the data ends inside it"))
            break
        except _UNPACK_ERRORS as exc:
            problems.append(Problem("invalid_msgpack", where, f"not valid msgpack: {exc}"))
            break
        end = unpacker.tell()
        if msg is None:
            continue  # heartbeat
        number += 1
        try:
            message = decode_message(msg)
        except ForwardError as exc:
            problems.append(Problem(exc.kind, where, exc.detail))
            continue
        message_options = replace(options, input_name=where)
        parsed = to_parsed(message, message_options, message_context(message, f"n{number}"))
        parsed_messages.append(parsed)
        problems.extend(parsed.problems)
    if not parsed_messages:
        return Parsed("logs", _empty_batch(), problems)
    if len(parsed_messages) == 1:  # ids from its entries: new or a resend as a whole
        return parsed_messages[0]._replace(problems=problems)
    tables = [parsed.batch for parsed in parsed_messages]
    combined = pa.Table.from_batches(tables, schema=LOGS).combine_chunks().to_batches()
    return Parsed("logs", combined[0] if combined else _empty_batch(), problems)
