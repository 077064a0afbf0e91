"""Shared pieces of every receiver: options, problems, times, levels, ids and batch building.

Receivers collect rows column by column (one Python list per varying column, constants given
once) and turn them into one Arrow batch at the end: no per-row dicts in the hot path.

The per-value functions (`parse_time`, `level_from_text`, `structured`, `record_id`) define the
results. Their bulk twins (`parse_times`, `levels_from_texts`, `json_rows`, `record_ids`)
give the same results for many rows at once: the common shapes (float epochs, ISO UTC texts,
ASCII text heads) go through Arrow kernels, anything else through the per-value function.
"""

from __future__ import annotations

import math
import re
import time as _time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from hashlib import blake2b
from operator import attrgetter
from typing import Any, NamedTuple, TypeVar, cast

import msgspec
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from blake3 import blake3

from ecsguard.core.native import load, native_strings, string_buffers, validity

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

    @property
    def joins_lines(self) -> bool:
        """Whether continuation lines are joined into records (a start pattern implies it)."""
        return self.multiline or bool(self.multiline_start)

    def ingest_us(self) -> int:
        return self.ingest_time_us if self.ingest_time_us is not None else now_us()

    def id_context(self, source: str) -> str:
        """What decides a payload's records besides its bytes (`body_ids`): the source and the
        options that fill columns or join lines; not the input's name or the ingest time."""
        return repr(
            (
                source,
                self.account,
                self.region,
                self.cluster,
                self.service,
                self.task,
                self.task_definition,
                self.container,
                self.stream,
                self.multiline,
                self.multiline_start,
            )
        )


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
    #: the ids derive from the whole body (`body_ids`): the batch is new or a resend as a whole,
    #: so its first id stands for every row when resends are dropped
    whole: bool = False


def now_us() -> int:
    return _time.time_ns() // 1000


# ---------------------------------------------------------------------------------------- times


def epoch_us(moment: datetime) -> int:
    """Epoch microseconds of `moment` (a naive one is UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _US


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
            result = epoch_us(parsed)
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
    try:
        result = epoch_us(parsed)
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


#: _LEADING_TIME for RE2 in Arrow, anchored (re.match anchors it)
_LEADING_TIME_RE2 = "^" + _LEADING_TIME.pattern.replace("(", "(?P<time>", 1)


def leading_times(texts: pa.Array) -> pa.Array:
    """`leading_time` of each text of a string array, as an int64 array (null: none): found by
    RE2 in Arrow and converted in bulk (text_times). Python's `\\d` takes any digit where RE2's
    takes ASCII ones, but parse_time reads no other (none of Unicode's 650 in any place of a
    time), and it reads fractions beyond microseconds as leading_time's cut does."""
    return text_times(pc.struct_field(pc.extract_regex(texts, _LEADING_TIME_RE2), "time"))


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


# ------------------------------------------------ JSON values kept as text, never built in Python

#: a value msgspec kept as its JSON text (`msgspec.Raw`) that is null, or absent (the default)
RAW_NULL = msgspec.Raw(b"null")


def valid_utf8(data: bytes) -> bool:
    """Whether `data` is UTF-8; msgspec does not check the values it skips or keeps raw."""
    if data.isascii():  # word at a time, no copy
        return True
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


def compact_json(data: bytes) -> bytes:
    """`data` without the whitespace between its tokens, if it was written with some: judged by
    its line breaks and by the bytes after its opening bracket and its first key (pretty printers
    and Python's `json.dumps` space every token alike), so a compact document costs no pass of
    its own. Raises msgspec.DecodeError for a malformed document it reformats."""
    colon = data.find(b'":')
    spaced = data[1:2].isspace() or data[colon + 2 : colon + 3] == b" "
    if spaced or b"\n" in data or b"\r" in data or b"\t" in data:
        return msgspec.json.format(data, indent=-1)
    return data


