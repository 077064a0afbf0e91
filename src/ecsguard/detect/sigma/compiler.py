"""A parsed Sigma rule (pySigma's SigmaRule) → a test of one CloudTrail record, plus a prefilter.

pySigma parses the YAML, applies the modifiers to the values and turns the condition (`1 of
selection*`, `all of them`, `not`, parentheses, several conditions) into a tree whose leaves are
"field equals value" and "keyword" expressions; this module only walks that tree. Lists of values
are OR-ed (AND-ed with `all`), maps AND-ed, a list of maps OR-ed: pySigma has already built the
tree that way.

The prefilter is the part of the condition that only reads plain text columns (`eventSource` and
`eventName` above all: most rules pin them; also `userAgent`, `userIdentity.arn`, `errorCode`,
...): the batch evaluator runs it once per distinct combination of those columns' values in a
batch, and the whole condition only on the rows it lets through. When the prefilter is the whole
condition (no JSON path, no keyword), it decides alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.exceptions import SigmaError
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
from sigma.types import (
    SigmaCasedString,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaString,
    SigmaType,
    SpecialChars,
)

from ecsguard.detect.sigma import fields
from ecsguard.detect.sigma.fields import FieldRef, Place, Record
from ecsguard.detect.sigma.values import Unsupported, text_of, value_test

Test = Callable[[Record], bool]
#: the columns the prefilter may read: text columns whose values repeat from row to row
PIN_COLUMNS = frozenset(
    {
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
    }
)


EVENT_COLUMNS = frozenset({"event_source", "event_name"})


@dataclass(frozen=True)
class Pin:
    """A test that holds whenever the rule's condition holds, reading only `columns`."""

    test: Test
    columns: tuple[str, ...]  # sorted
    exact: bool  # the pin is the whole condition


@dataclass
class Compiled:
    """What evaluation needs: the whole test, the prefilter, the columns read."""

    test: Test
    pin: Pin | None  # None: nothing in the condition can be tested on plain columns alone
    columns: frozenset[str]
    # the condition's demands on eventSource/eventName alone: which events the rule names
    names_events: Test | None = None
    # per other column of the prefilter, the condition's demands on that column alone
    single_columns: tuple[tuple[str, Test], ...] = ()
    # the places the whole condition reads (sorted), when it reads no keyword: its answer is
    # the same for rows holding the same values there
    places: tuple[Place, ...] | None = None


def _leaf_places(node: Any) -> set[Place] | None:
    """The places a condition sub-tree reads; None when it holds a keyword (reads everything)."""
    if isinstance(node, ConditionFieldEqualsValueExpression):
        places = {fields.resolve(node.field).place}
        if isinstance(node.value, SigmaFieldReference):
            places.add(fields.resolve(node.value.field).place)
        return places
    if isinstance(node, ConditionValueExpression):
        return None
    found: set[Place] = set()
    for arg in node.args:
        sub = _leaf_places(arg)
        if sub is None:
            return None
        found |= sub
    return found


def _leaf_fields(node: Any) -> set[str] | None:
    """The columns a condition sub-tree reads; None when it holds a keyword (reads everything)."""
    places = _leaf_places(node)
    return None if places is None else {column for column, _ in places}


def _any_value(ref: FieldRef, test: Callable[[Any], bool]) -> Test:
    def leaf(record: Record) -> bool:
        return any(v is not None and test(v) for v in record.values(ref))

    return leaf


def _field_reference(ref: FieldRef, value: SigmaFieldReference) -> Test:
    other = _resolve(value.field)
    if value.starts_with and value.ends_with:
        relation: Callable[[str, str], bool] = lambda a, b: b in a  # noqa: E731
    elif value.starts_with:
        relation = str.startswith
    elif value.ends_with:
        relation = str.endswith
    else:
        relation = str.__eq__

    def leaf(record: Record) -> bool:
        lefts = [t.lower() for v in record.values(ref) if (t := text_of(v)) is not None]
        rights = [t.lower() for v in record.values(other) if (t := text_of(v)) is not None]
        return any(relation(a, b) for a in lefts for b in rights)

    return leaf


def _resolve(name: str) -> FieldRef:
    try:
        return fields.resolve(name)
    except fields.UnknownField:
        raise Unsupported(f"field {name!r} is not kept in the cloudtrail table", name) from None


def _field_leaf(name: str, value: SigmaType) -> Test:
    ref = _resolve(name)
    if isinstance(value, SigmaNull):
        return lambda record: any(v is None for v in record.values(ref) or [None])
    if isinstance(value, SigmaExists):
        wanted = bool(value.exists)
        return lambda record: bool(record.values(ref)) == wanted
    if isinstance(value, SigmaFieldReference):
        return _field_reference(ref, value)
    try:
        return _any_value(ref, value_test(value))
    except Unsupported as err:
        raise Unsupported(err.reason, name) from None


def _anywhere(value: SigmaType) -> Callable[[Any], bool]:
    """A test of one text: does `value` occur anywhere in it."""
    if isinstance(value, SigmaExpansion):
        tests = [_anywhere(v) for v in value.values]
        return lambda text: any(t(text) for t in tests)
    if isinstance(value, SigmaNumber):
        value = SigmaString(str(value.number))
    if not isinstance(value, SigmaString):
        raise Unsupported(f"keyword values of type {type(value).__name__} are not supported")
    many = SpecialChars.WILDCARD_MULTI
    anywhere = value if value.startswith(many) else many + value
    anywhere = anywhere if anywhere.endswith(many) else anywhere + many
    if isinstance(value, SigmaCasedString):
        anywhere = SigmaCasedString.from_sigma_string(anywhere)
    return value_test(anywhere)


