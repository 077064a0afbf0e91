"""CloudWatch embedded metric format (EMF) documents as rows of the `metrics` table.

An EMF document is a JSON object whose `_aws` member says which of its root members are metrics:

    {"_aws": {"Timestamp": 1700000000000,            # epoch milliseconds
              "CloudWatchMetrics": [{"Namespace": "shop",
                                     "Dimensions": [["ServiceName"], ["ServiceName", "Route"]],
                                     "Metrics": [{"Name": "Latency", "Unit": "Milliseconds"}]}]},
     "ServiceName": "cart", "Route": "/buy", "Latency": [12, 15.5]}

Each (metric, dimension set, value) becomes one row; dimension values are the root's string
members. Container Insights performance log events for ECS (`"Type": "Container"`, `"Task"`,
`"Service"`...) are EMF when they carry `_aws`; the documented form without it is read too (every
numeric member a metric of `ECS/ContainerInsights`, the identity members its dimensions).

Faults are data: a document or directive that cannot be read, a metric member that is missing or
not a number, a dimension set naming a member the root lacks (the set is skipped, the others are
stored) each become a Problem, and the rest of the document and batch continues.

`EmfExtractor` is a LogService listener: EMF records that arrive as log lines (FireLens, the
CloudWatch Logs subscription of a performance log group) are stored as metrics too.
"""

from __future__ import annotations

import logging
import math
import re
from bisect import bisect_right
from collections.abc import Callable
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ecsguard.core.native import load, rows_with, string_buffers
from ecsguard.logs.records import (
    Parsed,
    Problem,
    build_batch,
    metric_ids,
    parse_json_object,
)
from ecsguard.logs.schema import METRICS

FIRELENS = load("ecsguard._firelens_native")  # the native text search, or None

log = logging.getLogger(__name__)

CONTAINER_INSIGHTS = "ECS/ContainerInsights"
#: the identity members of each Container Insights event type: its dimensions, never metrics
_INSIGHTS_DIMENSIONS = {
    "Container": ("ClusterName", "ServiceName", "TaskDefinitionFamily", "TaskId", "ContainerName"),
    "Task": ("ClusterName", "ServiceName", "TaskDefinitionFamily", "TaskId"),
    "Service": ("ClusterName", "ServiceName"),
    "Cluster": ("ClusterName",),
    "ContainerInstance": ("ClusterName", "ContainerInstanceId", "EC2InstanceId"),
}
#: numeric members of a performance event that describe rather than measure
_INSIGHTS_NOT_METRICS = frozenset(("Timestamp", "Version", "TaskDefinitionRevision"))
_INSIGHTS_UNITS = {
    "CpuUtilized": "None",  # CPU units, as CloudWatch publishes them
    "CpuReserved": "None",
    "MemoryUtilized": "Megabytes",
    "MemoryReserved": "Megabytes",
    "StorageReadBytes": "Bytes/Second",
    "StorageWriteBytes": "Bytes/Second",
    "NetworkRxBytes": "Bytes/Second",
    "NetworkTxBytes": "Bytes/Second",
}
#: the `source` part of the ids of metrics read from logs rows (records.metric_ids)
LOGS_SOURCE = "logs"
#: a logs row worth parsing: EMF, or a Container Insights event in its documented form
_PERFORMANCE_EVENT = r'"Type" ?: ?"(Container|Task|Service|Cluster|ContainerInstance)"'


