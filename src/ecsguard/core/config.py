"""Where ecsguard keeps its files. Configuration comes from options first, then environment."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "ECSGUARD_DATA"
DEFAULT_DATA_DIR = "ecsguard-data"


def data_dir(explicit: str | Path | None = None) -> Path:
    """`--data-dir`, else $ECSGUARD_DATA, else ./ecsguard-data."""
    return Path(explicit or os.environ.get(DATA_ENV) or DEFAULT_DATA_DIR)