def raw_json_column(raws: Sequence[msgspec.Raw]) -> pa.Array:
    """`to_json_text` of each value msgspec kept raw from a `compact_json` document, as a string
    column built without a Python string per value: null for null, else the text as sent. A
    text with an escape goes through orjson, so every string in it reads as `to_json_text`
    writes it (a keyword search compares those texts); numbers keep the sender's spelling
    (`1.50` stays `1.50`, the same value)."""
    if not raws:
        return pa.array([], pa.string())
    joined = b"\x00".join(raws)  # JSON text never holds a NUL byte: it can split them again
    if b"\\" in joined:
        texts = [bytes(raw) for raw in raws]
        return pa.array(
            [
                None if text == b"null" else _unescaped(text) if b"\\" in text else text.decode()
                for text in texts
            ],
            pa.string(),
        )
    parts = pc.split_pattern(pa.array([joined], pa.binary()), b"\x00").flatten()
    texts = parts.cast(pa.string())
    return pc.if_else(pc.equal(texts, "null"), pa.scalar(None, pa.string()), texts)


def _unescaped(text: bytes) -> str:
    """A JSON text with an escape as `to_json_text` writes it; as sent if orjson refuses it (a
    number beyond a double's range, which msgspec skips)."""
    try:
        return to_json_text(orjson.loads(text))
    except orjson.JSONDecodeError:
        return text.decode()


# ------------------------------------------------------------------------------------------ ids

#: 80 bits: random text costs its entropy in the store however it is spelled, and at 128 bits the
#: id was the second-largest column (17 of 64 bytes per event). Ids are compared within a
#: retry window and a partition being compacted (millions of rows): the odds of two of a billion
#: records sharing an id are below one in a million
ID_DIGEST_BYTES = 10


def record_id(source: str, stream: str, time_us: int | None, message: str, sequence: object) -> str:
    """Deterministic: a re-sent payload yields the same ids, so a WAL replay de-duplicates.

    `time_us` is the event's own time (None when the payload has none), never the ingest time.
    """
    digest = blake2b(digest_size=ID_DIGEST_BYTES)
    digest.update(
        f"{source}\x1f{stream}\x1f{'' if time_us is None else time_us}\x1f{sequence}\x1f".encode()
    )
    digest.update(message.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


#: rows per block of `body_ids`: the last 4 hex digits of an id are the row's place in its block
_BLOCK_ROWS = 1 << 16


@cache
def _row_suffixes() -> pa.Array:
    return pa.array([f"{i:04x}" for i in range(_BLOCK_ROWS)], pa.string())


def body_ids(context: str, body: bytes, rows: int) -> pa.Array:
    """Ids of the `rows` records read, in this order, from `body` (`context`: what else decides
    them, `ReceiverOptions.id_context`): 20 hex digits like `record_id`'s, and as deterministic
    (a re-sent body yields the same ids, so the door drops it), with one hash per body instead
    of one per row.

    Each block of 65,536 rows takes a 64-bit prefix from BLAKE3 of the context, the body and the
    block's number; the row's place in the block is the last 16 bits. The hash is cryptographic
    so that no sender can make a body whose ids match another's and have that one dropped as a
    resend; BLAKE3 reads 2.9 GB/s on one core here, SHA-256 on the CPU's SHA instructions 1.4
    (it had cost 3.8% of the server's ingest time), blake2b 0.6. Ids of two blocks meet only if
    their prefixes do: below one chance in 10^8 among a billion records (some 300,000 bodies),
    where 80-bit hashes per row give about one in 10^6. A record's id therefore depends on its
    whole body, as the per-row ids already depended on the record's place in it; the same record
    in another body is another record, even with the same time and text."""
    digest = blake3(f"{context}\x1f".encode("utf-8", "surrogatepass"))
    digest.update(body)
    blocks = []
    for block, start in enumerate(range(0, rows, _BLOCK_ROWS)):
        keyed = digest.copy()
        keyed.update(block.to_bytes(8, "big"))
        prefix = pa.scalar(keyed.hexdigest()[:16], pa.string())
        suffixes = _row_suffixes().slice(0, min(_BLOCK_ROWS, rows - start))
        blocks.append(pc.binary_join_element_wise(prefix, suffixes, ""))
    if len(blocks) == 1:
        return blocks[0]  # the usual body: no concatenated copy
    return pa.concat_arrays(blocks) if blocks else pa.array([], pa.string())


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
            if isinstance(values, pa.Array):  # built in bulk by the receiver
                arrays.append(values if values.type == field.type else values.cast(field.type))
            else:
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
        "request_id",
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


# ------------------------------------------------------------------------- many rows at once

# ISO 8601 UTC times that `datetime.fromisoformat` and Arrow's cast read alike (a day that does
# not exist, such as 02-30, fails Arrow's cast; the whole set then goes the per-value way)
_ISO_UTC = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(\.[0-9]{3}|\.[0-9]{6})?Z$"
)
_ISO_LENGTHS = frozenset((20, 24, 27))
_NATIVE = load("ecsguard._firelens_native")  # iso_times and text_levels, in bulk
_TS_UTC = pa.timestamp("us", tz="UTC")