def _keyword(value: SigmaType) -> Test:
    """Full-text search: the value anywhere in any text the record keeps."""
    test = _anywhere(value)
    return lambda record: any(test(t) for t in record.texts())


def compile_node(node: Any) -> Test:
    if isinstance(node, ConditionAND):
        parts = [compile_node(a) for a in node.args]
        return lambda record: all(p(record) for p in parts)
    if isinstance(node, ConditionOR):
        parts = [compile_node(a) for a in node.args]
        return lambda record: any(p(record) for p in parts)
    if isinstance(node, ConditionNOT):
        inner = compile_node(node.args[0])
        return lambda record: not inner(record)
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return _field_leaf(node.field, node.value)
    if isinstance(node, ConditionValueExpression):
        return _keyword(node.value)
    raise Unsupported(f"condition element {type(node).__name__} is not supported")


def pin_of(node: Any, allowed: frozenset[str] = PIN_COLUMNS) -> tuple[Test, frozenset[str]] | None:
    """A test reading only `allowed` columns that holds whenever `node` holds (and the columns
    it reads), or None."""
    used = _leaf_fields(node)
    if used is not None and used <= allowed:
        return compile_node(node), frozenset(used)
    if isinstance(node, ConditionAND):
        pins = [p for a in node.args if (p := pin_of(a, allowed)) is not None]
        if not pins:
            return None
        tests = [t for t, _ in pins]
        return (lambda record: all(t(record) for t in tests)), frozenset().union(
            *(c for _, c in pins)
        )
    if isinstance(node, ConditionOR):
        ors = [pin_of(a, allowed) for a in node.args]
        chosen = [p for p in ors if p is not None]
        if len(chosen) < len(ors):
            return None
        tests = [t for t, _ in chosen]
        return (lambda record: any(t(record) for t in tests)), frozenset().union(
            *(c for _, c in chosen)
        )
    return None


def _detection_fields(item: SigmaDetection | SigmaDetectionItem) -> list[str]:
    if isinstance(item, SigmaDetectionItem):
        names = [item.field] if item.field is not None else []
        names += [v.field for v in item.value if isinstance(v, SigmaFieldReference)]
        return names
    return [name for sub in item.detection_items for name in _detection_fields(sub)]


def _check_logsource(rule: SigmaRule) -> None:
    source = rule.logsource
    product, service = source.product, source.service
    if (product not in (None, "aws")) or (service not in (None, "cloudtrail")):
        raise Unsupported(
            f"logsource product={product} service={service} is not AWS CloudTrail", "logsource"
        )


def compile_rule(rule: SigmaRule) -> Compiled:
    """Raises Unsupported (with the reason) for a rule this evaluator cannot honour."""
    _check_logsource(rule)
    detections = rule.detection.detections
    missing = sorted(
        {
            name
            for detection in detections.values()
            for name in _detection_fields(detection)
            if not _known(name)
        }
    )
    if missing:
        shown = ", ".join(missing)
        raise Unsupported(f"needs field(s) the cloudtrail table does not keep: {shown}", missing[0])
    timeframe = _timeframe(detections) if "timeframe" in detections else None
    window = f" over timeframe {timeframe}" if timeframe else ""
    trees = []
    for condition in rule.detection.parsed_condition:
        if not isinstance(condition.condition, str):
            raise Unsupported("a condition must be text", "condition")
        if "|" in condition.condition:
            raise Unsupported(
                f"aggregation `{condition.condition}`{window} is not supported (a Sigma "
                "correlation: count or near over a window)",
                "condition",
            )
        try:
            trees.append(condition.parse())
        except SigmaError as err:
            detail = err.args[0] if err.args else err  # without the source path pySigma appends
            raise Unsupported(f"condition {condition.condition!r}: {detail}", "condition") from None
    if timeframe:
        raise Unsupported(
            f"`timeframe: {timeframe}` asks for events together within a window (a Sigma "
            "correlation); not supported",
            "timeframe",
        )
    trees = [t for t in trees if t is not None]
    if not trees:
        raise Unsupported("the condition selects nothing", "condition")
    root: Any = trees[0] if len(trees) == 1 else ConditionOR(trees)  # several conditions: any
    places = _leaf_places(root)
    columns = None if places is None else {column for column, _ in places}
    found = pin_of(root)
    pin = None
    if found is not None:
        exact = columns is not None and columns <= PIN_COLUMNS
        pin = Pin(found[0], tuple(sorted(found[1])), exact)
    single = []
    for column in pin.columns if pin is not None else ():
        if column not in EVENT_COLUMNS and (alone := pin_of(root, frozenset({column}))):
            single.append((column, alone[0]))
    return Compiled(
        test=compile_node(root),
        pin=pin,
        columns=fields.ALL_COLUMNS if columns is None else frozenset(columns),
        names_events=(named[0] if (named := pin_of(root, EVENT_COLUMNS)) else None),
        single_columns=tuple(single),
        places=None if places is None else tuple(sorted(places)),
    )


def _timeframe(detections: dict[str, SigmaDetection]) -> str:
    items = detections["timeframe"].detection_items
    first = items[0] if items else None
    if isinstance(first, SigmaDetectionItem) and first.value:
        return str(first.value[0])
    return "?"


def _known(name: str) -> bool:
    try:
        fields.resolve(name)
    except fields.UnknownField:
        return False
    return True
