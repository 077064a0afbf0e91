"""The server's process settings, checked in a fresh interpreter (they are process-wide)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ecsguard.core import runtime
from ecsguard.core.runtime import CpuPlan


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


CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
needs_two_cpus = pytest.mark.skipif(len(CPUS) < 2, reason="pinning needs two CPUs to choose from")


def test_the_plan_takes_the_two_idlest_cpus_or_none(monkeypatch: pytest.MonkeyPatch) -> None:
    assert CpuPlan.choose(False) == CpuPlan(None, None)
    real = CpuPlan.choose(True, sample_seconds=0.05)  # this machine, as serve would see it
    if len(CPUS) < 2:
        assert real == CpuPlan(None, None)
    else:
        assert real.server != real.detection and {real.server, real.detection} <= set(CPUS)
    samples = iter([{0: 100, 1: 100, 2: 100, 3: 100}, {0: 120, 1: 101, 2: 118, 3: 120}])
    monkeypatch.setattr(runtime, "_allowed_cpus", lambda: frozenset({0, 1, 2, 3}))
    monkeypatch.setattr(runtime, "_idle_ticks", lambda: next(samples))
    # CPU 1 was busy, 0 and 3 idle alike: the higher number wins the tie
    assert CpuPlan.choose(True, sample_seconds=0) == CpuPlan(3, 0)
    monkeypatch.setattr(runtime, "_idle_ticks", dict)  # no /proc/stat: the last two
    assert CpuPlan.choose(True, sample_seconds=0) == CpuPlan(3, 2)
    monkeypatch.setattr(runtime, "_allowed_cpus", lambda: frozenset({5}))
    assert CpuPlan.choose(True, sample_seconds=0) == CpuPlan(None, None)
    assert "kernel" in CpuPlan().describe(True)
    assert "CPU 3, detection on CPU 0" in CpuPlan(3, 0).describe(True)
    assert "detection" not in CpuPlan(3, 0).describe(False)  # no --rules: no such process


@needs_two_cpus
def test_python_threads_share_one_cpu_and_duckdb_threads_use_all() -> None:
    # in a fresh interpreter: pinning is per thread, and the test workers must stay unpinned
    code = f"""
import os, threading, duckdb
from ecsguard.core.runtime import spread_native_threads, tune_server_process
every = os.sched_getaffinity(0)
waiting = threading.Event()
before = threading.Thread(target=waiting.wait)
before.start()
tune_server_process({CPUS[-1]})
later = threading.Thread(target=waiting.wait)
later.start()
pinned = [os.sched_getaffinity(t.native_id) for t in (threading.main_thread(), before, later)]
assert pinned == [{{{CPUS[-1]}}}] * 3, pinned
tasks = set(os.listdir("/proc/self/task"))
with spread_native_threads():
    con = duckdb.connect()
pool = set(os.listdir("/proc/self/task")) - tasks
assert pool and all(os.sched_getaffinity(int(t)) == every for t in pool), pool
assert os.sched_getaffinity(0) == {{{CPUS[-1]}}}
con.execute("SELECT 1")
waiting.set()
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_a_cpu_the_process_may_not_use_pins_nothing() -> None:
    code = (
        "import os; from ecsguard.core.runtime import pin_python_threads; "
        "every = os.sched_getaffinity(0); pin_python_threads(max(every) + 1); "
        "assert os.sched_getaffinity(0) == every; print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux CPU affinity")
def test_a_refused_mask_still_lets_the_pool_start(monkeypatch: pytest.MonkeyPatch) -> None:
    # the cpuset shrank under the process: the affinity calls fail, the connection does not
    def refuse(pid: int, mask: object) -> None:
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(runtime, "_UNPINNED", frozenset({0, 1}))
    monkeypatch.setattr(runtime.os, "sched_setaffinity", refuse)
    with runtime.spread_native_threads():
        started = True
    assert started