def _floats_to_us(values: list[float]) -> list[int | None]:
    return floats_to_us(pa.array(values, pa.float64())).to_pylist()


def floats_to_us(v: pa.Array) -> pa.Array:
    """`number_to_us` of a float64 array, in Arrow: the same IEEE operations, truncated alike;
    an int64 array (null where `number_to_us` gives None)."""
    us = pc.case_when(
        pc.make_struct(pc.less(v, 1e11), pc.less(v, 1e14), pc.less(v, 1e17)),
        pc.multiply(v, 1e6),
        pc.multiply(v, 1e3),
        v,
        pc.divide(v, 1e3),
    )
    # int(us) <= _MAX_US  <=>  us < _MAX_US + 1 for us >= 0 (exact: below 2**53)
    valid = pc.and_(
        pc.and_(pc.is_finite(v), pc.greater_equal(v, 0.0)), pc.less(us, float(_MAX_US + 1))
    )
    return pc.if_else(valid, pc.floor(us), None).cast(pa.int64())


def _iso_to_us(texts: pa.Array) -> pa.Array | None:
    """Epoch µs of the ISO UTC texts of a string array that match `_ISO_UTC` (null where not
    matching), an int64 array; or None when Arrow refuses one of them (a day that does not
    exist). The native reader gives null for such a day instead (text_times reads each null
    text the long way, as it reads all of them after a None)."""
    if _NATIVE is not None and pa.types.is_string(texts.type) and len(texts):
        offsets, data = string_buffers(texts)
        values, read, nulls = _NATIVE.iso_times(
            offsets, data, validity(texts), texts.offset, _MAX_US
        )
        buffers = [pa.py_buffer(read) if nulls else None, pa.py_buffer(values)]
        return pa.Array.from_buffers(pa.int64(), len(texts), buffers, nulls)
    matching = pc.match_substring_regex(texts, _ISO_UTC)
    try:
        times = pc.if_else(matching, texts, None).cast(_TS_UTC)
    except pa.ArrowInvalid:
        return None
    us = times.cast(pa.int64())
    in_range = pc.and_(pc.greater_equal(us, _MIN_US), pc.less_equal(us, _MAX_US))
    # a matching text out of range is None either way; a non-matching one is decided per value
    return pc.if_else(pc.or_(pc.invert(matching), in_range), us, None)


def native_records(built: dict[str, Any]) -> dict[str, pa.Array] | None:
    """The columns firelens_native.cpp's parse_cloudtrail or parse_events built, as `_fast`
    gives them: texts as string arrays; the JSON-text columns it names under "escaped" (one of
    their texts holds an escape, rare in a body) as `raw_json_column` writes them; `time` read
    as `parse_time` reads it, each distinct text once (a body's records share a handful of
    whole-second times). None when a time does not read: the general path reports it."""
    escaped = built.pop("escaped")
    columns = {name: native_strings(column) for name, column in built.items()}
    for name in escaped:
        raws = [msgspec.Raw(text or "null") for text in columns[name].to_pylist()]
        columns[name] = raw_json_column(raws)
    encoded = pc.dictionary_encode(columns["time"])
    times = text_times(encoded.dictionary).take(encoded.indices)
    if times.null_count:
        return None
    columns["time"] = times
    return columns


def text_times(texts: pa.Array) -> pa.Array:
    """`parse_time` of each text of a string array (null stays null), as an int64 array: ISO UTC
    texts converted in bulk (`_iso_to_us`), the others one by one."""
    times = _iso_to_us(texts)
    if times is None:  # a day that does not exist: each text on its own
        return pa.array([parse_time(text) for text in texts.to_pylist()], pa.int64())
    unread = pc.and_(pc.is_null(times), pc.is_valid(texts))
    if pc.any(unread).as_py():  # not the usual ISO form: each such text the long way
        again = [parse_time(text) for text in texts.filter(unread).to_pylist()]
        times = pc.replace_with_mask(times, unread, pa.array(again, pa.int64()))
    return times


