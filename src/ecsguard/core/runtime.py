"""Process settings for the long-running server (and its detection process)."""

from __future__ import annotations

import contextlib
import gc
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

#: allocations (net of frees) between young-generation collections; CPython's default is 700
YOUNG_COLLECTION_THRESHOLD = 50_000


def tune_server_process(cpu: int | None = None) -> None:
    """Call once setup is done, before serving; `cpu`: the one CPU for the Python threads
    (`CpuPlan`), None to leave them where the kernel puts them.

    - The cyclic garbage collector: at the default threshold a collection ran every 700 net
      allocations, that is several times inside every parsed batch, whose thousands of dicts
      were then traversed and promoted while still alive, and traversed again by older
      collections. That was a fifth of the server's CPU under the detection benchmark. Batches
      free their objects by reference counting, so few collections are needed: a higher
      threshold, and what setup built (modules, rules, compiled patterns) frozen out of them.
    - Request threads each get a glibc malloc arena by default (8 per core), and freed memory
      can stay in them; two arenas bound that. A no-op where libc is not glibc.
    - Arrow allocates from the C library, not from its bundled mimalloc. mimalloc asks for
      transparent huge pages and hands freed pages back to the kernel, so reusing them faulted
      in and zeroed whole 2 MB pages: 9% of the server's CPU while ingesting (perf); 38.5
      against 43.8 MB per CPU-second in rotating runs of the same code, and a higher peak RSS.
    - The Python threads on one CPU: see `CpuPlan`.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, 20, 100)
    _fewer_malloc_arenas()
    pa.set_memory_pool(pa.system_memory_pool())
    if cpu is not None:
        pin_python_threads(cpu)


@dataclass(frozen=True)
class CpuPlan:
    """Where `ecsguard serve` keeps its Python threads (`server`) and its detection process's
    (`detection`); None: wherever the kernel likes.

    The threads of one process take turns holding the interpreter lock, so a second CPU runs
    none of their Python in parallel; what it adds is traffic: a batch received on one core,
    parsed on another and flushed on a third crosses caches each time, and every hand-over of
    the lock wakes a thread on another core. Kept on one CPU, the server ingested 11% more per
    CPU-second in alternating runs on the benchmark machine (and took about 8% longer in wall
    time: its zstd and Parquet encoding no longer overlap parsing). Native thread pools
    (DuckDB's) still use every CPU: see `spread_native_threads`."""

    server: int | None = None
    detection: int | None = None

    @classmethod
    def choose(cls, pin: bool, sample_seconds: float = 0.2) -> CpuPlan:
        """The two CPUs this process may use that were idlest over `sample_seconds` (so two
        servers started on one host apart from each other spread), the idlest for the server;
        ties go to the higher number. No pinning with `pin` false or a single CPU (nothing to
        choose, and the two processes must not share one)."""
        cpus = sorted(_allowed_cpus())
        if not pin or len(cpus) < 2:
            return cls()
        before = _idle_ticks()
        time.sleep(sample_seconds)
        after = _idle_ticks()
        idle = {cpu: after.get(cpu, 0) - before.get(cpu, 0) for cpu in cpus}
        server, detection, *_ = sorted(cpus, key=lambda cpu: (-idle[cpu], -cpu))
        return cls(server=server, detection=detection)

    def describe(self, detection: bool) -> str:
        """The start-up line; `detection`: whether a detection process runs."""
        if self.server is None:
            return "threads: placed by the kernel"
        where = f", detection on CPU {self.detection}" if detection else ""
        return (
            f"threads: the server's on CPU {self.server}{where} "
            "(--no-pin-threads leaves them to the kernel)"
        )


def _idle_ticks() -> dict[int, int]:
    """Each CPU's idle and I/O-wait clock ticks since boot (/proc/stat); {} where unreadable."""
    try:
        text = Path("/proc/stat").read_text()
    except OSError:
        return {}
    ticks = {}
    for line in text.splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and len(values) >= 5:
            ticks[int(name[3:])] = int(values[3]) + int(values[4])
    return ticks


#: the CPUs the process could use before its threads were pinned (None: never pinned)
_UNPINNED: frozenset[int] | None = None


def _allowed_cpus() -> frozenset[int]:
    if not hasattr(os, "sched_getaffinity"):  # not Linux: nothing is pinned
        return frozenset()
    return frozenset(os.sched_getaffinity(0))


def pin_python_threads(cpu: int) -> None:
    """Every running Python thread on `cpu`, and so the threads they start later (a thread
    inherits its starter's CPUs). A CPU the process may not use leaves everything as it was."""
    global _UNPINNED
    allowed = _allowed_cpus()
    if cpu not in allowed:
        return
    _UNPINNED = allowed if _UNPINNED is None else _UNPINNED
    for thread in threading.enumerate():
        if thread.native_id is None:
            continue
        with contextlib.suppress(OSError):  # it ended meanwhile
            os.sched_setaffinity(thread.native_id, {cpu})


@contextlib.contextmanager
def spread_native_threads() -> Iterator[None]:
    """While the calling thread starts a native thread pool (a DuckDB connection starts its
    own), it may run on every CPU the process was given, so the pool's threads, which inherit
    its CPUs, spread over them rather than share the pinned one. A no-op when nothing is
    pinned."""
    if _UNPINNED is None:
        yield
        return
    own = os.sched_getaffinity(0)
    # a cpuset changed under the process refuses a mask: the pool then shares the thread's CPUs
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, _UNPINNED)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, own)


def _fewer_malloc_arenas() -> None:
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        return
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt(ctypes.c_int(-8), ctypes.c_int(2))  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass
