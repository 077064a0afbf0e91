"""Validating and compiling an event pattern, with AWS's error texts.

The pattern is read the way EventBridge's engine (aws/event-ruler) reads it: keys in document
order, nested objects joined into dotted paths, a list of alternatives at each leaf field. `$or`
forks the branches built so far, one copy per alternative object; a field written later (in an
`$or` alternative, or after it) replaces the same field written earlier, which is what AWS does
with `{"name": ["a"], "$or": [{"name": [...]}, ...]}`. A JSON text with a repeated key keeps the
last occurrence, as AWS documents.

Errors are `InvalidPatternError` with AWS's reason text (see invalid_patterns.json in the shared
test data for the ones recorded against the service) and the dotted path of the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import orjson

from ecsguard.detect.eventpattern.errors import InvalidPatternError
from ecsguard.detect.eventpattern.pattern import Branch, EventPattern, FieldTest
from ecsguard.detect.eventpattern.values import (
    AnythingBut,
    AnythingButMatching,
    EqualsIgnoreCase,
    IpEquals,
    Matcher,
    NumericRange,
    Prefix,
    Suffix,
    Wildcard,
    checked_number,
    is_number,
    looks_like_ipv6,
    number_key,
    parse_cidr,
    parse_ip,
    value_key,
)

OR = "$or"
#: keys event-ruler refuses as field names inside `$or` (its reserved words)
RESERVED_IN_OR = frozenset(
    {
        "exactly",
        "equals-ignore-case",
        "prefix",
        "suffix",
        "anything-but",
        "exists",
        "wildcard",
        "numeric",
        "cidr",
        "=",
        "<",
        "<=",
        ">",
        ">=",
        "regex",
        "not-wildcard",
        "not-equals-ignore-case",
        "date-after",
        "date-on-or-after",
        "date-before",
        "date-on-or-before",
        "in-date-range",
        "ip-address-in-range",
        "ip-address-not-in-range",
    }
)
#: a pattern with more `$or` combinations than this is refused (each is matched on its own)
MAX_BRANCHES = 1000
_ABUT_STRINGS = "Value of anything-but must be an array or single string/number value."
_ABUT_IGNORE_CASE = (
    "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported."
)
_ABUT_LIST = "Inside anything but list, start|null|boolean is not supported."
_ABUT_MIXED = (
    "Inside anything but list, either all values are number or string, mixed type is not supported"
)


def load_pattern_json(text: str | bytes) -> Any:
    """JSON text to Python; invalid JSON is an invalid pattern (with the parser's position)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as err:
        raise InvalidPatternError(f"invalid JSON: {err}") from None


def compile_pattern(pattern: str | bytes | Mapping[str, Any]) -> EventPattern:
    """Validate and compile a pattern given as JSON text or as parsed JSON (a YAML mapping)."""
    doc = load_pattern_json(pattern) if isinstance(pattern, str | bytes) else pattern
    if not isinstance(doc, Mapping):
        raise InvalidPatternError("Filter is not an object")
    doc = dict(doc)
    branches: list[dict[str, FieldTest]] = [{}]
    _object(doc, "", branches, inside_or=False)
    compiled = tuple(_ordered(branch) for branch in branches)
    return EventPattern(doc, compiled)


def _ordered(branch: dict[str, FieldTest]) -> Branch:
    # cheap and selective tests first: exact lists, then other matchers, lone exists:false last
    def cost(test: FieldTest) -> int:
        if not test.positive:
            return 3
        if test.matchers or test.exists_true:
            return 1 + int(
                any(isinstance(m, Wildcard | AnythingButMatching) for m in test.matchers)
            )
        return 0

    return tuple(sorted(branch.values(), key=cost))


def _object(
    obj: Mapping[Any, Any], prefix: str, branches: list[dict[str, FieldTest]], inside_or: bool
) -> None:
    if not obj:
        raise InvalidPatternError("Empty objects are not allowed", prefix)
    for key, value in obj.items():
        if not isinstance(key, str):
            raise InvalidPatternError(f"Field names must be strings, not {key!r}", prefix)
        if key == OR:
            _or(value, prefix, branches)
            continue
        if inside_or and key in RESERVED_IN_OR:
            raise InvalidPatternError(
                f"{key} is Ruler reserved fieldName which cannot be used inside {OR}.", prefix
            )
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping):
            _object(value, path, branches, inside_or)
        elif isinstance(value, list):
            test = _field(path, value)
            for branch in branches:
                branch[path] = test
        else:
            raise InvalidPatternError(f'"{key}" must be an object or an array', path)


