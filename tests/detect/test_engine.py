"""The engine: matches grouped into alerts per rule, key and window; state across restarts;
log_filter as the rule type that exercises it; replay over the store; the rules CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from ecsguard.cli.main import cli
from ecsguard.core.models import Alert
from ecsguard.detect.engine import AlertStore, Engine
from ecsguard.detect.loader import load_text
from ecsguard.detect.replay import run_range
from ecsguard.logs.pipeline import Pipeline
from ecsguard.logs.query.timerange import TimeRange
from ecsguard.logs.schema import LOGS

# an hour before now, on the hour: a restarted engine reloads the alerts of the last day only
T = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
ISO = "%Y-%m-%dT%H:%M:%SZ"
RULES = """
rules:
  - id: errors
    title: Errors in a service
    type: log_filter
    group_by: [service]
    window: 5m
    log_filter: {pattern: ERROR}
  - id: oom-burst
    title: Three OOM lines within the window
    type: log_filter
    window: 10m
    log_filter:
      pattern: OutOfMemoryError
      min_count: 3
      metric: {name: oom-lines}
"""


def batch(*lines: tuple[str, str], at: datetime = T) -> pa.RecordBatch:
    n = len(lines)
    cols = {f.name: pa.nulls(n, f.type) for f in LOGS}
    cols["time"] = pa.array([at + timedelta(seconds=i) for i in range(n)], LOGS.field("time").type)
    cols["service"] = pa.array([s for s, _ in lines], pa.string())
    cols["message"] = pa.array([m for _, m in lines], pa.string())
    cols["id"] = pa.array([f"{at.timestamp()}-{i}" for i in range(n)], pa.string())
    return pa.RecordBatch.from_pydict(cols, schema=LOGS)


def engine(tmp_path: Path, sink: list[tuple[Alert, bool]] | None = None) -> Engine:
    rules = load_text(RULES, "r.yaml").rules
    store = AlertStore(tmp_path / "detect.db")
    return Engine(rules, store, on_alert=(lambda a, new: sink.append((a, new))) if sink else None)


def test_a_burst_is_one_alert_per_key_with_a_count(tmp_path: Path) -> None:
    seen: list[tuple[Alert, bool]] = [(None, False)]  # type: ignore[list-item]
    eng = engine(tmp_path, seen)
    eng.process("logs", batch(("api", "ERROR a"), ("api", "ERROR b"), ("web", "ERROR c")))
    eng.process("logs", batch(("api", "ERROR d"), at=T + timedelta(minutes=2)))
    alerts = {a.key[0]: a for a in eng.store.alerts(rule="errors")}
    assert alerts["api"].count == 3 and alerts["web"].count == 1
    assert alerts["api"].evidence[0]["message"] == "ERROR a"
    assert [new for _, new in seen[1:]] == [True, True, False]
    # outside the window: a new alert
    eng.process("logs", batch(("api", "ERROR e"), at=T + timedelta(minutes=30)))
    assert len(eng.store.alerts(rule="errors")) == 3


def test_each_group_takes_its_own_first_lines_as_evidence(tmp_path: Path) -> None:
    eng = engine(tmp_path)
    lines = [("api", "ERROR a"), ("web", "ERROR b"), ("api", "fine"), ("api", "ERROR c")]
    lines += [("web", "ERROR d"), ("api", "ERROR e"), ("api", "ERROR f")]
    eng.process("logs", batch(*lines))
    alerts = {a.key[0]: a for a in eng.store.alerts(rule="errors")}
    assert [e["message"] for e in alerts["api"].evidence] == ["ERROR a", "ERROR c", "ERROR e"]
    assert [e["message"] for e in alerts["web"].evidence] == ["ERROR b", "ERROR d"]
    assert (alerts["api"].count, alerts["web"].count) == (4, 2)
    assert alerts["api"].last_seen == T + timedelta(seconds=6)


def test_min_count_and_metric_datapoints(tmp_path: Path) -> None:
    metrics: list[pa.RecordBatch] = []
    eng = engine(tmp_path)
    eng.on_metrics = metrics.append
    eng.process("logs", batch(("api", "java.lang.OutOfMemoryError"), ("api", "x")))
    assert eng.store.alerts(rule="oom-burst") == []
    eng.process("logs", batch(*[("api", "OutOfMemoryError")] * 2, at=T + timedelta(minutes=1)))
    (alert,) = eng.store.alerts(rule="oom-burst")
    assert alert.count == 2 and "matched 'OutOfMemoryError'" in alert.summary
    eng.tick(T + timedelta(minutes=2))
    (points,) = metrics
    assert points.column("name").to_pylist() == ["oom-lines", "oom-lines"]
    assert points.column("value").to_pylist() == [1.0, 2.0]


def test_a_restart_continues_the_burst(tmp_path: Path) -> None:
    first = engine(tmp_path)
    first.process("logs", batch(("api", "ERROR a")))
    first.store.close()
    now = datetime.now(UTC)
    second = engine(tmp_path)
    # the reloaded open alert absorbs a match within its window instead of alerting again
    second.process("logs", batch(("api", "ERROR b"), at=T + timedelta(seconds=30)))
    (alert,) = second.store.alerts(rule="errors")
    assert alert.count == 2 and alert.last_seen < now


def test_a_broken_rule_does_not_stop_the_others(tmp_path: Path) -> None:
    eng = engine(tmp_path)

    def broken(table: str, data: pa.RecordBatch) -> list[object]:
        raise RuntimeError("bug in a rule")

    eng.evaluators["oom-burst"].on_batch = broken  # type: ignore[method-assign]
    eng.process("logs", batch(("api", "ERROR x")))
    assert eng.errors == {"oom-burst": "bug in a rule"}
    assert len(eng.store.alerts(rule="errors")) == 1


def test_replay_over_the_store_and_the_cli(tmp_path: Path) -> None:
    pipeline = Pipeline(tmp_path)
    pipeline.ingest("logs", batch(("api", "ERROR a"), ("api", "fine"), ("web", "ERROR b")))
    pipeline.flush()
    pipeline.ingest("logs", batch(("api", "ERROR c"), at=T + timedelta(hours=1)))  # in the WAL
    pipeline.close()
    rules = load_text(RULES, "r.yaml").rules
    window = TimeRange(T - timedelta(hours=1), T + timedelta(hours=2))
    alerts = run_range(rules, tmp_path, window)
    assert sorted((a.key[0], a.count) for a in alerts) == [("api", 1), ("api", 1), ("web", 1)]
    rule_file = tmp_path / "rules.yaml"
    rule_file.write_text(RULES)
    runner = CliRunner()
    out = runner.invoke(
        cli,
        [
            "rules",
            "run",
            "--rules",
            str(rule_file),
            "--start",
            (T - timedelta(hours=1)).strftime(ISO),
            "--end",
            (T + timedelta(hours=2)).strftime(ISO),
            "--output",
            "json",
            "--data-dir",
            str(tmp_path),
        ],
    )
    assert out.exit_code == 0, out.output
    assert len(json.loads(out.output)) == 3
    stored = runner.invoke(
        cli,
        ["rules", "alerts", "--since", "3650d", "--output", "json", "--data-dir", str(tmp_path)],
    )
    assert {a["rule_id"] for a in json.loads(stored.output)} == {"errors"}


def test_cli_validate_and_test(tmp_path: Path) -> None:
    rule_file = tmp_path / "rules.yaml"
    rule_file.write_text(RULES)
    runner = CliRunner()
    ok = runner.invoke(cli, ["rules", "validate", str(rule_file)])
    assert ok.exit_code == 0 and "2 rules valid (2 log_filter)" in ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\ntitle: t\ntype: log_filter\nlog_filter: {pattern: '%a!%'}\n")
    failed = runner.invoke(cli, ["rules", "validate", str(bad)])
    assert failed.exit_code != 0
    assert f"{bad}:4: log_filter.pattern" in failed.output
    lines = tmp_path / "app.log"
    lines.write_text("starting\nERROR boom\nOutOfMemoryError\n")
    tested = runner.invoke(cli, ["rules", "test", str(rule_file), "--events", str(lines)])
    assert tested.exit_code == 0, tested.output
    assert "1 match(es)" in tested.output
    as_json = runner.invoke(
        cli, ["rules", "test", str(rule_file), "--events", str(lines), "--output", "json"]
    )
    (match,) = json.loads(as_json.output)
    assert match["rule"] == "errors" and "ERROR boom" in match["why"]
    none = tmp_path / "quiet.log"
    none.write_text("all good\n")
    assert (
        runner.invoke(cli, ["rules", "test", str(rule_file), "--events", str(none)]).exit_code == 1
    )
    types = runner.invoke(cli, ["rules", "types"])
    assert "log_filter" in types.output


SHARED = Path(__file__).parents[2].parent / "shared" / "testdata"


def test_import_sigma_writes_a_rule_file_that_detects(tmp_path: Path) -> None:
    out = tmp_path / "sigma.yaml"
    runner = CliRunner()
    imported = runner.invoke(cli, ["rules", "import-sigma", str(SHARED / "sigma"), "-o", str(out)])
    assert imported.exit_code == 0, imported.output
    assert "56 Sigma rules supported, 10 not" in imported.output
    assert "not imported: aws/unsupported/" in imported.output
    assert "56 rules valid" in runner.invoke(cli, ["rules", "validate", str(out)]).output
    trail = SHARED / "cloudtrail" / "stratus-red-team-detonation-logs"
    stop = next(trail.glob("*cloudtrail-stop*.json"))
    tested = runner.invoke(
        cli, ["rules", "test", str(out), "--events", str(stop), "--output", "json"]
    )
    assert tested.exit_code == 0, tested.output
    assert any("StopLogging" in m["why"] for m in json.loads(tested.output))


def test_derived_datapoints_have_ids_apart_across_ticks(tmp_path: Path) -> None:
    # the same minute counted at two ticks: equal datapoints, two rows (ids never equal)
    metrics: list[pa.RecordBatch] = []
    eng = engine(tmp_path)
    eng.on_metrics = metrics.append
    for _ in range(2):
        eng.process("logs", batch(("api", "java.lang.OutOfMemoryError")))
        eng.tick(T + timedelta(minutes=2))
    first, second = metrics
    assert first.column("value").to_pylist() == second.column("value").to_pylist() == [1.0]
    ids = first.column("id").to_pylist() + second.column("id").to_pylist()
    assert len(set(ids)) == 2 and all(ids)


def test_the_datapoints_rules_derive_in_a_tick_come_as_one_batch(tmp_path: Path) -> None:
    # each batch is stored and evaluated by every metric rule: one per tick, not one per rule
    text = (
        RULES
        + """
  - id: error-lines
    title: Error lines counted
    type: log_filter
    log_filter: {pattern: ERROR, metric: {name: error-lines}}
