"""Rules over data that is already there: a file of events (`rules test`) or a past time range of
the store (`rules run --since 24h`). Time is the records' own: windows close as the data says."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa

from ecsguard.core.errors import UserError
from ecsguard.core.models import Alert
from ecsguard.detect.engine import AlertSink, AlertStore, Engine
from ecsguard.detect.rules import TYPES, Match, Rule
from ecsguard.logs.pipeline import Pipeline
from ecsguard.logs.query.timerange import TimeRange, parse_duration
from ecsguard.logs.receivers import RECEIVERS
from ecsguard.logs.records import ReceiverOptions
from ecsguard.logs.store import StoreLocation

#: the receiver that reads a file of records for each table
RECEIVER_FOR = {"events": "ecs_events", "cloudtrail": "cloudtrail", "logs": "lines"}
BATCH_ROWS = 65_536


def read_records(path: Path, table: str) -> pa.RecordBatch:
    """A file of events / CloudTrail records / log lines as one batch of `table`."""
    if table not in RECEIVER_FOR:
        raise UserError(f"rules over {table!r} cannot be tested with a file", "use `rules run`")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror}", "check the path") from None
    parsed = RECEIVERS.get(RECEIVER_FOR[table])(data, ReceiverOptions(input_name=str(path)))
    if parsed.batch.num_rows == 0:
        problems = "; ".join(str(p) for p in parsed.problems[:3])
        raise UserError(f"no {table} records in {path}" + (f": {problems}" if problems else ""))
    return parsed.batch


def evaluate_rule(rule: Rule, batch: pa.RecordBatch, table: str) -> list[Match]:
    """The matches of one rule over one batch, with the windows closed after the last record."""
    rule_type = TYPES.get(rule.type)
    if table not in rule_type.tables:
        raise UserError(
            f"rule {rule.id} ({rule.type}) reads {', '.join(rule_type.tables)}, not {table}",
            "give a file of the records it reads",
        )
    evaluator = rule_type.compile(rule)
    matches = list(evaluator.on_batch(table, batch))
    times = [t for t in batch.column("time").to_pylist() if t is not None]
    if times:
        matches.extend(evaluator.on_tick(max(times) + parse_duration(rule.window)))
    return matches


def _batches(pipeline: Pipeline, table: str, window: TimeRange) -> Iterator[pa.RecordBatch]:
    con = pipeline.connect()
    try:
        reader = con.sql(
            f'SELECT * EXCLUDE (dt{", hour" if table == "logs" else ""}) FROM "{table}" '
            f"WHERE {window.sql()} ORDER BY time"
        ).to_arrow_reader(BATCH_ROWS)
        yield from reader
    finally:
        con.close()


def run_range(
    rules: Sequence[Rule],
    data_dir: Path,
    window: TimeRange,
    on_alert: AlertSink | None = None,
    location: StoreLocation | None = None,
) -> list[Alert]:
    """Replay the store's records in `window` through the rules; alerts are stored in the data
    directory's alert store like live ones (a replay of the same range finds the same alerts)."""
    store = AlertStore(data_dir / "detect.db")
    engine = Engine(rules, store, on_alert=on_alert, live=False)
    pipeline = Pipeline(data_dir, store=location)
    alerts: dict[str, Alert] = {}
    last: datetime | None = None
    try:
        for table in sorted(engine.by_table):
            for batch in _batches(pipeline, table, window):
                for alert in engine.process(table, batch):
                    alerts[alert.id] = alert
                end = batch.column("time")[batch.num_rows - 1].as_py()
                for alert in engine.tick(end):
                    alerts[alert.id] = alert
                last = max(last, end) if last else end
        if last is not None:
            longest = max((parse_duration(r.window) for r in rules), default=timedelta())
            for alert in engine.tick(last + longest):
                alerts[alert.id] = alert
    finally:
        pipeline.close()
        store.close()
    return sorted(alerts.values(), key=lambda a: a.first_seen)
