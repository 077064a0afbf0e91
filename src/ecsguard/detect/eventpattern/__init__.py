"""EventBridge event patterns: validate, match one event, or match many patterns at once.

    from ecsguard.detect.eventpattern import PatternSet, compile_pattern, matches

    pattern = compile_pattern('{"source": ["aws.ecs"], "detail": {"lastStatus": ["STOPPED"]}}')
    pattern.matches(event)           # bool; InvalidPatternError (a UserError) for a bad pattern
    pattern.explain(event)           # [] or why not: ["detail.lastStatus: 'RUNNING' does not ..."]
    matches(pattern_json, event)     # the same in one call (TestEventPattern)

    rules = PatternSet({"oom": p1, "exec": p2})   # text, mappings or compiled patterns
    rules.match_all(event)           # ["oom"]: only patterns whose anchor fields the event has
                                     # are tested (index.py)

The whole documented syntax: exact strings, numbers (300 == 300.0), booleans and null; lists of
alternatives (an event array matches when any element does); prefix and suffix (also with
equals-ignore-case), equals-ignore-case, wildcard (`*`, `\\*`), anything-but (a value, a list of
strings or of numbers, prefix, suffix, equals-ignore-case, wildcard), numeric (=, <, <=, >, >=
and ranges, within ±5e9, six decimals), exists true/false (leaf fields only), cidr (IPv4 and IPv6),
`$or` (nested too), nested objects, dotted keys, empty strings. Matching is array-consistent
(pattern.py). Invalid patterns raise InvalidPatternError with AWS's reason text (parse.py).
Events from the store's tables are rebuilt in EventBridge's shape by records.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ecsguard.detect.eventpattern.errors import InvalidPatternError
from ecsguard.detect.eventpattern.index import PatternSet
from ecsguard.detect.eventpattern.parse import compile_pattern, load_pattern_json
from ecsguard.detect.eventpattern.pattern import EventPattern


def matches(
    pattern: str | bytes | Mapping[str, Any] | EventPattern, event: Mapping[str, Any]
) -> bool:
    compiled = pattern if isinstance(pattern, EventPattern) else compile_pattern(pattern)
    return compiled.matches(event)


__all__ = [
    "EventPattern",
    "InvalidPatternError",
    "PatternSet",
    "compile_pattern",
    "load_pattern_json",
    "matches",
]
