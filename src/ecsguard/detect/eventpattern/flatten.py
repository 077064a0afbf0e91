"""Events as leaves: dotted path -> [(value, membership)], the way patterns address fields.

Paths join keys with "." (as EventBridge does, `{"a.b": 1}` and `{"a": {"b": 1}}` are the same
field); arrays are transparent in paths: every element is a value of the array's field, and
objects inside arrays contribute their fields. A leaf's *membership* lists (array id, index) for
each array it sits in, for array-consistent matching. Empty arrays and objects have no leaves, so
`exists` sees only scalars (null included), as EventBridge documents ("leaf nodes only").

`wanted` (path_prefixes of the patterns' paths) limits the walk to the fields some pattern reads:
a CloudTrail record's unrelated request parameters are never visited.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Membership = tuple[tuple[int, int], ...]
Leaves = dict[str, list[tuple[Any, Membership]]]
#: leaf path -> path of the outermost array it sits in (two leaves can share an array only if
#: they share this); leaves outside arrays are absent
Arrayed = dict[str, str]


def path_prefixes(paths: Iterable[str]) -> frozenset[str]:
    """Every path and each of its dotted prefixes: the keys worth descending into."""
    out: set[str] = set()
    for path in paths:
        out.add(path)
        cut = path.find(".")
        while cut >= 0:
            out.add(path[:cut])
            cut = path.find(".", cut + 1)
    return frozenset(out)


def flatten(
    event: Mapping[str, Any], wanted: frozenset[str] | None = None
) -> tuple[Leaves, Arrayed]:
    """(leaves, arrayed): see Leaves and Arrayed."""
    leaves: Leaves = {}
    arrayed: Arrayed = {}
    arrays = 0

    def walk(node: Any, path: str, membership: Membership, outer: str) -> None:
        nonlocal arrays
        kind = type(node)
        if kind is dict:
            for key, value in node.items():
                child = f"{path}.{key}" if path else key
                if wanted is None or child in wanted:
                    walk(value, child, membership, outer)
        elif kind is list:
            arrays += 1
            array = arrays
            outer = outer or path
            for index, item in enumerate(node):
                walk(item, path, (*membership, (array, index)), outer)
        else:
            if membership:
                arrayed[path] = outer
            found = leaves.get(path)
            if found is None:
                leaves[path] = [(node, membership)]
            else:
                found.append((node, membership))

    for key, value in event.items():
        if wanted is None or key in wanted:
            kind = type(value)
            if kind is dict or kind is list:
                walk(value, key, (), "")
            else:  # the common top-level scalar, without a call
                leaves[key] = [(value, ())]
    return leaves, arrayed
