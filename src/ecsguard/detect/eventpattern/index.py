"""PatternSet: many patterns over one stream, without a full pass per pattern.

Every test of every branch that is a list of exact values, equals-ignore-case values or prefixes
is *indexed*: filed under each of its values, by field path,
  - exact: path -> value key -> test ids        ("detail-type" -> "ECS Task State Change")
  - equals-ignore-case: path -> lower-cased value -> test ids
  - prefix (either case): path -> the prefix lengths in use, then path -> value[:n] -> test ids
so that one lookup per event value finds every indexed test the value satisfies. The other
tests of a branch (numeric, wildcard, suffix, cidr, anything-but, exists) are its *residue*.

A branch is tried when its *trigger* is hit: its indexed test whose values are shared by the
fewest other tests (counted over all branches when the index is built), so a branch on
`source: aws.ecs` and `detail-type: ECS Task State Change` wakes up on the detail-type. It is a
candidate only if all its indexed tests were hit (one set inclusion), and then only its residue
is evaluated. A branch with nothing indexed is triggered by the presence of one of its fields
(any value), and one made only of `exists: false` tests is tried on every event.

An event is flattened once, only along the paths some pattern reads. When two tested fields sit
in the same array the whole branch is re-checked for array consistency (pattern.py). This is the
idea of aws/event-ruler's state machine (cost follows the event's fields, not the number of
rules) without compiling one; bench/detect_patterns.py measures it against testing every
pattern on every event.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ecsguard.detect.eventpattern.flatten import Leaves, flatten, path_prefixes
from ecsguard.detect.eventpattern.parse import compile_pattern
from ecsguard.detect.eventpattern.pattern import (
    Branch,
    EventPattern,
    FieldTest,
    _consistent_match,
    branch_matches,
    needs_consistency,
    tests_hold,
)
from ecsguard.detect.eventpattern.prefilter import Prefilter, RowView
from ecsguard.detect.eventpattern.values import EqualsIgnoreCase, Prefix, value_key

#: a presence trigger wakes its branch like this many shared exact values would
PRESENCE_COST = 50

#: branch masks whose pattern ids are remembered (_Index.owned)
_OWNED_LIMIT = 50_000

_Key = tuple[str, Any]  # (kind, value): ("exact", "aws.ecs"), ("prefix", "arn:aws:iam::1:")


class _Posting:
    """The indexed tests one value satisfies, and the branches it triggers."""

    __slots__ = ("branches", "tests")

    def __init__(self) -> None:
        self.tests: list[int] = []
        self.branches: list[int] = []


@dataclass
class _PrefixPostings:
    lengths: list[int] = field(default_factory=list)
    postings: dict[str, _Posting] = field(default_factory=dict)

    def get(self, text: str) -> _Posting:
        if len(text) not in self.lengths:
            self.lengths.append(len(text))
            self.lengths.sort()
        return self.postings.setdefault(text, _Posting())


@dataclass
class _Index:
    """Built from the current patterns (whole, when they change); read-only afterwards."""

    ids: tuple[Hashable, ...]  # pattern ids in PatternSet order
    branches: list[Branch] = field(default_factory=list)
    owners: list[int] = field(default_factory=list)  # branch -> pattern position
    residues: list[Branch] = field(default_factory=list)  # branch -> tests left to evaluate
    required: list[frozenset[int]] = field(default_factory=list)  # branch -> its indexed tests
    exact: dict[str, dict[Any, _Posting]] = field(default_factory=dict)
    ignore_case: dict[str, dict[str, _Posting]] = field(default_factory=dict)
    prefix: dict[str, _PrefixPostings] = field(default_factory=dict)
    prefix_ignore_case: dict[str, _PrefixPostings] = field(default_factory=dict)
    presence: dict[str, list[int]] = field(default_factory=dict)  # path -> branches
    always: list[int] = field(default_factory=list)
    wanted: frozenset[str] = frozenset()
    top_level: frozenset[str] = frozenset()
    tests: int = 0
    prefilter: Prefilter | None = None
    owners_of: dict[int, list[Hashable]] = field(default_factory=dict)  # branch mask -> ids

    def ids_of(self, mask: int) -> list[Hashable]:
        """The ids of the patterns owning the branches set in `mask`, in pattern order."""
        found = {self.owners[bit] for bit in _bits(mask)}
        return [self.ids[owner] for owner in sorted(found)]

    def owned(self, mask: int) -> list[Hashable]:
        """ids_of, remembered per mask (a stream repeats a few masks; the memo is emptied when
        full, as a stream of odd rows could otherwise grow it without end)."""
        ids = self.owners_of.get(mask)
        if ids is None:
            if len(self.owners_of) >= _OWNED_LIMIT:
                self.owners_of.clear()
            ids = self.owners_of[mask] = self.ids_of(mask)
        return ids

    def exact_matches(self, sure: int, unsure: int, event: Mapping[str, Any]) -> int:
        """`sure` (branches known to match) and those of `unsure` that match `event`, each
        tested alone, array-consistently; a branch of a pattern already matched is skipped."""
        owners = self.owners
        matched = {owners[bit] for bit in _bits(sure)}
        leaves, arrayed = flatten(event, self.wanted)
        for bit in _bits(unsure):
            owner = owners[bit]
            if owner not in matched and branch_matches(self.branches[bit], leaves, arrayed):
                sure |= 1 << bit
                matched.add(owner)
        return sure

    def hits(self, leaves: Leaves) -> tuple[set[int], set[int]]:
        """(indexed tests the event satisfies, branches triggered by it)."""
        hit: set[int] = set()
        woken: set[int] = set(self.always)
        exact, ignore_case, presence = self.exact, self.ignore_case, self.presence
        prefix, prefix_ignore_case = self.prefix, self.prefix_ignore_case
        for path, values in leaves.items():
            postings = exact.get(path)
            if postings is not None:
                for value, _ in values:
                    found = postings.get(value if type(value) is str else value_key(value))
                    if found is not None:
                        hit.update(found.tests)
                        woken.update(found.branches)
            branches = presence.get(path)
            if branches:
                woken.update(branches)
            folded = ignore_case.get(path)
            if folded is not None:
                for value, _ in values:
                    if type(value) is str:
                        found = folded.get(value.lower())
                        if found is not None:
                            hit.update(found.tests)
                            woken.update(found.branches)
            for table, lower in ((prefix.get(path), False), (prefix_ignore_case.get(path), True)):
                if table is None:
                    continue
                for value, _ in values:
                    if type(value) is not str:
                        continue
                    text = value.lower() if lower else value
                    for length in table.lengths:
                        if length > len(text):
                            break
                        found = table.postings.get(text[:length])
                        if found is not None:
                            hit.update(found.tests)
                            woken.update(found.branches)
        return hit, woken

    def add_branch(self, owner: int, branch: Branch, counts: Counter[tuple[str, _Key]]) -> None:
        number = len(self.branches)
        self.branches.append(branch)
        self.owners.append(owner)
        indexed: list[tuple[FieldTest, list[_Key]]] = []
        residue: list[FieldTest] = []
        for test in branch:
            keys = _keys(test)
            if keys is None:
                residue.append(test)
            else:
                indexed.append((test, keys))
        self.residues.append(tuple(residue))
        test_ids: list[tuple[int, FieldTest, list[_Key]]] = []
        for test, keys in indexed:
            test_ids.append((self.tests, test, keys))
            self.tests += 1
        self.required.append(frozenset(test_id for test_id, _, _ in test_ids))
        if test_ids:
            trigger = min(test_ids, key=lambda t: _cost(t[1], t[2], counts))[0]
            for test_id, test, keys in test_ids:
                for kind, key in keys:
                    posting = self._posting(kind, test.path, key)
                    posting.tests.append(test_id)
                    if test_id == trigger:
                        posting.branches.append(number)
            return
        positive = [test for test in residue if test.positive and not test.exists_false]
        if not positive:
            self.always.append(number)
            return
        rarest = min(positive, key=lambda test: counts[("presence", (test.path, None))])
        self.presence.setdefault(rarest.path, []).append(number)

    def _posting(self, kind: str, path: str, key: Any) -> _Posting:
        if kind == "exact":
            return self.exact.setdefault(path, {}).setdefault(key, _Posting())
        if kind == "ignore_case":
            return self.ignore_case.setdefault(path, {}).setdefault(key, _Posting())
        if kind == "prefix":
            return self.prefix.setdefault(path, _PrefixPostings()).get(key)
        return self.prefix_ignore_case.setdefault(path, _PrefixPostings()).get(key)


def _keys(test: FieldTest) -> list[_Key] | None:
    """The postings a test is filed under, or None when it cannot be indexed."""
    if test.exists_true or test.exists_false:
        return None
    keys: list[_Key] = [("exact", key) for key in test.exact]
    for matcher in test.matchers:
        if isinstance(matcher, EqualsIgnoreCase):
            keys.append(("ignore_case", matcher.text))
        elif isinstance(matcher, Prefix):
            keys.append(("prefix_ignore_case" if matcher.ignore_case else "prefix", matcher.text))
        else:
            return None
    return keys


def _cost(test: FieldTest, keys: list[_Key], counts: Counter[tuple[str, _Key]]) -> int:
    # a prefix matches more values than an exact value does: weigh it up
    return sum(
        counts[(test.path, key)] * (1 if key[0] in ("exact", "ignore_case") else 4) for key in keys
    )


def _counts(branches: Iterable[Branch]) -> Counter[tuple[str, _Key]]:
    counts: Counter[tuple[str, _Key]] = Counter()
    for branch in branches:
        for test in branch:
            for key in _keys(test) or [("presence", None)]:
                counts[(test.path, key)] += 1
            counts[("presence", (test.path, None))] += 1
    return counts


class PatternSet:
    """Patterns by id; `match_all(event)` lists the ids whose pattern matches, in the order the
    patterns were added. Adding or removing patterns rebuilds the index on the next match.
    Safe to share between threads (building is locked; matching reads an immutable index)."""

    def __init__(self, patterns: Mapping[Hashable, Any] | None = None) -> None:
        self._patterns: dict[Hashable, EventPattern] = {}
        self._index: _Index | None = None
        self._lock = threading.Lock()
        for pattern_id, pattern in (patterns or {}).items():
            self.add(pattern_id, pattern)

    def add(
        self, pattern_id: Hashable, pattern: EventPattern | str | bytes | Mapping[str, Any]
    ) -> EventPattern:
        """Add (or replace) a pattern; JSON text or a mapping is compiled (InvalidPatternError)."""
        compiled = pattern if isinstance(pattern, EventPattern) else compile_pattern(pattern)
        with self._lock:
            self._patterns[pattern_id] = compiled
            self._index = None
        return compiled

    def remove(self, pattern_id: Hashable) -> None:
        with self._lock:
            if self._patterns.pop(pattern_id, None) is not None:
                self._index = None

    def __len__(self) -> int:
        return len(self._patterns)

    def __contains__(self, pattern_id: object) -> bool:
        return pattern_id in self._patterns

    @property
    def ids(self) -> list[Hashable]:
        return list(self._patterns)

    def top_level_fields(self) -> frozenset[str]:
        """The event's top-level keys some pattern reads (detail, source, ...)."""
        index = self._index or self._build()
        return index.top_level

    def match_all(self, event: Mapping[str, Any]) -> list[Hashable]:
        index = self._index or self._build()
        leaves, arrayed = flatten(event, index.wanted)
        hit, woken = index.hits(leaves)
        # consistency can matter only when one array holds values of two different fields
        shared_array = bool(arrayed) and len(set(arrayed.values())) < len(arrayed)
        matched: set[int] = set()
        owners, required, residues = index.owners, index.required, index.residues
        for branch in woken:
            owner = owners[branch]
            if owner in matched or not required[branch] <= hit:
                continue
            if shared_array and needs_consistency(index.branches[branch], arrayed):
                if _consistent_match(index.branches[branch], leaves):
                    matched.add(owner)
                continue
            residue = residues[branch]
            if not residue or tests_hold(residue, leaves):
                matched.add(owner)
        if not matched:
            return []
        ids = index.ids
        return [ids[owner] for owner in sorted(matched)]

    def match_many(self, events: Iterable[Mapping[str, Any]]) -> list[list[Hashable]]:
        return [self.match_all(event) for event in events]

    def candidates(self, view: RowView) -> list[int]:
        """Rows of a stored batch that some pattern may match (prefilter.py): the others need
        not be built into events at all."""
        index = self._index or self._build()
        if index.prefilter is None:
            index.prefilter = Prefilter(index.branches)
        return index.prefilter.survivors(view)

    def match_view(
        self, view: RowView, events: Callable[[list[int]], Iterable[Mapping[str, Any]]]
    ) -> list[tuple[int, list[Hashable]]]:
        """(row, ids of the patterns matching it) for the rows of a stored batch some pattern
        matches, in row order. The prefilter's branch masks decide most branches on their own
        (Prefilter.split); `events(rows)` builds the events of the rows where some branch still
        alive needs an exact test, and only those branches are tested."""
        index = self._index or self._build()
        if index.prefilter is None:
            index.prefilter = Prefilter(index.branches)
        decided, exact = index.prefilter.split(view)
        out: list[tuple[int, list[Hashable]]] = []
        for row, mask in decided:
            ids = index.owned(mask)
            if ids:
                out.append((row, ids))
        if exact:
            built = events([row for row, _, _ in exact])
            for (row, sure, unsure), event in zip(exact, built, strict=True):
                ids = index.owned(index.exact_matches(sure, unsure, event))
                if ids:
                    out.append((row, ids))
            out.sort(key=lambda item: item[0])
        return out

    def top_level_requirements(self, fields: Sequence[str]) -> dict[str, frozenset[str]] | None:
        """For filtering store rows before building events: if every branch needs one of
        `fields` (top-level, e.g. source, detail-type) to be one of some strings, those strings
        per field; a row whose columns hold none of them matches no pattern. None when some
        branch has no such requirement (every row must be tested)."""
        index = self._index or self._build()
        wanted: dict[str, set[str]] = {}
        for branch in index.branches:
            choices = [
                test
                for test in branch
                if test.path in fields
                and test.exact
                and not test.matchers
                and not test.exists_true
                and not test.exists_false
                and all(type(key) is str for key in test.exact)
            ]
            if not choices:
                return None
            best = min(choices, key=lambda test: len(test.exact))
            wanted.setdefault(best.path, set()).update(best.exact)
        return {path: frozenset(values) for path, values in wanted.items()}

    def _build(self) -> _Index:
        with self._lock:
            if self._index is not None:
                return self._index
            patterns = list(self._patterns.values())
            index = _Index(
                ids=tuple(self._patterns),
                wanted=path_prefixes(path for pattern in patterns for path in pattern.paths),
                top_level=frozenset(
                    path.split(".")[0] for pattern in patterns for path in pattern.paths
                ),
            )
            counts = _counts(branch for pattern in patterns for branch in pattern.branches)
            for owner, pattern in enumerate(patterns):
                for branch in pattern.branches:
                    index.add_branch(owner, branch, counts)
            self._index = index
            return index


def _bits(mask: int) -> Iterator[int]:
    """The positions of the bits set in `mask`, lowest first."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low
