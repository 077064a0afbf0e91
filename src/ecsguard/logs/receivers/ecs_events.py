"""ECS / EventBridge events (one object, a JSON list, or one per line) into the `events` table.

`resources` and `detail` are kept as JSON text. An event without a usable `time` gets the ingest
time (and a problem); one without an `id` gets a content hash, so a re-sent batch keeps its ids.

A batch of well-formed events (an object or a list, every event with an id and a time) is
read by the native reader (firelens_native.cpp's parse_events) where it was built, else decoded
by msgspec into flat structs, `detail` and `resources` staying undecoded text (`_fast`): no dict
is built for any event. Anything else goes the general path, which reports what is wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import orjson
import pyarrow.compute as pc

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
from ecsguard.logs.schema import EVENTS

NAME = "ecs_events"
_COLUMNS = tuple(field.name for field in EVENTS)


def _events(data: bytes, name: str, problems: list[Problem]) -> list[Any]:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, list):
        return doc
    if doc is not None:
        return [doc]
    # not one JSON document: one event per line (NDJSON)
    out: list[Any] = []
    for n, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            out.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            problems.append(Problem("invalid_json", f"{name} line {n}", f"invalid JSON: {exc}"))
    return out


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@RECEIVERS.register(NAME)
def parse(data: bytes, options: ReceiverOptions) -> Parsed:
    return _fast(data, options) or _general(data, options)


class _Event(msgspec.Struct, gc=False):
    """The keys the table keeps, texts where it keeps a text (another type: the general path),
    `detail` and `resources` as their JSON text."""

    id: str | None = None
    time: str | None = None
    source: str | None = None
    detail_type: str | None = msgspec.field(default=None, name="detail-type")
    account: str | None = None
    region: str | None = None
    resources: msgspec.Raw = RAW_NULL
    detail: msgspec.Raw = RAW_NULL


_EVENT = msgspec.json.Decoder(_Event)
_EVENTS = msgspec.json.Decoder(list[_Event])


def _fast(data: bytes, options: ReceiverOptions) -> Parsed | None:
    """The batch of one event or a list of events, each well-formed, as `_general` makes it;
    None for any other body (NDJSON included)."""
    if not valid_utf8(data):  # orjson refuses such a body; msgspec would skip what it keeps raw
        return None
    try:
        body = compact_json(data.strip())
        built = None if NATIVE is None else NATIVE.parse_events(body)
        if built is not None:
            return _from_native(built, options)
        events = _EVENTS.decode(body) if body[:1] == b"[" else [_EVENT.decode(body)]
    except (msgspec.DecodeError, ValueError):
        return None
    ids = [e.id or None for e in events]
    times = parse_times([e.time for e in events])
    if None in ids or None in times:
        return None  # the general path says what is missing, or hashes an id
    columns: dict[str, Sequence[Any]] = {
        "time": times,
        "id": ids,
        "source": [e.source or None for e in events],
        "detail_type": [e.detail_type or None for e in events],
        "account": [e.account or options.account for e in events],
        "region": [e.region or options.region for e in events],
        "resources": raw_json_column([e.resources for e in events]),
        "detail": raw_json_column([e.detail for e in events]),
    }
    return Parsed("events", build_batch(EVENTS, columns, rows=len(events)), [])


def _from_native(built: dict[str, Any], options: ReceiverOptions) -> Parsed | None:
    """The batch of the native reader's columns (firelens_native.cpp's parse_events); None when
    a time does not read (the general path reports it)."""
    columns = native_records(built)
    if columns is None:
        return None
    for name, default in (("account", options.account), ("region", options.region)):
        if default is not None:
            columns[name] = pc.fill_null(columns[name], default)
    return Parsed("events", build_batch(EVENTS, columns, rows=len(columns["id"])), [])


def _general(data: bytes, options: ReceiverOptions) -> Parsed:
    problems: list[Problem] = []
    columns: dict[str, list[Any]] = {name: [] for name in _COLUMNS}
    ingest_us = options.ingest_us()
    for i, event in enumerate(_events(data, options.input_name, problems)):
        where = f"{options.input_name} event {i + 1}"
        if not isinstance(event, dict):
            problems.append(Problem("bad_record", where, "an event is not a JSON object"))
            continue
        event_us = parse_time(event.get("time"))
        if event_us is None:
            problems.append(Problem("bad_record", where, "no valid time; ingest time used"))
        source = _str(event.get("source"))
        resources = event.get("resources")
        detail = event.get("detail")
        columns["time"].append(ingest_us if event_us is None else event_us)
        columns["id"].append(
            _str(event.get("id")) or record_id(str(source), "", event_us, to_json_text(event), i)
        )
        columns["source"].append(source)
        columns["detail_type"].append(_str(event.get("detail-type")))
        columns["account"].append(_str(event.get("account")) or options.account)
        columns["region"].append(_str(event.get("region")) or options.region)
        columns["resources"].append(None if resources is None else to_json_text(resources))
        columns["detail"].append(None if detail is None else to_json_text(detail))
    return Parsed("events", build_batch(EVENTS, columns), problems)
