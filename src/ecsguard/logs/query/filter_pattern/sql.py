"""Filter patterns as DuckDB predicates, with the semantics of evaluate.py.

Terms become `contains` (case-sensitive), regexes `regexp_matches` (RE2, unanchored), JSON patterns
DuckDB JSON functions behind a `json_valid` guard (so a plain-text line is a non-match, not an
error). A space-delimited pattern splits the message with `regexp_extract_all` (the expression
evaluate.py splits with) and tests the fields by position: from the front before a `...`, from
the back after it. JSON selectors with wildcards and patterns with two `...` have no exact
translation: `prefilter` then gives a necessary condition (literals the message must contain) to
cut the rows before the per-message matcher runs.
"""

from __future__ import annotations

from ecsguard.logs.query.filter_pattern.evaluate import FIELD_SOURCE, NUMERIC
from ecsguard.logs.query.filter_pattern.regex import Regex
from ecsguard.logs.query.filter_pattern.tree import (
    NUMBER_SOURCE,
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
)

NUMBER_TYPES = "('BIGINT', 'UBIGINT', 'DOUBLE')"
VALUE_TYPES = "('VARCHAR', 'BIGINT', 'UBIGINT', 'DOUBLE')"
PREFILTER_LITERALS = 3  # the longest few are enough to cut most rows


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def exact(pattern: Pattern, column: str) -> str | None:
    """A predicate true exactly where the Python matcher matches (NULL rows: false)."""
    if isinstance(pattern, MatchAll):
        return f"({column} IS NOT NULL)"
    if isinstance(pattern, Terms):
        return f"COALESCE({_terms(pattern, column)}, FALSE)"
    if isinstance(pattern, RegexPattern):
        return f"COALESCE(regexp_matches({column}, {literal(pattern.regex.re2)}), FALSE)"
    if isinstance(pattern, JsonPattern) and not _has_wildcard(pattern.expr):
        return (
            f"(CASE WHEN json_valid({column}) AND json_type({column}) = 'OBJECT' "
            f"THEN {_json(pattern.expr, column)} ELSE FALSE END)"
        )
    if isinstance(pattern, Delimited) and sum(slot.ellipsis for slot in pattern.slots) <= 1:
        # the cheap necessary `contains` first: the split runs only on the rows it keeps
        fields = _delimited(pattern.slots, column)
        return f"({_literals(pattern, column)} AND COALESCE({fields}, FALSE))"
    return None


def prefilter(pattern: Pattern, column: str) -> str:
    """A condition every matching row meets; the exact predicate where there is one."""
    found = exact(pattern, column)
    if found is not None:
        return found
    if isinstance(pattern, JsonPattern):
        return f"COALESCE(json_valid({column}), FALSE)"
    if isinstance(pattern, Delimited):
        return _literals(pattern, column)
    return "TRUE"


def _literals(pattern: Delimited, column: str) -> str:
    needed = sorted(required_literals(pattern), key=len, reverse=True)[:PREFILTER_LITERALS]
    tests = [f"contains({column}, {literal(text)})" for text in needed]
    return "COALESCE(" + " AND ".join([f"{column} IS NOT NULL", *tests]) + ", FALSE)"


def required_literals(pattern: Delimited) -> set[str]:
    """Texts every matching message contains: a field is a verbatim part of the message, so the
    fixed part of an `=` string condition that must hold is in the message too."""
    needed: set[str] = set()
    for slot in pattern.slots:
        if slot.condition is not None:
            needed |= _needed(slot.condition)
    return needed


def _needed(expr: Expr) -> set[str]:
    if isinstance(expr, FieldTest):
        value = expr.compare.value
        if expr.compare.op == "=" and isinstance(value, Text) and value.text:
            return {value.text}
        return set()
    if isinstance(expr, AllOf):
        return set[str]().union(*(_needed(item) for item in expr.items))
    if isinstance(expr, AnyOf):
        options = [_needed(item) for item in expr.items]
        return set.intersection(*options) if options else set()
    return set()


def _terms(terms: Terms, column: str) -> str:
    if terms.alternatives:
        return (
            "(" + " OR ".join(f"contains({column}, {literal(t)})" for t in terms.alternatives) + ")"
        )
    parts = [f"contains({column}, {literal(t)})" for t in terms.required]
    parts += [f"NOT contains({column}, {literal(t)})" for t in terms.excluded]
    return "(" + " AND ".join(parts) + ")"


def _has_wildcard(expr: Expr) -> bool:
    if isinstance(expr, AllOf | AnyOf):
        return any(_has_wildcard(item) for item in expr.items)
    return isinstance(expr, JsonTest) and any(step is WILDCARD for step in expr.selector)


def json_path(selector: tuple[Step, ...]) -> str:
    path = "$"
    for step in selector:
        path += f"[{step}]" if isinstance(step, int) else f'."{step}"'
    return literal(path)


def _json(expr: Expr, column: str) -> str:
    if isinstance(expr, AllOf):
        return "(" + " AND ".join(_json(item, column) for item in expr.items) + ")"
    if isinstance(expr, AnyOf):
        return "(" + " OR ".join(_json(item, column) for item in expr.items) + ")"
    assert isinstance(expr, JsonTest)
    path = json_path(expr.selector)
    kind = f"json_type({column}, {path})"
    text = f"json_extract_string({column}, {path})"
    test = expr.test
    if test == "missing":
        return f"NOT json_exists({column}, {path})"
    if test == "null":
        return f"COALESCE({kind} = 'NULL', FALSE)"
    if test in ("true", "false"):
        return f"COALESCE({kind} = 'BOOLEAN' AND {text} = '{test}', FALSE)"
    assert isinstance(test, Compare)
    return f"COALESCE({_json_compare(test, kind, text)}, FALSE)"


