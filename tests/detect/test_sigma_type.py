"""The `sigma` rule type: settings, the evaluator's matches, import of a SigmaHQ folder."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from ecsguard.core.errors import UserError
from ecsguard.core.models import Severity
from ecsguard.detect.loader import load_text
from ecsguard.detect.rules import TYPES, Rule
from ecsguard.detect.types.sigma import SigmaSettings, import_sigma_dir
from ecsguard.logs.receivers.cloudtrail import parse
from ecsguard.logs.records import ReceiverOptions

SIGMAHQ = Path(__file__).parents[2].parent / "shared" / "testdata" / "sigma"

STOPPED = {
    "title": "CloudTrail stopped",
    "id": "4d5b1a7e-0c1e-4a4e-9f59-2f5d0c5e8b11",
    "level": "high",
    "tags": ["attack.defense-evasion", "attack.t1562.008"],
    "logsource": {"product": "aws", "service": "cloudtrail"},
    "detection": {
        "selection": {
            "eventSource": "cloudtrail.amazonaws.com",
            "eventName": ["StopLogging", "DeleteTrail"],
        },
        "condition": "selection",
    },
}


def trail_event(name: str, arn: str, ip: str) -> dict[str, Any]:
    return {
        "eventTime": "2024-07-31T13:06:24Z",
        "eventID": f"id-{name}-{ip}",
        "eventSource": "cloudtrail.amazonaws.com",
        "eventName": name,
        "sourceIPAddress": ip,
        "userIdentity": {"type": "IAMUser", "arn": arn},
        "requestParameters": {"name": "main"},
    }


def batch_of(*records: dict[str, Any]) -> Any:
    return parse(orjson.dumps(list(records)), ReceiverOptions()).batch


def sigma_rule(settings: dict[str, Any], **fields: Any) -> Rule:
    return Rule(
        id="ct-stopped",
        title="CloudTrail stopped",
        type="sigma",
        settings=SigmaSettings.model_validate(settings),
        **fields,
    )


def test_the_type_is_registered_for_the_cloudtrail_table() -> None:
    rule_type = TYPES.get("sigma")
    assert rule_type.settings is SigmaSettings and tuple(rule_type.tables) == ("cloudtrail",)


def test_matches_carry_title_event_and_record() -> None:
    rule = sigma_rule({"rule": STOPPED}, group_by=("userIdentity.arn",))
    evaluator = TYPES.get("sigma").compile(rule)
    batch = batch_of(
        trail_event("StopLogging", "arn:aws:iam::1:user/eve", "203.0.113.9"),
        trail_event("DescribeTrails", "arn:aws:iam::1:user/bob", "198.51.100.1"),
        trail_event("DeleteTrail", "arn:aws:iam::1:user/eve", "203.0.113.9"),
    )
    first, second = evaluator.on_batch("cloudtrail", batch)
    assert first.rule_id == "ct-stopped"
    assert first.time == datetime(2024, 7, 31, 13, 6, 24, tzinfo=UTC)
    assert first.summary == (
        "CloudTrail stopped: StopLogging by arn:aws:iam::1:user/eve from 203.0.113.9"
    )
    assert [e["event_id"] for e in first.evidence] == ["id-StopLogging-203.0.113.9"]
    assert first.key == ("arn:aws:iam::1:user/eve",)
    assert second.evidence[0]["event_name"] == "DeleteTrail"
    assert evaluator.on_batch("logs", batch) == []
    assert evaluator.on_batch("cloudtrail", batch.slice(1, 1)) == []


def test_error_codes_appear_in_the_summary() -> None:
    rule = sigma_rule({"rule": STOPPED})
    record = {**trail_event("StopLogging", "arn:x", "1.2.3.4"), "errorCode": "AccessDenied"}
    (match,) = TYPES.get("sigma").compile(rule).on_batch("cloudtrail", batch_of(record))
    assert match.summary.endswith("from 1.2.3.4 (AccessDenied)")


def test_a_group_by_field_the_table_does_not_keep_is_refused() -> None:
    rule = sigma_rule({"rule": STOPPED}, group_by=("vpcEndpointId",))
    with pytest.raises(UserError, match="group_by field 'vpcEndpointId' is not kept"):
        TYPES.get("sigma").compile(rule)


def test_settings_take_a_file_relative_to_the_base_dir(tmp_path: Path) -> None:
    (tmp_path / "stopped.yml").write_text(orjson.dumps(STOPPED).decode())  # JSON is YAML
    settings = SigmaSettings.model_validate(
        {"path": "stopped.yml"}, context={"base_dir": str(tmp_path)}
    )
    assert settings.spec.title == "CloudTrail stopped"
    absolute = SigmaSettings.model_validate({"path": str(tmp_path / "stopped.yml")})
    assert absolute.spec.severity == Severity.HIGH


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "give either `rule` (a Sigma rule inline) or `path`"),
        ({"rule": STOPPED, "path": "x.yml"}, "give either"),
        ({"path": "/no/such/rule.yml"}, "no Sigma rule file at /no/such/rule.yml"),
        (
            {"rule": {**STOPPED, "detection": {"s": {"vpcEndpointId": "x"}, "condition": "s"}}},
            "does not keep: vpcEndpointId",
        ),
        (
            {
                "rule": {
                    **STOPPED,
                    "detection": {"s": {"eventName": "x"}, "condition": "s | count()"},
                }
            },
            "aggregation",
        ),
        ({"rule": STOPPED, "extra": 1}, "Extra inputs are not permitted"),
    ],
)
def test_bad_settings_say_why(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SigmaSettings.model_validate(settings)


def test_a_file_with_two_rules_or_a_bad_rule_is_refused(tmp_path: Path) -> None:
    text = orjson.dumps(STOPPED).decode()
    (tmp_path / "two.yml").write_text(text + "\n---\n" + text)
    with pytest.raises(ValidationError, match="holds 2 Sigma rules"):
        SigmaSettings.model_validate({"path": str(tmp_path / "two.yml")})
    (tmp_path / "bad.yml").write_text("title: x\nlogsource: {product: aws}\ndetection: [\n")
    with pytest.raises(ValidationError, match="invalid YAML"):
        SigmaSettings.model_validate({"path": str(tmp_path / "bad.yml")})


def test_a_rule_file_with_an_inline_sigma_rule_loads_and_errors_have_lines() -> None:
    good = """
