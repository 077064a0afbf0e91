"""Filter pattern text -> syntax tree, with AWS's rules and quotas and positioned errors.

Five shapes, told apart by the first character:
- nothing (or only `""` / `" "`): every event;
- `{ ... }`: a JSON pattern: selectors `$.a.b[0]` (`.*` / `[*]` wildcards) compared with
  `=`/`!=` (strings with `*` at either end, or `%regex%`), numbers with `= != < > <= >=`, or tested
  with `IS NULL`/`IS TRUE`/`IS FALSE`/`NOT EXISTS`; `&&` binds tighter than `||`; parentheses;
- `[ ... ]`: a space-delimited pattern: named fields, `...` for any number of fields, an empty
  slot for one unnamed field, conditions like `status = 4* || status = 500` per field;
- `%regex%`: one regular expression (see regex.py);
- otherwise terms: `ERROR` (contained, case-sensitive), `"exact phrase"`, `-excluded`, `?either`.
  `?` terms are ignored when the pattern also has plain or `-` terms (AWS's documented rule).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

from ecsguard.logs.query.filter_pattern.errors import PatternError
from ecsguard.logs.query.filter_pattern.regex import Regex, compile_regex
from ecsguard.logs.query.filter_pattern.tree import (
    NUMBER,
    WILDCARD,
    AllOf,
    AnyOf,
    Compare,
    Delimited,
    Expr,
    FieldTest,
    JsonPattern,
    JsonTest,
    MatchAll,
    Number,
    Pattern,
    RegexPattern,
    Slot,
    Step,
    Terms,
    Text,
    Value,
)

MAX_LENGTH = 1024  # the API's limit on filterPattern
MAX_REGEXES = 2  # per JSON or space-delimited pattern
MAX_WILDCARDS_PER_SELECTOR = 1
MAX_WILDCARDS = 3  # per JSON pattern
SELECTOR_NAME = re.compile(r"[A-Za-z0-9_-]+")
FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
WORD = re.compile(r"[A-Za-z]+")
INDEX = re.compile(r"\[([0-9]+|\*)\]")
OPERATORS = ("!=", "<=", ">=", "=", "<", ">")
NUMERIC_ONLY = ("<", ">", "<=", ">=")
TERM_RESERVED = frozenset("{}[]()%")
QUOTE_HINT = "put a term that holds {, }, [, ], (, ) or % in double quotes"


def parse(text: str) -> Pattern:
    """The syntax tree of `text`; raises UserError naming the position of the first problem."""
    return _Parser(text).pattern()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.error = PatternError(text)
        self.regexes = 0
        self.wildcards = 0

    # -- helpers
    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self, count: int = 1) -> str:
        return self.text[self.pos : self.pos + count]

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def expect(self, token: str, hint: str) -> None:
        self.skip_space()
        if self.peek(len(token)) != token:
            raise self.error.unexpected(self.pos, hint)
        self.pos += len(token)

    def finish(self, what: str) -> None:
        self.skip_space()
        if not self.at_end():
            raise self.error.unexpected(self.pos, f"{what} must be the whole filter pattern")

    # -- top level
    def pattern(self) -> Pattern:
        try:
            self.text.encode("utf-8")
        except UnicodeEncodeError as err:  # lone surrogates, e.g. from undecodable argv bytes
            raise self.error.at(err.start, "a character that is not valid Unicode") from None
        if len(self.text) > MAX_LENGTH:
            raise self.error.at(MAX_LENGTH, f"filter pattern longer than {MAX_LENGTH} characters")
        self.skip_space()
        first = self.peek()
        if first == "{":
            return self.json_pattern()
        if first == "[":
            return self.delimited()
        if first == "%":
            regex = self.regex()
            self.finish("a %regex% pattern")
            return RegexPattern(regex)
        return self.terms()

    # -- terms
    def terms(self) -> Pattern:
        required: list[str] = []
        excluded: list[str] = []
        alternatives: list[str] = []
        blank_alternative = False  # `?" "` matches everything, so the whole OR does
        while True:
            self.skip_space()
            if self.at_end():
                break
            kind = self.peek() if self.peek() in ("?", "-") else ""
            if kind:
                operator_at = self.pos
                self.pos += 1
                self.skip_space()  # AWS's own example writes `"ERROR" - "Exiting"`
                if self.at_end():
                    raise self.error.at(operator_at, f"{kind!r} must be followed by a term")
            term = self.quoted() if self.peek() == '"' else self.bare_term()
            if kind == "-":
                excluded.append(term)
            elif kind == "?":
                alternatives.append(term)
                blank_alternative = blank_alternative or not term.strip()
            elif term.strip():  # `""` and `" "` match every event
                required.append(term)
        if required or excluded:
            return Terms(tuple(required), tuple(excluded), ())
        if alternatives and not blank_alternative:
            return Terms((), (), tuple(alternatives))
        return MatchAll()

    def bare_term(self) -> str:
        start = self.pos
        while not self.at_end() and not self.peek().isspace() and self.peek() != '"':
            if self.peek() in TERM_RESERVED:
                raise self.error.unexpected(self.pos, QUOTE_HINT)
            self.pos += 1
        return self.text[start : self.pos]

    def quoted(self) -> str:
        """A double-quoted string (\\" and \\\\ escape); the cursor is on the opening quote."""
        start = self.pos
        self.pos += 1
        chars: list[str] = []
        while not self.at_end():
            char = self.peek()
            if char == "\\" and self.peek(2)[1:] in ('"', "\\"):
                chars.append(self.peek(2)[1])
                self.pos += 2
                continue
            self.pos += 1
            if char == '"':
                return "".join(chars)
            chars.append(char)
        raise self.error.at(start, "unterminated quoted string", 'close it with "')

    def regex(self) -> Regex:
        """`%...%`; the cursor is on the opening %."""
        start = self.pos
        end = self.text.find("%", start + 1)
        if end == -1:
            raise self.error.at(start, "unterminated regex", "close it with %")
        self.pos = end + 1
        return compile_regex(self.text[start + 1 : end], self.error, start + 1)

    def counted_regex(self) -> Regex:
        if self.regexes == MAX_REGEXES:
            raise self.error.at(
                self.pos,
                f"more than {MAX_REGEXES} regexes in one pattern",
                "AWS allows two %regex% conditions per JSON or space-delimited pattern",
            )
        self.regexes += 1
        return self.regex()

    # -- values (JSON and space-delimited conditions)
    def value(self, op: str, stops: str) -> Value:
        self.skip_space()
        start = self.pos
        if self.peek() == '"':
            value: Value = Text.parse(self.quoted())
        elif self.peek() == "%":
            value = self.counted_regex()
        else:
            while not self.at_end() and not self.peek().isspace() and self.peek() not in stops:
                self.pos += 1
            raw = self.text[start : self.pos]
            if not raw:
                raise self.error.at(start, f"expected a value after {op!r}")
            value = Number(float(raw), raw) if NUMBER.fullmatch(raw) else Text.parse(raw)
        if op in NUMERIC_ONLY and not isinstance(value, Number):
            raise self.error.at(start, f"{op!r} compares numbers", "give a number such as 1000")
        return value

    def operator(self) -> str:
        self.skip_space()
        for op in OPERATORS:
            if self.peek(len(op)) == op:
                self.pos += len(op)
                return op
        raise self.error.unexpected(self.pos, "expected =, !=, <, >, <= or >=")

    def boolean(self, term: Callable[[], Expr]) -> Expr:
        """`term ('&&' term)* ('||' ...)*`, && binding tighter; `term` parses one operand."""
        options = [self.all_of(term)]
        while True:
            self.skip_space()
            if self.peek(2) != "||":
                break
            self.pos += 2
            options.append(self.all_of(term))
        return options[0] if len(options) == 1 else AnyOf(tuple(options))

    def all_of(self, term: Callable[[], Expr]) -> Expr:
        items: list[Expr] = [term()]
        while True:
            self.skip_space()
            if self.peek(2) != "&&":
                break
            self.pos += 2
            items.append(term())
        return items[0] if len(items) == 1 else AllOf(tuple(items))

    # -- JSON
    def json_pattern(self) -> JsonPattern:
        self.pos += 1  # {
        expr = self.boolean(self.json_operand)
        self.expect("}", "close the JSON pattern with }")
        self.finish("a JSON pattern")
        return JsonPattern(expr)

    def json_operand(self) -> Expr:
        self.skip_space()
        if self.peek() == "(":
            self.pos += 1
            expr = self.boolean(self.json_operand)
            self.expect(")", "close the parenthesis")
            return expr
        selector = self.selector()
        self.skip_space()
        word = WORD.match(self.text, self.pos)
        if word and word[0].upper() in ("IS", "NOT"):
            return JsonTest(selector, self.keyword_test(word[0].upper()))
        op = self.operator()
        return JsonTest(selector, Compare(op, self.value(op, stops='()&|{}"=!<>')))

    def keyword_test(self, first: str) -> Literal["null", "true", "false", "missing"]:
        start = self.pos
        self.pos += len(first)
        self.skip_space()
        word = WORD.match(self.text, self.pos)
        second = word[0].upper() if word else ""
        if first == "IS" and second in ("NULL", "TRUE", "FALSE"):
            self.pos += len(second)
            return "null" if second == "NULL" else "true" if second == "TRUE" else "false"
        if first == "NOT" and second == "EXISTS":
            self.pos += len(second)
            return "missing"
        written = self.text[start : self.pos + len(second)]
        raise self.error.at(
            start, f"unknown test {written!r}", "write IS NULL, IS TRUE, IS FALSE or NOT EXISTS"
        )

    def selector(self) -> tuple[Step, ...]:
        start = self.pos
        if self.peek() != "$":
            raise self.error.unexpected(
                self.pos, "a JSON condition starts with a selector: $.field"
            )
        self.pos += 1
        steps: list[Step] = []
        while self.peek() in (".", "["):
            if self.peek() == ".":
                self.pos += 1
                if self.peek() == "*":
                    self.pos += 1
                    steps.append(WILDCARD)
                    continue
                name = SELECTOR_NAME.match(self.text, self.pos)
                if not name:
                    raise self.error.unexpected(self.pos, "a property name: letters, digits, - _")
                steps.append(name[0])
                self.pos = name.end()
            else:
                if not steps:
                    raise self.error.at(self.pos, "an array index must follow a property")
                index = INDEX.match(self.text, self.pos)
                if not index:
                    raise self.error.unexpected(self.pos + 1, "an index is [0], [1], ... or [*]")
                steps.append(WILDCARD if index[1] == "*" else int(index[1]))
                self.pos = index.end()
        if not steps:
            raise self.error.unexpected(self.pos, "a selector needs a property: $.field")
        wildcards = sum(step is WILDCARD for step in steps)
        if wildcards > MAX_WILDCARDS_PER_SELECTOR:
            raise self.error.at(start, "more than one wildcard in a selector")
        self.wildcards += wildcards
        if self.wildcards > MAX_WILDCARDS:
            raise self.error.at(start, f"more than {MAX_WILDCARDS} wildcard selectors in a pattern")
        return tuple(steps)

    # -- space-delimited
    def delimited(self) -> Delimited:
        self.pos += 1  # [
        slots: list[Slot] = []
        names: set[str] = set()
        self.skip_space()
        if self.peek() == "]":  # `[]` extracts every field, as `[...]`
            self.pos += 1
            self.finish("a space-delimited pattern")
            return Delimited((Slot(None, ellipsis=True),))
        while True:
            self.skip_space()
            start = self.pos
            slot = self.slot()
            if slot.name is not None:
                if slot.name in names:
                    raise self.error.at(start, f"field name {slot.name!r} used twice")
                names.add(slot.name)
            slots.append(slot)
            self.skip_space()
            if self.peek() == ",":
                self.pos += 1
                continue
            if self.peek() == "]":
                self.pos += 1
                break
            raise self.error.unexpected(self.pos, "separate fields with , and close with ]")
        self.finish("a space-delimited pattern")
        return Delimited(tuple(slots))

    def slot(self) -> Slot:
        self.skip_space()
        if self.peek() in (",", "]"):
            return Slot(None)  # an empty slot is one unnamed field
        if self.peek(3) == "...":
            self.pos += 3
            return Slot(None, ellipsis=True)
        start = self.pos
        name = self.field_name()
        self.skip_space()
        if self.peek() in (",", "]") or self.at_end():
            return Slot(name)
        self.pos = start
        condition = self.boolean(self.field_operand)
        for test in _field_tests(condition):
            if test.name != name:
                raise self.error.at(
                    start,
                    f"the conditions of field {name!r} name {test.name!r}",
                    "write each field's conditions in its own slot",
                )
        return Slot(name, condition)

    def field_name(self) -> str:
        name = FIELD_NAME.match(self.text, self.pos)
        if not name:
            raise self.error.unexpected(
                self.pos, "a field is a name (letters, digits, _), a condition, ... or empty"
            )
        self.pos = name.end()
        return name[0]

    def field_operand(self) -> Expr:
        self.skip_space()
        name = self.field_name()
        op = self.operator()
        value = self.value(op, stops=',]&|"')
        return FieldTest(name, Compare(op, value))


def _field_tests(expr: Expr) -> list[FieldTest]:
    if isinstance(expr, FieldTest):
        return [expr]
    if isinstance(expr, AllOf | AnyOf):
        return [test for item in expr.items for test in _field_tests(item)]
    return []
