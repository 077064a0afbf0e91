"""The Condition element of IAM policies, evaluated against what we know of a request.

A statement's Condition block is a set of clauses, `{operator: {key: value | [values]}}`. As in
IAM: all clauses must hold (AND), a clause holds when the context value matches any of its values
(OR; a negated operator such as StringNotEquals holds when it matches none of them, NOR), keys are
case-insensitive, `...IfExists` holds when the key is absent, `ForAnyValue:` / `ForAllValues:`
quantify over a multivalued key (ForAllValues holds on an empty set), and `${aws:username}`-style
policy variables in values are replaced from the context.

The answer is three-valued (`Truth`): we analyse requests that nobody has made, so a key may be
*unknown* (the caller's IP address, a tag on a resource) rather than absent. The context therefore
distinguishes three things:

- a key that is not in the context is unknown: a clause that needs it is UNKNOWN;
- a key mapped to `None` or `[]` is known to be absent from the request (IAM's rules for absent
  keys apply: a positive operator fails, a negated one holds, IfExists holds);
- anything else is the key's value (a string, number, bool, datetime, or a list of them).

Time is decidable: `aws:CurrentTime` and `aws:EpochTime` come from `now` (pass the snapshot's
collection time) unless the context sets them, so a grant that expired is no grant.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from functools import lru_cache
from typing import Any

from ecsguard.core.errors import UserError


class ConditionError(UserError, ValueError):
    """A Condition block this module cannot evaluate: an unknown operator, a malformed block, or
    a policy value the operator cannot read (a date that is not a date)."""


class Truth(Enum):
    """Kleene's three-valued logic: `a & b`, `a | b`, `~a`."""

    TRUE = "true"
    FALSE = "false"
    UNKNOWN = "unknown"

    def __and__(self, other: Truth) -> Truth:
        if Truth.FALSE in (self, other):
            return Truth.FALSE
        return Truth.UNKNOWN if Truth.UNKNOWN in (self, other) else Truth.TRUE

    def __or__(self, other: Truth) -> Truth:
        if Truth.TRUE in (self, other):
            return Truth.TRUE
        return Truth.UNKNOWN if Truth.UNKNOWN in (self, other) else Truth.FALSE

    def __invert__(self) -> Truth:
        return {Truth.TRUE: Truth.FALSE, Truth.FALSE: Truth.TRUE}.get(self, Truth.UNKNOWN)

    def __bool__(self) -> bool:
        # `if truth:` would treat FALSE as true (enum members are truthy); make the mistake loud
        raise TypeError("compare a Truth with `is Truth.TRUE`, not by its truth value")

    @staticmethod
    def of(value: bool) -> Truth:
        return Truth.TRUE if value else Truth.FALSE


def any_of(truths: Iterable[Truth]) -> Truth:
    result = Truth.FALSE
    for truth in truths:
        result = result | truth
        if result is Truth.TRUE:
            break
    return result


def all_of(truths: Iterable[Truth]) -> Truth:
    result = Truth.TRUE
    for truth in truths:
        result = result & truth
        if result is Truth.FALSE:
            break
    return result


# ---------------------------------------------------------------------------------------------
# the request context


class Context:
    """Condition keys of one request, looked up case-insensitively (see the module docstring for
    unknown versus absent keys)."""

    def __init__(self, values: Mapping[str, Any] | None = None, now: datetime | None = None):
        self._values: dict[str, tuple[Any, ...]] = {}
        for key, value in (values or {}).items():
            self._values[key.lower()] = _as_tuple(value)
        if now is not None:
            moment = _aware(now)
            self._values.setdefault("aws:currenttime", (moment,))
            self._values.setdefault("aws:epochtime", (int(moment.timestamp()),))

    def get(self, key: str) -> tuple[Any, ...] | None:
        """The key's values (`()` when known absent), or None when the key is unknown."""
        return self._values.get(key.lower())

    def __contains__(self, key: str) -> bool:
        return key.lower() in self._values


def _as_tuple(value: Any) -> tuple[Any, ...]:
    if value is None:
        return ()
    if isinstance(value, list | tuple | set | frozenset):
        return tuple(value)
    return (value,)


def as_context(context: Context | Mapping[str, Any] | None, now: datetime | None = None) -> Context:
    return context if isinstance(context, Context) else Context(context, now)


# ---------------------------------------------------------------------------------------------
# clauses


