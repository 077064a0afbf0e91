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
from itertools import repeat
from typing import Any, cast

import orjson
import pyarrow as pa

from ecsguard.logs.receivers import RECEIVERS
from ecsguard.logs.records import (
    Parsed,
    Problem,
    ReceiverOptions,
    build_batch,
    level_from_text,
    levels_from_texts,
    parse_json_object,
    parse_time,
    parse_times,
    record_ids,
    structured,
    structured_rows,
    to_json_text,
)
from ecsguard.logs.schema import LOGS

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
    lines = [line for line in map(str.strip, stripped.split("\n")) if line]
    try:  # every line valid: no per-line exception handling
        return list(zip(map(orjson.loads, lines), repeat(None)))
    except orjson.JSONDecodeError:
        pass
    out: list[tuple[Any, str | None]] = []
    for line in lines:
        try:
            out.append((orjson.loads(line), None))
        except orjson.JSONDecodeError as exc:
            out.append((line, f"not valid JSON, kept as text: {exc}"))
    return out


@RECEIVERS.register(NAME)
def parse(data: bytes, options: ReceiverOptions) -> Parsed:
    return parse_records(records_of(data.decode("utf-8", "replace")), options)


def parse_records(records: Iterable[tuple[Any, str | None]], options: ReceiverOptions) -> Parsed:
    """(record, error) pairs into a batch; the forward receiver passes its msgpack records here.

    Rows in the common shape (a `log` text and FireLens keys only) are worked out column by
    column, their times, levels and JSON messages in bulk (records.structured_rows and
    friends); the rest row by row in `_other_row`. Both give the results `_other_row` defines."""
    source = options.source or NAME
    ingest_us = options.ingest_us()
    problems: list[Problem] = []
    pairs = records if isinstance(records, list) else list(records)
    recs = [record for record, _ in pairs]
    n = len(recs)
    # column by column: comprehensions cost far less per row than one loop doing everything
    logs = [r.get("log") if type(r) is dict else None for r in recs]
    meta_keys = _META
    common = [
        type(log) is str and meta_keys.issuperset(r) for r, log in zip(recs, logs, strict=True)
    ]
    metas = _Metas(options)
    groups = metas.groups(recs)  # per row: its metadata in `metas`
    dates = [r.get("date") if c else None for r, c in zip(recs, common, strict=True)]
    own_times: list[int | None] = [None] * n  # per row: the time that wins over `date`
    levels: list[str | None] = [None] * n
    texts = cast(list[str], logs)  # a text in every common row; the other rows are set below
    messages = texts
    fields: list[str | None] = [None] * n
    stripped = [log.strip() if c else "" for log, c in zip(texts, common, strict=True)]
    candidates = [i for i, text in enumerate(stripped) if text.startswith("{")]
    json_at: list[int] = []  # rows whose `log` holds a JSON object
    objs: list[dict[str, Any]] = []
    for i, obj in zip(candidates, map(_object, (stripped[i] for i in candidates)), strict=True):
        if obj is not None:
            json_at.append(i)
            objs.append(obj)
    raws = [stripped[i] for i in json_at]
    for i, raw in zip(json_at, raws, strict=True):
        fields[i] = raw  # the object as the container wrote it
    # text rows: the `log` is the message and its level comes from the text
    plain_at = [i for i, c in enumerate(common) if c]
    if json_at:
        is_json = set(json_at)
        plain_at = [i for i in plain_at if i not in is_json]
    if len(plain_at) + len(json_at) < n:
        for i, c in enumerate(common):
            if not c:
                own_times[i], messages[i], levels[i], fields[i] = _other_row(
                    recs[i], pairs[i][1], i, options, problems
                )

    date_us = parse_times(dates)
    if objs:
        json_times, json_levels, json_messages = structured_rows(objs, raws)
        for i, own, level, message in zip(
            json_at, json_times, json_levels, json_messages, strict=True
        ):
            own_times[i], levels[i], messages[i] = own, level, message
    if plain_at:
        for i, level in zip(
            plain_at, levels_from_texts([messages[i] for i in plain_at]), strict=True
        ):
            levels[i] = level
    times = [own if own is not None else date for own, date in zip(own_times, date_us, strict=True)]
    keys = metas.stream_keys
    streams = [keys[g] for g in groups]
    columns: dict[str, Any] = {
        "time": [ingest_us if t is None else t for t in times],
        "level": levels,
        "message": messages,
        "fields": fields,
        "id": record_ids(source, streams, times, messages, range(n)),
    }
    columns.update(metas.columns(groups))
    constants = {"ingest_time": ingest_us, "source": source, "service": options.service}
    batch = build_batch(LOGS, columns, constants, n)
    return Parsed("logs", batch, problems)


