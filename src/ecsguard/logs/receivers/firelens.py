"""Fluent Bit `http` output bodies (the FireLens path) into the `logs` table.

Both `format json_lines` (one record object per line) and `format json` (one array) are read.
A FireLens record carries its task's metadata next to the container's line:

    {"date": 1574646926.0, "source": "stdout", "log": "...", "container_name": "/app",
     "ecs_cluster": "arn:...:cluster/prod", "ecs_task_arn": "arn:...:task/prod/abc",
     "ecs_task_definition": "web:7", "container_id": "..."}

Metadata become columns (cluster name, task id, family:revision, account and region from the task
ARN); `log` holding a JSON object is parsed (fields, level, message, time). Other keys (e.g. the
fields of an already-parsed record, `ec2_instance_id`) go into `fields`. `container_id` is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from ecsguard.logs.receivers import RECEIVERS
from ecsguard.logs.records import (
    LogRows,
    Parsed,
    Problem,
    ReceiverOptions,
    level_from_text,
    parse_json_object,
    parse_time,
    record_id,
    structured,
    to_json_text,
)

NAME = "firelens"
UNPARSED = '{"_unparsed":true}'
_META = frozenset(
    (
        "date",
        "log",
        "source",
        "ecs_cluster",
        "ecs_task_arn",
        "ecs_task_definition",
        "container_name",
        "container_id",
    )
)
_VARYING = (
    "time",
    "account",
    "region",
    "cluster",
    "task",
    "task_definition",
    "container",
    "stream",
    "level",
    "message",
    "fields",
    "id",
)


def _resource(arn: str) -> str:
    """The resource part of an ARN ("task/prod/abc"), or the text itself when it is no ARN."""
    if arn.startswith("arn:"):
        parts = arn.split(":", 5)
        return parts[5] if len(parts) == 6 else ""
    return arn


def cluster_name(value: str) -> str:
    """`prod` from `prod` or from `arn:aws:ecs:r:a:cluster/prod`."""
    return _resource(value).removeprefix("cluster/")


def task_definition(value: str) -> str:
    """`web:7` from `web:7` or from `arn:aws:ecs:r:a:task-definition/web:7`."""
    return _resource(value).removeprefix("task-definition/")


def task_parts(arn: str) -> tuple[str | None, str | None, str | None, str | None]:
    """(task id, cluster name or None, account, region) of a task ARN, old or new format."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return (arn or None, None, None, None)
    path = parts[5].split("/")
    task = path[-1] or None
    cluster = path[1] if len(path) == 3 else None  # task/<cluster>/<id>; the old task/<id> has none
    return (task, cluster, parts[4] or None, parts[3] or None)


def records_of(body: str) -> list[tuple[Any, str | None]]:
    """(record, error) pairs: an array body is `format json`, anything else `format json_lines`."""
    stripped = body.strip()
    if stripped.startswith("[") or (stripped.startswith("{") and "\n" in stripped):
        try:  # one array (`format json`) or one pretty-printed record
            value = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            value = None  # not one document: read it line by line below
        if isinstance(value, list):
            return [(item, None) for item in value]
        if isinstance(value, dict):
            return [(value, None)]
    out: list[tuple[Any, str | None]] = []
    for line in stripped.split("\n"):
        line = line.strip()
        if not line:
            continue
        try:
            out.append((orjson.loads(line), None))
        except orjson.JSONDecodeError as exc:
            out.append((line, f"not valid JSON, kept as text: {exc}"))
    return out


@RECEIVERS.register(NAME)
def parse(data: bytes, options: ReceiverOptions) -> Parsed:
    return parse_records(records_of(data.decode("utf-8", "replace")), options)


def parse_records(records: Iterable[tuple[Any, str | None]], options: ReceiverOptions) -> Parsed:
    """(record, error) pairs into a batch; the forward receiver passes its msgpack records here."""
    source = options.source or NAME
    ingest_us = options.ingest_us()
    rows = LogRows(_VARYING)
    col = rows.columns
    problems: list[Problem] = []
    task_cache: dict[str, tuple[str | None, str | None, str | None, str | None]] = {}

    for seq, (record, error) in enumerate(records):
        where = f"{options.input_name} record {seq + 1}"
        if not isinstance(record, dict):
            text = record if isinstance(record, str) else to_json_text(record)
            problems.append(Problem("unparsed", where, error or "not a JSON object, kept as text"))
            _add(col, options, source, seq, None, {}, text, level_from_text(text), UNPARSED)
            continue
        event_us = parse_time(record.get("date"))
        extras = {k: v for k, v in record.items() if k not in _META}
        log = record.get("log")
        level = None
        fields: str | None = None
        if isinstance(log, str):
            obj = parse_json_object(log.strip())
            if obj is not None:
                own_us, level, message = structured(obj, log.strip())
                event_us = own_us if own_us is not None else event_us
                fields = to_json_text({**extras, **obj}) if extras else log.strip()
            else:
                message = log
                level = level_from_text(log)
                fields = to_json_text(extras) if extras else None
        else:
            # no `log` string: an already-parsed record (parse-json filter) or an odd value
            if log is not None:
                extras["log"] = log
            own_us, level, message = structured(extras, to_json_text(extras))
            event_us = own_us if own_us is not None else event_us
            fields = to_json_text(extras) if extras else None

        arn = record.get("ecs_task_arn")
        parts: tuple[str | None, str | None, str | None, str | None] = (None, None, None, None)
        if isinstance(arn, str):
            parts = task_cache.get(arn) or task_cache.setdefault(arn, task_parts(arn))
        _add(col, options, source, seq, event_us, record, message, level, fields, parts)

    times = col["time"]
    for i, value in enumerate(times):
        if value is None:
            times[i] = ingest_us
    return Parsed("logs", rows.batch(options, source, ingest_us), problems)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _add(
    col: dict[str, list[Any]],
    options: ReceiverOptions,
    source: str,
    seq: int,
    event_us: int | None,
    record: dict[str, Any],
    message: str,
    level: str | None,
    fields: str | None,
    parts: tuple[str | None, str | None, str | None, str | None] = (None, None, None, None),
) -> None:
    task, arn_cluster, account, region = parts
    cluster = _text(record.get("ecs_cluster"))
    family = _text(record.get("ecs_task_definition"))
    container = _text(record.get("container_name"))
    stream = _text(record.get("source"))
    task = task or options.task
    container = container.lstrip("/") if container else options.container
    stream = stream or options.stream
    col["time"].append(event_us)
    col["account"].append(account or options.account)
    col["region"].append(region or options.region)
    col["cluster"].append(cluster_name(cluster) if cluster else arn_cluster or options.cluster)
    col["task"].append(task)
    col["task_definition"].append(task_definition(family) if family else options.task_definition)
    col["container"].append(container)
    col["stream"].append(stream)
    col["level"].append(level)
    col["message"].append(message)
    col["fields"].append(fields)
    col["id"].append(record_id(source, f"{task}/{container}/{stream}", event_us, message, seq))