def _or(value: Any, prefix: str, branches: list[dict[str, FieldTest]]) -> None:
    where = f"{prefix}.{OR}" if prefix else OR
    if not isinstance(value, list):
        raise InvalidPatternError(f"It must be an Array followed with {OR}.", where)
    before = [dict(branch) for branch in branches]
    branches.clear()
    for item in value:
        if not isinstance(item, Mapping):
            raise InvalidPatternError(
                f"Only JSON object is allowed in array of {OR} relationship.", where
            )
        forked = [dict(branch) for branch in before]
        _object(item, prefix, forked, inside_or=True)
        branches.extend(forked)
        if len(branches) > MAX_BRANCHES:
            raise InvalidPatternError(
                f"Too many {OR} combinations (more than {MAX_BRANCHES})", where
            )
    if len(value) < 2:
        raise InvalidPatternError(
            f"There must have at least 2 Objects in {OR} relationship.", where
        )


def _field(path: str, values: list[Any]) -> FieldTest:
    if not values:
        raise InvalidPatternError("Empty arrays are not allowed", path)
    exact: set[Any] = set()
    matchers: list[Matcher] = []
    exists: set[bool] = set()
    for value in values:
        if isinstance(value, Mapping):
            try:
                found = _expression(value)
            except InvalidPatternError as err:
                raise InvalidPatternError(err.reason, path) from None
            if isinstance(found, bool):
                exists.add(found)
            elif isinstance(found, tuple):
                exact.add(found)  # numeric "=": a number key
            else:
                matchers.append(found)
        elif isinstance(value, str):
            address = parse_ip(value) if looks_like_ipv6(value) else None
            if address is not None:
                matchers.append(IpEquals(value, address))
            else:
                exact.add(value)
        elif value is None or isinstance(value, bool) or is_number(value):
            exact.add(value_key(value))
        else:
            raise InvalidPatternError(
                "Match value must be String, number, true, false, or null", path
            )
    return FieldTest(
        path=path,
        exact=frozenset(exact),
        matchers=tuple(matchers),
        exists_true=True in exists,
        exists_false=False in exists,
        shown=_shown(values),
    )


