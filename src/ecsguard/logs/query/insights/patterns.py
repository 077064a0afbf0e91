"""The patterns of `parse`: a glob becomes a regex, a regex's named groups become fields.

Both run in DuckDB's RE2, which spells a named group `(?P<name>...)` where Insights writes
`(?<name>...)`; `regexp_extract` takes groups by number, so the groups are counted here.
"""

from __future__ import annotations

import re

_NAMED_GROUP = re.compile(r"(?<!\\)\(\?<([A-Za-z_][A-Za-z0-9_]*)>")
_RE2_SPECIAL = set("\\.^$|?*+()[]{}")


def re2_escape(text: str) -> str:
    return "".join("\\" + char if char in _RE2_SPECIAL else char for char in text)


def glob_regex(parts: list[str]) -> str:
    """The regex of a glob split at its `*`s: each * a lazy group, a final * the rest."""
    regex = "(?s)" + re2_escape(parts[0])  # (?s): a * spans the lines of a stack trace
    for i, part in enumerate(parts[1:]):
        last = i == len(parts) - 2
        regex += ("(.*)" if last and not part else "(.*?)") + re2_escape(part)
    return regex


def re2_named_groups(pattern: str) -> str:
    return _NAMED_GROUP.sub(r"(?P<\1>", pattern)


def capture_groups(pattern: str) -> list[str | None]:
    """The capturing groups of a regex in order: their names, None for unnamed ones."""
    groups: list[str | None] = []
    i, in_class = 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            if pattern.startswith("]", i + 1) or pattern.startswith("^]", i + 1):
                i += 2 if pattern[i + 1] == "]" else 3  # a leading ] is a member of the class
                continue
        elif char == "(":
            if not pattern.startswith("?", i + 1):
                groups.append(None)
            elif pattern.startswith("?P<", i + 1):
                close = pattern.find(">", i)
                groups.append(pattern[i + 4 : close] if close > 0 else None)
        i += 1
    return groups