_TEXT_KINDS = frozenset((str, type(None)))
_SAMPLE = 64  # texts looked at to guess whether a column repeats


def parse_times(values: Sequence[Any]) -> list[int | None]:
    """`[parse_time(v) for v in values]`, floats and ISO UTC texts converted in bulk."""
    kinds = set(map(type, values))
    if kinds == {float}:  # the usual FireLens `date` column
        return _floats_to_us(list(values))
    if kinds <= _TEXT_KINDS and values:  # the usual JSON `time` key: ISO texts, some missing
        if len(set(values[:_SAMPLE])) * 4 <= min(len(values), _SAMPLE):
            # few distinct texts (CloudTrail and ECS event times are whole seconds, so a body
            # holds a handful): each converted once, a handful one by one (Arrow's calls cost
            # about 0.3 ms a column however short it is)
            distinct = list(dict.fromkeys(values))
            found = (
                [parse_time(text) for text in distinct]
                if len(distinct) <= _SAMPLE
                else text_times(pa.array(distinct, pa.string())).to_pylist()
            )
            return list(map(dict(zip(distinct, found, strict=True)).__getitem__, values))
        return text_times(pa.array(list(values), pa.string())).to_pylist()
    out: list[int | None] = [None] * len(values)
    float_at: list[int] = []
    floats: list[float] = []
    iso_at: list[int] = []
    isos: list[str] = []
    for i, value in enumerate(values):
        kind = type(value)
        if kind is float:
            float_at.append(i)
            floats.append(value)
        elif kind is str and len(value) in _ISO_LENGTHS:
            iso_at.append(i)
            isos.append(value)
        elif value is not None:
            out[i] = parse_time(value)
    if floats:
        for i, us in zip(float_at, _floats_to_us(floats), strict=True):
            out[i] = us
    if isos:
        for i, us in zip(iso_at, text_times(pa.array(isos, pa.string())).to_pylist(), strict=True):
            out[i] = us
    return out


# the same words as _TEXT_LEVEL, for RE2 (named groups); on ASCII text the two agree
_TEXT_LEVEL_RE2 = (
    r"\b(?P<word>TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|FATAL|CRITICAL|CRIT|PANIC)\b"
    r"|\b(?:level|lvl|severity)=\"?(?P<value>[A-Za-z]+)"
)
_TRACEBACK = "Traceback (most recent call last):"


def levels_from_texts(messages: Sequence[str] | pa.Array) -> list[str | None]:
    """`[level_from_text(m) for m in messages]`: ASCII heads through RE2 in Arrow (Python's `\\b`
    knows Unicode word characters, RE2's only ASCII ones), the others one by one."""
    texts = messages if isinstance(messages, pa.Array) else pa.array(messages, pa.string())
    if len(texts) == 0:
        return []
    return text_levels(texts).to_pylist()


#: firelens_native.cpp's text_levels codes, by number (7, a text Python decides, stays null)
_LEVEL_CODES = pa.array([None, "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", None])
_PYTHON_LEVEL = 7


def text_levels(texts: pa.Array) -> pa.Array:
    """`levels_from_texts` of a string array, as a string array: natively where built, the
    texts whose head is not ASCII by `level_from_text`."""
    if _NATIVE is None or not pa.types.is_string(texts.type) or not len(texts):
        return _arrow_text_levels(texts)
    offsets, data = string_buffers(texts)
    codes = _NATIVE.text_levels(offsets, data, validity(texts), texts.offset)
    numbers = pa.Array.from_buffers(pa.uint8(), len(texts), [None, pa.py_buffer(codes)])
    levels = _LEVEL_CODES.take(numbers)
    if bytes([_PYTHON_LEVEL]) not in codes:  # the usual body: all decided
        return levels
    mask = pc.equal(numbers, _PYTHON_LEVEL)
    patched = [level_from_text(text) for text in texts.filter(mask).to_pylist()]
    return pc.replace_with_mask(levels, mask, pa.array(patched, pa.string()))


