"""CPU seconds of a running server, from /proc (Linux): what the benches divide their work by."""

from __future__ import annotations

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process and of its live descendants (`serve --rules` runs its
    detection in a child process); 0 for one that has ended meanwhile."""
    own, descendants = cpu_split(pid)
    return own + descendants


def cpu_split(pid: int) -> tuple[float, float]:
    """(the process's own CPU seconds, its live descendants'), as cpu_seconds counts them."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
        children = [
            int(child)
            for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()
        ]
    except FileNotFoundError:
        return 0.0, 0.0
    fields = text[text.rindex(")") + 2 :].split()
    own = (int(fields[11]) + int(fields[12])) / TICKS
    return own, sum(cpu_seconds(child) for child in children)
