"""Log templates and anomaly bands bench: our batch miner and the log_pattern rule beside drain3
used as its README shows (TemplateMiner.add_log_message per line, regex masking in Python), and
the anomaly band's fitting time.

    .venv/bin/python bench/detect_templates.py [--lines 200000] [--seed 42] [--batch 10000]

Data: bench/loggen.py's FireLens records (JSON app lines, Java lines with stack traces, nginx
access lines from eleven services), parsed by the real FireLens receiver into `logs` batches.

Measured (wall time, one core, best of --runs; the load average is recorded):
- peer: drain3 TemplateMiner with the same masks as MaskingInstructions (Python `re`), one
  add_log_message call per line, one miner per (cluster, service);
- Miner.add: masks over whole Arrow columns (RE2), Drain once per distinct masked line;
- LogPattern.on_batch: the whole rule (split by service, mining, counts, jump checks);
- templates found by each (they should be close: masking differs only in RE2 vs re details);
- anomaly.fit on 14 days of a seasonal series at 5m and 1m periods (4,032 and 20,160 values).
Results go to bench/results/detect_templates.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).parent))

import loggen
from ecsguard.detect.anomaly import fit
from ecsguard.detect.rules import Rule
from ecsguard.detect.templates import GENERIC_MASKS, Miner, by_service
from ecsguard.detect.types.log_pattern import LogPattern, Settings
from ecsguard.logs.receivers import RECEIVERS
from ecsguard.logs.records import ReceiverOptions

RESULTS = Path(__file__).parent / "results" / "detect_templates.json"


def batches(lines: int, seed: int, size: int) -> list[pa.RecordBatch]:
    import gzip

    out = Path(f"/tmp/ecsguard-bench-logs/{lines}-{seed}")
    loggen.ensure(out, lines, seed)
    raw = gzip.decompress((out / "raw.ndjson.gz").read_bytes())
    parsed = RECEIVERS.get("firelens")(raw, ReceiverOptions(input_name="bench"))
    table = pa.Table.from_batches([parsed.batch]).combine_chunks()
    return table.to_batches(max_chunksize=size)


def best(runs: int, work: Callable[[], object]) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    return min(times), result


def peer(parts: list[pa.RecordBatch]) -> int:
    """drain3 as documented: a TemplateMiner per service, a call per line."""
    from drain3.masking import MaskingInstruction
    from drain3.template_miner import TemplateMiner
    from drain3.template_miner_config import TemplateMinerConfig

    def make() -> TemplateMiner:
        config = TemplateMinerConfig()
        config.masking_instructions = [
            MaskingInstruction(
                ("(?:(?<=^)|(?<=[^A-Za-z0-9]))" if mask.after else "") + f"(?:{mask.pattern})",
                mask.name,
            )
            for mask in GENERIC_MASKS
        ]
        return TemplateMiner(persistence_handler=None, config=config)

    miners: dict[tuple[str, str], TemplateMiner] = {}
    for batch in parts:
        for key, rows in by_service(batch):
            miner = miners.setdefault(key, make())
            for message in batch.take(rows).column("message").to_pylist():
                if message is not None:
                    miner.add_log_message(message)
    return sum(len(m.drain.clusters) for m in miners.values())


def ours(parts: list[pa.RecordBatch]) -> int:
    miners: dict[tuple[str, str], Miner] = {}
    for batch in parts:
        for key, rows in by_service(batch):
            miners.setdefault(key, Miner()).add(batch.take(rows).column("message"))
    return sum(len(m) for m in miners.values())


def rule_type(parts: list[pa.RecordBatch]) -> int:
    rule = Rule(id="b", title="bench", type="log_pattern", settings=Settings())
    evaluator = LogPattern(rule)
    matches = 0
    for batch in parts:
        matches += len(evaluator.on_batch("logs", batch))
    return matches


def seasonal(days: int, period: int) -> dict[int, float]:
    rnd = random.Random(1)
    per_day = 86_400 // period
    first = int(datetime(2026, 11, 2, tzinfo=UTC).timestamp()) // period
    return {
        i: 100 + 40 * math.sin(2 * math.pi * (i % per_day) / per_day) + rnd.gauss(0, 5)
        for i in range(first, first + days * per_day)
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=loggen.QUICK_LINES)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    parts = batches(args.lines, args.seed, args.batch)
    rows = sum(b.num_rows for b in parts)
    peer_s, peer_templates = best(1, lambda: peer(parts))
    ours_s, our_templates = best(args.runs, lambda: ours(parts))
    rule_s, rule_matches = best(args.runs, lambda: rule_type(parts))
    fits = {}
    for period in (300, 60):
        points = seasonal(14, period)

        def fitting(points: dict[int, float] = points, period: int = period) -> object:
            return fit(points, period)

        seconds, _ = best(args.runs, fitting)
        fits[f"{period}s"] = {"values": len(points), "seconds": round(seconds, 4)}
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average": os.getloadavg(),
        "lines": rows,
        "batch_rows": args.batch,
        "drain3_per_line": {
            "seconds": round(peer_s, 3),
            "lines_per_s": round(rows / peer_s),
            "templates": peer_templates,
        },
        "miner_add": {
            "seconds": round(ours_s, 3),
            "lines_per_s": round(rows / ours_s),
            "templates": our_templates,
        },
        "log_pattern_rule": {
            "seconds": round(rule_s, 3),
            "lines_per_s": round(rows / rule_s),
            "matches": rule_matches,
        },
        "speedup_vs_drain3": round(peer_s / ours_s, 1),
        "anomaly_fit_14_days": fits,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
