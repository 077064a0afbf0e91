"""Shared pieces of every receiver: options, problems, times, levels, ids and batch building.

Receivers collect rows column by column (one Python list per varying column, constants given
once) and turn them into one Arrow batch at the end: no per-row dicts in the hot path.
"""

from __future__ import annotations

import math
import re
import time as _time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from hashlib import blake2b
from typing import Any, NamedTuple

import orjson
import pyarrow as pa

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_fromisoformat = datetime.fromisoformat
_US = timedelta(microseconds=1)
# accepted event times: 1970 .. 2200; anything else is a unit mistake or garbage
_MIN_US = 0
_MAX_US = 7_258_118_400_000_000


@dataclass(frozen=True, slots=True)
class ReceiverOptions:
    """The one context object every receiver takes; constants fill columns the payload lacks."""

    input_name: str = "input"  # named in every problem (a file name, "stdin", "POST /firelens")
    source: str | None = None  # the `source` column; defaults to the receiver's name
    account: str | None = None
    region: str | None = None
    cluster: str | None = None
    service: str | None = None
    task: str | None = None
    task_definition: str | None = None
    container: str | None = None
    stream: str | None = None
    multiline: bool = False  # join stack traces (Java and Python defaults)
    multiline_start: str | None = (
        None  # regex marking the FIRST line of a record; implies multiline
    )
    ingest_time_us: int | None = None  # None: now (tests pin it)

    def ingest_us(self) -> int:
        return self.ingest_time_us if self.ingest_time_us is not None else now_us()


@dataclass(frozen=True, slots=True)
class Problem:
    """A part of a payload that was not stored as-is: data, never an exception."""

    # unparsed | invalid_json | invalid_gzip | invalid_base64 | control_message | bad_record
    kind: str
    where: str  # "app.log line 3", "POST /cwl record 2"
    detail: str

    def __str__(self) -> str:
        return f"{self.where}: {self.detail}"


class Parsed(NamedTuple):
    table: str
    batch: pa.RecordBatch
    problems: list[Problem]


def now_us() -> int:
    return _time.time_ns() // 1000


# ---------------------------------------------------------------------------------------- times


def number_to_us(value: float) -> int | None:
    """Epoch seconds, milliseconds, microseconds or nanoseconds, told apart by magnitude."""
    if not math.isfinite(value) or value < 0:
        return None
    if value < 1e11:  # seconds until year 5138
        us = value * 1_000_000
    elif value < 1e14:
        us = value * 1_000
    elif value < 1e17:
        us = value
    else:
        us = value / 1_000
    result = int(us)
    return result if _MIN_US <= result <= _MAX_US else None


def parse_time(value: Any) -> int | None:
    """Epoch microseconds from a number, a numeric string or an ISO 8601 text; None if neither."""
    if type(value) is str and 19 <= len(value) <= 35 and value[4] == "-":
        # fast path for the common ISO form; anything unusual goes the long way below
        try:
            parsed = _fromisoformat(value)
        except ValueError:
            pass
        else:
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            result = (parsed - _EPOCH) // _US
            return result if _MIN_US <= result <= _MAX_US else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return number_to_us(value)
    if not isinstance(value, str) or not 8 <= len(value) <= 40:
        return None
    text = value.strip()
    if text[:1].isdigit() and text.replace(".", "", 1).isdigit():
        return number_to_us(float(text))
    try:  # Python logging writes "2024-01-02 03:04:05,678": a comma before the fraction
        parsed = datetime.fromisoformat(text.replace(",", ".", 1))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        result = (parsed - _EPOCH) // _US
    except OverflowError:
        return None
    return result if _MIN_US <= result <= _MAX_US else None


_LEADING_TIME = re.compile(
    r"\[?(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?)"
)


def leading_time(line: str) -> int | None:
    """The ISO time a plain-text line starts with ("2024-05-01T10:00:00Z GET /"), if any."""
    if not line[:1].isdigit() and not line.startswith("["):
        return None
    match = _LEADING_TIME.match(line)
    if match is None:
        return None
    text = match.group(1)
    if len(text) > 26 and text[19] in ".,":  # more than microseconds: fromisoformat refuses
        head, _, tail = text.partition(text[19])
        digits = re.match(r"\d+", tail)
        frac = digits.group(0) if digits else ""
        text = f"{head}.{frac[:6]}{tail[len(frac) :]}"
    return parse_time(text)


# --------------------------------------------------------------------------------------- levels