def _arrow_text_levels(texts: pa.Array) -> pa.Array:
    """text_levels through RE2 in Arrow, without the native reader."""
    heads = pc.utf8_slice_codeunits(texts, 0, 200)
    found = pc.extract_regex(heads, _TEXT_LEVEL_RE2)
    word = pc.struct_field(found, "word")
    word = pc.if_else(pc.equal(word, ""), pc.struct_field(found, "value"), word)
    # few distinct words: map them through the same table as level_from_text
    distinct = pc.unique(word)
    canonical = pa.array(
        [None if w is None else _CANONICAL.get(w.lower()) for w in distinct.to_pylist()],
        pa.string(),
    )
    levels = pc.take(canonical, pc.index_in(word, distinct))
    traceback = pc.and_(pc.is_null(word), pc.starts_with(heads, _TRACEBACK))
    levels = pc.if_else(traceback, "ERROR", levels)
    other = pc.fill_null(pc.invert(pc.string_is_ascii(heads)), False)
    if pc.any(other).as_py():
        patched = [level_from_text(text) for text in texts.filter(other).to_pylist()]
        levels = pc.replace_with_mask(levels, other, pa.array(patched, pa.string()))
    return levels


_LEVEL_CACHE: dict[str, str | None] = {}


def _level_of_text_value(value: str) -> str | None:
    """`normalize_level` of a text, remembered: level values are few."""
    level = _LEVEL_CACHE.get(value, "")
    if level == "":  # never a result: normalize_level gives None rather than ""
        level = normalize_level(value)
        if len(value) <= 32:  # a flood of odd values must not grow the cache without bound
            if len(_LEVEL_CACHE) >= 4096:
                _LEVEL_CACHE.clear()
            _LEVEL_CACHE[value] = level
    return level


def value_levels(values: pa.Array) -> pa.Array:
    """`normalize_level` of each text of a string array (null stays null): level values are
    few, so each distinct one is worked out once."""
    distinct = pc.unique(values.drop_null())
    levels = pa.array([_level_of_text_value(v) for v in distinct.to_pylist()], pa.string())
    return pc.take(levels, pc.index_in(values, distinct))


class _Head(msgspec.Struct, gc=False):
    """The keys of a JSON log object that `structured` and `request_id_of` read, in their lookup
    order (TIME_KEYS, LEVEL_KEYS, MESSAGE_KEYS, REQUEST_ID_KEYS: a test keeps them in step).
    Decoding a text into it checks the whole text is JSON, but builds no dict and skips the other
    keys' values: 0.8 µs against orjson's 2.1 for a 200-byte access-log object. A request-id key
    that is present with a null differs from an absent one, hence UNSET there. Decoded JSON is a
    tree, never a cycle, so the garbage collector need not track these (gc=False)."""

    time: Any = None
    timestamp: Any = None
    at_timestamp: Any = msgspec.field(default=None, name="@timestamp")
    ts: Any = None
    level: Any = None
    severity: Any = None
    lvl: Any = None
    loglevel: Any = None
    log_level: Any = None
    levelname: Any = None
    message: Any = None
    msg: Any = None
    log: Any = None
    request_id: Any = msgspec.UNSET
    request_id_camel: Any = msgspec.field(default=msgspec.UNSET, name="requestId")
    request_id_dash: Any = msgspec.field(default=msgspec.UNSET, name="request-id")
    x_request_id: Any = msgspec.UNSET
    x_request_id_dash: Any = msgspec.field(default=msgspec.UNSET, name="x-request-id")
    req_id: Any = msgspec.UNSET
    trace_id: Any = msgspec.UNSET
    trace_id_camel: Any = msgspec.field(default=msgspec.UNSET, name="traceId")
    correlation_id: Any = msgspec.UNSET


_HEAD = msgspec.json.Decoder(_Head)
_HEAD_ATTRS = tuple(field.name for field in msgspec.structs.fields(_Head))
# where each group of keys starts in _HEAD_ATTRS
_LEVEL_AT = len(TIME_KEYS)
_MESSAGE_AT = _LEVEL_AT + len(LEVEL_KEYS)
_REQUEST_AT = _MESSAGE_AT + len(MESSAGE_KEYS)
_UNSET = msgspec.UNSET
#: what the decoder raises for a text that is not JSON (a lone surrogate cannot even be encoded),
#: not an object, too deeply nested, or with a read value out of range (ValidationError)
_HEAD_ERRORS = (msgspec.DecodeError, UnicodeEncodeError, RecursionError)