@dataclass(frozen=True)
class Clause:
    """One `operator: {key: values}` pair of a Condition block, as written."""

    operator: str
    key: str
    values: tuple[str, ...]

    def __str__(self) -> str:
        shown = self.values[0] if len(self.values) == 1 else "[" + ", ".join(self.values) + "]"
        return f"{self.operator} {self.key} {shown}"


@dataclass(frozen=True)
class ConditionResult:
    truth: Truth
    #: the clauses that could not be decided (empty unless `truth` is UNKNOWN)
    unknown: tuple[Clause, ...] = ()


@dataclass(frozen=True)
class _Operator:
    family: str
    negated: bool = False


_OPERATORS: dict[str, _Operator] = {
    "stringequals": _Operator("string"),
    "stringnotequals": _Operator("string", negated=True),
    "stringequalsignorecase": _Operator("string-ignore-case"),
    "stringnotequalsignorecase": _Operator("string-ignore-case", negated=True),
    "stringlike": _Operator("string-like"),
    "stringnotlike": _Operator("string-like", negated=True),
    "numericequals": _Operator("numeric-eq"),
    "numericnotequals": _Operator("numeric-eq", negated=True),
    "numericlessthan": _Operator("numeric-lt"),
    "numericlessthanequals": _Operator("numeric-le"),
    "numericgreaterthan": _Operator("numeric-gt"),
    "numericgreaterthanequals": _Operator("numeric-ge"),
    "dateequals": _Operator("date-eq"),
    "datenotequals": _Operator("date-eq", negated=True),
    "datelessthan": _Operator("date-lt"),
    "datelessthanequals": _Operator("date-le"),
    "dategreaterthan": _Operator("date-gt"),
    "dategreaterthanequals": _Operator("date-ge"),
    "bool": _Operator("bool"),
    "binaryequals": _Operator("binary"),
    "ipaddress": _Operator("ip"),
    "notipaddress": _Operator("ip", negated=True),
    "arnequals": _Operator("arn"),  # IAM treats ArnEquals and ArnLike alike
    "arnlike": _Operator("arn"),
    "arnnotequals": _Operator("arn", negated=True),
    "arnnotlike": _Operator("arn", negated=True),
    "null": _Operator("null"),
}
OPERATORS: tuple[str, ...] = (
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "NumericEquals",
    "NumericNotEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
    "DateEquals",
    "DateNotEquals",
    "DateLessThan",
    "DateLessThanEquals",
    "DateGreaterThan",
    "DateGreaterThanEquals",
    "Bool",
    "BinaryEquals",
    "IpAddress",
    "NotIpAddress",
    "ArnEquals",
    "ArnLike",
    "ArnNotEquals",
    "ArnNotLike",
    "Null",
)


@dataclass(frozen=True)
class _Parsed:
    clause: Clause
    operator: _Operator
    quantifier: str  # "", "forallvalues" or "foranyvalue"
    if_exists: bool


def parse_condition(condition: Mapping[str, Any]) -> tuple[Clause, ...]:
    """The clauses of a Condition block, validated (ConditionError names what is wrong)."""
    return tuple(p.clause for p in _parse(condition))


def _parse(condition: Mapping[str, Any]) -> list[_Parsed]:
    if not isinstance(condition, Mapping):
        raise ConditionError(
            f"a Condition must be an object of operators, not {type(condition).__name__}",
            'write {"StringEquals": {"aws:username": "alice"}}',
        )
    parsed = []
    for written, block in condition.items():
        quantifier, _, name = str(written).rpartition(":")
        quantifier = quantifier.lower()
        base = name.lower()
        if_exists = base.endswith("ifexists") and base != "ifexists"
        if if_exists:
            base = base[: -len("ifexists")]
        operator = _OPERATORS.get(base)
        if operator is None or quantifier not in ("", "forallvalues", "foranyvalue"):
            raise ConditionError(
                f"unknown condition operator {written!r}",
                "known operators: " + ", ".join(OPERATORS) + " (with IfExists, ForAnyValue:, "
                "ForAllValues:)",
            )
        if if_exists and operator.family == "null":
            raise ConditionError(f"{written!r}: Null cannot take IfExists", "write Null")
        if not isinstance(block, Mapping):
            raise ConditionError(
                f"{written!r} must map condition keys to values, not {type(block).__name__}",
                f'write {{"{written}": {{"aws:SourceIp": "10.0.0.0/8"}}}}',
            )
        for key, value in block.items():
            values = tuple(_policy_text(v) for v in _as_tuple(value))
            clause = Clause(str(written), str(key), values)
            parsed.append(_Parsed(clause, operator, quantifier, if_exists))
    return parsed


