"""The server's process settings, checked in a fresh interpreter (they are process-wide)."""

from __future__ import annotations

import subprocess
import sys


def test_tune_server_process_raises_the_threshold_freezes_setup_and_picks_the_pool() -> None:
    code = (
        "import gc, pyarrow as pa; from ecsguard.core.runtime import tune_server_process, "
        "YOUNG_COLLECTION_THRESHOLD as T; tune_server_process(); "
        "assert gc.get_threshold()[0] == T > 700, gc.get_threshold(); "
        "assert gc.get_freeze_count() > 1000, gc.get_freeze_count(); "
        "assert pa.default_memory_pool().backend_name == 'system', pa.default_memory_pool(); "
        "print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