class JsonRows(NamedTuple):
    """Of some texts: which hold one JSON object, and those rows' `structured` results (time,
    level, message) and `request_id_of` (given the text)."""

    at: list[int]
    times: list[int | None]
    levels: list[str | None]
    messages: list[str]
    request_ids: list[str | None]


def json_rows(texts: Sequence[str]) -> JsonRows:
    """`structured` and `request_id_of` of each text that is one JSON object, read through
    `_Head` rather than a dict per text, and worked out a key at a time over all rows.

    The first time key present and the first level key present decide for most rows; a row
    whose first value does not parse (so `structured` would try the next key) is redone by
    `structured` from orjson's dict. A text the decoder refuses but orjson reads (nesting near
    orjson's depth limit) is read by orjson, so that orjson decides what is JSON. One difference
    stays: a number beyond a double's range under a key neither function reads (`{"x": 1e400}`)
    is skipped here, where orjson refuses the whole text (DuckDB, which queries `fields`, reads
    such a text as JSON too)."""
    try:
        heads = list(map(_HEAD.decode, texts))
        at = list(range(len(texts)))
        raws = texts
    except _HEAD_ERRORS:
        decoded = list(map(_head, texts))
        at = [i for i, head in enumerate(decoded) if head is not None]
        heads = [cast(_Head, decoded[i]) for i in at]
        raws = [texts[i] for i in at]
    if not heads:
        return JsonRows([], [], [], [], [])
    time_values = _first_present(heads, _HEAD_ATTRS[:_LEVEL_AT])
    level_values = _first_present(heads, _HEAD_ATTRS[_LEVEL_AT:_MESSAGE_AT])
    redo: set[int] = set()  # rows `structured` works out itself
    times = parse_times(time_values)
    if None in times:
        redo.update(
            row for row, t in enumerate(times) if t is None and time_values[row] is not None
        )
    cached = _LEVEL_CACHE.get
    levels = [cached(v, "") if type(v) is str else "" for v in level_values]
    if "" in levels:  # a level text not seen yet, a number, or no level key (None)
        for row, level in enumerate(levels):
            if level == "":
                value = level_values[row]
                levels[row] = (
                    _level_of_text_value(value) if type(value) is str else normalize_level(value)
                )
    if None in levels:  # a level value that says nothing: `structured` tries the next key
        redo.update(
            row for row, lv in enumerate(levels) if lv is None and level_values[row] is not None
        )
    messages = _column(heads, _HEAD_ATTRS[_MESSAGE_AT])
    text_level = [value is None for value in level_values]  # the message then gives the level
    for name in _HEAD_ATTRS[_MESSAGE_AT + 1 : _REQUEST_AT]:
        if set(map(type, messages)) == {str}:
            break
        messages = [
            m if type(m) is str else c for m, c in zip(messages, _column(heads, name), strict=True)
        ]
    else:
        for row, message in enumerate(messages):
            if type(message) is not str:  # the raw text is the message; its level stays unknown
                messages[row] = raws[row]
                text_level[row] = False
    if any(text_level):
        text_level_at = [row for row, wanted in enumerate(text_level) if wanted]
        found = levels_from_texts([messages[row] for row in text_level_at])
        for row, level in zip(text_level_at, found, strict=True):
            levels[row] = level
    request_ids = _request_ids(heads, raws)
    for row in redo:
        raw = raws[row]
        times[row], levels[row], messages[row] = structured(orjson.loads(raw), raw)
    return JsonRows(at, times, levels, messages, request_ids)


def _column(heads: list[_Head], name: str) -> list[Any]:
    """One attribute of every head, read in C: for a name known only at run time, faster than
    a comprehension calling `getattr` (a comprehension naming a fixed attribute is faster still,
    but the names here are looped over)."""
    return list(map(attrgetter(name), heads))


def _first_present(heads: list[_Head], names: Sequence[str]) -> list[Any]:
    """Per head, the first of these attributes (keys in lookup order) that is not None."""
    values = _column(heads, names[0])
    for name in names[1:]:
        if None not in values:
            break
        values = [
            v if v is not None else w for v, w in zip(values, _column(heads, name), strict=True)
        ]
    return values


