"""`%regex%` in filter patterns: AWS's limited operator set, checked, then compiled twice.

CloudWatch accepts letters, digits, space, the symbols `: _ # = @ / ; , -` and the operators
`^ $ ? [ ] { } | \\ * + .` (no parentheses, no multi-byte characters). The same expression runs in
Python's `re` (the per-message path) and in RE2 (DuckDB and Arrow, the vectorised path), so the few
places where the two engines read a pattern differently are translated or refused here:
`$` means the very end of the text in RE2 but also "before a final newline" in Python (Python gets
`\\Z`); `\\s` excludes the vertical tab in RE2 (Python gets the explicit class); `{,n}` is a literal
in RE2 but a repetition in Python (refused: write `{0,n}`). An expression must compile in both.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from ecsguard.logs.query.filter_pattern.errors import PatternError

SYMBOLS = frozenset(":_#=@/;,- ")
OPERATORS = frozenset("^$?[]{}|\\*+.")
# escapes both engines read the same way; \b, \A, \z, back-references... are not in AWS's set
CLASS_ESCAPES = frozenset("dDwW")
CONTROL_ESCAPES = frozenset("tnrfv")
RE2_SPACE = "\\t\\n\\f\\r "  # RE2's \s: no vertical tab
REPEAT = re.compile(r"\{(\d+)(,(\d*))?\}")
MAX_REPEAT = 1000  # RE2's limit

ALLOWED_HINT = (
    "a regex may use letters, digits, spaces, the symbols : _ # = @ / ; , - and the operators "
    "^ $ ? [ ] { } | \\ * + . (no parentheses: write \\x28 for '(' and \\x29 for ')')"
)


@dataclass(frozen=True)
class Regex:
    """One `%...%` expression: its source and its two compiled forms."""

    source: str
    python: re.Pattern[str]
    re2: str

    def search(self, text: str) -> bool:
        return self.python.search(text) is not None


def compile_regex(source: str, error: PatternError, offset: int) -> Regex:
    """Check `source` (the text between the % signs, which starts at `offset` in the pattern)
    against AWS's rules and compile it for both engines."""
    python: list[str] = []
    re2: list[str] = []
    in_class = False
    class_start = -1  # index of a class's first member, where `]` is a literal
    i = 0
    while i < len(source):
        char = source[i]
        at = offset + i
        if ord(char) > 127:
            raise error.at(at, f"multi-byte character {char!r} in a regex", ALLOWED_HINT)
        if not (char.isalnum() or char in SYMBOLS or char in OPERATORS):
            raise error.at(at, f"{char!r} is not allowed in a regex", ALLOWED_HINT)
        if char == "\\":
            step, py, r2 = _escape(source, i, in_class, error, offset)
            python.append(py)
            re2.append(r2)
            i += step
            continue
        if in_class:
            if char == "[":
                raise error.at(at, "'[' inside a character class", "write \\[ for a literal [")
            if char == "]" and i != class_start:
                in_class = False
            python.append(char)
            re2.append(char)
        elif char == "[":
            in_class = True
            class_start = i + 2 if source[i + 1 : i + 2] == "^" else i + 1
            python.append(char)
            re2.append(char)
        elif char == "{":
            repeat = REPEAT.match(source, i)
            if not repeat:
                raise error.at(
                    at,
                    "'{' must start a repetition {m}, {m,} or {m,n}",
                    "write \\{ for a literal {",
                )
            low, high = int(repeat[1]), repeat[3]
            if low > MAX_REPEAT or (high and int(high) > MAX_REPEAT):
                raise error.at(at, f"repetition count above {MAX_REPEAT}", "use a smaller count")
            python.append(repeat[0])
            re2.append(repeat[0])
            i = repeat.end()
            continue
        elif char == "$":
            python.append("\\Z")  # only the very end, as RE2's $
            re2.append("$")
        else:
            python.append(char)
            re2.append(char)
        i += 1
    if in_class:
        raise error.at(offset + len(source), "unterminated character class", "close it with ]")
    return Regex(
        source,
        _compile_python("".join(python), error, offset),
        _check_re2("".join(re2), error, offset),
    )


def _escape(
    source: str, i: int, in_class: bool, error: PatternError, offset: int
) -> tuple[int, str, str]:
    """(characters consumed, Python form, RE2 form) of the escape starting at `i`."""
    if i + 1 >= len(source):
        raise error.at(offset + i, "a regex cannot end with \\", "write \\\\ for a backslash")
    nxt = source[i + 1]
    text = source[i : i + 2]
    if nxt == "s":
        return 2, RE2_SPACE if in_class else f"[{RE2_SPACE}]", text
    if nxt == "S" and not in_class:  # inside a class \S keeps Python's reading (differs on \v)
        return 2, f"[^{RE2_SPACE}]", text
    if nxt == "S":
        return 2, text, text
    if nxt in CLASS_ESCAPES or nxt in CONTROL_ESCAPES:
        return 2, text, text
    if nxt == "x":
        digits = source[i + 2 : i + 4]
        if len(digits) != 2 or not all(c in "0123456789abcdefABCDEF" for c in digits):
            raise error.at(offset + i, "\\x needs two hex digits", "write \\x28 for '('")
        return 4, source[i : i + 4], source[i : i + 4]
    if nxt.isalnum() or ord(nxt) > 127:
        raise error.at(
            offset + i,
            f"unsupported escape {text!r} in a regex",
            "supported: \\d \\D \\w \\W \\s \\S \\t \\n \\r \\f \\v \\xHH and \\ before a symbol",
        )
    return 2, text, text  # an escaped symbol or operator: a literal in both engines


def _compile_python(pattern: str, error: PatternError, offset: int) -> re.Pattern[str]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # "possible set operation" notices
            return re.compile(pattern, re.ASCII)
    except re.error as err:
        raise error.at(offset, f"invalid regex: {err.msg}", ALLOWED_HINT) from None


def _check_re2(pattern: str, error: PatternError, offset: int) -> str:
    try:
        # Arrow compiles with RE2, the engine DuckDB's regexp_matches uses
        pc.match_substring_regex(pa.array([""]), pattern=pattern)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        detail = str(err).removeprefix("Invalid regular expression: ")
        raise error.at(offset, f"invalid regex: {detail}", ALLOWED_HINT) from None
    return pattern
