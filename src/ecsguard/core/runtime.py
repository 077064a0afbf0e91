"""Process settings for the long-running server (and its detection process)."""

from __future__ import annotations

import gc

import pyarrow as pa

#: allocations (net of frees) between young-generation collections; CPython's default is 700
YOUNG_COLLECTION_THRESHOLD = 50_000


def tune_server_process() -> None:
    """Call once setup is done, before serving.

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
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, 20, 100)
    _fewer_malloc_arenas()
    pa.set_memory_pool(pa.system_memory_pool())


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