def _json_compare(compare: Compare, kind: str, text: str) -> str:
    value = compare.value
    if isinstance(value, Number):
        number = f"TRY_CAST({text} AS DOUBLE)"
        assert compare.op in NUMERIC  # the same six operators, spelled the same in DuckDB
        return (
            f"({kind} IN {NUMBER_TYPES} AND isfinite({number}) "
            f"AND {number} {compare.op} CAST({literal(repr(value.value))} AS DOUBLE))"
        )
    if isinstance(value, Text) and value.is_any:
        return f"{kind} IN {VALUE_TYPES}" if compare.op == "=" else "FALSE"
    test = _text_test(value, text)
    return f"({kind} = 'VARCHAR' AND {'' if compare.op == '=' else 'NOT '}{test})"


def _text_test(value: Text | Regex, text: str) -> str:
    if isinstance(value, Regex):
        return f"regexp_matches({text}, {literal(value.re2)})"
    fixed = literal(value.text)
    if value.any_before and value.any_after:
        return f"contains({text}, {fixed})"
    if value.any_before:
        return f"ends_with({text}, {fixed})"
    if value.any_after:
        return f"starts_with({text}, {fixed})"
    return f"({text} = {fixed})"


# ------------------------------------------------------------------------------ space-delimited


def _fields(column: str) -> str:
    """The message's fields as a list, the brackets or quotes of a grouped field removed."""
    bare = (
        "CASE WHEN length(x) >= 2 AND ((x[1] = '[' AND x[-1] = ']') OR (x[1] = '\"' AND "
        "x[-1] = '\"')) THEN substring(x, 2, length(x) - 2) ELSE x END"
    )
    return (
        f"list_transform(regexp_extract_all({column}, {literal(FIELD_SOURCE)}), lambda x: {bare})"
    )


def _delimited(slots: tuple[Slot, ...], column: str) -> str:
    # the list is bound once through a one-element list_transform, not rebuilt per condition
    count = len(slots)
    ellipsis = next((i for i, slot in enumerate(slots) if slot.ellipsis), None)
    tests = [f"len(f) = {count}" if ellipsis is None else f"len(f) >= {count - 1}"]
    for index, slot in enumerate(slots):
        if slot.condition is None:
            continue
        position = index + 1 if ellipsis is None or index < ellipsis else index - count
        tests.append(_field(slot.condition, f"f[{position}]"))
    return f"list_transform([{_fields(column)}], lambda f: {' AND '.join(tests)})[1]"


def _field(expr: Expr, value: str) -> str:
    if isinstance(expr, AllOf | AnyOf):
        joiner = " AND " if isinstance(expr, AllOf) else " OR "
        return "(" + joiner.join(_field(item, value) for item in expr.items) + ")"
    assert isinstance(expr, FieldTest)
    compare = expr.compare
    target = compare.value
    if isinstance(target, Number):
        number = f"TRY_CAST({value} AS DOUBLE)"
        return (
            f"COALESCE(regexp_full_match({value}, {literal(NUMBER_SOURCE)}) "
            f"AND isfinite({number}) "
            f"AND {number} {compare.op} CAST({literal(repr(target.value))} AS DOUBLE), FALSE)"
        )
    if isinstance(target, Text) and target.is_any:
        return "TRUE" if compare.op == "=" else "FALSE"
    test = _text_test(target, value)
    return f"COALESCE({'' if compare.op == '=' else 'NOT '}{test}, FALSE)"


# ------------------------------------------------------------------------------ request-id index


def request_id_values(pattern: Pattern) -> set[str] | None:
    """The request ids a JSON pattern can only match through (`{ $.requestId = "x" }` and the
    other spellings of records.REQUEST_ID_KEYS), or None when it can match without one.

    The logs table's `request_id` column holds x or null for every record whose key is the
    string x, so `(request_id IS NULL OR request_id IN (...)) AND <exact test>` selects the same
    rows as the exact test alone, and DuckDB skips row groups by the column's Bloom filters."""
    if not isinstance(pattern, JsonPattern):
        return None
    return _id_values(pattern.expr)


def _id_values(expr: Expr) -> set[str] | None:
    from ecsguard.logs.records import REQUEST_ID_KEYS

    if isinstance(expr, AllOf):
        for item in expr.items:
            found = _id_values(item)
            if found is not None:
                return found  # one necessary condition is enough
        return None
    if isinstance(expr, AnyOf):
        options = [_id_values(item) for item in expr.items]
        if any(option is None for option in options):
            return None
        return set[str]().union(*(option for option in options if option is not None))
    if not isinstance(expr, JsonTest) or len(expr.selector) != 1:
        return None
    test = expr.test
    value = test.value if isinstance(test, Compare) and test.op == "=" else None
    exact_text = isinstance(value, Text) and not value.any_before and not value.any_after
    if expr.selector[0] in REQUEST_ID_KEYS and exact_text and isinstance(value, Text):
        return {value.text}
    return None


def request_id_sql(values: set[str]) -> str:
    """The index condition for `request_id_values`' answer."""
    listed = ", ".join(literal(value) for value in sorted(values))
    return f"(request_id IS NULL OR request_id IN ({listed}))"
