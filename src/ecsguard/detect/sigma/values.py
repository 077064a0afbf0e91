"""Sigma values (pySigma's typed values, modifiers already applied) → tests of one field value.

Semantics, after the Sigma specification:
- strings match the whole value, case-insensitively unless `cased`; `*` and `?` are wildcards
  (contains / startswith / endswith are wildcards pySigma puts around the value). A non-text
  value is compared through its text: `true`/`false`, a number as written, an object as JSON;
- `re` searches (unanchored; `^` and `$` anchor) with RE2, so no pattern can backtrack: a
  regular expression RE2 cannot run (backreferences, look-arounds) is refused at load time;
- numbers compare numerically (a numeric text counts), `gt`/`gte`/`lt`/`lte` likewise;
- `cidr` holds an IP address inside the network; time parts (`hour`, ...) read an ISO time;
- expansions (`windash`, `base64offset`) match when one of their variants does.
Every test returns False, never raises, on a value of an unexpected type.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
import re2
from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExpansion,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    SigmaType,
    SpecialChars,
    TimestampPart,
)

ValueTest = Callable[[Any], bool]


class Unsupported(Exception):
    """A rule uses something this evaluator cannot honour; `where` names the field or detection
    key involved (for a line number), when there is one."""

    def __init__(self, reason: str, where: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.where = where


def text_of(value: Any) -> str | None:
    """The text a string pattern is matched against (None: nothing to match)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | dict | list):
        try:
            return orjson.dumps(value).decode()
        except TypeError:  # integers beyond 64 bits, NaN inside containers: plain text then
            return str(value)
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return None


def _options(*, cased: bool, dot_nl: bool) -> re2.Options:
    options = re2.Options()
    options.log_errors = False
    options.case_sensitive = cased
    options.dot_nl = dot_nl
    return options


def _literal(text: str) -> str:
    """RE2 syntax for a literal: every character that is not a letter or digit as `\\x{..}`."""
    return "".join(c if c.isalnum() else f"\\x{{{ord(c):x}}}" for c in text)


def string_test(value: SigmaString) -> ValueTest:
    cased = isinstance(value, SigmaCasedString)
    parts = value.s
    for part in parts:
        if isinstance(part, Placeholder):
            raise Unsupported(
                f"placeholder %{part.name}% (`expand` modifier) needs a value list; "
                "replace it with the values"
            )
    texts = [p for p in parts if isinstance(p, str)]
    wild = [p for p in parts if isinstance(p, SpecialChars)]
    fold: Callable[[str], str] = (lambda s: s) if cased else str.lower
    if not wild:
        literal = fold("".join(texts))
        return lambda v: (t := text_of(v)) is not None and fold(t) == literal
    many = SpecialChars.WILDCARD_MULTI
    if len(texts) == 1 and all(w is many for w in wild):
        needle = fold(texts[0])
        shape = tuple(isinstance(p, str) for p in parts)
        if shape == (False, True, False):
            return lambda v: (t := text_of(v)) is not None and needle in fold(t)
        if shape == (True, False):
            return lambda v: (t := text_of(v)) is not None and fold(t).startswith(needle)
        if shape == (False, True):
            return lambda v: (t := text_of(v)) is not None and fold(t).endswith(needle)
    if not texts and many in wild:
        # `*` alone (or `*?*`): any value of at least as many characters as `?`s
        least = sum(1 for w in wild if w is SpecialChars.WILDCARD_SINGLE)
        return lambda v: (t := text_of(v)) is not None and len(t) >= least
    pattern = "".join(
        _literal(p) if isinstance(p, str) else (".*" if p is many else ".") for p in parts
    )
    compiled = re2.compile(pattern, _options(cased=cased, dot_nl=True))
    return lambda v: (t := text_of(v)) is not None and compiled.fullmatch(t) is not None


def regex_test(value: SigmaRegularExpression) -> ValueTest:
    pattern = str(value.regexp)
    if SigmaRegularExpressionFlag.MULTILINE in value.flags:
        pattern = "(?m)" + pattern
    options = _options(
        cased=SigmaRegularExpressionFlag.IGNORECASE not in value.flags,
        dot_nl=SigmaRegularExpressionFlag.DOTALL in value.flags,
    )
    try:
        compiled = re2.compile(pattern, options)
    except re2.error as err:
        detail = err.args[0].decode() if err.args and isinstance(err.args[0], bytes) else err
        raise Unsupported(
            f"regular expression {str(value.regexp)!r} cannot run in linear time (RE2: {detail}); "
            "backreferences and look-arounds are refused"
        ) from None
    return lambda v: isinstance(v, str) and compiled.search(v) is not None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def number_test(value: SigmaNumber) -> ValueTest:
    wanted = float(value.number)
    return lambda v: _number(v) == wanted


def bool_test(value: SigmaBool) -> ValueTest:
    wanted = bool(value.boolean)
    word = "true" if wanted else "false"
    return lambda v: v is wanted or (isinstance(v, str) and v.strip().lower() == word)


_COMPARE: dict[CompareOperators, Callable[[float, float], bool]] = {
    CompareOperators.LT: lambda a, b: a < b,
    CompareOperators.LTE: lambda a, b: a <= b,
    CompareOperators.GT: lambda a, b: a > b,
    CompareOperators.GTE: lambda a, b: a >= b,
    CompareOperators.NEQ: lambda a, b: a != b,
}


def compare_test(value: SigmaCompareExpression) -> ValueTest:
    op = _COMPARE[value.op]
    bound = float(value.number.number)

    def test(v: Any) -> bool:
        number = _number(v)
        return number is not None and op(number, bound)

    return test


def cidr_test(value: SigmaCIDRExpression) -> ValueTest:
    network = value.network

    def test(v: Any) -> bool:
        if not isinstance(v, str):
            return False
        try:
            address = ipaddress.ip_address(v.strip())
        except ValueError:
            return False
        return address.version == network.version and address in network

    return test


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


_PARTS: dict[TimestampPart, Callable[[datetime], int]] = {
    TimestampPart.MINUTE: lambda t: t.minute,
    TimestampPart.HOUR: lambda t: t.hour,
    TimestampPart.DAY: lambda t: t.day,
    TimestampPart.WEEK: lambda t: t.isocalendar().week,
    TimestampPart.MONTH: lambda t: t.month,
    TimestampPart.YEAR: lambda t: t.year,
}


def time_part_test(value: SigmaTimestampPart) -> ValueTest:
    part = _PARTS[value.timestamp_part]
    wanted = int(value.number)

    def test(v: Any) -> bool:
        when = _time(v)
        return when is not None and part(when) == wanted

    return test


def value_test(value: SigmaType) -> ValueTest:
    """The test of one field value against one Sigma value (null, exists and field references
    depend on the whole record and are handled by the caller)."""
    if isinstance(value, SigmaExpansion):
        tests = [value_test(v) for v in value.values]
        return lambda v: any(t(v) for t in tests)
    if isinstance(value, SigmaString):
        return string_test(value)
    if isinstance(value, SigmaRegularExpression):
        return regex_test(value)
    if isinstance(value, SigmaTimestampPart):  # before SigmaNumber: it is one
        return time_part_test(value)
    if isinstance(value, SigmaNumber):
        return number_test(value)
    if isinstance(value, SigmaBool):
        return bool_test(value)
    if isinstance(value, SigmaCompareExpression):
        return compare_test(value)
    if isinstance(value, SigmaCIDRExpression):
        return cidr_test(value)
    raise Unsupported(f"values of type {type(value).__name__} are not supported")
