"""One GetRecords batch into one `logs` batch.

A record whose data starts with the gzip magic is a CloudWatch Logs subscription message and goes
through the `cloudwatch` receiver (DATA_MESSAGE stored, CONTROL_MESSAGE dropped and counted); its
rows keep that receiver's ids, which come from the CloudWatch event ids. Any other record is NDJSON
or text lines (the `lines` receiver). Two identical lines in two records are two events, so a line's
id is made from the stream, shard, sequence number and its place in the record: a record read again
(after a takeover) gets the same ids and the store's de-duplication drops it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pyarrow as pa

from ecsguard.core.files import is_gzip
from ecsguard.logs.receivers import cloudwatch, lines
from ecsguard.logs.records import Parsed, Problem, ReceiverOptions, record_ids
from ecsguard.logs.schema import table_schema

SOURCE = "kinesis"


def line_ids(stream: str, shard: str, sequences: Sequence[str], counts: Sequence[int]) -> list[str]:
    """The id of every line: (stream, shard, sequence number, index within the record)."""
    keys = [f"{stream}/{shard}"] * sum(counts)
    seqs = [f"{seq}:{i}" for seq, n in zip(sequences, counts, strict=True) for i in range(n)]
    return record_ids(SOURCE, keys, [None] * len(keys), [""] * len(keys), seqs)


def decode(
    stream: str, shard: str, records: Sequence[dict[str, Any]], options: ReceiverOptions
) -> Parsed:
    """`records` as GetRecords returns them (Data as bytes, SequenceNumber)."""
    batches: list[pa.RecordBatch] = []
    problems: list[Problem] = []
    texts: list[str] = []
    sequences: list[str] = []
    counts: list[int] = []
    for record in records:
        data: bytes = record["Data"]
        seq: str = record["SequenceNumber"]
        where = f"kinesis {stream}/{shard} {seq}"
        if is_gzip(data):
            parsed = cloudwatch.parse(data, _with(options, where, source=SOURCE))
            problems.extend(parsed.problems)
            if parsed.batch.num_rows:
                batches.append(parsed.batch)
            continue
        found = lines.split_lines(data.decode("utf-8", "replace"))
        if found:
            texts.extend(found)
            sequences.append(seq)
            counts.append(len(found))
    if texts:
        # one parse for every text record of the batch: lines never hold "\n", so they come
        # back one row each, in order
        parsed = lines.parse_text("\n".join(texts), _with(options, f"kinesis {stream}/{shard}"))
        problems.extend(parsed.problems)
        batch = parsed.batch
        index = batch.schema.get_field_index("id")
        ids = pa.array(line_ids(stream, shard, sequences, counts), pa.string())
        batches.append(batch.set_column(index, "id", ids))
    schema = table_schema("logs")
    if not batches:
        return Parsed("logs", pa.RecordBatch.from_pylist([], schema=schema), problems)
    combined = pa.Table.from_batches([b.select(schema.names).cast(schema) for b in batches])
    return Parsed("logs", combined.combine_chunks().to_batches()[0], problems)


def _with(options: ReceiverOptions, name: str, source: str | None = None) -> ReceiverOptions:
    return replace(options, input_name=name, source=source or options.source or SOURCE)
