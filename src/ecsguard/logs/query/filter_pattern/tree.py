"""The syntax tree of a filter pattern: what syntax.py builds and evaluate.py and sql.py read."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ecsguard.logs.query.filter_pattern.regex import Regex

# ASCII digits only: Python's \d would take other scripts' digits, which DuckDB cannot cast
NUMBER_SOURCE = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
NUMBER = re.compile(NUMBER_SOURCE)


@dataclass(frozen=True)
class Text:
    """A string to compare with; `*` at its start or end stands for any text there."""

    text: str
    any_before: bool = False
    any_after: bool = False

    @classmethod
    def parse(cls, raw: str) -> Text:
        if raw and set(raw) == {"*"}:
            return cls("", True, True)
        before, after = raw.startswith("*"), raw.endswith("*")
        return cls(raw[int(before) : len(raw) - int(after)], before, after)

    @property
    def is_any(self) -> bool:
        return self.text == "" and self.any_before and self.any_after

    def matches(self, value: str) -> bool:
        if self.any_before and self.any_after:
            return self.text in value
        if self.any_before:
            return value.endswith(self.text)
        if self.any_after:
            return value.startswith(self.text)
        return value == self.text


@dataclass(frozen=True)
class Number:
    value: float
    text: str


Value = Text | Number | Regex


@dataclass(frozen=True)
class Compare:
    op: str  # = != < > <= >=
    value: Value


class Wildcard:
    """A `.*` or `[*]` step: any member of an object or element of an array."""

    def __repr__(self) -> str:
        return "*"


WILDCARD = Wildcard()
Step = str | int | Wildcard


@dataclass(frozen=True)
class JsonTest:
    selector: tuple[Step, ...]
    test: Compare | Literal["null", "true", "false", "missing"]


@dataclass(frozen=True)
class FieldTest:
    name: str
    compare: Compare


@dataclass(frozen=True)
class AllOf:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Expr, ...]


Expr = AllOf | AnyOf | JsonTest | FieldTest


@dataclass(frozen=True)
class MatchAll:
    pass


@dataclass(frozen=True)
class Terms:
    required: tuple[str, ...]
    excluded: tuple[str, ...]
    alternatives: tuple[str, ...]  # empty when required or excluded terms are present


@dataclass(frozen=True)
class RegexPattern:
    regex: Regex


@dataclass(frozen=True)
class JsonPattern:
    expr: Expr


@dataclass(frozen=True)
class Slot:
    name: str | None  # None: an unnamed field (extracted as $N)
    condition: Expr | None = None
    ellipsis: bool = False


@dataclass(frozen=True)
class Delimited:
    slots: tuple[Slot, ...]


Pattern = MatchAll | Terms | RegexPattern | JsonPattern | Delimited
