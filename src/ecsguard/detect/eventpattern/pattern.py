"""A compiled pattern: branches of field tests, and how a branch is tested against an event.

A pattern compiles to one or more *branches* (one per combination of `$or` choices); it matches
when any branch does. A branch is a tuple of `FieldTest`s, one per dotted field path, all of which
must hold. Events are flattened (flatten.py) into leaves: path -> [(value, membership)], where
membership says which element of which array the value sits in.

Array consistency (event-ruler's `rulesForJSONEvent`, which EventBridge follows): the values a
branch matches must not come from different elements of the same array, so
`{"employees": {"first": ["Anna"], "last": ["Jones"]}}` does not match Anna Smith next to Peter
Jones. `exists: false` holds when no value of the field sits in the same array elements as the
values the rest of the branch matched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ecsguard.detect.eventpattern.flatten import Arrayed, Leaves, Membership, flatten, path_prefixes
from ecsguard.detect.eventpattern.values import Matcher, value_key


@dataclass(frozen=True, slots=True, eq=False)
class FieldTest:
    """The alternatives listed for one field (any may hold)."""

    path: str
    exact: frozenset[Any]  # value keys (values.value_key) of the exact values listed
    matchers: tuple[Matcher, ...]
    exists_true: bool
    exists_false: bool
    shown: str  # the pattern's list, as JSON, for explanations

    @property
    def positive(self) -> bool:
        """True when a value of the field can satisfy it (everything but a lone exists:false)."""
        return self.exists_true or bool(self.exact) or bool(self.matchers)

    def accepts(self, value: Any) -> bool:
        if self.exists_true:
            return True
        exact = self.exact
        if exact and (value if type(value) is str else value_key(value)) in exact:
            return True
        for matcher in self.matchers:  # noqa: SIM110 (a loop: no generator on the hot path)
            if matcher(value):
                return True
        return False


Branch = tuple[FieldTest, ...]


def needs_consistency(branch: Branch, arrayed: Arrayed) -> bool:
    """Array consistency matters only when two tested fields sit in the same outermost array
    (`resources` beside `detail.containers` never conflict)."""
    if not arrayed:
        return False
    seen: set[str] = set()
    for test in branch:
        outer = arrayed.get(test.path)
        if outer is not None:
            if outer in seen:
                return True
            seen.add(outer)
    return False


def branch_matches(branch: Branch, leaves: Leaves, arrayed: Arrayed) -> bool:
    """Does every test of `branch` hold on the flattened event (array-consistently)?"""
    if arrayed and needs_consistency(branch, arrayed):
        return _consistent_match(branch, leaves)
    return tests_hold(branch, leaves)


def tests_hold(tests: Branch, leaves: Leaves) -> bool:
    """Each test holds on its own (exact when no two tests share an array)."""
    for test in tests:
        found = leaves.get(test.path)
        if not found:
            if test.exists_false:
                continue
            return False
        if test.exists_true:
            continue
        for value, _ in found:
            if test.accepts(value):
                break
        else:
            return False
    return True


_Option = tuple[list[Membership], bool, list[Membership]]


def _consistent_match(branch: Branch, leaves: Leaves) -> bool:
    options: list[_Option] = []
    for test in branch:
        found = leaves.get(test.path)
        if not found:
            if test.exists_false:
                continue
            return False
        positives = [m for value, m in found if test.accepts(value)]
        if not positives and not test.exists_false:
            return False
        options.append((positives, test.exists_false, [m for _, m in found]))
    # the most constrained fields first; those that may also be absent last
    options.sort(key=lambda option: (option[1], len(option[0])))
    return _search(options, 0, {}, [])


def _search(
    options: list[_Option], i: int, chosen: dict[int, int], absent: list[list[Membership]]
) -> bool:
    if i == len(options):
        # a field required absent must have no value in the chosen array elements
        return not any(_fits(m, chosen) for members in absent for m in members)
    positives, may_be_absent, everything = options[i]
    for membership in positives:
        if _fits(membership, chosen) and _search(
            options, i + 1, {**chosen, **dict(membership)}, absent
        ):
            return True
    if may_be_absent:
        return _search(options, i + 1, chosen, [*absent, everything])
    return False


def _fits(membership: Membership, chosen: dict[int, int]) -> bool:
    for array, index in membership:
        got = chosen.get(array)
        if got is not None and got != index:
            return False
    return True


class EventPattern:
    """One validated pattern (`compile_pattern` builds it). `source` is the pattern as parsed."""

    __slots__ = ("branches", "paths", "source", "wanted")

    def __init__(self, source: dict[str, Any], branches: tuple[Branch, ...]) -> None:
        self.source = source
        self.branches = branches
        self.paths = frozenset(test.path for branch in branches for test in branch)
        self.wanted = path_prefixes(self.paths)

    def matches(self, event: Mapping[str, Any]) -> bool:
        leaves, arrayed = flatten(event, self.wanted)
        return self.matches_leaves(leaves, arrayed)

    def matches_leaves(self, leaves: Leaves, arrayed: Arrayed) -> bool:
        return any(branch_matches(branch, leaves, arrayed) for branch in self.branches)

    def explain(self, event: Mapping[str, Any]) -> list[str]:
        """Why the event does not match: the failing fields of the closest branch ([] when it
        matches). Array consistency is judged as a whole ("values in different array
        elements")."""
        leaves, arrayed = flatten(event, self.wanted)
        best: list[str] | None = None
        for branch in self.branches:
            if branch_matches(branch, leaves, arrayed):
                return []
            reasons = [_why(test, leaves) for test in branch]
            failing = [reason for reason in reasons if reason]
            if not failing:
                failing = ["the matching values are in different elements of the same array"]
            if best is None or len(failing) < len(best):
                best = failing
        return best or []

    def __repr__(self) -> str:
        return f"EventPattern({self.source!r})"


def _why(test: FieldTest, leaves: Leaves) -> str:
    found = leaves.get(test.path)
    if not found:
        return "" if test.exists_false else f"{test.path}: missing (pattern {test.shown})"
    if any(test.accepts(value) for value, _ in found):
        return ""
    values = ", ".join(repr(value) for value, _ in found[:3])
    return f"{test.path}: {values} does not match {test.shown}"
