"""The `event_pattern` rule type over store batches: ECS events and CloudTrail records as the
receivers store them, matched in EventBridge's shape; one shared pass for all rules."""

from __future__ import annotations

import gc
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pydantic import ValidationError

import ecsguard.detect.types  # noqa: F401  (registers the types)
from ecsguard.detect.eventpattern import PatternSet, compile_pattern
from ecsguard.detect.eventpattern.records import to_events
from ecsguard.detect.rules import TYPES, Rule
from ecsguard.detect.types import event_pattern as event_pattern_type
from ecsguard.detect.types.event_pattern import SHARED, Settings, SharedPatterns
from ecsguard.logs.receivers import RECEIVERS
from ecsguard.logs.records import ReceiverOptions

TESTDATA = Path(__file__).parents[2].parent / "shared" / "testdata"
ECS_EVENTS = TESTDATA / "ecs-events"
STRATUS = TESTDATA / "cloudtrail" / "stratus-red-team-detonation-logs"


def store_batch(receiver: str, data: bytes) -> pa.RecordBatch:
    import ecsguard.logs.receivers.cloudtrail
    import ecsguard.logs.receivers.ecs_events  # noqa: F401

    return RECEIVERS.get(receiver)(data, ReceiverOptions()).batch


@pytest.fixture(scope="module")
def ecs_batch() -> pa.RecordBatch:
    files = sorted(ECS_EVENTS.glob("ecs-*.json"))
    lines = [json.dumps(json.loads(path.read_text())).encode() for path in files]
    return store_batch("ecs_events", b"\n".join(lines))


@pytest.fixture(scope="module")
def trail_batch() -> pa.RecordBatch:
    records: list[Any] = []
    for name in (
        "aws.defense-evasion.cloudtrail-stop.json",
        "aws.defense-evasion.cloudtrail-delete.json",
        "aws.initial-access.console-login-without-mfa.json",
        "aws.persistence.iam-create-admin-user.json",
    ):
        doc = json.loads((STRATUS / name).read_text())
        records.extend(doc if isinstance(doc, list) else doc["Records"])
    return store_batch("cloudtrail", json.dumps({"Records": records}).encode())


def rule(pattern: Any, rule_id: str = "r") -> Any:
    rule_type = TYPES.get("event_pattern")
    settings = rule_type.settings.model_validate({"pattern": pattern})
    compiled = Rule(id=rule_id, title="t", type="event_pattern", settings=settings)
    return rule_type.compile(compiled)


def test_settings_take_a_mapping_or_json_text_and_refuse_bad_patterns() -> None:
    assert Settings(pattern={"source": ["aws.ecs"]}).pattern == {"source": ["aws.ecs"]}
    assert Settings(pattern='{"source": ["aws.ecs"]}').pattern == '{"source": ["aws.ecs"]}'
    with pytest.raises(ValidationError, match="Empty arrays are not allowed"):
        Settings(pattern={"source": []})
    with pytest.raises(ValidationError, match="invalid JSON"):
        Settings(pattern='{"source": ')
    with pytest.raises(ValidationError, match="Extra inputs"):
        Settings.model_validate({"pattern": {"source": ["x"]}, "other": 1})
    assert TYPES.get("event_pattern").tables == ("events", "cloudtrail")


def test_ecs_events_match_with_summary_and_the_row_as_evidence(ecs_batch: pa.RecordBatch) -> None:
    evaluator = rule(
        {
            "source": ["aws.ecs"],
            "detail-type": ["ECS Service Action"],
            "detail": {"eventName": [{"prefix": "SERVICE_TASK"}]},
        },
        "placement",
    )
    matches = evaluator.on_batch("events", ecs_batch)
    assert len(matches) == 3
    first = matches[0]
    assert first.rule_id == "placement"
    assert first.summary.startswith("ECS Service Action from aws.ecs: arn:aws:ecs:")
    assert first.time == datetime(2019, 11, 19, 19, 55, 38, tzinfo=UTC)
    (row,) = first.evidence
    assert row["detail_type"] == "ECS Service Action" and row["time"] == first.time
    assert json.loads(row["detail"])["eventName"].startswith("SERVICE_TASK")
    assert evaluator.on_batch("logs", ecs_batch) == []


