"""Join continuation lines (stack traces) into one record per stream.

Two modes. With a start pattern, a line matching it begins a record and every other line continues
the current one. Without, Java and Python defaults decide which lines continue a record:

    2024-05-01 ERROR request failed             <- starts a record
    java.lang.IllegalStateException: boom       <- an exception header continues it
        at com.example.Foo.bar(Foo.java:10)     <- frames, "Caused by:", "... 3 more" continue
    Traceback (most recent call last):          <- continues (logging.exception prints it second)
      File "app.py", line 3, in <module>        <- indented lines inside a traceback continue
    ValueError: bad                             <- the first unindented line ends the traceback

Streaming: `feed(line)` returns the records a line completes (a record is complete when the next
one starts), `flush()` returns what is pending (call it at the end of input or on idle).

A start pattern runs on RE2 (anchored at the line's start), which cannot backtrack: it may come
from an HTTP client (`/ingest/lines?multiline_start=...`), and no pattern can stall a receiver.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from typing import Any

import re2

from ecsguard.core.errors import UserError

_JAVA_FRAME = re.compile(r"\s+at\s|\s*\.\.\. \d+ (?:more|common frames omitted)")
_JAVA_CAUSE = re.compile(r"\s*(?:Caused by:|Suppressed:)")
# a qualified class name ending in Exception/Error/Throwable, at the start of a line
_JAVA_HEADER = re.compile(r"(?:[A-Za-z_$][\w$]*\.)+[\w$]*(?:Exception|Error|Throwable)\b")
_PY_TRACEBACK = "Traceback (most recent call last):"
_PY_CHAIN = (
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
)

# states of the default joiner
_PLAIN, _JAVA, _PY_FRAMES, _PY_AFTER = range(4)


def compile_start(pattern: str) -> Any:
    """The start pattern compiled for RE2; UserError naming it when RE2 cannot run it."""
    options = re2.Options()
    options.log_errors = False  # the error is ours to report, not RE2's to print
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        detail = exc.args[0].decode(errors="replace") if exc.args else str(exc)
        raise UserError(
            f"invalid multiline start pattern {pattern!r}: {detail}",
            "give a regular expression (RE2 syntax: no look-arounds or backreferences) matching"
            " the first line of a record",
        ) from None


class MultilineJoiner:
    """Joins the lines of one stream. Lines come without their trailing newline."""

    def __init__(
        self,
        start_pattern: str | None = None,
        *,
        max_lines: int = 1000,
        max_chars: int = 256 * 1024,
    ) -> None:
        self._start = compile_start(start_pattern) if start_pattern else None
        # caps keep one endless "continuation" from holding memory and delaying a stream forever
        self.max_lines = max_lines
        self.max_chars = max_chars
        self._lines: list[str] = []
        self._chars = 0
        self._state = _PLAIN

    def feed(self, line: str) -> list[str]:
        done: list[str] = []
        if self._lines and (
            len(self._lines) >= self.max_lines or self._chars + len(line) > self.max_chars
        ):
            done.extend(self.flush())
        if not self._lines:
            self._begin(line)
            return done
        if self._continues(line):
            self._lines.append(line)
            self._chars += len(line) + 1
            return done
        done.extend(self.flush())
        self._begin(line)
        return done

    def flush(self) -> list[str]:
        if not self._lines:
            return []
        record = "\n".join(self._lines)
        self._lines = []
        self._chars = 0
        self._state = _PLAIN
        return [record]

    def _begin(self, line: str) -> None:
        self._lines = [line]
        self._chars = len(line)
        self._state = _PLAIN
        if self._start is None:
            self._state = self._next_state(line, _PLAIN)

    def _continues(self, line: str) -> bool:
        if self._start is not None:
            return self._start.match(line) is None
        state = self._state
        if state == _PY_FRAMES:
            if line[:1].isspace():
                return True
            # the first unindented line is the exception ("ValueError: bad"): it ends the trace
            self._state = _PY_AFTER
            return True
        if line.startswith(_PY_TRACEBACK):
            self._state = _PY_FRAMES
            return True
        if state == _PY_AFTER and line.startswith(_PY_CHAIN):
            return True
        if _JAVA_FRAME.match(line) or _JAVA_CAUSE.match(line) or _JAVA_HEADER.match(line):
            self._state = _JAVA
            return True
        # inside a Java trace, other indented lines (e.g. "\t... 5 more" variants) continue it
        if state == _JAVA and line[:1].isspace():
            return True
        self._state = _PLAIN
        return False

    @staticmethod
    def _next_state(line: str, state: int) -> int:
        if line.startswith(_PY_TRACEBACK):
            return _PY_FRAMES
        if _JAVA_HEADER.match(line):
            return _JAVA
        return state


class MultilineGroup:
    """One joiner per stream key (task, container, stdout/stderr): streams never mix."""

    def __init__(self, start_pattern: str | None = None) -> None:
        self._pattern = start_pattern
        MultilineJoiner(start_pattern)  # validate the pattern now, not on the first line
        self._joiners: dict[Hashable, MultilineJoiner] = {}

    def feed(self, key: Hashable, line: str) -> list[str]:
        joiner = self._joiners.get(key)
        if joiner is None:
            joiner = self._joiners[key] = MultilineJoiner(self._pattern)
        return joiner.feed(line)

    def flush(self) -> list[tuple[Hashable, str]]:
        out = [(key, record) for key, joiner in self._joiners.items() for record in joiner.flush()]
        self._joiners.clear()
        return out