class MetricRows:
    """Columnar accumulator for the `metrics` table, ids included.

    A row's id (records.metric_ids) is its content, the `key` of its input (set by the caller:
    a logs row's id, or "" for a whole body) and how many equal datapoints came before it under
    that key. So a resent body, or one resent with documents dropped or added around the old
    ones, yields the same ids, while equal datapoints of one input stay apart. A document
    without its own time is identified without the ingest time it is stored at."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.key = ""
        self.columns: dict[str, list[Any]] = {f.name: [] for f in METRICS if f.name != "id"}
        self._keys: list[str] = []
        self._stamps: list[int | None] = []
        self._points: list[tuple[str, str, str, float, str | None]] = []
        self._sequences: list[int] = []
        self._seen: dict[tuple[Any, ...], int] = {}

    def __len__(self) -> int:
        return len(self.columns["time"])

    def add(
        self,
        time_us: int,
        namespace: str,
        name: str,
        dims: str,
        value: float,
        unit: str | None,
        *,
        own_time: bool = True,
    ) -> None:
        c = self.columns
        c["time"].append(time_us)
        c["namespace"].append(namespace)
        c["name"].append(name)
        c["dimensions"].append(dims)
        c["value"].append(value)
        c["unit"].append(unit)
        stamp = time_us if own_time else None
        point = (namespace, name, dims, value, unit)
        seen = (self.key, stamp, point)
        sequence = self._seen.get(seen, 0)  # equal datapoints before this one, under this key
        self._seen[seen] = sequence + 1
        self._keys.append(self.key)
        self._stamps.append(stamp)
        self._points.append(point)
        self._sequences.append(sequence)

    def batch(self) -> pa.RecordBatch:
        ids = metric_ids(self.source, self._keys, self._stamps, self._points, self._sequences)
        return build_batch(METRICS, {**self.columns, "id": ids}, rows=len(self))


def is_emf(doc: dict[str, Any]) -> bool:
    """Whether a JSON object claims to be EMF (or a Container Insights performance event)."""
    return "_aws" in doc or _is_insights_event(doc)


def _is_insights_event(doc: dict[str, Any]) -> bool:
    return doc.get("Type") in _INSIGHTS_DIMENSIONS and isinstance(doc.get("ClusterName"), str)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    result = float(value)
    return result if math.isfinite(result) else None


def _time_us(value: Any) -> int | None:
    """Epoch milliseconds (a number, or a numeric text as performance events write it) in µs."""
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    ms = _number(value)
    if ms is None or not 0 <= ms < 7_258_118_400_000:  # 1970 .. 2200
        return None
    return int(ms * 1000)


def _dims_text(dims: dict[str, str]) -> str:
    return orjson.dumps(dims, option=orjson.OPT_SORT_KEYS).decode()


def extract(
    doc: Any, where: str, rows: MetricRows, problems: list[Problem], default_us: int
) -> int:
    """Append the rows of one EMF document to `rows`; faults go to `problems`. Rows added."""
    if not isinstance(doc, dict):
        problems.append(Problem("bad_record", where, "an EMF document must be a JSON object"))
        return 0
    if "_aws" not in doc:
        if _is_insights_event(doc):
            return _insights(doc, where, rows, problems, default_us)
        problems.append(Problem("bad_record", where, "no `_aws` member: not an EMF document"))
        return 0
    meta = doc["_aws"]
    if not isinstance(meta, dict):
        problems.append(Problem("bad_record", where, "`_aws` must be an object"))
        return 0
    directives = meta.get("CloudWatchMetrics")
    if not isinstance(directives, list):
        problems.append(Problem("bad_record", where, "`_aws.CloudWatchMetrics` must be a list"))
        return 0
    time_us = _time_us(meta.get("Timestamp"))
    own_time = time_us is not None
    if time_us is None:
        problems.append(
            Problem("bad_record", where, "`_aws.Timestamp` is not epoch milliseconds; now used")
        )
        time_us = default_us
    added = 0
    for d, directive in enumerate(directives):
        path = f"CloudWatchMetrics[{d}]"
        added += _directive(doc, directive, path, where, (time_us, own_time), rows, problems)
    return added


def _directive(
    doc: dict[str, Any],
    directive: Any,
    path: str,
    where: str,
    when: tuple[int, bool],
    rows: MetricRows,
    problems: list[Problem],
) -> int:
    """The rows of one metric directive; `when` is (time, whether the document gave it)."""
    time_us, own_time = when

    def fault(detail: str) -> None:
        problems.append(Problem("bad_record", where, f"{path}: {detail}"))

    if not isinstance(directive, dict):
        fault("a metric directive must be an object")
        return 0
    namespace = directive.get("Namespace")
    if not isinstance(namespace, str) or not namespace:
        fault("`Namespace` must be a non-empty string")
        return 0
    dimension_sets = directive.get("Dimensions")
    metrics = directive.get("Metrics")
    if not isinstance(dimension_sets, list) or not isinstance(metrics, list):
        fault("`Dimensions` and `Metrics` must be lists")
        return 0
    dims_texts = []
    for s, keys in enumerate(dimension_sets):
        dims = _dimension_set(doc, keys)
        if isinstance(dims, str):
            fault(f"Dimensions[{s}] {dims}; that dimension set is skipped")
        else:
            dims_texts.append(_dims_text(dims))
    if not dimension_sets:
        dims_texts.append("{}")  # an empty list: the metrics have no dimensions
    if not dims_texts:
        return 0  # every set was reported; storing the values without any would mislabel them
    added = 0
    for m, metric in enumerate(metrics):
        if not isinstance(metric, dict) or not isinstance(metric.get("Name"), str):
            fault(f"Metrics[{m}] must be an object with a string `Name`")
            continue
        name = metric["Name"]
        unit = metric.get("Unit")
        if unit is not None and not isinstance(unit, str):
            fault(f"metric {name!r}: `Unit` must be a string; left empty")
            unit = None
        values = _values(doc, name, fault)
        for dims_text in dims_texts:
            for value in values:
                rows.add(time_us, namespace, name, dims_text, value, unit, own_time=own_time)
        added += len(values) * len(dims_texts)
    return added


def _dimension_set(doc: dict[str, Any], keys: Any) -> dict[str, str] | str:
    """The dimensions a set names, or why it cannot be used."""
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        return "must be a list of member names"
    dims: dict[str, str] = {}
    for key in keys:
        if key not in doc:
            return f"names {key!r}, which is not a member of the document"
        value = doc[key]
        if not isinstance(value, str):
            return f"names {key!r}, whose value is not a string"
        dims[key] = value
    return dims


def _values(doc: dict[str, Any], name: str, fault: Callable[[str], None]) -> list[float]:
    if name not in doc:
        fault(f"metric {name!r} is not a member of the document")
        return []
    raw = doc[name]
    number = _number(raw)
    if number is not None:
        return [number]
    if not isinstance(raw, list):
        fault(f"metric {name!r}: {orjson.dumps(raw).decode()[:60]} is not a number")
        return []
    values = []
    for i, item in enumerate(raw):
        number = _number(item)
        if number is None:
            fault(f"metric {name!r} value {i}: {orjson.dumps(item).decode()[:60]} is not a number")
        else:
            values.append(number)
    return values


def _insights(
    doc: dict[str, Any], where: str, rows: MetricRows, problems: list[Problem], default_us: int
) -> int:
    """A Container Insights performance event without `_aws`: numeric members are metrics."""
    identity = _INSIGHTS_DIMENSIONS[doc["Type"]]
    dims = {k: doc[k] for k in identity if isinstance(doc.get(k), str)}
    time_us = _time_us(doc.get("Timestamp"))
    own_time = time_us is not None
    if time_us is None:
        problems.append(Problem("bad_record", where, "`Timestamp` is not epoch milliseconds"))
        time_us = default_us
    dims_text = _dims_text(dims)
    units = _INSIGHTS_UNITS
    added = 0
    for key, raw in doc.items():
        if key in _INSIGHTS_NOT_METRICS or key in identity:
            continue
        value = _number(raw)
        if value is not None:
            unit = units.get(key)
            rows.add(time_us, CONTAINER_INSIGHTS, key, dims_text, value, unit, own_time=own_time)
            added += 1
    return added


# ------------------------------------------------------------------------------ from log rows


def metrics_from_logs(batch: pa.RecordBatch) -> Parsed:
    """The EMF records among a `logs` batch's rows as a `metrics` batch.

    Only rows whose message or fields contain `_aws` (or a performance event's `"Type"`) are
    parsed: a search of each column's data buffer (`_rows_with`), so a batch without EMF costs
    two scans of its bytes (a regular expression over every row cost 3% of ingest). A row
    that only mentions `_aws` in prose is not EMF and is not a problem; a JSON object with an
    `_aws` member that is malformed is.

    A datapoint's id comes from its logs row's id and its place in that row, so deriving the
    metrics of a row again (a resent logs batch, a replay) never stores them twice.
    """
    out = MetricRows(LOGS_SOURCE)
    problems: list[Problem] = []
    rows = sorted(_candidates(batch.column("message")) | _candidates(batch.column("fields")))
    if not rows:
        return Parsed("metrics", out.batch(), problems)
    indices = pa.array(rows, pa.int32())
    picked = batch.select(["time", "id", "fields", "message"]).take(indices)
    times = picked.column("time").cast(pa.int64()).to_pylist()
    for time_us, row_id, field_text, message in zip(
        times, *(picked.column(c).to_pylist() for c in ("id", "fields", "message")), strict=True
    ):
        doc = None
        for text in (field_text, message):
            obj = parse_json_object(text.strip()) if text else None
            if obj is not None and is_emf(obj):
                doc = obj
                break
        if doc is not None:
            out.key = row_id or ""
            extract(doc, f"logs record {row_id}", out, problems, time_us or 0)
    return Parsed("metrics", out.batch(), problems)


def _candidates(texts: pa.Array) -> set[int]:
    """Rows whose text may be EMF (holds `_aws`) or a performance event (`"Type": "Task"`...)."""
    found, typed = _rows_with(texts, b"_aws", b'"Type"')
    if typed:  # rare in application logs: the regex only where it may match
        picked = pa.array(sorted(typed), pa.int32())
        matched = pc.match_substring_regex(texts.take(picked), _PERFORMANCE_EVENT)
        typed = set(pc.filter(picked, pc.fill_null(matched, False)).to_pylist())
    return found | typed


def _rows_with(texts: pa.Array, *needles: bytes) -> list[set[int]]:
    """For each needle, the rows of a string array whose text contains it, by a scan of the
    array's data buffer, in place.

    Most batches hold no EMF at all: one search over the whole buffer costs a fraction of a
    per-text search (Arrow's, four of them, had cost 6% of the server's ingest time). The native
    search (firelens_native.cpp) reads the buffer 5 to 9 times faster than the regular
    expression, which still cost 3.5% of the server's; without it, the regular expression reads a
    memoryview without copying it and found `_aws` in 55% of the time of `bytes.find`. An
    occurrence spanning two texts counts for neither."""
    if texts.null_count == len(texts) or texts.buffers()[2] is None:
        return [set() for _ in needles]
    if FIRELENS is not None:
        return [set(rows_with(FIRELENS, texts, needle)) for needle in needles]
    offsets, whole = string_buffers(texts)
    data = whole[offsets[0] : offsets[-1]]
    base = offsets[0]
    found: list[set[int]] = []
    for needle in needles:
        search = re.compile(re.escape(needle)).search
        rows: set[int] = set()
        match = search(data)
        while match is not None:
            row = bisect_right(offsets, base + match.start()) - 1
            if base + match.end() <= offsets[row + 1]:  # not one running into the next text
                rows.add(row)
            match = search(data, offsets[row + 1] - base)  # from the next row's start
        found.append(rows)
    return found


class EmfExtractor:
    """A LogService listener: `service.add_listener(EmfExtractor(service.store))`.

    It runs on the receiving thread after the logs are durable, so it does one vectorised scan
    per batch and parses only candidate rows. Problems are logged (the logs rows are stored
    whatever their metrics); a full disk loses only the derived metrics, never the logs."""

    def __init__(self, store: Callable[[str, pa.RecordBatch], int]) -> None:
        self.store = store
        self.stored = 0
        self.problems = 0

    def __call__(self, table: str, batch: pa.RecordBatch) -> None:
        if table != "logs":
            return
        parsed = metrics_from_logs(batch)
        if parsed.problems:
            self.problems += len(parsed.problems)
            log.warning(
                "%d EMF problem(s) in a logs batch, first: %s",
                len(parsed.problems),
                parsed.problems[0],
            )
        if parsed.batch.num_rows == 0:
            return
        from ecsguard.logs.wal import WalFullError

        try:
            self.stored += self.store("metrics", parsed.batch)
        except WalFullError as exc:
            log.warning("EMF metrics of a logs batch not stored: %s", exc)