def _policy_text(value: Any) -> str:
    """Policy values are strings; JSON and YAML sometimes make booleans or numbers of them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ---------------------------------------------------------------------------------------------
# evaluation


def evaluate_condition(
    condition: Mapping[str, Any] | None,
    context: Context | Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> ConditionResult:
    """Whether a Condition block holds for the request context: TRUE, FALSE, or UNKNOWN with
    the clauses that could not be decided. An empty or missing block holds."""
    if not condition:
        return ConditionResult(Truth.TRUE)
    ctx = as_context(context, now)
    result, unknown = Truth.TRUE, []
    for parsed in _parse(condition):
        truth = _clause(parsed, ctx)
        if truth is Truth.FALSE:
            return ConditionResult(Truth.FALSE)
        if truth is Truth.UNKNOWN:
            result = Truth.UNKNOWN
            unknown.append(parsed.clause)
    return ConditionResult(result, tuple(unknown))


def _clause(parsed: _Parsed, ctx: Context) -> Truth:
    clause, operator = parsed.clause, parsed.operator
    found = ctx.get(clause.key)
    if found is None:
        return Truth.UNKNOWN
    if operator.family == "null":
        absent = not found
        return any_of(Truth.of((v.lower() == "true") == absent) for v in clause.values)
    if not found:
        if parsed.quantifier == "forallvalues":  # vacuously true on an empty set
            return Truth.TRUE
        if parsed.quantifier == "foranyvalue":
            return Truth.FALSE
        return Truth.of(parsed.if_exists or operator.negated)
    matchers = [_matcher(operator.family, value, ctx, clause) for value in clause.values]

    def one(element: Any) -> Truth:
        hit = any_of(m if isinstance(m, Truth) else Truth.of(m(element)) for m in matchers)
        return ~hit if operator.negated else hit

    if parsed.quantifier == "forallvalues":
        return all_of(one(element) for element in found)
    # ForAnyValue, and (as IAM does) a plain operator on a multivalued key: any value will do
    return any_of(one(element) for element in found)


Matcher = Callable[[Any], bool]


def _matcher(family: str, value: str, ctx: Context, clause: Clause) -> Matcher | Truth:
    """A test of one context value against one policy value, or a Truth when the policy value
    cannot be compared (UNKNOWN: it names an unknown policy variable; FALSE: an absent one)."""
    resolved = resolve_variables(value, ctx, glob=family == "string-like")
    if isinstance(resolved, Truth):
        return resolved
    try:
        return _MATCHER_FACTORIES[family](resolved)
    except ValueError as error:
        raise ConditionError(
            f"{clause.operator} {clause.key}: cannot read the policy value {value!r} ({error})",
            _VALUE_HINTS.get(family.partition("-")[0], "fix the policy value"),
        ) from error


_VALUE_HINTS = {
    "numeric": "use a number such as 10 or 2.5",
    "date": "use an ISO 8601 date such as 2026-01-31T00:00:00Z, or epoch seconds",
    "ip": "use an address or CIDR block such as 203.0.113.0/24",
    "bool": 'use "true" or "false"',
}


def _string(value: str) -> Matcher:
    return lambda element: _context_text(element) == value


def _string_ignore_case(value: str) -> Matcher:
    folded = value.casefold()
    return lambda element: _context_text(element).casefold() == folded


def _string_like(regex: str) -> Matcher:
    compiled = _compiled(regex)
    return lambda element: compiled.fullmatch(_context_text(element)) is not None


def _numeric(compare: Callable[[float, float], bool]) -> Callable[[str], Matcher]:
    def factory(value: str) -> Matcher:
        wanted = float(value)

        def test(element: Any) -> bool:
            try:
                return compare(float(element), wanted)
            except (TypeError, ValueError):  # a context value that is not a number never matches
                return False

        return test

    return factory


def _date(compare: Callable[[datetime, datetime], bool]) -> Callable[[str], Matcher]:
    def factory(value: str) -> Matcher:
        wanted = parse_date(value)

        def test(element: Any) -> bool:
            try:
                return compare(parse_date(element), wanted)
            except (TypeError, ValueError):
                return False

        return test

    return factory


def _bool(value: str) -> Matcher:
    if value.lower() not in ("true", "false"):
        raise ValueError("not a boolean")
    return lambda element: _context_text(element).lower() == value.lower()


def _binary(value: str) -> Matcher:
    def text(element: Any) -> str:
        if isinstance(element, bytes):
            return base64.b64encode(element).decode()
        return str(element)

    return lambda element: text(element) == value


def _ip(value: str) -> Matcher:
    network = ipaddress.ip_network(value.strip(), strict=False)

    def test(element: Any) -> bool:
        try:
            return ipaddress.ip_address(str(element).strip()) in network
        except ValueError:
            return False

    return test


def _arn(value: str) -> Matcher:
    return lambda element: arn_matches(value, _context_text(element))


_MATCHER_FACTORIES: dict[str, Callable[[str], Matcher]] = {
    "string": _string,
    "string-ignore-case": _string_ignore_case,
    "string-like": _string_like,
    "numeric-eq": _numeric(lambda a, b: a == b),
    "numeric-lt": _numeric(lambda a, b: a < b),
    "numeric-le": _numeric(lambda a, b: a <= b),
    "numeric-gt": _numeric(lambda a, b: a > b),
    "numeric-ge": _numeric(lambda a, b: a >= b),
    "date-eq": _date(lambda a, b: a == b),
    "date-lt": _date(lambda a, b: a < b),
    "date-le": _date(lambda a, b: a <= b),
    "date-gt": _date(lambda a, b: a > b),
    "date-ge": _date(lambda a, b: a >= b),
    "bool": _bool,
    "binary": _binary,
    "ip": _ip,
    "arn": _arn,
}


def _context_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return _aware(value).isoformat().replace("+00:00", "Z")
    return str(value)


def parse_date(value: Any) -> datetime:
    """An aware UTC datetime from a datetime, epoch seconds, or an ISO 8601 date or time."""
    if isinstance(value, datetime):
        return _aware(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    text = str(value).strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return datetime.fromtimestamp(float(text), UTC)
    return _aware(datetime.fromisoformat(text))


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# ---------------------------------------------------------------------------------------------
# wildcards and policy variables


@lru_cache(maxsize=16384)
def _compiled(regex: str) -> re.Pattern[str]:
    return re.compile(regex, re.DOTALL)


def glob_regex(text: str) -> str:
    """IAM's wildcards as a regular expression: `*` any run of characters, `?` one character."""
    return "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in text)


