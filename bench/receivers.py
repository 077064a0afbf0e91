"""Receiver parse cost per body: the native readers (firelens_native.cpp) beside the msgspec and
Python paths they stand in for, on the same bodies, in the same run.

    .venv/bin/python bench/receivers.py [--bodies 60] [--size 1000] [--runs 5] [--out FILE]

Data: bench/detect.py's end-to-end load (detectgen's ECS events, CloudTrail files and text log
lines, in its table mix), `--bodies` bodies of `--size` records. Each receiver parses each body of
its table with its native reader, then with the module's NATIVE set to None (what
ECSGUARD_NATIVE=0 runs), body after body, `--runs` passes; the best pass's CPU time per body is
reported for each path, and the batches of the two paths are compared first (a path that answers
differently fails the bench).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any
from unittest import mock

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).parent))
from detect import RECEIVER, Body, machine, make_load_bodies, parse
from ecsguard.logs.receivers import cloudtrail, ecs_events, firelens, lines

INGEST_US = 1_800_000_000_000_000
#: the module whose NATIVE each receiver consults (lines reads firelens's)
NATIVE_OF = {"events": ecs_events, "cloudtrail": cloudtrail, "logs": lines}


def _parse(body: Body) -> pa.RecordBatch:
    return parse(body, INGEST_US)  # lines without a time of their own: the same in both paths


def _interleaved(module: Any, bodies: list[Body], runs: int) -> tuple[float, float]:
    """CPU seconds per body (native, Python), each body parsed by one path then the other, so
    both see the machine as it is then (its speed moves 1.5-2x within minutes); the least of
    `runs` passes for each."""
    native_reader = module.NATIVE
    best_native = best_python = float("inf")
    for _ in range(runs):
        native = python = 0.0
        for body in bodies:
            start = time.process_time()
            _parse(body)
            native += time.process_time() - start
            module.NATIVE = None
            try:
                start = time.process_time()
                _parse(body)
                python += time.process_time() - start
            finally:
                module.NATIVE = native_reader
        best_native = min(best_native, native / len(bodies))
        best_python = min(best_python, python / len(bodies))
    return best_native, best_python


def run(bodies: int, size: int, runs: int) -> dict[str, Any]:
    if firelens.NATIVE is None:
        raise SystemExit("the native parser is not built: install g++ and libsimdjson-dev")
    load = make_load_bodies(11, bodies, size).plain
    out: dict[str, Any] = {}
    for table, module in NATIVE_OF.items():
        mine = [b for b in load if b.table == table]
        with mock.patch.object(module, "NATIVE", None):
            python = [_parse(b) for b in mine]
        native = [_parse(b) for b in mine]
        if not all(a.equals(b) for a, b in zip(native, python, strict=True)):
            raise SystemExit(f"{table}: the native and Python paths give different batches")
        native_s, python_s = _interleaved(module, mine, runs)
        out[table] = {
            "receiver": RECEIVER[table],
            "bodies": len(mine),
            "records_per_body": size,
            "native_ms_per_body": round(native_s * 1e3, 2),
            "python_ms_per_body": round(python_s * 1e3, 2),
            "native_us_per_record": round(native_s / size * 1e6, 2),
            "ratio": round(python_s / native_s, 2),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bodies", type=int, default=60)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    default_out = Path(__file__).parent / "results/receivers.json"
    parser.add_argument("--out", type=Path, default=default_out)
    args = parser.parse_args(argv)
    results = run(args.bodies, args.size, args.runs)
    print(f"{'table':12s} {'receiver':12s} {'native ms':>10s} {'python ms':>10s} {'ratio':>6s}")
    for table, r in results.items():
        print(
            f"{table:12s} {r['receiver']:12s} {r['native_ms_per_body']:10.2f}"
            f" {r['python_ms_per_body']:10.2f} {r['ratio']:5.2f}x"
        )
    args.out.write_text(json.dumps({"machine": machine(), "receivers": results}, indent=2) + "\n")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