"""
    )
    metrics: list[pa.RecordBatch] = []
    eng = Engine(load_text(text, "r.yaml").rules, AlertStore(tmp_path / "d.db"))
    eng.on_metrics = metrics.append
    eng.process("logs", batch(("api", "ERROR java.lang.OutOfMemoryError"), ("api", "ERROR")))
    eng.tick(T + timedelta(minutes=2))
    (derived,) = metrics
    names, values = derived["name"].to_pylist(), derived["value"].to_pylist()
    assert sorted(zip(names, values, strict=True)) == [
        ("error-lines", 2.0),
        ("oom-lines", 1.0),
    ]
    eng.tick(T + timedelta(minutes=3))
    assert len(metrics) == 1  # nothing new counted: no batch


def test_grown_alerts_are_written_at_the_tick_or_before_a_read(tmp_path: Path) -> None:
    eng = engine(tmp_path)
    other = AlertStore(tmp_path / "detect.db")  # another reader of the file, as the CLI is

    def counts(store: AlertStore) -> list[int]:
        return [a.count for a in store.alerts(rule="errors")]

    eng.process("logs", batch(("api", "ERROR a")))
    assert counts(other) == [1]  # a new alert is written with its batch
    eng.process("logs", batch(("api", "ERROR b"), at=T + timedelta(seconds=30)))
    assert counts(other) == [1]  # grown: staged
    eng.tick(T + timedelta(minutes=1))
    assert counts(other) == [2]  # the tick wrote it
    eng.process("logs", batch(("api", "ERROR c"), at=T + timedelta(seconds=40)))
    assert counts(eng.store) == [3]  # a read of the engine's own store writes first
    assert counts(other) == [3]
    eng.process("logs", batch(("api", "ERROR d"), at=T + timedelta(seconds=50)))
    eng.store.close()  # and so does closing it
    assert counts(other) == [4]
    other.close()


def _alert(count: int, evidence: list[dict[str, str]], seconds: int = 0) -> Alert:
    return Alert(
        id="a1", rule_id="errors", title="Errors", severity="high", summary="ERROR a",
        first_seen=T, last_seen=T + timedelta(seconds=seconds), count=count, key=["api"],
        evidence=evidence,
    )  # fmt: skip


def test_an_alert_that_only_grew_keeps_its_stored_body(tmp_path: Path) -> None:
    """A growth with the evidence unchanged updates the count and last_seen columns, which
    reads take over the body's; new evidence, a new alert, or a write after a rollback store
    the body whole."""
    store = AlertStore(tmp_path / "detect.db")
    other = AlertStore(tmp_path / "detect.db")  # another reader, as the console is

    def body() -> str:
        return store._db.execute("SELECT body FROM alerts").fetchone()[0]

    def stored() -> Alert:
        (alert,) = other.alerts()
        return alert

    store.save_many([_alert(1, [{"m": "a"}])])
    first = body()
    store.stage([_alert(5, [{"m": "a"}], seconds=30)])
    store.flush()
    assert body() == first  # not rewritten
    assert (stored().count, stored().last_seen) == (5, T + timedelta(seconds=30))
    assert stored().evidence == [{"m": "a"}]
    store.stage([_alert(6, [{"m": "a"}, {"m": "b"}], seconds=40)])
    store.flush()
    assert stored() == _alert(6, [{"m": "a"}, {"m": "b"}], seconds=40)
    # the same id made again (a replay) is stored whole, whatever its evidence's length
    store.save_many([_alert(1, [{"m": "x"}, {"m": "y"}])])
    assert stored() == _alert(1, [{"m": "x"}, {"m": "y"}])
    # a rolled back write is forgotten: the next one stores the body again
    with pytest.raises(RuntimeError), store.transaction():
        store._db.execute("DELETE FROM alerts")
        store.save_many([_alert(2, [{"m": "z"}])])
        raise RuntimeError("boom")
    store._db.execute("DELETE FROM alerts")
    store.stage([_alert(3, [{"m": "z"}], seconds=50)])
    store.flush()
    assert stored() == _alert(3, [{"m": "z"}], seconds=50)
    store.close()
    other.close()


def test_rule_state_is_written_when_it_changes(tmp_path: Path) -> None:
    store = AlertStore(tmp_path / "detect.db")
    writes: list[str] = []
    store._db.set_trace_callback(writes.append)
    store.save_state("r", {"n": 1})
    store.save_state("r", {"n": 1})  # unchanged: no statement
    store.save_state("r", {"n": 2})
    assert sum("rule_state" in w for w in writes) == 2
    assert store.state("r") == {"n": 2}
    # a rolled back transaction forgets what it wrote: the next save writes again
    with pytest.raises(RuntimeError), store.transaction():
        store.save_state("r", {"n": 3})
        raise RuntimeError("boom")
    store.save_state("r", {"n": 3})
    assert store.state("r") == {"n": 3}
    store.close()


SCOPED = """
rules:
  - id: api-errors
    title: Errors of the api service
    type: log_filter
    log_filter: {pattern: ERROR, service: api}
  - id: ok-api-prod
    title: OK lines of the api service in cluster prod
    type: log_filter
    log_filter: {pattern: ok, cluster: prod, service: api}
