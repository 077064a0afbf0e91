"""`ecsguard ingest`: files or stdin through a receiver into the pipeline, then flushed.

Records go through the same door as the server's (`LogService.accept`): records whose ids were
stored recently (the WAL and the last 15 minutes of Parquet files) are skipped, so running the
same command twice does not store a file twice."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecsguard.core.errors import UserError
from ecsguard.logs.receivers import RECEIVERS
from ecsguard.logs.records import Problem, ReceiverOptions
from ecsguard.logs.service import LogService
from ecsguard.logs.store import StoreLocation


@dataclass
class Summary:
    table: str = "logs"
    records: int = 0
    duplicates: int = 0  # records stored before (same ids), skipped
    problems: list[Problem] = field(default_factory=list)


def _inputs(source: str) -> list[tuple[str, bytes]]:
    if source == "-":
        return [("stdin", sys.stdin.buffer.read())]
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        if not files:
            raise UserError(f"{path} holds no files", "give a file, a directory of files, or -")
        return [(str(p), p.read_bytes()) for p in files]
    try:
        return [(str(path), path.read_bytes())]
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror}", "check the path") from None


def ingest_source(
    source: str,
    fmt: str,
    data_dir: Path,
    meta: dict[str, Any],
    store: StoreLocation | None = None,
) -> Summary:
    """Parse SOURCE with the receiver named `fmt` and store every record; returns counts and
    the problems (unparsed lines kept as text, dropped control messages, bad files)."""
    receiver = RECEIVERS.get(fmt.replace("-", "_"))
    summary = Summary()
    service = LogService(data_dir, store=store)
    try:
        for name, data in _inputs(source):
            options = ReceiverOptions(input_name=name, **{k: v for k, v in meta.items() if v})
            parsed = receiver(data, options)
            summary.table = parsed.table
            summary.problems.extend(parsed.problems)
            stored = service.accept(parsed, len(data))  # durable from here on
            summary.records += stored
            summary.duplicates += parsed.batch.num_rows - stored
        service.pipeline.flush()  # a failure is reported; the WAL keeps the rows for later
    finally:
        service.pipeline.close()
    return summary
