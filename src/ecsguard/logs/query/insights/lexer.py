"""Tokens of the Logs Insights language, each with its offset so errors name line and column.

A `/` is division after an operand and a regex literal elsewhere (after `like`, `=~`, `(`, `,`,
or right after `parse` and its source field): the lexer decides from the tokens before it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ecsguard.core.errors import UserError

IDENT = "ident"  # a bare name: a field, a command, a function or a keyword
QIDENT = "qident"  # a `backtick quoted` field name
STRING = "string"
NUMBER = "number"
DURATION = "duration"  # 5m, 1h: value (amount, canonical unit)
REGEX = "regex"
OP = "op"
PIPE = "pipe"
EOF = "eof"

#: every spelling of a time unit the docs list (plurals too) -> canonical unit
UNITS = {
    **dict.fromkeys(("ms", "msec", "msecs", "millisecond", "milliseconds"), "ms"),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), "s"),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), "m"),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), "h"),
    **dict.fromkeys(("d", "day", "days"), "d"),
    **dict.fromkeys(("w", "week", "weeks"), "w"),
    **dict.fromkeys(("mo", "mon", "mons", "month", "months"), "mo"),
    **dict.fromkeys(("q", "qtr", "qtrs", "quarter", "quarters"), "q"),
    **dict.fromkeys(("y", "yr", "yrs", "year", "years"), "y"),
}

_NAME = re.compile(r"[A-Za-z_@$][A-Za-z0-9_.@$]*")
_NUMBER = re.compile(r"\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_LETTERS = re.compile(r"[A-Za-z]+")
# two-character operators first, so `<=` is not read as `<` then `=`
_OPERATORS: tuple[str, ...] = ("!=", "<=", ">=", "=~", "(", ")", "[", "]", ",", "=", "<", ">")
_OPERATORS += ("+", "-", "*", "/", "%", "^")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str  # as written
    value: Any  # decoded: name, string, number, (amount, unit) or regex source
    pos: int  # offset in the query text

    @property
    def end(self) -> int:
        return self.pos + len(self.text)

    def is_word(self, *words: str) -> bool:
        return self.kind == IDENT and self.text.lower() in words

    def describe(self) -> str:
        if self.kind == EOF:
            return "end of query"
        shown = self.text if len(self.text) <= 30 else self.text[:27] + "..."
        return repr(shown)


def where(text: str, pos: int) -> str:
    """`line L, column C` (both from 1) of offset `pos` in `text`."""
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"line {line}, column {column}"


def syntax_error(text: str, pos: int, problem: str, hint: str = "") -> UserError:
    return UserError(f"{problem} at {where(text, pos)}", hint)


def _regex_may_start(tokens: list[Token]) -> bool:
    """Whether a `/` here opens a regex literal rather than dividing."""
    if not tokens:
        return True
    last = tokens[-1]
    if last.kind == OP:
        return last.text not in (")", "]")
    if last.kind == PIPE or last.is_word("like", "and", "or", "not", "in"):
        return True
    at_command_start = len(tokens) < 2 or tokens[-2].kind == PIPE
    if last.is_word("parse") and at_command_start:
        return True  # `parse /regex/` on @message
    # `parse @message /regex/`: the token before the source is the command word
    before = tokens[-2] if len(tokens) >= 2 else None
    first_of_command = len(tokens) < 3 or tokens[-3].kind == PIPE
    return (
        before is not None
        and before.is_word("parse")
        and first_of_command
        and last.kind in (IDENT, QIDENT)
    )


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char.isspace():
            i += 1
        elif char == "#":  # comment to the end of the line
            newline = text.find("\n", i)
            i = n if newline < 0 else newline
        elif char == "|":
            tokens.append(Token(PIPE, "|", "|", i))
            i += 1
        elif char in "\"'":
            value, end = _string(text, i)
            tokens.append(Token(STRING, text[i:end], value, i))
            i = end
        elif char == "`":
            value, end = _backticked(text, i)
            tokens.append(Token(QIDENT, text[i:end], value, i))
            i = end
        elif char == "/" and _regex_may_start(tokens):
            value, end = _regex(text, i)
            tokens.append(Token(REGEX, text[i:end], value, i))
            i = end
        elif "0" <= char <= "9":
            tokens.append(_number(text, i))
            i = tokens[-1].end
        elif (match := _NAME.match(text, i)) is not None:
            tokens.append(Token(IDENT, match.group(), match.group(), i))
            i = match.end()
        else:
            for op in _OPERATORS:
                if text.startswith(op, i):
                    tokens.append(Token(OP, op, op, i))
                    i += len(op)
                    break
            else:
                raise syntax_error(
                    text,
                    i,
                    f"unexpected character {char!r}",
                    "quote field names holding it with backticks, e.g. `my-field`",
                )
    tokens.append(Token(EOF, "", None, n))
    return tokens


def _string(text: str, start: int) -> tuple[str, int]:
    quote = text[start]
    out: list[str] = []
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == quote:
            return "".join(out), i + 1
        if char == "\\" and i + 1 < len(text):
            following = text[i + 1]
            out.append(_ESCAPES.get(following, "\\" + following))
            i += 2
            continue
        out.append(char)
        i += 1
    raise syntax_error(text, start, "unterminated string", f"close it with {quote}")


def _backticked(text: str, start: int) -> tuple[str, int]:
    out: list[str] = []
    i = start + 1
    while i < len(text):
        if text[i] == "`":
            if text.startswith("``", i):  # a doubled backtick is one backtick of the name
                out.append("`")
                i += 2
                continue
            if not out:
                raise syntax_error(text, start, "empty field name ``", "write a name between")
            return "".join(out), i + 1
        out.append(text[i])
        i += 1
    raise syntax_error(text, start, "unterminated field name", "close it with a backtick `")


def _regex(text: str, start: int) -> tuple[str, int]:
    out: list[str] = []
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == "/":
            return "".join(out), i + 1
        if char == "\\" and i + 1 < len(text):
            # `\/` is a slash of the pattern; other escapes belong to the regex itself
            out.append("/" if text[i + 1] == "/" else text[i : i + 2])
            i += 2
            continue
        out.append(char)
        i += 1
    raise syntax_error(text, start, "unterminated regular expression", "close it with /")


def _number(text: str, start: int) -> Token:
    match = _NUMBER.match(text, start)
    assert match is not None  # called on a digit
    digits = match.group()
    value: int | float = float(digits) if any(c in digits for c in ".eE") else int(digits)
    letters = _LETTERS.match(text, match.end())
    if letters is None:
        return Token(NUMBER, digits, value, start)
    unit = UNITS.get(letters.group())
    if unit is None:
        raise syntax_error(
            text,
            start,
            f"unknown time unit {letters.group()!r} in {text[start : letters.end()]!r}",
            "use ms, s, m, h, d, w, mo, q or y (e.g. 5m, 1h)",
        )
    return Token(DURATION, text[start : letters.end()], (value, unit), start)
