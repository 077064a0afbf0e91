"""The ring that carries frames to the detection process: a frame placed is read back whole,
and a frame never lands on one still in use, however frames come and go."""

from __future__ import annotations

import multiprocessing
from collections import deque

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecsguard.detect.ring import FrameRing, Span

CONTEXT = multiprocessing.get_context("spawn")


def test_a_frame_placed_in_parts_is_read_back_whole() -> None:
    ring = FrameRing(CONTEXT, 1024)
    span = ring.place([b"head", pa.py_buffer(b"payload")], None, None)
    assert span == Span(0, 11) and ring.read(span) == b"headpayload"
    after = ring.place([b"next"], span, span)
    assert after == Span(11, 4) and ring.read(after) == b"next"
    assert ring.read(span) == b"headpayload"


def test_a_frame_larger_than_the_ring_never_fits() -> None:
    ring = FrameRing(CONTEXT, 16)
    assert not ring.fits(17) and ring.fits(16)
    assert ring.place([b"x" * 17], None, None) is None
    with pytest.raises(ValueError, match="16-byte ring"):
        ring.read(Span(10, 7))


def test_a_frame_wraps_to_the_start_and_stops_short_of_the_oldest() -> None:
    ring = FrameRing(CONTEXT, 100)
    oldest = Span(50, 30)  # 80..100 is too short for 25 bytes: the next goes to the start
    wrapped = ring.place([b"w" * 25], oldest, oldest)
    assert wrapped == Span(0, 25)
    assert ring.place([b"x" * 26], oldest, wrapped) is None  # 25..51 would cut into the oldest
    assert ring.place([b"x" * 25], oldest, wrapped) == Span(25, 25)  # up to it exactly
    assert ring.place([b"y" * 51], Span(50, 10), Span(50, 10)) is None  # 60..111, or 0..51


def _overlaps(a: Span, b: Span) -> bool:
    return a.start < b.end and b.start < a.end


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 45), st.integers(0, 2)), max_size=60))
def test_frames_in_use_are_never_overwritten(steps: list[tuple[int, int]]) -> None:
    """Each step places a frame of the given length, then frees that many of the oldest (the
    child evaluates in order). Every frame in use reads back as written; a frame is refused
    only when neither after the newest nor, wrapping, at the start is there room for it."""
    size = 100
    ring = FrameRing(CONTEXT, size)
    live: deque[tuple[Span, bytes]] = deque()
    for number, (length, freed) in enumerate(steps):
        data = bytes([number % 251]) * length
        oldest = live[0][0] if live else None
        newest = live[-1][0] if live else None
        span = ring.place([data], oldest, newest)
        if span is None:
            assert live, "refused with nothing in use"
            at_end = Span(newest.end, length) if newest else None
            candidates = [Span(0, length)] + ([at_end] if at_end and at_end.end <= size else [])
            wrapped = newest is not None and oldest is not None and newest.start < oldest.start
            if wrapped:  # the start is in use up to the newest frame
                candidates = [at_end] if at_end else []
            for candidate in candidates:
                assert any(_overlaps(candidate, used) for used, _ in live), candidate
        else:
            assert span.start >= 0 and span.end <= size and span.length == length
            assert not any(_overlaps(span, used) for used, _ in live)
            live.append((span, data))
        for _ in range(min(freed, len(live))):
            live.popleft()
        for used, written in live:
            assert ring.read(used) == written
