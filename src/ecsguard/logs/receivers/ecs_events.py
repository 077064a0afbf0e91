"""ECS / EventBridge events (one object, a JSON list, or one per line) into the `events` table.

`resources` and `detail` are kept as JSON text. An event without a usable `time` gets the ingest
time (and a problem); one without an `id` gets a content hash, so a re-sent batch keeps its ids.
"""

from __future__ import annotations

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
