"""The parsed query: expressions and commands, each remembering where it was written."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Node:
    pos: int  # offset of the first character
    end: int  # offset after the last character


@dataclass(frozen=True, slots=True)
class Field(Node):
    name: str


@dataclass(frozen=True, slots=True)
class Literal(Node):
    value: str | int | float  # a string or a number


@dataclass(frozen=True, slots=True)
class Regex(Node):
    pattern: str


@dataclass(frozen=True, slots=True)
class Duration(Node):
    amount: int | float
    unit: str  # canonical: ms s m h d w mo q y


@dataclass(frozen=True, slots=True)
class Star(Node):
    """The `*` of count(*)."""


@dataclass(frozen=True, slots=True)
class Call(Node):
    name: str  # as written; looked up case-insensitively
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Unary(Node):
    op: str  # "-" or "not"
    operand: Expr


@dataclass(frozen=True, slots=True)
class Binary(Node):
    op: str  # + - * / % ^, = != < <= > >=, and, or
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Like(Node):
    operand: Expr
    pattern: Expr  # a Literal string (substring) or a Regex, checked by the compiler
    negated: bool


@dataclass(frozen=True, slots=True)
class In(Node):
    operand: Expr
    items: tuple[Expr, ...]
    negated: bool


Expr = Field | Literal | Regex | Duration | Star | Call | Unary | Binary | Like | In


@dataclass(frozen=True, slots=True)
class Item:
    """An expression with its output name: the alias, else the expression as written."""

    expr: Expr
    name: str


@dataclass(frozen=True, slots=True)
class SortKey:
    expr: Expr
    descending: bool


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class Fields(Command):
    items: tuple[Item, ...]


@dataclass(frozen=True, slots=True)
class Display(Command):
    fields: tuple[Field, ...]


@dataclass(frozen=True, slots=True)
class Filter(Command):
    condition: Expr


@dataclass(frozen=True, slots=True)
class Stats(Command):
    aggregates: tuple[Item, ...]
    by: tuple[Item, ...]


@dataclass(frozen=True, slots=True)
class Sort(Command):
    keys: tuple[SortKey, ...]


@dataclass(frozen=True, slots=True)
class Limit(Command):
    count: int


@dataclass(frozen=True, slots=True)
class Parse(Command):
    source: Expr
    pattern: Literal | Regex
    names: tuple[str, ...]  # the `as` names of a glob; empty for a regex (its groups name them)


@dataclass(frozen=True, slots=True)
class Dedup(Command):
    fields: tuple[Field, ...]