def _shown(values: list[Any]) -> str:
    try:
        return json.dumps(values, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(values)


def _expression(expression: Mapping[Any, Any]) -> Matcher | bool | tuple[str, Any]:
    """One `{operator: argument}` of a field's list: a matcher, an exists flag, or the key of a
    numeric equality (which matches like an exact number)."""
    if not expression:
        raise InvalidPatternError("Match expression name not found")
    items = list(expression.items())
    name, argument = items[0]
    single = len(items) == 1
    if name in ("prefix", "suffix"):
        text, ignore_case = _affix(name, argument)
        _one_key(single)
        return Prefix(text, ignore_case) if name == "prefix" else Suffix(text, ignore_case)
    if name == "equals-ignore-case":
        if not isinstance(argument, str):
            raise InvalidPatternError("equals-ignore-case match pattern must be a string")
        _one_key(single)
        return EqualsIgnoreCase(argument)
    if name == "wildcard":
        if not isinstance(argument, str):
            raise InvalidPatternError("wildcard match pattern must be a string")
        matcher = Wildcard(argument)
        _one_key(single)
        return matcher
    if name == "numeric":
        if not isinstance(argument, list):
            raise InvalidPatternError("Value of numeric must be an array.")
        found = _numeric(argument)
        if not single:
            raise InvalidPatternError("Too many elements in numeric expression")
        return found
    if name == "anything-but":
        excluded = _anything_but(argument)
        if not single:
            raise InvalidPatternError("Too many elements in numeric expression")
        return excluded
    if name == "exists":
        if not isinstance(argument, bool):
            raise InvalidPatternError("exists match pattern must be either true or false.")
        _one_key(single)
        return argument
    if name == "cidr":
        if not isinstance(argument, str):
            raise InvalidPatternError("cidr match pattern must be a string")
        cidr = parse_cidr(argument)
        _one_key(single)
        return cidr
    raise InvalidPatternError(f"Unrecognized match type {name}")


def _one_key(single: bool) -> None:
    if not single:
        raise InvalidPatternError("Only one key allowed in match expression")


def _affix(name: str, argument: Any) -> tuple[str, bool]:
    """prefix/suffix argument: a string, or {"equals-ignore-case": string}."""
    if isinstance(argument, str):
        return argument, False
    if isinstance(argument, Mapping) and list(argument) == ["equals-ignore-case"]:
        text = argument["equals-ignore-case"]
        if not isinstance(text, str):
            raise InvalidPatternError("equals-ignore-case match pattern must be a string")
        return text, True
    raise InvalidPatternError(f"{name} match pattern must be a string")


def _numeric(terms: list[Any]) -> NumericRange | tuple[str, Any]:
    text = json.dumps(terms)
    if not terms or not isinstance(terms[0], str):
        shown = json.dumps(terms[0]) if terms else "]"
        raise InvalidPatternError(f"Invalid member in numeric match: {shown}")
    operator = terms[0]
    operand = terms[1] if len(terms) > 1 else None
    if operator == "=":
        value = checked_number(operand, "equals")
        if len(terms) > 2:
            raise InvalidPatternError("Too many elements in numeric expression")
        return number_key(value)
    if operator in ("<", "<="):
        value = checked_number(operand, operator)
        if len(terms) > 2:
            raise InvalidPatternError("Too many elements in numeric expression")
        return NumericRange(text, None, False, value, operator == "<")
    if operator not in (">", ">="):
        raise InvalidPatternError(f"Unrecognized numeric range operator: {operator}")
    low = checked_number(operand, operator)
    if len(terms) == 2:
        return NumericRange(text, low, operator == ">", None, False)
    upper = terms[2]
    if not isinstance(upper, str):
        raise InvalidPatternError(f"Bad value in numeric range: {json.dumps(upper)}")
    if upper not in ("<", "<="):
        raise InvalidPatternError(f"Bad numeric range operator: {upper}")
    high = checked_number(terms[3] if len(terms) > 3 else None, upper)
    if len(terms) > 4:
        raise InvalidPatternError("Too many terms in numeric range expression")
    if low >= high:
        raise InvalidPatternError("Bottom must be less than top")
    return NumericRange(text, low, operator == ">", high, upper == "<")


def _anything_but(argument: Any) -> Matcher:
    if isinstance(argument, Mapping):
        if not argument:
            raise InvalidPatternError("Anything-But expression name not found")
        if len(argument) > 1:
            raise InvalidPatternError("Only one key allowed in match expression")
        ((operator, inner),) = argument.items()
        if operator == "equals-ignore-case":
            return _anything_but_ignore_case(inner)
        if operator in ("prefix", "suffix", "wildcard"):
            return _anything_but_matching(operator, inner)
        raise InvalidPatternError(f"Unsupported anything-but pattern: {operator}")
    if isinstance(argument, str):
        return AnythingBut([argument], numeric=False)
    if is_number(argument):
        return AnythingBut([checked_number(argument, "anything-but")], numeric=True)
    if not isinstance(argument, list):
        raise InvalidPatternError(_ABUT_STRINGS)
    strings = [value for value in argument if isinstance(value, str)]
    numbers = [value for value in argument if is_number(value)]
    if len(strings) + len(numbers) != len(argument):
        raise InvalidPatternError(_ABUT_LIST)
    if (strings and numbers) or not argument:
        raise InvalidPatternError(_ABUT_MIXED)
    if numbers:
        return AnythingBut([checked_number(n, "anything-but") for n in numbers], numeric=True)
    return AnythingBut(strings, numeric=False)


def _anything_but_ignore_case(inner: Any) -> Matcher:
    if isinstance(inner, str):
        return AnythingButMatching([EqualsIgnoreCase(inner)])
    if is_number(inner):
        raise InvalidPatternError(_ABUT_IGNORE_CASE)
    if not isinstance(inner, list):
        raise InvalidPatternError(_ABUT_STRINGS)
    if not inner:
        raise InvalidPatternError("Empty arrays are not allowed")
    if not all(isinstance(value, str) for value in inner):
        raise InvalidPatternError(_ABUT_IGNORE_CASE)
    return AnythingButMatching([EqualsIgnoreCase(value) for value in inner])


def _anything_but_matching(operator: str, inner: Any) -> Matcher:
    """anything-but prefix / suffix / wildcard: one string or a list of strings."""
    texts = inner if isinstance(inner, list) else [inner]
    if isinstance(inner, Mapping) or inner is None:
        raise InvalidPatternError(_ABUT_STRINGS)
    if not texts:
        raise InvalidPatternError("Empty arrays are not allowed")
    kind = "wildcard" if operator == "wildcard" else "prefix/suffix"
    if not all(isinstance(text, str) for text in texts):
        raise InvalidPatternError(f"{kind} match pattern must be a string")
    if operator != "wildcard" and any(text == "" for text in texts):
        raise InvalidPatternError("Null prefix/suffix not allowed")
    if operator == "prefix":
        return AnythingButMatching([Prefix(text) for text in texts])
    if operator == "suffix":
        return AnythingButMatching([Suffix(text) for text in texts])
    return AnythingButMatching([Wildcard(text) for text in texts])
