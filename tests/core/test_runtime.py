"""The server's process settings, checked in a fresh interpreter (they are process-wide)."""

from __future__ import annotations

import subprocess
import sys


def test_tune_server_process_raises_the_threshold_and_freezes_setup() -> None:
    code = (
        "import gc; from ecsguard.core.runtime import tune_server_process, "
        "YOUNG_COLLECTION_THRESHOLD as T; tune_server_process(); "
        "assert gc.get_threshold()[0] == T > 700, gc.get_threshold(); "
        "assert gc.get_freeze_count() > 1000, gc.get_freeze_count(); print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
