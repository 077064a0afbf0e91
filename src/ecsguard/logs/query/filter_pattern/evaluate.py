"""Matching one message in Python: the reference semantics the SQL translation must agree with.

JSON: the message must be one JSON object. A selector that reaches no value is missing; a test on
a missing value, or on a value of the wrong kind (a string compared with a number, an array or an
object compared with anything), is false, for `!=` as well: AWS documents that both
`{$.users = 1}` and `{$.users != 1}` fail when `users` is an array. `= *` accepts any string or
number. Numbers compare as doubles, as DuckDB compares them; NaN and infinities never compare.
Duplicate keys: the first one counts, as in DuckDB's JSON functions.

Space-delimited: fields are separated by spaces, tabs and line breaks; `[...]` and `"..."` each
hold one field (the brackets and quotes are not part of it). Without `...` the field count must
equal the slot count (AWS's `[w1=ERROR, w2]` does not match "ERROR WARN message"). Extracted
values are keyed `$name` for named slots and `$N` (1-based field position) for everything else,
as TestMetricFilter does.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable
from typing import Any

from ecsguard.logs.query.filter_pattern.regex import Regex
from ecsguard.logs.query.filter_pattern.tree import (
    NUMBER,
    WILDCARD,
    AllOf,
    AnyOf,
    Compare,
    Delimited,
    Expr,
    FieldTest,
    JsonTest,
    Number,
    Step,
    Terms,
    Text,
)

MISSING = object()
# one field: [...] or "..." (their inside is the value) or a run without the five ASCII
# separators RE2 calls \s; sql.py runs the same expression in DuckDB
FIELD_SOURCE = r'\[[^\]]*\]|"[^"]*"|[^\t\n\f\r ]+'
FIELD = re.compile(r'\[([^\]]*)\]|"([^"]*)"|([^\t\n\f\r ]+)')
NUMERIC: dict[str, Callable[[float, float], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}


# ---------------------------------------------------------------------------------------- terms


def match_terms(terms: Terms, message: str) -> bool:
    if terms.alternatives:
        return any(term in message for term in terms.alternatives)
    return all(term in message for term in terms.required) and not any(
        term in message for term in terms.excluded
    )


# -------------------------------------------------------------------------------- comparisons


def compare_text(compare: Compare, value: str) -> bool:
    """`compare` on a string value (a JSON string, or a space-delimited field)."""
    target = compare.value
    if isinstance(target, Regex):
        found = target.search(value)
        return found if compare.op == "=" else not found
    if isinstance(target, Text):
        if target.is_any:
            return compare.op == "="
        same = target.matches(value)
        return same if compare.op == "=" else not same
    return False


def compare_number(compare: Compare, value: float) -> bool:
    target = compare.value
    if not isinstance(target, Number) or not math.isfinite(value):
        return False
    return NUMERIC[compare.op](value, target.value)


def as_double(value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:  # an integer beyond a double: DuckDB reads it as infinite
        return math.inf


# ----------------------------------------------------------------------------------------- JSON


def load_object(message: str) -> dict[str, Any] | None:
    """The JSON object `message` holds, else None."""
    if not message.lstrip().startswith("{"):
        return None
    try:
        value = json.loads(message, object_pairs_hook=_first_key_wins)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _first_key_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        found.setdefault(key, value)
    return found


def resolve(document: Any, selector: tuple[Step, ...]) -> list[Any]:
    """Every value `selector` reaches (more than one only through a wildcard step)."""
    nodes = [document]
    for step in selector:
        reached: list[Any] = []
        for node in nodes:
            if step is WILDCARD:
                if isinstance(node, dict):
                    reached.extend(node.values())
                elif isinstance(node, list):
                    reached.extend(node)
            elif isinstance(step, int):
                if isinstance(node, list) and step < len(node):
                    reached.append(node[step])
            elif isinstance(node, dict) and step in node:
                reached.append(node[step])
        nodes = reached
    return nodes


def json_value_test(test: JsonTest, value: Any) -> bool:
    check = test.test
    if check == "null":
        return value is None
    if check in ("true", "false"):
        return value is (check == "true")
    if not isinstance(check, Compare):
        return False
    if isinstance(value, str):
        return compare_text(check, value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(check.value, Text) and check.value.is_any:
            return check.op == "="
        return compare_number(check, as_double(value))
    return False


def eval_json(expr: Expr, document: dict[str, Any]) -> bool:
    if isinstance(expr, AllOf):
        return all(eval_json(item, document) for item in expr.items)
    if isinstance(expr, AnyOf):
        return any(eval_json(item, document) for item in expr.items)
    if isinstance(expr, JsonTest):
        values = resolve(document, expr.selector)
        if expr.test == "missing":
            return not values
        return any(json_value_test(expr, value) for value in values)
    return False


# ------------------------------------------------------------------------------ space-delimited


def split_fields(message: str) -> list[str]:
    return [
        m[1] if m[1] is not None else m[2] if m[2] is not None else m[3]
        for m in FIELD.finditer(message)
    ]


def field_test(compare: Compare, value: str) -> bool:
    if isinstance(compare.value, Number):
        if not NUMBER.fullmatch(value):
            return False
        return compare_number(compare, as_double(float(value)))
    return compare_text(compare, value)


def eval_field(expr: Expr, value: str) -> bool:
    if isinstance(expr, AllOf):
        return all(eval_field(item, value) for item in expr.items)
    if isinstance(expr, AnyOf):
        return any(eval_field(item, value) for item in expr.items)
    if isinstance(expr, FieldTest):
        return field_test(expr.compare, value)
    return False


def match_delimited(pattern: Delimited, message: str) -> dict[str, str] | None:
    """The extracted values when `message` fits `pattern`, else None."""
    fields = split_fields(message)
    slots = pattern.slots
    count = len(fields)

    def fits(slot_index: int, field_index: int) -> bool:
        condition = slots[slot_index].condition
        return condition is None or eval_field(condition, fields[field_index])

    if not any(slot.ellipsis for slot in slots):
        if count != len(slots) or not all(fits(i, i) for i in range(count)):
            return None
        owners = list(range(count))
    else:
        found = _assign(len(slots), count, [slot.ellipsis for slot in slots], fits)
        if found is None:
            return None
        owners = found
    values: dict[str, str] = {}
    for position, (owner, field) in enumerate(zip(owners, fields, strict=True), start=1):
        name = slots[owner].name
        values[f"${name}" if name else f"${position}"] = field
    return values


def _assign(
    slot_count: int, field_count: int, ellipsis: list[bool], fits: Callable[[int, int], bool]
) -> list[int] | None:
    """The slot owning each field, or None: glob matching where `...` is `*` and every other
    slot takes one field that fits it. O(slots x fields): `finishes[s]` holds the field positions
    from which slots s.. can take exactly the remaining fields; then the walk from the front
    lets each `...` take as few fields as possible (the first fitting field wins)."""
    finishes: list[set[int]] = [set() for _ in range(slot_count)] + [{field_count}]
    for slot in range(slot_count - 1, -1, -1):
        after = finishes[slot + 1]
        if ellipsis[slot]:
            finishes[slot] = set(range(max(after) + 1)) if after else set()
        else:
            finishes[slot] = {p for p in range(field_count) if p + 1 in after and fits(slot, p)}
    if 0 not in finishes[0]:
        return None
    owners = [0] * field_count
    position = 0
    for slot in range(slot_count):
        end = position + 1
        if ellipsis[slot]:
            end = min(p for p in finishes[slot + 1] if p >= position)
        for field in range(position, end):
            owners[field] = slot
        position = end
    return owners
