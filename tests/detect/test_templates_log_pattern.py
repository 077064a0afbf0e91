"""log_pattern: new templates after learning, rate jumps, per-service miners, filters, bounds,
and a restart that neither re-alerts on known templates nor forgets rates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa
import pytest
from pydantic import ValidationError

from ecsguard.detect import types as _types  # noqa: F401  (registers the rule types)
from ecsguard.detect.rules import TYPES, Match, Rule
from ecsguard.detect.types.log_pattern import LogPattern, Settings
from ecsguard.logs.schema import LOGS

T0 = datetime(2026, 11, 28, tzinfo=UTC)
PERIOD = timedelta(minutes=5)
USUAL = [
    "GET /api/orders/{n} 200 in {n} ms",
    "user {n} logged in from 10.0.{n}.7",
    "cache hit ratio {n}.5 for shard {n}",
]
RETRY = "retrying connection to 10.1.2.{n}:5432 after {n} ms"


def rule(**settings: Any) -> Rule:
    return Rule(
        id="log-shapes",
        title="Unusual log lines",
        type="log_pattern",
        settings=Settings(**settings),
    )


def logs(
    lines: list[str], at: datetime, service: str = "api", cluster: str = "prod"
) -> pa.RecordBatch:
    n = len(lines)
    columns: dict[str, list[Any]] = {name: [None] * n for name in LOGS.names}
    columns.update(
        time=[at + timedelta(seconds=i % 60) for i in range(n)],
        cluster=[cluster] * n,
        service=[service] * n,
        message=lines,
        id=[f"{service}-{at.timestamp()}-{i}" for i in range(n)],
    )
    return pa.RecordBatch.from_pydict(columns, schema=LOGS)


def usual(period: int, retries: int = 2) -> list[str]:
    lines = [template.format(n=period * 10 + i) for i in range(4) for template in USUAL]
    return lines + [RETRY.format(n=period + i) for i in range(retries)]


def learnt(evaluator: LogPattern, periods: int = 14, service: str = "api") -> list[Match]:
    """`periods` five-minute periods of ordinary lines (the first 12 are the learning hour)."""
    matches = []
    for p in range(periods):
        matches += evaluator.on_batch("logs", logs(usual(p), T0 + p * PERIOD, service))
    return matches


def test_a_new_kind_of_line_after_learning_alerts_once() -> None:
    evaluator = LogPattern(rule())
    assert learnt(evaluator) == []  # templates learnt silently, variables vary freely
    at = T0 + 14 * PERIOD
    lines = [*usual(14), "FATAL out of memory in worker 3", "FATAL out of memory in worker 4"]
    [match] = evaluator.on_batch("logs", logs(lines, at))
    assert (
        match.summary == "api (prod): a new kind of log line: 'FATAL out of memory in worker <NUM>'"
    )
    assert match.count == 2 and match.key[:3] == ("prod", "api", "new")
    assert match.time >= at
    assert [e["message"] for e in match.evidence] == lines[-2:]
    assert match.evidence[0]["template"] == "FATAL out of memory in worker <NUM>"
    # the same shape again is known now
    again = ["FATAL out of memory in worker 9"]
    assert evaluator.on_batch("logs", logs(again, at + PERIOD)) == []


def test_new_lines_during_learning_are_learnt_silently() -> None:
    evaluator = LogPattern(rule(learning="30m"))
    first = evaluator.on_batch("logs", logs(usual(0), T0))
    during = evaluator.on_batch("logs", logs(["starting worker pool of 8"], T0 + 20 * PERIOD / 5))
    assert first == [] and during == []
    after = evaluator.on_batch("logs", logs(["shutting down worker pool"], T0 + 7 * PERIOD))
    assert [m.key[2] for m in after] == ["new"]


def test_new_template_alerts_can_be_switched_off() -> None:
    evaluator = LogPattern(rule(new_templates=False))
    learnt(evaluator)
    assert evaluator.on_batch("logs", logs(["brand new line"], T0 + 14 * PERIOD)) == []


def test_a_rate_jump_alerts_as_soon_as_it_crosses_and_once_per_period() -> None:
    evaluator = LogPattern(rule())
    learnt(evaluator)  # RETRY: 2 lines a period
    at = T0 + 14 * PERIOD
    storm = [RETRY.format(n=i) for i in range(8)]
    assert evaluator.on_batch("logs", logs(storm, at)) == []  # 8 (+0): below min_count 20
    [jump] = evaluator.on_batch("logs", logs(storm * 2, at + timedelta(seconds=90)))
    assert jump.count == 24 and jump.key[:3] == ("prod", "api", "rate")
    assert jump.summary.startswith("api (prod): 24 lines in 5m like 'retrying connection to <IP>")
    assert "12.0x the average of 2.0 over the previous 1h" in jump.summary
    assert jump.time == at + PERIOD
    assert jump.evidence[0]["template"].startswith("retrying connection")
    # more of the storm in the same period: already said
    assert evaluator.on_batch("logs", logs(storm, at + timedelta(seconds=200))) == []


def test_a_steady_rate_above_min_count_is_no_jump() -> None:
    evaluator = LogPattern(rule(min_count=5))
    matches = []
    for p in range(20):
        matches += evaluator.on_batch("logs", logs(usual(p, retries=30), T0 + p * PERIOD))
    assert matches == []


def test_services_have_their_own_templates_and_learning() -> None:
    evaluator = LogPattern(rule())
    learnt(evaluator, service="api")
    at = T0 + 14 * PERIOD
    # worker has just started: learning, even for a line api never said
    assert evaluator.on_batch("logs", logs(["job 7 done"], at, service="worker")) == []
    # api saying it is news for api
    [match] = evaluator.on_batch("logs", logs(["job 7 done"], at, service="api"))
    assert match.key[:2] == ("prod", "api")
    assert [t[1] for t in evaluator.templates("prod", "worker")] == ["job <NUM> done"]
    assert evaluator.templates("prod", "nothing") == []


def test_filters_select_cluster_and_services_and_skip_null_messages() -> None:
    evaluator = LogPattern(rule(cluster="prod", services=("api",)))
    evaluator.on_batch("logs", logs(["a line"], T0, service="web"))
    evaluator.on_batch("logs", logs(["a line"], T0, cluster="dev"))
    evaluator.on_batch("metrics", logs(["a line"], T0))  # not a table this type reads
    assert evaluator.services == {}
    batch = logs(["x"], T0)
    nulls = batch.set_column(LOGS.get_field_index("message"), "message", pa.nulls(1, pa.string()))
    assert evaluator.on_batch("logs", nulls) == [] and evaluator.services == {}
    assert evaluator.on_batch("logs", logs([], T0)) == []


def test_mixed_services_in_one_batch_get_the_right_evidence() -> None:
    evaluator = LogPattern(rule(learning="1s"))
    evaluator.on_batch("logs", logs(["warm up"], T0, service="a"))
    evaluator.on_batch("logs", logs(["warm up"], T0, service="b"))
    later = T0 + PERIOD
    mixed = pa.concat_batches(
        [
            logs(["b says hello 1"], later, service="b"),
            logs(["a says hi 1", "a says hi 2"], later, service="a"),
            logs(["b says hello 2"], later, service="b"),
        ]
    )
    matches = sorted(evaluator.on_batch("logs", mixed), key=lambda m: m.key)
    assert [(m.key[1], m.count) for m in matches] == [("a", 2), ("b", 2)]
    assert [e["message"] for e in matches[1].evidence] == ["b says hello 1", "b says hello 2"]


def test_a_restart_keeps_known_templates_and_rates() -> None:
    evaluator = LogPattern(rule())
    learnt(evaluator)
    saved = orjson.loads(orjson.dumps(evaluator.state()))
    restarted = LogPattern(rule())
    restarted.restore(saved)
    at = T0 + 14 * PERIOD
    assert restarted.on_batch("logs", logs(usual(14), at)) == []  # nothing new, no jump
    storm = [RETRY.format(n=i) for i in range(40)]
    [jump] = restarted.on_batch("logs", logs(storm, at + PERIOD))
    assert jump.key[2] == "rate"
    [new] = restarted.on_batch("logs", logs(["disk quota exceeded"], at + PERIOD))
    assert new.key[2] == "new"
    # other mining options would make other templates: such a state is not applied
    other = LogPattern(rule(similarity=0.7))
    other.restore(saved)
    assert other.services == {}
    other.restore({"version": 0})
    assert other.services == {}


def test_state_is_bounded() -> None:
    evaluator = LogPattern(rule(max_services=2, trailing_periods=3, max_templates=10))
    for p in range(30):
        evaluator.on_batch("logs", logs(usual(p), T0 + p * PERIOD, service="api"))
    for service in ("b", "c"):
        evaluator.on_batch("logs", logs(["hello"], T0 + 30 * PERIOD, service=service))
    assert sorted(k[1] for k in evaluator.services) == ["b", "c"]  # api was the stalest
    assert evaluator.forgotten_services == 1
    evaluator = LogPattern(rule(trailing_periods=3))
    learnt(evaluator, periods=30)
    [api] = evaluator.services.values()
    assert all(len(per) <= 5 for per in api.counts.values())


def test_group_by_builds_the_key() -> None:
    grouped = rule().model_copy(update={"group_by": ("service", "kind")})
    evaluator = LogPattern(grouped)
    learnt(evaluator)
    [match] = evaluator.on_batch("logs", logs(["brand new line"], T0 + 14 * PERIOD))
    assert match.key == ("api", "new")


def test_registered_with_its_table() -> None:
    kind = TYPES.get("log_pattern")
    assert kind.tables == ("logs",) and kind.settings is Settings
    assert LogPattern(rule()).on_tick(T0) == []


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"learning": "soon"}, "cannot read the duration"),
        ({"period": "0s"}, "too short"),
        ({"rate_factor": 1}, "greater than 1"),
        ({"min_count": 0}, "greater than or equal to 1"),
        ({"similarity": 1.5}, "less than or equal to 1"),
        ({"depth": 2}, "greater than or equal to 3"),
        ({"treshold": 3}, "Extra inputs are not permitted"),
    ],
)
def test_bad_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        rule(**settings)
