"""The shipped rule pack (builtin:ecs-operations) loads, and each rule fires on the public
examples of what it watches: ECS events from the developer guide, Stratus Red Team CloudTrail
detonations, the demo's synthetic bad minute."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pyarrow as pa
import pytest

from ecsguard.demo.traffic import ecs_events
from ecsguard.detect.loader import load_rules
from ecsguard.detect.replay import evaluate_rule
from ecsguard.detect.rules import Rule
from ecsguard.logs.receivers import RECEIVERS
from ecsguard.logs.records import ReceiverOptions

SHARED = Path(__file__).parents[2].parent / "shared" / "testdata"
STRATUS = SHARED / "cloudtrail" / "stratus-red-team-detonation-logs"
ECS = SHARED / "ecs-events"


@pytest.fixture(scope="module")
def pack() -> dict[str, Rule]:
    loaded = load_rules(["builtin:ecs-operations"])
    assert loaded.errors == []
    return {rule.id: rule for rule in loaded.rules}


def batch(receiver: str, data: bytes) -> pa.RecordBatch:
    parsed = RECEIVERS.get(receiver)(data, ReceiverOptions(input_name="test"))
    assert parsed.batch.num_rows, parsed.problems
    return parsed.batch


def fired(rule: Rule, table: str, data: pa.RecordBatch) -> int:
    return sum(m.count for m in evaluate_rule(rule, data, table))


def test_every_rule_of_the_pack_is_valid(pack: dict[str, Rule]) -> None:
    assert len(pack) == 13
    assert {r.severity.value for r in pack.values()} >= {"critical", "high", "medium"}


@pytest.mark.parametrize(
    ("rule_id", "example"),
    [
        ("ecs-deployment-failed", "ecs-deployment-state-change-service-deployment-failed.json"),
        ("ecs-task-placement-failure", "ecs-service-action-service-task-placement-failure.json"),
    ],
)
def test_ecs_rules_fire_on_the_developer_guide_examples(
    pack: dict[str, Rule], rule_id: str, example: str
) -> None:
    assert fired(pack[rule_id], "events", batch("ecs_events", (ECS / example).read_bytes())) == 1
    quiet = batch("ecs_events", (ECS / "ecs-service-action-service-steady-state.json").read_bytes())
    assert fired(pack[rule_id], "events", quiet) == 0


def test_ecs_rules_fire_on_the_demo_bad_minute(pack: dict[str, Rule]) -> None:
    services = [
        ("batch", "email-worker", "email:3"),
        ("prod", "api", "api:7"),
        ("prod", "web", "web:2"),
    ]
    events = batch("ecs_events", orjson.dumps(ecs_events(services)))
    assert fired(pack["ecs-task-oom"], "events", events) == 1
    assert fired(pack["ecs-essential-container-exited"], "events", events) == 1
    assert fired(pack["ecs-deployment-failed"], "events", events) == 1
    assert fired(pack["ecs-task-placement-failure"], "events", events) == 1
    assert fired(pack["ecs-health-check-failed"], "events", events) == 0


@pytest.mark.parametrize(
    ("rule_id", "technique"),
    [
        ("cloudtrail-stopped", "aws.defense-evasion.cloudtrail-stop"),
        ("cloudtrail-stopped", "aws.defense-evasion.cloudtrail-delete"),
        ("cloudtrail-stopped", "aws.defense-evasion.cloudtrail-event-selectors"),
        ("console-login-without-mfa", "aws.initial-access.console-login-without-mfa"),
        ("iam-access-key-created", "aws.persistence.iam-backdoor-user"),
        ("iam-role-policy-changed", "aws.persistence.iam-backdoor-role"),
    ],
)
def test_security_rules_fire_on_stratus_detonations(
    pack: dict[str, Rule], rule_id: str, technique: str
) -> None:
    records = batch("cloudtrail", (STRATUS / f"{technique}.json").read_bytes())
    assert fired(pack[rule_id], "cloudtrail", records) >= 1


def test_security_rules_stay_quiet_on_unrelated_detonations(pack: dict[str, Rule]) -> None:
    quiet = batch("cloudtrail", (STRATUS / "aws.execution.ssm-send-command.json").read_bytes())
    for rule in pack.values():
        if "cloudtrail" in json.dumps(rule.tags) or rule.type != "event_pattern":
            continue
        assert fired(rule, "cloudtrail", quiet) == 0, rule.id
