"""CloudWatch embedded metric format (EMF) documents into the `metrics` table.

The body is one EMF JSON object, a JSON array of them, or one per line (NDJSON, as
aws-embedded-metrics and `ecsguard agent` write them). The rules of the format, and what becomes a
problem, are in `ecsguard.monitor.emf`; a document without a valid `_aws.Timestamp` gets the
ingest time. `POST /ingest/metrics` is this receiver.

Every row's id comes from its content and its place in the body (`MetricRows`), so a body a
client sends again after a lost acknowledgement is stored once.
"""

from __future__ import annotations

from typing import Any

import orjson

from ecsguard.logs.receivers import RECEIVERS
from ecsguard.logs.records import Parsed, Problem, ReceiverOptions
from ecsguard.monitor.emf import MetricRows, extract

NAME = "emf"


def _documents(data: bytes, name: str, problems: list[Problem]) -> list[tuple[str, Any]]:
    """(where, document) pairs: a whole-body JSON value, else one document per line."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    else:
        if isinstance(doc, list):
            return [(f"{name} document {i + 1}", d) for i, d in enumerate(doc)]
        return [(f"{name} document 1", doc)]
    out: list[tuple[str, Any]] = []
    for n, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        where = f"{name} line {n}"
        try:
            out.append((where, orjson.loads(line)))
        except orjson.JSONDecodeError as exc:
            problems.append(Problem("invalid_json", where, f"invalid JSON: {exc}"))
    return out


@RECEIVERS.register(NAME)
def parse(data: bytes, options: ReceiverOptions) -> Parsed:
    problems: list[Problem] = []
    rows = MetricRows(NAME)  # one key for the whole body: see MetricRows for the ids
    ingest_us = options.ingest_us()
    for where, doc in _documents(data, options.input_name, problems):
        extract(doc, where, rows, problems, ingest_us)
    return Parsed("metrics", rows.batch(), problems)