"""


@pytest.mark.parametrize(
    "services",
    [["api", "web", "api", "web"], ["api"] * 4, ["web"] * 4],
    ids=["mixed", "all in", "all out"],
)
def test_cluster_and_service_scope_the_rows_a_filter_counts(
    tmp_path: Path, services: list[str]
) -> None:
    eng = Engine(load_text(SCOPED, "r.yaml").rules, AlertStore(tmp_path / "detect.db"))
    data = batch(
        *((service, f"ERROR {i}" if i % 2 == 0 else "ok") for i, service in enumerate(services))
    )
    clusters = ["prod", "dev", "prod", "prod"]
    data = data.set_column(
        data.schema.get_field_index("cluster"), "cluster", pa.array(clusters, pa.string())
    )
    eng.process("logs", data)
    counts = {a.rule_id: a.count for a in eng.store.alerts()}
    errors = sum(s == "api" and i % 2 == 0 for i, s in enumerate(services))
    ok_in_prod = sum(
        s == "api" and c == "prod" and i % 2 == 1
        for i, (s, c) in enumerate(zip(services, clusters, strict=True))
    )
    expected = {rule: n for rule, n in (("api-errors", errors), ("ok-api-prod", ok_in_prod)) if n}
    assert counts == expected


# --- evidence rows: rules.rows converts times itself, and must give what to_pylist gives ------

_MAX_DATETIME_US = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), st.integers(-(2**62), 2**62), st.integers(0, _MAX_DATETIME_US)),
        min_size=1,
        max_size=6,
    ),
    st.sampled_from([None, "UTC", "Asia/Tokyo", "+09:00"]),
    st.sampled_from(["us", "ms"]),
    st.data(),
)
def test_evidence_rows_are_to_pylist_of_the_rows(
    values: list[int | None], zone: str | None, unit: str, data: st.DataObject
) -> None:
    from ecsguard.detect.rules import rows

    kind = pa.timestamp(unit, tz=zone)
    if unit == "ms":
        values = [None if v is None else v // 1000 for v in values]
    batch = pa.RecordBatch.from_pydict(
        {"time": pa.array(values, kind), "text": [str(v) for v in values]}
    )
    wanted = data.draw(st.lists(st.integers(0, len(values) - 1), max_size=4))
    try:
        expected = batch.take(pa.array(wanted, pa.int64())).to_pylist()
    except (ValueError, OverflowError) as exc:  # beyond datetime: the same refusal
        with pytest.raises(type(exc)):
            rows(batch, wanted)
        return
    found = rows(batch, wanted)
    assert found == expected
    assert [repr(row) for row in found] == [repr(row) for row in expected]  # zones alike


def test_matched_rows_times_read_alike_in_any_unit() -> None:
    """micros reads a timestamp column's values from its buffer (µs, no nulls) or through
    Arrow (any other column); log filters group and count by them as Arrow would."""
    import pyarrow.compute as pc

    from ecsguard.detect.rules import micros, moment
    from ecsguard.detect.types.log_filter import _groups, _per_minute

    us = [0, 59_000_000, 61_000_000, None]
    as_us = pa.array(us, pa.timestamp("us", tz="UTC"))
    assert micros(as_us, [3, 1, 0]) == [None, 59_000_000, 0]
    in_ms = pa.array([None if v is None else v // 1000 for v in us], pa.timestamp("ms", tz="UTC"))
    assert micros(in_ms, [0, 1, 2, 3]) == us
    in_buffer = pa.array(us[:3], pa.timestamp("us", tz="UTC")).slice(1)  # an offset, no nulls
    assert micros(in_buffer, [1, 0]) == [61_000_000, 59_000_000]
    assert repr(moment(61_000_000, as_us.type)) == repr(as_us[2].as_py())
    batch = pa.RecordBatch.from_pydict({"service": ["a", "b", "a", "a"]})
    assert _groups(batch, [0, 1, 2, 3], us, [], 60) == [((), [0, 1]), ((), [2]), ((), [3])]
    keyed = _groups(batch, [0, 1, 2], us[:3], ["service"], 60)
    assert keyed == [(("a",), [0]), (("b",), [1]), (("a",), [2])]
    floors = pc.value_counts(pc.floor_temporal(as_us, unit="minute")).to_pylist()
    expected = {row["values"]: row["counts"] for row in floors if row["values"] is not None}
    assert _per_minute(us, as_us.type) == expected


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "", "é", "GetObject"])), max_size=40),
    st.integers(0, 5),
)
def test_column_codes_number_each_row_by_its_value_once_per_batch(
    values: list[str | None], offset: int
) -> None:
    """The shared encoding event patterns and Sigma rules read: each row's value at its code,
    distinct values, int32 codes without nulls; asked again about the same batch, the same
    answer object; about another batch, that batch's."""
    from ecsguard.detect.rules import column_codes

    batch = pa.RecordBatch.from_pydict({"name": pa.array(["x"] * offset + values, pa.string())})
    batch = batch.slice(offset)  # an offset, as a batch sliced from a larger one has
    distinct, codes = column_codes(batch, "name")
    assert codes.type == pa.int32() and codes.null_count == 0
    assert [distinct[code] for code in codes.to_pylist()] == values
    assert len(set(distinct)) == len(distinct) and set(distinct) == set(values)
    assert column_codes(batch, "name") is column_codes(batch, "name")
    other = pa.RecordBatch.from_pydict({"name": pa.array(["z", None])})
    assert column_codes(other, "name")[0] == ["z", None]