_CANONICAL = {
    "trace": "TRACE",
    "debug": "DEBUG",
    "info": "INFO",
    "information": "INFO",
    "notice": "INFO",
    "warn": "WARN",
    "warning": "WARN",
    "error": "ERROR",
    "err": "ERROR",
    "fatal": "FATAL",
    "critical": "FATAL",
    "crit": "FATAL",
    "panic": "FATAL",
    "emerg": "FATAL",
    "alert": "FATAL",
}
# pino / bunyan numeric levels
_NUMERIC = {10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL"}
LEVEL_KEYS = ("level", "severity", "lvl", "loglevel", "log_level", "levelname")
# upper-case words only: "for more info" in prose is not a level
_TEXT_LEVEL = re.compile(
    r"\b(TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|FATAL|CRITICAL|CRIT|PANIC)\b"
    r"|\b(?:level|lvl|severity)=\"?([A-Za-z]+)"
)


def normalize_level(value: Any) -> str | None:
    """A level value from a structured field, as TRACE/DEBUG/INFO/WARN/ERROR/FATAL (or as given)."""
    if type(value) is str:
        canonical = _CANONICAL.get(value.lower())
        if canonical is not None:
            return canonical
        return value[:16].upper() or None
    if type(value) is int:
        return _NUMERIC.get(value)
    return None


def level_from_text(message: str) -> str | None:
    """The level word near the start of a plain-text line; Python tracebacks count as ERROR."""
    head = message[:200]
    match = _TEXT_LEVEL.search(head)
    if match is not None:
        return _CANONICAL.get((match.group(1) or match.group(2)).lower())
    if head.startswith("Traceback (most recent call last):"):
        return "ERROR"
    return None


# ------------------------------------------------------------------------------- JSON messages

MESSAGE_KEYS = ("message", "msg", "log")
TIME_KEYS = ("time", "timestamp", "@timestamp", "ts")


def parse_json_object(text: str) -> dict[str, Any] | None:
    """The JSON object a message holds, or None when it is not exactly one JSON object."""
    if not text.startswith("{"):
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


class Structured(NamedTuple):
    time_us: int | None
    level: str | None
    message: str


def structured(obj: Mapping[str, Any], raw: str) -> Structured:
    """Time, level and message of a parsed JSON log object (message `raw` when none is named)."""
    time_us = None
    for key in TIME_KEYS:
        value = obj.get(key)
        if value is not None:
            time_us = parse_time(value)
            if time_us is not None:
                break
    level = None
    for key in LEVEL_KEYS:
        value = obj.get(key)
        if value is not None:
            level = normalize_level(value)
            if level is not None:
                break
    message = raw
    for key in MESSAGE_KEYS:
        value = obj.get(key)
        if isinstance(value, str):
            message = value
            break
    if level is None and message is not raw:
        level = level_from_text(message)
    return Structured(time_us, level, message)


def to_json_text(value: Any) -> str:
    """Compact JSON text; values orjson refuses (huge ints, odd keys) go through str()."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


# ------------------------------------------------------------------------------------------ ids


def record_id(source: str, stream: str, time_us: int | None, message: str, sequence: object) -> str:
    """Deterministic: a re-sent payload yields the same ids, so a WAL replay de-duplicates.

    `time_us` is the event's own time (None when the payload has none), never the ingest time.
    """
    digest = blake2b(digest_size=16)
    digest.update(
        f"{source}\x1f{stream}\x1f{'' if time_us is None else time_us}\x1f{sequence}\x1f".encode()
    )
    digest.update(message.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


# -------------------------------------------------------------------------------------- batches


def build_batch(
    schema: pa.Schema,
    columns: Mapping[str, Sequence[Any]],
    constants: Mapping[str, Any] | None = None,
    rows: int | None = None,
) -> pa.RecordBatch:
    """A batch of `schema` from per-row lists plus constants; a column given by neither is null."""
    constants = constants or {}
    n = rows if rows is not None else len(next(iter(columns.values()))) if columns else 0
    arrays = []
    for field in schema:
        if field.name in columns:
            values = columns[field.name]
            if len(values) != n:
                raise ValueError(f"column {field.name} has {len(values)} rows, expected {n}")
            arrays.append(pa.array(values, type=field.type))
        elif constants.get(field.name) is not None:
            arrays.append(pa.repeat(pa.scalar(constants[field.name], type=field.type), n))
        else:
            arrays.append(pa.nulls(n, type=field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


class LogRows:
    """Columnar accumulator for the `logs` table: append to the lists, then `batch()`."""

    VARYING = (
        "time",
        "account",
        "region",
        "cluster",
        "service",
        "task",
        "task_definition",
        "container",
        "stream",
        "level",
        "message",
        "fields",
        "id",
    )

    def __init__(self, varying: Sequence[str] = ("time", "level", "message", "fields", "id")):
        unknown = set(varying) - set(self.VARYING)
        if unknown:
            raise ValueError(f"not a varying logs column: {sorted(unknown)}")
        self.columns: dict[str, list[Any]] = {name: [] for name in varying}

    def __len__(self) -> int:
        return len(self.columns["id"])

    def batch(self, options: ReceiverOptions, source: str, ingest_us: int) -> pa.RecordBatch:
        from ecsguard.logs.schema import LOGS

        constants = {
            "ingest_time": ingest_us,
            "source": source,
            "account": options.account,
            "region": options.region,
            "cluster": options.cluster,
            "service": options.service,
            "task": options.task,
            "task_definition": options.task_definition,
            "container": options.container,
            "stream": options.stream,
        }
        return build_batch(LOGS, self.columns, constants, rows=len(self))
