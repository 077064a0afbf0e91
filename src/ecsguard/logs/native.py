"""The optional native helpers (receivers/firelens_native.cpp): the FireLens body parser and a
text search over Arrow string arrays.

setup.py builds them when a C++ compiler and simdjson are there; without them, or with
ECSGUARD_NATIVE=0 (to compare, or to doubt them), NATIVE is None and every caller runs its
Python path, with the same results.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType


def load() -> ModuleType | None:
    if os.environ.get("ECSGUARD_NATIVE") == "0":
        return None
    try:
        return importlib.import_module("ecsguard.logs.receivers._firelens_native")
    except ImportError:
        return None


NATIVE = load()