id: ct-stopped
title: CloudTrail stopped
type: sigma
severity: high
sigma:
  rule:
    title: CloudTrail stopped
    logsource: {product: aws, service: cloudtrail}
    detection:
      selection: {eventName: StopLogging}
      condition: selection
"""
    loaded = load_text(good, "ct.yaml")
    assert loaded.errors == [] and loaded.rules[0].settings.spec.title == "CloudTrail stopped"
    bad = load_text(good.replace("{eventName: StopLogging}", "{vpcEndpointId: x}"), "ct.yaml")
    assert len(bad.errors) == 1
    assert bad.errors[0].startswith("ct.yaml:") and "does not keep: vpcEndpointId" in bad.errors[0]


def test_import_sigma_dir_turns_sigmahq_into_rules() -> None:
    rules, problems = import_sigma_dir(SIGMAHQ)
    assert len(rules) == 56 and len(problems) == 10
    by_id = {r.id: r for r in rules}
    assert len(by_id) == len(rules)
    disable = by_id["sigma-4db60cc0-36fb-42b7-9b58-a5b53019fb74"]
    assert disable.title == "AWS CloudTrail Important Change"
    assert disable.type == "sigma" and disable.severity == Severity.MEDIUM
    assert disable.tags == ("attack.defense-impairment", "attack.t1685.002")
    assert disable.source == "aws/aws_cloudtrail_disable_logging.yml:1"
    assert {r.severity for r in rules} >= {Severity.LOW, Severity.MEDIUM, Severity.HIGH}
    assert all(r.settings.rule["title"] == r.title for r in rules)
    assert not any("aws_root_account_usage.yml" in p for p in problems)  # eventType is kept
    # the imported rules evaluate like any other
    evaluator = TYPES.get("sigma").compile(disable)
    event = trail_event("StopLogging", "arn:aws:iam::1:user/eve", "203.0.113.9")
    assert len(evaluator.on_batch("cloudtrail", batch_of(event))) == 1


def test_import_names_a_rule_without_an_id_after_its_file(tmp_path: Path) -> None:
    doc = {k: v for k, v in STOPPED.items() if k not in ("id", "level")}
    (tmp_path / "no id here.yml").write_text(orjson.dumps(doc).decode())
    (rule,), problems = import_sigma_dir(tmp_path)
    assert rule.id == "sigma-no-id-here" and rule.severity == Severity.MEDIUM and problems == []


STRATUS = SIGMAHQ.parent / "cloudtrail" / "stratus-red-team-detonation-logs"


def test_the_engine_calls_only_the_sigma_rules_a_batch_passes_the_screen_of(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SigmaHQ's rules over each Stratus detonation: a rule the shared screen leaves out of a
    batch matches no row of it, the others are called, and the alerts are those of calling
    every rule."""
    from ecsguard.detect.engine import AlertStore, Engine
    from ecsguard.detect.sigma.evaluate import SCREEN
    from ecsguard.detect.types import sigma as sigma_type

    rules, _ = import_sigma_dir(SIGMAHQ)
    called: list[str] = []
    original = sigma_type.SigmaEvaluator.on_batch

    def counting(self: Any, table: str, batch: Any) -> Any:
        called.append(self.rule.id)
        return original(self, table, batch)

    monkeypatch.setattr(sigma_type.SigmaEvaluator, "on_batch", counting)
    screened = Engine(rules, AlertStore(tmp_path / "a.db"))
    alone = Engine(rules, AlertStore(tmp_path / "b.db"))
    alone.groups.clear()
    batches = [
        parse((STRATUS / entry["file"]).read_bytes(), ReceiverOptions()).batch
        for entry in orjson.loads((STRATUS / "index.json").read_bytes())
    ]
    skipped = 0
    for batch in batches:
        called.clear()
        screened.process("cloudtrail", batch)
        passed = SCREEN.matched("cloudtrail", batch)
        for rule in rules:
            evaluator = screened.evaluators[rule.id]
            if rule.id not in called:
                skipped += 1
                assert evaluator.batch_key not in passed  # type: ignore[attr-defined]
                assert evaluator.spec.matcher.rows(batch) == []  # type: ignore[attr-defined]
        alone.process("cloudtrail", batch)

    def alerts(engine: Engine) -> list[tuple[str, int, str]]:
        return sorted((a.rule_id, a.count, a.summary) for a in engine.store.alerts())

    assert alerts(screened) == alerts(alone) and len({a[0] for a in alerts(alone)}) >= 10
    assert skipped > len(batches) * len(rules) / 2  # most rules name none of a batch's events
    assert SCREEN.matched("events", batches[0]) == set()  # only CloudTrail is screened


def test_sigma_rules_join_and_leave_the_screen() -> None:
    """A rule compiled after the screen remembered a batch's combinations is screened all the
    same; a rule gone is no longer."""
    import gc

    from ecsguard.detect.sigma.evaluate import SCREEN

    sigma = TYPES.get("sigma")
    batch = batch_of(trail_event("StopLogging", "arn:aws:iam::1:user/eve", "203.0.113.9"))
    first = sigma.compile(sigma_rule({"rule": STOPPED}))
    key = first.batch_key  # type: ignore[attr-defined]
    assert key in SCREEN.matched("cloudtrail", batch)
    other = batch_of(trail_event("LookupEvents", "arn:aws:iam::1:user/eve", "10.0.0.1"))
    assert key not in SCREEN.matched("cloudtrail", other)
    later = sigma.compile(sigma_rule({"rule": STOPPED}))
    assert {key, later.batch_key} <= SCREEN.matched("cloudtrail", batch)  # type: ignore[attr-defined]
    del first
    gc.collect()
    assert key not in SCREEN.matched("cloudtrail", batch)
    assert later.batch_key in SCREEN.matched("cloudtrail", batch)  # type: ignore[attr-defined]
