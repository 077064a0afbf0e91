"""Syntax errors that point at a character: "unexpected ')' at position 14 in filter pattern"."""

from __future__ import annotations

from ecsguard.core.errors import UserError

SHOWN = 160  # characters of the pattern quoted in a message


class PatternError:
    """Builds the UserError for one pattern; positions are 1-based in the message."""

    def __init__(self, text: str) -> None:
        self.text = text

    def at(self, index: int, problem: str, hint: str = "") -> UserError:
        shown = self.text if len(self.text) <= SHOWN else self.text[:SHOWN] + "…"
        return UserError(f"{problem} at position {index + 1} in filter pattern {shown!r}", hint)

    def unexpected(self, index: int, hint: str = "") -> UserError:
        if index >= len(self.text):
            return self.at(index, "unexpected end", hint)
        return self.at(index, f"unexpected {self.text[index]!r}", hint)