def _request_ids(heads: list[_Head], raws: Sequence[str]) -> list[str | None]:
    """`request_id_of` of each row from its head's request-id keys (UNSET: absent). The usual
    rows, with no key or `request_id` alone, are decided in one pass; the others one by one."""
    names = _HEAD_ATTRS[_REQUEST_AT:]
    first = _column(heads, names[0])
    n = len(first)
    ids = [
        ""
        if value is _UNSET
        else value
        if type(value) is str and value and raw.count('"request_id"') == 1 and "\\u" not in raw
        else None
        for value, raw in zip(first, raws, strict=True)
    ]
    others = [column for name in names[1:] if (column := _column(heads, name)).count(_UNSET) != n]
    if others:  # rows with another key: `request_id_of` itself, over the keys present
        every = attrgetter(*names)
        for row, head in enumerate(heads):
            if any(column[row] is not _UNSET for column in others):
                present = {
                    key: value
                    for key, value in zip(REQUEST_ID_KEYS, every(head), strict=True)
                    if value is not _UNSET
                }
                ids[row] = request_id_of(present, raws[row])
    return ids


def _head(text: str) -> _Head | None:
    """`_Head` of one text (through orjson's dict when the decoder refuses the text), or None
    when it holds no JSON object."""
    try:
        return _HEAD.decode(text)
    except _HEAD_ERRORS:
        obj = parse_json_object(text)
        return None if obj is None else msgspec.convert(obj, _Head)


def record_ids(
    source: str,
    streams: Sequence[str],
    times: Sequence[int | None],
    messages: Sequence[str],
    sequences: Sequence[object],
) -> list[str]:
    """`record_id` of many rows (one stream key, time, message and sequence per row). Streams
    repeat, so each one's prefix is hashed once and each row continues a copy of that state."""
    prefixes = {
        stream: blake2b(f"{source}\x1f{stream}\x1f".encode(), digest_size=ID_DIGEST_BYTES)
        for stream in set(streams)
    }
    ids = []
    for stream, time_us, message, seq in zip(streams, times, messages, sequences, strict=True):
        digest = prefixes[stream].copy()
        digest.update(f"{'' if time_us is None else time_us}\x1f{seq}\x1f".encode())
        digest.update(message.encode("utf-8", "surrogatepass"))
        ids.append(digest.hexdigest())
    return ids


def metric_ids(
    source: str,
    keys: Sequence[str],
    times: Sequence[int | None],
    contents: Sequence[tuple[str, str, str, float | None, str | None]],
    sequences: Sequence[object],
) -> list[str]:
    """`record_ids` of `metrics` rows: the message is a datapoint's content (namespace, name,
    dimensions JSON as stored, value, unit); `keys` name where it came from (an input, a logs
    row id, a polled series) and `times` are the payload's own times (None: it had none)."""
    messages = [
        f"{namespace}\x1f{name}\x1f{dims}\x1f{'' if value is None else repr(value)}\x1f"
        f"{'' if unit is None else unit}"
        for namespace, name, dims, value, unit in contents
    ]
    return record_ids(source, keys, times, messages, sequences)


# ----------------------------------------------------------------------------------- request ids

_LogsData = TypeVar("_LogsData", pa.RecordBatch, pa.Table)

#: top-level JSON keys that hold a request id, in the order they are looked up
REQUEST_ID_KEYS = (
    "request_id",
    "requestId",
    "request-id",
    "x_request_id",
    "x-request-id",
    "req_id",
    "trace_id",
    "traceId",
    "correlation_id",
)
_QUOTED_KEYS = "|".join(f'"{re.escape(key)}"' for key in REQUEST_ID_KEYS)
# in a text without backslashes a quote always ends a string, so `"key": "value"` can only be
# a key and its string value (at some depth: a nested key is harmless, see request_id_of)
_KEY_VALUE = f'(?:{_QUOTED_KEYS})\\s*:\\s*"(?P<value>[^"]*)"'


_QUOTED_REQUEST_KEYS = tuple((key, f'"{key}"') for key in REQUEST_ID_KEYS)


