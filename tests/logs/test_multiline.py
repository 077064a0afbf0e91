from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecsguard.core.errors import UserError
from ecsguard.logs.multiline import MultilineGroup, MultilineJoiner

JAVA = [
    "2024-01-01 10:00:00 ERROR [main] request failed",
    "java.lang.IllegalStateException: outer",
    "\tat com.example.Foo.bar(Foo.java:10)",
    "\tat com.example.Main.main(Main.java:3)",
    "Caused by: java.io.IOException: inner",
    "\tat com.example.Io.read(Io.java:7)",
    "\t... 2 more",
]
PYTHON = [
    "ERROR:root:boom",
    "Traceback (most recent call last):",
    '  File "app.py", line 3, in <module>',
    "    main()",
    "ValueError: bad",
    "During handling of the above exception, another exception occurred:",
    "Traceback (most recent call last):",
    '  File "app.py", line 5, in <module>',
    "KeyError: 'x'",
]


def join(lines: list[str], pattern: str | None = None) -> list[str]:
    joiner = MultilineJoiner(pattern)
    out = [record for line in lines for record in joiner.feed(line)]
    return out + joiner.flush()


def test_java_trace_is_one_record() -> None:
    assert join(["INFO start", *JAVA, "INFO next"]) == ["INFO start", "\n".join(JAVA), "INFO next"]


def test_python_trace_with_chain_is_one_record() -> None:
    assert join([*PYTHON, "INFO next"]) == ["\n".join(PYTHON), "INFO next"]


def test_trace_at_stream_start() -> None:
    lines = ["Traceback (most recent call last):", '  File "a.py", line 1', "OSError: x", "next"]
    assert join(lines) == ["\n".join(lines[:3]), "next"]


def test_plain_lines_stay_apart_and_indent_outside_a_trace_starts_a_record() -> None:
    assert join(["a", "b", "  c"]) == ["a", "b", "  c"]


def test_feed_returns_a_record_once_the_next_starts() -> None:
    joiner = MultilineJoiner()
    assert joiner.feed("one") == []
    assert joiner.feed("\tat x.y(Z.java:1)") == []
    assert joiner.feed("two") == ["one\n\tat x.y(Z.java:1)"]
    assert joiner.flush() == ["two"]
    assert joiner.flush() == []


def test_start_pattern() -> None:
    lines = ["[1] a", "more", "more", "[2] b", "[3] c", "tail"]
    assert join(lines, r"\[\d+\]") == ["[1] a\nmore\nmore", "[2] b", "[3] c\ntail"]


def test_caps_cut_endless_records() -> None:
    joiner = MultilineJoiner(r"START", max_lines=3)
    out = [r for line in ["START", "x", "x", "x", "x"] for r in joiner.feed(line)]
    assert out == ["START\nx\nx"]
    assert joiner.flush() == ["x\nx"]


def test_bad_pattern_is_a_user_error() -> None:
    with pytest.raises(UserError, match="multiline start pattern"):
        MultilineJoiner("(")


def test_group_keeps_streams_apart() -> None:
    group = MultilineGroup()
    assert group.feed("a", "ERROR a") == []
    assert group.feed("b", "\tat b.B(B.java:1)") == []  # first line of stream b: its own record
    assert group.feed("a", "\tat a.A(A.java:1)") == []
    assert sorted(group.flush()) == [
        ("a", "ERROR a\n\tat a.A(A.java:1)"),
        ("b", "\tat b.B(B.java:1)"),
    ]


# --------------------------------------------------------------------------- property tests


LINES = st.lists(
    st.sampled_from([*JAVA, *PYTHON, "plain line", "", "  indented"]) | st.text(max_size=30),
    max_size=40,
)


@given(LINES)
def test_joining_keeps_every_line_in_order(lines: list[str]) -> None:
    joiner = MultilineJoiner()
    records = [r for line in lines for r in joiner.feed(line)] + joiner.flush()
    # records are the input lines grouped: nothing dropped, duplicated or reordered
    assert "\n".join(records) == "\n".join(lines)