def _other_row(
    record: Any, error: str | None, seq: int, options: ReceiverOptions, problems: list[Problem]
) -> tuple[int | None, str, str | None, str | None]:
    """(event time, message, level, fields) of a row outside the common shape: not an object,
    extra keys, or no `log` text."""
    if not isinstance(record, dict):
        text = record if isinstance(record, str) else to_json_text(record)
        where = f"{options.input_name} record {seq + 1}"
        problems.append(Problem("unparsed", where, error or "not a JSON object, kept as text"))
        return None, text, level_from_text(text), UNPARSED
    event_us = parse_time(record.get("date"))
    extras = {k: v for k, v in record.items() if k not in _META}
    log = record.get("log")
    fields: str | None
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
    return event_us, message, level, fields


def _object(text: str) -> dict[str, Any] | None:
    """The JSON object `text` holds, or None."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if type(value) is dict else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


_NO_META = (None, None, None, None, None)
_META_COLUMNS = ("account", "region", "cluster", "task", "task_definition", "container", "stream")
_Meta = tuple[str | None, str | None, str | None, str | None, str | None, str | None, str | None]


class _Metas:
    """The metadata columns of a body's rows: few distinct values (one set per task container
    and stream), each worked out once and repeated with Arrow's `take`."""

    def __init__(self, options: ReceiverOptions) -> None:
        self.options = options
        self.values: list[_Meta] = []
        self.stream_keys: list[str] = []  # "task/container/stream", part of every record id
        self._index: dict[tuple[Any, ...], int] = {}
        self._tasks: dict[str, tuple[str | None, str | None, str | None, str | None]] = {}

    def groups(self, records: list[Any]) -> list[int]:
        """The index into `values` of every record's metadata (a non-object has none)."""
        keys = [
            (
                r.get("ecs_cluster"),
                r.get("ecs_task_arn"),
                r.get("ecs_task_definition"),
                r.get("container_name"),
                r.get("source"),
            )
            if type(r) is dict
            else _NO_META
            for r in records
        ]
        index = self._index
        try:
            found: list[int | None] = [index.get(key) for key in keys]
        except TypeError:  # a list or an object where a text belongs: not cacheable
            return [self._add(key) for key in keys]
        for i, group in enumerate(found):
            if group is None:
                key = keys[i]
                group = index.get(key)
                if group is None:
                    group = index[key] = self._add(key)
                found[i] = group
        return found  # type: ignore[return-value]  # no None left

    def _add(self, key: tuple[Any, ...]) -> int:
        raw_cluster, arn, raw_family, raw_container, raw_stream = key
        options = self.options
        task, arn_cluster, account, region = None, None, None, None
        if isinstance(arn, str):
            parts = self._tasks.get(arn)
            if parts is None:
                parts = self._tasks[arn] = task_parts(arn)
            task, arn_cluster, account, region = parts
        cluster = _text(raw_cluster)
        family = _text(raw_family)
        container = _text(raw_container)
        stream = _text(raw_stream)
        task = task or options.task
        container = container.lstrip("/") if container else options.container
        stream = stream or options.stream
        self.values.append(
            (
                account or options.account,
                region or options.region,
                cluster_name(cluster) if cluster else arn_cluster or options.cluster,
                task,
                task_definition(family) if family else options.task_definition,
                container,
                stream,
            )
        )
        self.stream_keys.append(f"{task}/{container}/{stream}")
        return len(self.values) - 1

    def columns(self, groups: list[int]) -> dict[str, pa.Array]:
        indices = pa.array(groups, pa.int32())
        return {
            name: pa.array([meta[j] for meta in self.values], pa.string()).take(indices)
            for j, name in enumerate(_META_COLUMNS)
        }