def request_id_of(obj: Any, raw: str | None = None) -> str | None:
    """The `request_id` column of a record whose JSON object is `obj`.

    The column is an index, and queries still apply their JSON test to the rows it selects, so it
    only has to keep this promise: a record whose key K (any of REQUEST_ID_KEYS) is the string x
    has `request_id` x or null. Hence: '' when no key is present (no request-id test can match),
    the value when every key present holds the same non-empty string, null otherwise (numbers,
    disagreeing keys, an empty id: the query falls back to its JSON test).

    With `raw`, the text `obj` was parsed from, it is also null where DuckDB, reading that text,
    might see another value: a key named more than once (parsers differ on which duplicate
    wins), or a `\\u` escape, which can spell a key twice where the count sees it once. Other
    escapes cannot: nulls there would keep row groups from being skipped by their Bloom filters."""
    if not isinstance(obj, dict):
        return None
    found: str | None = None
    for key, quoted in _QUOTED_REQUEST_KEYS:
        if key in obj:
            value = obj[key]
            if type(value) is not str or not value or (found is not None and value != found):
                return None
            if raw is not None and raw.count(quoted) != 1:
                return None
            found = value
    if found is None:
        return ""
    return None if raw is not None and "\\u" in raw else found


def with_request_ids(data: _LogsData) -> _LogsData:
    """A `logs` batch or table with its `request_id` column worked out from `fields` and
    `message` (`request_ids`), whatever it held."""
    fields, messages = data.column("fields"), data.column("message")
    if isinstance(fields, pa.ChunkedArray):
        fields, messages = fields.combine_chunks(), messages.combine_chunks()
    ids = request_ids(fields, messages)
    return data.set_column(data.schema.get_field_index("request_id"), "request_id", ids)


def request_ids(fields: pa.Array, messages: pa.Array) -> pa.Array:
    """The `request_id` column for a batch, from the `fields` texts as stored: the same object
    DuckDB's JSON functions read. Texts with one key and no escapes are read by a regular
    expression in Arrow; only the others that may hold a key are parsed again."""
    n = len(fields)
    out = pc.fill_null(pa.nulls(n, pa.string()), "")  # no key: no request-id test can match
    # no fields: the JSON patterns read `message`; one that looks like an object stays unknown
    json_like = pc.starts_with(pc.utf8_ltrim_whitespace(messages), "{")
    unknown = pc.and_(pc.invert(pc.is_valid(fields)), pc.fill_null(json_like, False))
    out = pc.if_else(unknown, pa.scalar(None, pa.string()), out)
    # the common case: one key, no escapes; its string value, or null when it holds something
    # else or an empty string (the JSON test then decides)
    keyed = pc.fill_null(pc.count_substring_regex(fields, _QUOTED_KEYS), 0)
    once = pc.equal(keyed, 1)
    escaped = pc.fill_null(pc.match_substring(fields, "\\"), False)
    simple = pc.fill_null(pc.and_(once, pc.invert(escaped)), False)
    found = pc.extract_regex(pc.if_else(simple, fields, ""), _KEY_VALUE)
    value = pc.if_else(pc.is_valid(found), pc.struct_field(found, [0]), None)
    value = pc.if_else(pc.equal(value, ""), pa.scalar(None, pa.string()), value)
    out = pc.if_else(simple, value, out)
    # the rest that may hold a key (repeated or escaped keys) goes through a JSON parser
    # (a text that has no quoted key and no \\u escape, which may spell one, cannot hold a key)
    maybe = pc.or_(pc.greater(keyed, 0), pc.fill_null(pc.match_substring(fields, "\\u"), False))
    hinted = pc.and_(maybe, pc.invert(simple))
    rows = pc.indices_nonzero(hinted)
    if len(rows) == 0:
        return out
    parsed: list[str | None] = []
    loads, decode_error, keys = orjson.loads, orjson.JSONDecodeError, REQUEST_ID_KEYS
    for text in fields.take(rows).to_pylist():
        try:
            obj = loads(text)
        except decode_error:
            parsed.append(None)  # DuckDB may still read it (e.g. a huge number): stay unknown
            continue
        found_id = request_id_of(obj)
        if found_id and any(text.count(f'"{key}"') > 1 for key in keys):
            found_id = None  # a repeated key: JSON parsers disagree on which value wins
        parsed.append(found_id)
    return pc.replace_with_mask(out, hinted, pa.array(parsed, pa.string()))
