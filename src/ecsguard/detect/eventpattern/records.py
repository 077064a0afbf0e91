"""Store rows in EventBridge's shape, so event patterns written for AWS work on the store.

`events` rows become the event EventBridge delivered: version "0", id, detail-type, source,
account, time (ISO, Z), region, resources and detail (parsed from their JSON text).
`cloudtrail` rows become the event EventBridge makes of a CloudTrail record: detail-type
"AWS API Call via CloudTrail" ("AWS Console Sign In via CloudTrail" for sign-in events), source
"aws.<service>" from the event source, and a detail with the record's fields that the store keeps
(eventSource, eventName, eventType, awsRegion, sourceIPAddress, userAgent, userIdentity (the
whole object, with type, arn and accessKeyId as the store normalised them), errorCode,
errorMessage, requestParameters, responseElements, additionalEventData, readOnly, eventID,
eventTime, resources). A field the record did not have is left out, so
`{"errorCode": [{"exists": false}]}` means "succeeded" as it does on AWS.

`top_level_columns` gives the same top-level fields as Arrow arrays, for filtering a batch before
any row is turned into a dict (PatternSet.top_level_requirements says what to keep).
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ecsguard.detect.rules import column_codes

TABLES = ("events", "cloudtrail")
API_CALL = "AWS API Call via CloudTrail"
SIGN_IN = "AWS Console Sign In via CloudTrail"
#: CloudTrail events of type AwsConsoleSignIn (EventBridge gives them their own detail-type)
SIGN_IN_EVENTS = ("ConsoleLogin", "CheckMfa", "SwitchRole", "ExitRole")
TOP_LEVEL = ("source", "detail-type", "account", "region", "id")
_ISO = "%Y-%m-%dT%H:%M:%SZ"


def service_source(event_source: str | None) -> str | None:
    """ "ecs.amazonaws.com" -> "aws.ecs" (EventBridge's source for CloudTrail events)."""
    if not event_source:
        return None
    return "aws." + event_source.removesuffix(".amazonaws.com").split(".")[0]


def _json(text: str | None, empty: Any) -> Any:
    if text is None:
        return empty
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text  # not JSON after all: matched as the string it is


def _iso_times(batch: pa.RecordBatch) -> list[str | None]:
    times = batch.column("time")
    if times.null_count == len(times):
        return [None] * len(times)
    # EventBridge times have whole seconds ("2024-01-02T03:04:05Z")
    seconds = times.cast(pa.timestamp("s", tz="UTC"), safe=False)
    return pc.strftime(seconds, format=_ISO).to_pylist()


def to_events(
    table: str, batch: pa.RecordBatch, wanted: frozenset[str] | None = None
) -> list[dict[str, Any]]:
    """One event per row. `wanted` (top-level keys some pattern reads) skips JSON parsing of
    resources or detail when no pattern looks at them."""
    if table == "events":
        return _from_events(batch, wanted)
    if table == "cloudtrail":
        return _from_cloudtrail(batch, wanted)
    raise ValueError(f"no EventBridge shape for table {table!r}")


def _column(batch: pa.RecordBatch, name: str) -> list[Any]:
    return batch.column(name).to_pylist()


def _from_events(batch: pa.RecordBatch, wanted: frozenset[str] | None) -> list[dict[str, Any]]:
    n = batch.num_rows
    columns = {
        "id": _column(batch, "id"),
        "detail-type": _column(batch, "detail_type"),
        "source": _column(batch, "source"),
        "account": _column(batch, "account"),
        "region": _column(batch, "region"),
    }
    times = _iso_times(batch)
    need_resources = wanted is None or "resources" in wanted
    need_detail = wanted is None or "detail" in wanted
    resources = _column(batch, "resources") if need_resources else [None] * n
    details = _column(batch, "detail") if need_detail else [None] * n
    out = []
    for i in range(n):
        event: dict[str, Any] = {"version": "0"}
        for name, values in columns.items():
            if values[i] is not None:
                event[name] = values[i]
        if times[i] is not None:
            event["time"] = times[i]
        event["resources"] = _json(resources[i], []) if need_resources else []
        event["detail"] = _json(details[i], {}) if need_detail else {}
        out.append(event)
    return out


def _from_cloudtrail(batch: pa.RecordBatch, wanted: frozenset[str] | None) -> list[dict[str, Any]]:
    names = (
        "event_id",
        "event_source",
        "event_name",
        "aws_region",
        "source_ip",
        "user_agent",
        "identity_type",
        "identity_arn",
        "access_key_id",
        "account",
        "error_code",
        "error_message",
        "event_type",
        "read_only",
    )
    col = {name: _column(batch, name) for name in names}
    times = _iso_times(batch)
    need_detail = wanted is None or "detail" in wanted
    n = batch.num_rows
    parameters = _column(batch, "request_parameters") if need_detail else [None] * n
    responses = _column(batch, "response_elements") if need_detail else [None] * n
    trail_resources = _column(batch, "resources") if need_detail else [None] * n
    additional = _column(batch, "additional_event_data") if need_detail else [None] * n
    identities = _column(batch, "user_identity") if need_detail else [None] * n
    sources: dict[str | None, str | None] = {}
    out = []
    for i in range(n):
        event_source = col["event_source"][i]
        event_name = col["event_name"][i]
        if event_source not in sources:
            sources[event_source] = service_source(event_source)
        event: dict[str, Any] = {
            "version": "0",
            "detail-type": detail_type(event_source, event_name),
        }
        _put(event, "id", col["event_id"][i])
        _put(event, "source", sources[event_source])
        _put(event, "account", col["account"][i])
        _put(event, "time", times[i])
        _put(event, "region", col["aws_region"][i])
        event["resources"] = []
        if need_detail:
            whole = _json(identities[i], None) if identities[i] is not None else None
            identity: dict[str, Any] = dict(whole) if isinstance(whole, dict) else {}
            _put(identity, "type", col["identity_type"][i])
            _put(identity, "arn", col["identity_arn"][i])
            _put(identity, "accessKeyId", col["access_key_id"][i])
            detail: dict[str, Any] = {}
            _put(detail, "eventSource", event_source)
            _put(detail, "eventName", event_name)
            _put(detail, "eventType", col["event_type"][i])
            _put(detail, "awsRegion", col["aws_region"][i])
            _put(detail, "sourceIPAddress", col["source_ip"][i])
            _put(detail, "userAgent", col["user_agent"][i])
            if identity:
                detail["userIdentity"] = identity
            _put(detail, "errorCode", col["error_code"][i])
            _put(detail, "errorMessage", col["error_message"][i])
            if additional[i] is not None:
                detail["additionalEventData"] = _json(additional[i], None)
            # CloudTrail writes these two as null when empty; the store cannot tell null from
            # absent, so they are always there
            detail["requestParameters"] = _json(parameters[i], None)
            detail["responseElements"] = _json(responses[i], None)
            if trail_resources[i] is not None:
                detail["resources"] = _json(trail_resources[i], None)
            _put(detail, "readOnly", col["read_only"][i])
            _put(detail, "eventID", col["event_id"][i])
            _put(detail, "eventTime", times[i])
            event["detail"] = detail
        out.append(event)
    return out


def detail_type(event_source: str | None, event_name: str | None) -> str:
    if event_source == "signin.amazonaws.com" and event_name in SIGN_IN_EVENTS:
        return SIGN_IN
    return API_CALL


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        target[key] = value


def top_level_columns(table: str, batch: pa.RecordBatch) -> dict[str, pa.Array]:
    """The top-level EventBridge fields of every row, computed column-wise."""
    if table == "events":
        return {
            "source": batch.column("source"),
            "detail-type": batch.column("detail_type"),
            "account": batch.column("account"),
            "region": batch.column("region"),
            "id": batch.column("id"),
        }
    event_source = batch.column("event_source")
    encoded = pc.dictionary_encode(event_source)
    mapped = pa.array(
        [service_source(value) for value in encoded.dictionary.to_pylist()], pa.string()
    )
    sign_in = pc.and_(
        pc.equal(event_source, "signin.amazonaws.com"),
        pc.is_in(batch.column("event_name"), value_set=pa.array(SIGN_IN_EVENTS)),
    ).fill_null(False)
    return {
        "source": mapped.take(encoded.indices),
        "detail-type": pc.if_else(sign_in, SIGN_IN, API_CALL),
        "account": batch.column("account"),
        "region": batch.column("aws_region"),
        "id": batch.column("event_id"),
    }


def rows_to_test(
    table: str, batch: pa.RecordBatch, requirements: dict[str, frozenset[str]] | None
) -> list[int]:
    """Row numbers that could match: all of them, or those whose top-level fields hold a value
    some branch requires (see PatternSet.top_level_requirements)."""
    if requirements is None:
        return list(range(batch.num_rows))
    columns = top_level_columns(table, batch)
    keep: pa.Array | None = None
    for name, values in requirements.items():
        hit = pc.is_in(columns[name], value_set=pa.array(sorted(values), pa.string()))
        hit = hit.fill_null(False)
        keep = hit if keep is None else pc.or_(keep, hit)
    if keep is None:
        return []
    return pc.indices_nonzero(keep).to_pylist()


def summary(table: str, row: dict[str, Any]) -> str:
    """'<detail-type> from <source>: <resource or key detail>', one line, from a store row."""
    if table == "cloudtrail":
        source = service_source(row.get("event_source")) or "?"
        head = f"{detail_type(row.get('event_source'), row.get('event_name'))} from {source}"
        text = f"{row.get('event_name') or '?'} by {row.get('identity_arn') or 'unknown identity'}"
        if row.get("error_code"):
            text += f" ({row['error_code']})"
        return f"{head}: {text}"
    head = f"{row.get('detail_type') or '?'} from {row.get('source') or '?'}"
    resources = _json(row.get("resources"), [])
    detail = _json(row.get("detail"), {})
    detail = detail if isinstance(detail, dict) else {}
    if isinstance(resources, list) and resources and isinstance(resources[0], str):
        what = resources[0]
    else:
        what = next(
            (
                f"{key} {detail[key]}"
                for key in ("eventName", "lastStatus", "stopCode", "eventType", "status", "state")
                if isinstance(detail.get(key), str | int | float)
            ),
            f"event {row.get('id') or '?'}",
        )
    return f"{head}: {what}"


# ------------------------------------------------------------------------- rows by path
# (for prefilter.py: what to_events would put at a path, without building the events)

#: events: top-level fields that are columns
_EVENT_COLUMNS = {
    "id": "id",
    "detail-type": "detail_type",
    "source": "source",
    "account": "account",
    "region": "region",
}
#: cloudtrail: detail fields that are columns, as _from_cloudtrail copies them
_TRAIL_DETAIL_COLUMNS = {
    "detail.eventSource": "event_source",
    "detail.eventName": "event_name",
    "detail.eventType": "event_type",
    "detail.awsRegion": "aws_region",
    "detail.sourceIPAddress": "source_ip",
    "detail.userAgent": "user_agent",
    "detail.errorCode": "error_code",
    "detail.errorMessage": "error_message",
    "detail.readOnly": "read_only",
    "detail.eventID": "event_id",
}
#: cloudtrail detail fields parsed from JSON text: (column, present when the text is null)
_TRAIL_DETAIL_JSON = {
    "requestParameters": ("request_parameters", True),
    "responseElements": ("response_elements", True),
    "additionalEventData": ("additional_event_data", False),
    "resources": ("resources", False),
}
_ABSENT = object()
_UNPARSED = object()


class RowView:
    """The rows of one stored batch, read by EventBridge path (see prefilter.RowView): exactly
    the leaves to_events + flatten would give, column-wise where the store has the field as a
    column, else from the JSON text, parsed once per row and only for rows that ask."""

    def __init__(self, table: str, batch: pa.RecordBatch) -> None:
        if table not in TABLES:
            raise ValueError(f"no EventBridge shape for table {table!r}")
        self.table = table
        self.batch = batch
        self.rows = batch.num_rows
        self._columns: dict[str, list[Any]] = {}
        self._codes: dict[str, tuple[list[Any], memoryview]] = {}
        self._roots: dict[str, list[Any]] = {}  # JSON parsed per row, on first use
        self._plans: dict[str, tuple[str, list[str], int]] = {}

    def kind(self, path: str) -> str | None:
        first, _, rest = path.partition(".")
        if self.table == "events":
            if first in ("resources", "detail"):
                return "json"
            return "column" if not rest else "absent"
        if first == "detail" and rest:
            if path in _TRAIL_DETAIL_COLUMNS or path == "detail.eventTime":
                return "column"
            top = rest.partition(".")[0]
            if top in _TRAIL_DETAIL_JSON or top == "userIdentity":
                return "json"
            # a dotted key of an object inside detail could spell a longer path: only the
            # fields detail always has are certain
            return None if "." in rest else "absent"
        if first == "detail":  # the detail object itself has no leaf
            return "absent"
        if first == "resources":
            return "absent"  # always []
        return "column" if not rest else "absent"

    def column(self, path: str) -> list[Any]:
        values = self._columns.get(path)
        if values is None:
            values = self._columns[path] = self._column(path)
        return values

    def _column(self, path: str) -> list[Any]:
        batch, n = self.batch, self.rows
        raw = self._raw(path)
        if raw is not None:
            return _column(batch, raw)
        if path == "version":
            return ["0"] * n
        if path == "time" or (self.table == "cloudtrail" and path == "detail.eventTime"):
            return _iso_times(batch)
        if self.table == "cloudtrail" and path == "detail-type":
            sources, names = self.column("~event_source"), self.column("~event_name")
            return [detail_type(s, e) for s, e in zip(sources, names, strict=True)]
        if self.table == "cloudtrail" and path == "source":
            cache: dict[Any, str | None] = {}
            out = []
            for value in self.column("~event_source"):
                if value not in cache:
                    cache[value] = service_source(value)
                out.append(cache[value])
            return out
        return [None] * n

    def _raw(self, path: str) -> str | None:
        """The store column that holds `path`'s values as they are, if one does."""
        if path.startswith("~"):  # a raw column by name
            return path[1:]
        if self.table == "events":
            return _EVENT_COLUMNS.get(path)
        if path in _TRAIL_DETAIL_COLUMNS:
            return _TRAIL_DETAIL_COLUMNS[path]
        return {"id": "event_id", "account": "account", "region": "aws_region"}.get(path)

    def codes(self, path: str) -> tuple[list[Any], memoryview]:
        """`column(path)` numbered: its distinct values, and each row's number among them (int32,
        the buffer a Narrowing reads). A store column is dictionary-encoded by Arrow; a derived
        one (times, CloudTrail's source and detail-type) numbered from its values."""
        found = self._codes.get(path)
        if found is not None:
            return found
        raw = self._raw(path)
        if raw is not None and path not in self._columns:
            values, indices = column_codes(self.batch, raw)  # shared with Sigma rules
            codes = memoryview(indices.buffers()[1]).cast("i")[indices.offset :][: self.rows]
        else:
            numbers: dict[Any, int] = {}
            codes = memoryview(
                array("i", [numbers.setdefault(value, len(numbers)) for value in self.column(path)])
            )
            values = list(numbers)
        found = self._codes[path] = (values, codes)
        return found

    def leaves(self, path: str, row: int) -> list[Any]:
        name, parts, start = self._plan(path)
        roots = self._roots.get(name)
        if roots is None:
            roots = self._roots[name] = [_UNPARSED] * self.rows
        root = roots[row]
        if root is _UNPARSED:
            root = roots[row] = self._root(name, row)
        if root is _ABSENT:
            return []
        if start == len(parts) - 1 and type(root) is dict:
            # the common case, one key down: no dotted key can spell it differently
            value = root.get(parts[start], _ABSENT)
            kind = type(value)
            if kind is dict or value is _ABSENT:
                return []
            if kind is not list:
                return [value]
        out: list[Any] = []
        _collect(root, parts, start, out)
        return out

    def json_values(self, path: str, rows: Sequence[int]) -> list[Any]:
        """`leaves(path, row)` for many rows, except that a lone string leaf is the string
        itself: the prefilter's per-row work in one loop (a call per row and path cost more
        than the look-up it made)."""
        name, parts, start = self._plan(path)
        roots = self._parsed(name, rows)
        if start == len(parts) - 2:
            return _two_down(roots, rows, parts[start], parts[start + 1])
        if start != len(parts) - 1:
            out: list[Any] = []
            for row in rows:
                found: list[Any] = []
                root = roots[row]
                if root is not _ABSENT:
                    _collect(root, parts, start, found)
                out.append(found)
            return out
        return _one_down(roots, rows, parts[start])

    def json_column(self, path: str) -> tuple[pa.Array, tuple[str, ...]] | None:
        """The string column whose JSON texts alone hold `path`'s leaves, and the keys below
        each text's root; None when the leaves come from more than one column (a CloudTrail
        userIdentity merges three into its JSON) or the path names the root itself."""
        name, parts, start = self._plan(path)
        if start >= len(parts):
            return None
        if self.table == "events":
            column = name
        elif name in _TRAIL_DETAIL_JSON:
            column = _TRAIL_DETAIL_JSON[name][0]
        else:
            return None
        texts = self.batch.column(column)
        return (texts, tuple(parts[start:])) if texts.type == pa.string() else None

    def array_at(self, key: str, row: int) -> bool:
        """Whether the row's event holds an array at top-level key `key`: in `events` the JSON
        of resources or detail can be one; a CloudTrail event's detail is always an object and
        its resources always empty."""
        if self.table != "events" or key not in ("detail", "resources"):
            return False
        return type(self._parsed(key, (row,))[row]) is list

    def _plan(self, path: str) -> tuple[str, list[str], int]:
        plan = self._plans.get(path)
        if plan is None:
            parts = path.split(".")
            # events: resources / detail hold the JSON; cloudtrail: detail.<field> does
            start = 1 if self.table == "events" else 2
            plan = self._plans[path] = (parts[start - 1], parts, start)
        return plan

    def _parsed(self, name: str, rows: Sequence[int]) -> list[Any]:
        """The roots of `name`, parsed for at least `rows`."""
        roots = self._roots.get(name)
        if roots is None:
            roots = self._roots[name] = [_UNPARSED] * self.rows
        if self.table == "events":
            # one loop for the batch: the JSON text of every row asked for, parsed once
            texts = self.column("~" + name)
            empty: Any = [] if name == "resources" else {}
            for row in rows:
                if roots[row] is _UNPARSED:
                    roots[row] = _json(texts[row], empty)
            return roots
        root = self._root
        for row in rows:
            if roots[row] is _UNPARSED:
                roots[row] = root(name, row)
        return roots

    def _root(self, name: str, row: int) -> Any:
        """The parsed JSON the leaves of `name` are in (_ABSENT: the event has no such field)."""
        if self.table == "events":
            return _json(self.column("~" + name)[row], [] if name == "resources" else {})
        if name == "userIdentity":
            text = self.column("~user_identity")[row]
            whole = _json(text, None) if text is not None else None
            identity: dict[str, Any] = dict(whole) if isinstance(whole, dict) else {}
            _put(identity, "type", self.column("~identity_type")[row])
            _put(identity, "arn", self.column("~identity_arn")[row])
            _put(identity, "accessKeyId", self.column("~access_key_id")[row])
            return identity if identity else _ABSENT
        column, always = _TRAIL_DETAIL_JSON[name]
        text = self.column("~" + column)[row]
        return _ABSENT if text is None and not always else _json(text, None)


def _one_down(roots: list[Any], rows: Sequence[int], key: str) -> list[Any]:
    """json_values of `key` right under each row's root."""
    out: list[Any] = []
    append = out.append
    for row in rows:
        root = roots[row]
        if type(root) is dict:
            # one key down: no dotted key can spell it differently
            value = root.get(key, _ABSENT)
            kind = type(value)
            if kind is str:
                append(value)
            elif value is _ABSENT or kind is dict:
                append([])
            elif kind is not list:
                append([value])
            else:
                found: list[Any] = []
                _leaves(value, found)
                append(found)
        elif root is _ABSENT:
            append([])
        else:
            found = []
            _collect(root, [key], 0, found)
            append(found)
    return out


def _two_down(roots: list[Any], rows: Sequence[int], first: str, second: str) -> list[Any]:
    """json_values of `first.second` under each row's root (detail.containers.exitCode): what
    _collect finds, without its recursion for the common shapes."""
    dotted = f"{first}.{second}"
    out: list[Any] = []
    append = out.append
    for row in rows:
        root = roots[row]
        found: list[Any] = []
        if type(root) is dict:
            child = root.get(first, _ABSENT)
            if type(child) is list:
                for item in child:
                    if type(item) is dict:
                        value = item.get(second, _ABSENT)
                        if value is not _ABSENT:
                            _leaves(value, found)
                    elif type(item) is list:
                        _collect(item, [second], 0, found)
            elif type(child) is dict:
                value = child.get(second, _ABSENT)
                if value is not _ABSENT:
                    _leaves(value, found)
            value = root.get(dotted, _ABSENT)  # {"containers.exitCode": ...} is the same field
            if value is not _ABSENT:
                _leaves(value, found)
        elif root is not _ABSENT:
            _collect(root, [first, second], 0, found)
        append(found[0] if len(found) == 1 and type(found[0]) is str else found)
    return out


def _leaves(node: Any, out: list[Any]) -> None:
    """The scalars of `node`, which a path reached (arrays are transparent)."""
    kind = type(node)
    if kind is list:
        for item in node:
            _leaves(item, out)
    elif kind is not dict:
        out.append(node)


def _collect(node: Any, parts: list[str], i: int, out: list[Any]) -> None:
    """The scalar leaves of `node` at parts[i:], as flatten.py finds them: arrays are
    transparent, and a key may itself hold dots ({"a.b": 1} is the field a.b)."""
    kind = type(node)
    if kind is list:
        for item in node:
            _collect(item, parts, i, out)
        return
    if i == len(parts):
        if kind is not dict:
            out.append(node)
        return
    if kind is not dict:
        return
    key, j = parts[i], i + 1
    while True:
        child = node.get(key, _ABSENT)
        if child is not _ABSENT:
            _collect(child, parts, j, out)
        if j == len(parts):
            return
        key, j = f"{key}.{parts[j]}", j + 1