def test_events_are_rebuilt_in_eventbridge_shape(ecs_batch: pa.RecordBatch) -> None:
    original = json.loads((ECS_EVENTS / "ecs-task-state-change-running.json").read_text())
    rebuilt = next(e for e in to_events("events", ecs_batch) if e["id"] == original["id"])
    assert rebuilt == {key: original[key] for key in rebuilt}
    assert set(rebuilt) == {
        "version", "id", "detail-type", "source", "account", "time", "region", "resources",
        "detail",
    }  # fmt: skip


def test_cloudtrail_records_in_eventbridge_shape(trail_batch: pa.RecordBatch) -> None:
    stopped = rule(
        {
            "source": ["aws.cloudtrail"],
            "detail-type": ["AWS API Call via CloudTrail"],
            "detail": {
                "eventName": ["StopLogging", "DeleteTrail"],
                "errorCode": [{"exists": False}],
                "userIdentity": {"type": ["IAMUser"]},
            },
        },
        "trail-off",
    )
    summaries = sorted(m.summary for m in stopped.on_batch("cloudtrail", trail_batch))
    assert summaries == [
        "AWS API Call via CloudTrail from aws.cloudtrail: DeleteTrail by "
        "arn:aws:iam::847129010505:user/christophe",
        "AWS API Call via CloudTrail from aws.cloudtrail: StopLogging by "
        "arn:aws:iam::143434273843:user/christophe",
    ]
    sign_in = rule(
        {
            "detail-type": ["AWS Console Sign In via CloudTrail"],
            "detail": {"responseElements": {"ConsoleLogin": ["Success"]}},
        },
        "sign-in",
    )
    (match,) = sign_in.on_batch("cloudtrail", trail_batch)
    assert match.summary.startswith("AWS Console Sign In via CloudTrail from aws.signin: ")
    admin = rule(
        {
            "source": ["aws.iam"],
            "detail": {"requestParameters": {"policyArn": [{"suffix": "/AdministratorAccess"}]}},
        },
        "admin",
    )
    assert [m.evidence[0]["event_name"] for m in admin.on_batch("cloudtrail", trail_batch)] == [
        "AttachUserPolicy"
    ]
    event = to_events("cloudtrail", trail_batch)[0]
    assert event["resources"] == [] and event["detail"]["eventID"] == event["id"]
    assert event["time"].endswith("Z") and "errorCode" not in event["detail"]