def arn_matches(pattern: str, arn: str) -> bool:
    """ArnLike: the six colon-separated parts are matched one by one (a wildcard does not run
    over a colon before the resource part); anything that is not a six-part ARN as a whole."""
    pattern_parts, arn_parts = pattern.split(":", 5), arn.split(":", 5)
    if len(pattern_parts) == 6 and len(arn_parts) == 6:
        return all(
            _compiled(glob_regex(p)).fullmatch(a) is not None
            for p, a in zip(pattern_parts, arn_parts, strict=True)
        )
    return _compiled(glob_regex(pattern)).fullmatch(arn) is not None


_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_SPECIALS = {"*": "*", "?": "?", "$": "$"}  # ${*} is a literal asterisk, not a wildcard


def resolve_variables(text: str, context: Context, glob: bool = False) -> str | Truth:
    """`text` with its `${key}` policy variables replaced from the context. With `glob`, the
    result is a regular expression (wildcards in the text active, replaced values literal).
    Returns Truth.UNKNOWN when a variable's key is unknown, and Truth.FALSE when it is absent
    and has no default (`${aws:username, 'nobody'}`): IAM then matches nothing."""
    if "${" not in text:
        return glob_regex(text) if glob else text
    pieces, position = [], 0
    for found in _VARIABLE.finditer(text):
        before = text[position : found.start()]
        pieces.append(glob_regex(before) if glob else before)
        position = found.end()
        inner = found.group(1).strip()
        if inner in _SPECIALS:
            value = _SPECIALS[inner]
        else:
            key, _, default = inner.partition(",")
            known = context.get(key.strip())
            if known is None:
                return Truth.UNKNOWN
            if known:
                value = _context_text(known[0])
            elif default.strip():
                value = default.strip().strip("'\"")
            else:
                return Truth.FALSE
        pieces.append(re.escape(value) if glob else value)
    rest = text[position:]
    pieces.append(glob_regex(rest) if glob else rest)
    return "".join(pieces)
