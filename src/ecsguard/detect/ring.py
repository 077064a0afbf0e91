"""Frames for the detection process, in memory the server and that process both map.

Through a multiprocessing queue, each stored batch's frame (about half a megabyte) was pickled,
written into a pipe 64 KB at a time, read back a chunk per wakeup and unpickled: 0.7 ms of the
detection process's CPU a frame, and 0.3 ms of the server's. Here the server copies the frame
into a ring once and sends only where it lies; the detection process copies it out once.

The ring keeps no bookkeeping of its own: the spans in use are the ones the worker's ledger
still holds (sent, not yet counted evaluated), which are placed, and freed, oldest first. So a
span given back (its put timed out, or the child evaluated it) is free at once, and a restarted
child reads the same spans the dead one was sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

#: bytes of the ring: half the queue's 64 batches of about a megabyte each, since a container's
#: /dev/shm is often 64 MB in all; a frame larger than the whole ring travels in the queue
RING_BYTES = 32 << 20


@dataclass(frozen=True)
class Span:
    """Where one frame lies in the ring."""

    start: int
    length: int

    @property
    def end(self) -> int:
        return self.start + self.length


class FrameRing:
    def __init__(self, context: Any, size: int = RING_BYTES) -> None:
        """`context`: the multiprocessing context the child is started with. Its RawArray is
        memory a spawned child maps when given it as an argument: a file in /dev/shm when that
        has room, else in the temporary folder. It is zero-filled here, so the pages are taken
        now, not when a frame is first written (a full /dev/shm would then kill the server)."""
        self.size = size
        self.memory = context.RawArray("B", size)

    def fits(self, length: int) -> bool:
        """Whether a frame of `length` bytes can ever be placed."""
        return 0 < length <= self.size

    def place(
        self, parts: Sequence[bytes | pa.Buffer], oldest: Span | None, newest: Span | None
    ) -> Span | None:
        """Copy a frame, given as its parts, into free space and say where; None when it does
        not fit now (the frames between `oldest` and `newest`, the ones in use, take the rest).
        Free space is after the newest frame, or, wrapping, before the oldest."""
        length = sum(memoryview(part).nbytes for part in parts)
        start = _free_start(self.size, length, oldest, newest)
        if start is None:
            return None
        view = memoryview(self.memory).cast("B")
        at = start
        for part in parts:
            data = memoryview(part).cast("B")  # an Arrow buffer's items are signed bytes
            view[at : at + len(data)] = data
            at += len(data)
        return Span(start, length)

    def read(self, span: Span) -> bytes:
        """A copy of the frame at `span`: the batches decoded from it may outlive the span (a
        rule's cache), and the server writes the next frames there once it is evaluated."""
        if span.start < 0 or span.end > self.size:
            raise ValueError(f"a frame at {span.start}-{span.end} of a {self.size}-byte ring")
        return bytes(memoryview(self.memory).cast("B")[span.start : span.end])


def _free_start(size: int, length: int, oldest: Span | None, newest: Span | None) -> int | None:
    if not 0 < length <= size:
        return None
    if oldest is None or newest is None:  # nothing in use
        return 0
    if newest.start >= oldest.start:  # in use: oldest .. newest, one run
        if newest.end + length <= size:
            return newest.end
        return 0 if length <= oldest.start else None
    # in use: oldest .. the end, then the start .. newest
    return newest.end if newest.end + length <= oldest.start else None