def test_rules_share_one_pass_per_batch(
    ecs_batch: pa.RecordBatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    original = PatternSet.match_view

    def counting(self: PatternSet, view: Any, events: Any) -> list[Any]:
        found = original(self, view, events)
        calls.append(len(found))
        return found

    monkeypatch.setattr(PatternSet, "match_view", counting)
    evaluators = [
        rule({"source": ["aws.ecs"], "detail-type": ["ECS Deployment State Change"]}, "deploy"),
        rule({"source": ["aws.ecs"], "detail": {"eventType": ["ERROR"]}}, "errors"),
        rule({"source": ["aws.ecs"], "detail-type": ["ECS Deployment State Change"]}, "again"),
    ]
    found = [len(e.on_batch("events", ecs_batch)) for e in evaluators]
    assert found == [4, 3, 4]  # the same pattern twice is one entry, matched once
    # one pass over the batch for the three rules, listing only the rows something matched
    assert len(calls) == 1 and 0 < calls[0] < ecs_batch.num_rows
    calls.clear()
    other = pa.RecordBatch.from_pylist(ecs_batch.slice(0, 2).to_pylist(), ecs_batch.schema)
    expected = sum(evaluators[0].pattern.matches(e) for e in to_events("events", other))
    assert len(evaluators[0].on_batch("events", other)) == expected
    assert calls  # a new batch is matched anew


def test_rows_no_pattern_can_match_are_never_built(
    ecs_batch: pa.RecordBatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[int] = []
    original = event_pattern_type.to_events

    def counting(table: str, batch: pa.RecordBatch, wanted: Any = None) -> list[Any]:
        built.append(batch.num_rows)
        return original(table, batch, wanted)

    monkeypatch.setattr(event_pattern_type, "to_events", counting)
    shared = SharedPatterns()
    shared.register(compile_pattern({"source": ["aws.ec2"], "detail-type": ["EC2 Spot"]}))
    shared.register(compile_pattern({"detail-type": ["ECS Task State Change"]}))
    assert list(shared.match("events", ecs_batch).values()) == [[10, 11]]
    assert built == []  # decided column-wise: no event was built at all
    shared.register(compile_pattern({"detail": {"eventType": ["ERROR"]}}))
    found = shared.match("events", ecs_batch)
    assert len(found) == 2
    # detail.eventType is read from the JSON; the branch masks decide without any event
    assert built == []
    # exists:false is never decided by the masks: only rows something else let through are built
    shared.register(
        compile_pattern({"detail": {"eventType": ["ERROR"], "nope": [{"exists": False}]}})
    )
    found = shared.match("events", ecs_batch)
    assert len(found) == 3 and 0 < sum(built) < ecs_batch.num_rows


def test_a_released_rule_leaves_the_shared_set() -> None:
    pattern = {"source": ["aws.ecs"], "detail": {"only-in-this-test": ["x"]}}
    evaluator = rule(pattern)
    key = evaluator.key
    assert key in SHARED._set
    del evaluator
    gc.collect()
    len(SHARED)  # releases queued by finalizers are applied at the next use
    assert key not in SHARED._set


def test_a_release_inside_a_locked_section_does_not_deadlock() -> None:
    # a finalizer can run during a garbage collection inside SHARED's own locked code
    evaluator = rule({"source": ["aws.ecs"], "detail": {"gc-inside-lock": ["x"]}})
    key = evaluator.key
    with SHARED._lock:
        SHARED.release(key)  # would block for ever if it took the lock itself
    assert len(SHARED) >= 0 and key not in SHARED._set


ENGINE_RULES = """
rules:
  - id: deploy
    title: Deployments
    type: event_pattern
    event_pattern: {pattern: {source: [aws.ecs], detail-type: [ECS Deployment State Change]}}
  - id: errors
    title: Deployment errors
    type: event_pattern
    event_pattern: {pattern: {source: [aws.ecs], detail: {eventType: [ERROR]}}}
  - id: never
    title: Nothing in the batch
    type: event_pattern
    event_pattern: {pattern: {source: [aws.nothing]}}
"""


def test_the_engine_calls_only_the_rules_whose_pattern_the_batch_matched(
    ecs_batch: pa.RecordBatch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shared pass says which patterns matched; a rule whose pattern matched nothing is not
    called (it would have found nothing), and the alerts are those of calling every rule."""
    from ecsguard.detect.engine import AlertStore, Engine
    from ecsguard.detect.loader import load_text

    rules = load_text(ENGINE_RULES, "r.yaml").rules
    called: list[str] = []
    original = event_pattern_type.EventPatternRule.on_batch

    def counting(self: Any, table: str, batch: pa.RecordBatch) -> Any:
        called.append(self.rule.id)
        return original(self, table, batch)

    monkeypatch.setattr(event_pattern_type.EventPatternRule, "on_batch", counting)
    grouped = Engine(rules, AlertStore(tmp_path / "a.db"))
    grouped.process("events", ecs_batch)
    assert sorted(called) == ["deploy", "errors"]
    # the same rules called one by one, as without the group
    called.clear()
    alone = Engine(rules, AlertStore(tmp_path / "b.db"))
    alone.groups.clear()
    alone.process("events", ecs_batch)
    assert sorted(called) == ["deploy", "errors", "never"]

    def counts(engine: Engine) -> dict[str, int]:
        return {a.rule_id: a.count for a in engine.store.alerts()}

    assert counts(grouped) == counts(alone) == {"deploy": 4, "errors": 3}


def test_a_failing_group_lets_each_rule_run_and_report(
    ecs_batch: pa.RecordBatch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ecsguard.detect.engine import AlertStore, Engine
    from ecsguard.detect.loader import load_text

    def broken(self: Any, table: str, batch: pa.RecordBatch) -> Any:
        raise RuntimeError("the shared pass failed")

    engine = Engine(load_text(ENGINE_RULES, "r.yaml").rules, AlertStore(tmp_path / "a.db"))
    monkeypatch.setattr(SharedPatterns, "result", broken)
    engine.process("events", ecs_batch)
    assert engine.errors == dict.fromkeys(["deploy", "errors", "never"], "the shared pass failed")
