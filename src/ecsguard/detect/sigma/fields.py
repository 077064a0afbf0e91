"""Sigma field names (as in CloudTrail JSON) → where the `cloudtrail` table keeps them.

The table keeps a subset of each record: top-level columns and JSON-text columns
(`requestParameters`, `responseElements`, `resources`, `additionalEventData`, `userIdentity`).
A name such as `requestParameters.x.y` is a path inside one of those; `userIdentity.arn` is a
column of its own. A field the table does not keep (`vpcEndpointId`, `serviceEventDetails`, ...)
has no `FieldRef`: the rule that needs it is reported, never evaluated against a column that is
not there.

`Record` reads one row lazily: a JSON column is parsed only when a field inside it is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

#: CloudTrail JSON names kept as columns of their own (the receiver's mapping, one to one)
COLUMNS: dict[str, str] = {
    "eventTime": "time",
    "eventID": "event_id",
    "eventSource": "event_source",
    "eventName": "event_name",
    "awsRegion": "aws_region",
    "sourceIPAddress": "source_ip",
    "userAgent": "user_agent",
    "userIdentity.type": "identity_type",
    "userIdentity.arn": "identity_arn",
    "userIdentity.accessKeyId": "access_key_id",
    "recipientAccountId": "account",
    "errorCode": "error_code",
    "errorMessage": "error_message",
    "eventType": "event_type",
    "readOnly": "read_only",
}
#: CloudTrail JSON objects kept whole, as JSON text
JSON_COLUMNS: dict[str, str] = {
    "requestParameters": "request_parameters",
    "responseElements": "response_elements",
    "resources": "resources",
    "additionalEventData": "additional_event_data",
    "userIdentity": "user_identity",  # what is not a column of its own (sessionContext, ...)
}
#: the columns a keyword (full-text) search looks at: every text the table keeps
TEXT_COLUMNS = (
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
    "request_parameters",
    "response_elements",
    "resources",
    "additional_event_data",
    "event_type",
    "error_message",
    "user_identity",
)
ALL_COLUMNS = frozenset(COLUMNS.values()) | frozenset(JSON_COLUMNS.values())

#: a field that is not in the record at all (distinct from a JSON null)
MISSING: list[Any] = []


Place = tuple[str, tuple[str, ...]]  # a column, and a path inside its JSON ((): the column)


@dataclass(frozen=True)
class FieldRef:
    """A column, and a path inside it when the column holds JSON text."""

    name: str  # as the rule wrote it
    column: str
    path: tuple[str, ...] = ()

    @property
    def place(self) -> Place:
        """Where the value is, whatever the spelling (`userIdentity.arn` and `identity_arn`)."""
        return self.column, self.path


class UnknownField(Exception):
    """The table does not keep this field."""


def resolve(name: str) -> FieldRef:
    """Where `name` lives; raises UnknownField when the table does not keep it.

    Column names themselves (`event_name`) are accepted too, for hand-written rules."""
    if name in COLUMNS:
        return FieldRef(name, COLUMNS[name])
    if name in ALL_COLUMNS:
        return FieldRef(name, name)
    head, _, rest = name.partition(".")
    if head in JSON_COLUMNS:
        return FieldRef(name, JSON_COLUMNS[head], tuple(rest.split(".")) if rest else ())
    raise UnknownField(name)


def _walk(value: Any, path: tuple[str, ...]) -> list[Any]:
    """Every value at `path` below `value`; lists are walked element by element (Sigma matches
    a field holding a list when any element matches)."""
    if not path:
        return list(value) if isinstance(value, list) else [value]
    if isinstance(value, list):
        return [found for item in value for found in _walk(item, path)]
    if not isinstance(value, dict):
        return []
    joined = ".".join(path)
    if len(path) > 1 and joined in value:  # a key that itself holds dots
        return _walk(value[joined], ())
    if path[0] not in value:
        return []
    return _walk(value[path[0]], path[1:])


class Record:
    """One row of the cloudtrail table, as Sigma fields; `found`: the values of fields inside
    JSON already read (by the native reader), which the row then need not hold."""

    __slots__ = ("_parsed", "found", "row")

    def __init__(self, row: dict[str, Any], found: dict[Place, list[Any]] | None = None) -> None:
        self.row = row
        self.found = found
        self._parsed: dict[str, Any] = {}

    def _json(self, column: str) -> Any:
        if column not in self._parsed:
            text = self.row.get(column)
            try:
                self._parsed[column] = orjson.loads(text) if isinstance(text, str) else None
            except orjson.JSONDecodeError:
                self._parsed[column] = None  # not JSON: only the text itself can match
        return self._parsed[column]

    def values(self, ref: FieldRef) -> list[Any]:
        """The field's values: MISSING (empty) when absent, `[None]` when null, several when the
        field holds a list."""
        if self.found is not None and ref.path and ref.place in self.found:
            return self.found[ref.place]
        value = self.row.get(ref.column)
        if not ref.path:
            return MISSING if value is None else [value]
        if value is None:
            return MISSING
        return _walk(self._json(ref.column), ref.path)

    def texts(self) -> list[str]:
        """Every text the row keeps (keyword search)."""
        return [v for c in TEXT_COLUMNS if isinstance(v := self.row.get(c), str)]
