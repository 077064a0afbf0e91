"""Structural SARIF 2.1.0 checks: the properties GitHub code scanning requires, and our mapping."""

from __future__ import annotations

from typing import Any

import orjson
from tests.report.sample import GAP, HOSTILE_ARN, ROLE_ARN, SERVICE_ARN, TD_ARN, report

from ecsguard.report.base import finding_uid, render


def _log(**kwargs: Any) -> dict[str, Any]:
    log = orjson.loads(render(report(**kwargs), "sarif"))
    assert isinstance(log, dict)
    return log


def _nonempty(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def test_github_required_properties() -> None:
    log = _log()
    assert log["version"] == "2.1.0"
    assert _nonempty(log["$schema"])
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "ecsguard"
    rule_ids = [rule["id"] for rule in driver["rules"]]
    assert len(rule_ids) == len(set(rule_ids))
    for rule in driver["rules"]:
        assert _nonempty(rule["id"])
        assert _nonempty(rule["shortDescription"]["text"])
        assert _nonempty(rule["fullDescription"]["text"])
        assert _nonempty(rule["help"]["text"])
        assert rule["defaultConfiguration"]["level"] in {"error", "warning", "note"}
        tags = rule["properties"]["tags"]
        assert "security" in tags and len(tags) == len(set(tags))  # a property bag's tags
    assert isinstance(run["results"], list) and run["results"]
    for result in run["results"]:
        assert _nonempty(result["message"]["text"])
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in {"error", "warning", "note"}
        assert result["partialFingerprints"]
        (location,) = result["locations"]
        physical = location["physicalLocation"]
        uri = physical["artifactLocation"]["uri"]
        assert _nonempty(uri) and ":" not in uri.split("/")[0]  # relative, no scheme
        assert physical["region"]["startLine"] >= 1
        (logical,) = location["logicalLocations"]
        assert logical["kind"] == "resource" and _nonempty(logical["fullyQualifiedName"])
    assert run["invocations"][0]["executionSuccessful"] is True


def test_results_are_failures_and_suppressed_mutes() -> None:
    run = _log()["runs"][0]
    by_status: dict[str, list[dict[str, Any]]] = {}
    for result in run["results"]:
        by_status.setdefault("MUTED" if "suppressions" in result else "FAIL", []).append(result)
    assert {
        r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] for r in by_status["FAIL"]
    } == {TD_ARN, SERVICE_ARN, ROLE_ARN}
    (muted,) = by_status["MUTED"]
    assert muted["ruleId"] == "logging.awslogs"
    assert muted["suppressions"] == [
        {
            "kind": "external",
            "status": "accepted",
            "justification": "accepted <script>alert(1)</script>",
        }
    ]
    assert HOSTILE_ARN not in orjson.dumps(run["results"]).decode()  # a PASS: not a result


def test_levels_and_properties() -> None:
    results = {r["ruleId"]: r for r in _log()["runs"][0]["results"] if "suppressions" not in r}
    assert results["iam.task_role_admin"]["level"] == "error"  # critical
    assert results["ecs.container_privileged"]["level"] == "error"  # high
    assert results["ecs.task_user"]["level"] == "warning"  # medium
    privileged = results["ecs.container_privileged"]
    assert privileged["properties"]["controls"] == ["FSBP:ECS.4"]
    assert privileged["partialFingerprints"]["ecsguardFindingHash/v1"] == finding_uid(
        "ecs.container_privileged", TD_ARN
    )
    uri = privileged["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "aws/123456789012/ap-northeast-1/ecs/task-definition/web:3"
    role_uri = results["iam.task_role_admin"]["locations"][0]["physicalLocation"]
    assert role_uri["artifactLocation"]["uri"] == "aws/123456789012/global/iam/role/app-task"


def test_rules_cover_every_audited_check_and_note_the_gaps() -> None:
    log = _log()
    rules = {rule["id"]: rule for rule in log["runs"][0]["tool"]["driver"]["rules"]}
    assert set(rules) == set(report().checks)
    assert rules["iam.task_role_admin"]["properties"]["security-severity"] == "9.5"
    assert "security-severity" not in rules["monitoring.container_insights"]["properties"]
    notes = log["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert notes == [{"level": "warning", "message": {"text": GAP}}]


def test_japanese_texts_and_baseline_state() -> None:
    log = _log(lang="ja", baseline=True)
    rules = {rule["id"]: rule for rule in log["runs"][0]["tool"]["driver"]["rules"]}
    assert rules["ecs.task_user"]["shortDescription"]["text"] == "ecs.task_user のタイトル"
    states = {r["ruleId"]: r.get("baselineState") for r in log["runs"][0]["results"]}
    assert states["ecs.container_privileged"] == "new"
    assert states["ecs.task_user"] == "unchanged"


def test_a_failure_of_an_unlisted_check_still_has_a_rule() -> None:
    log = _log(checks={})
    run = log["runs"][0]
    rule_ids = {rule["id"] for rule in run["tool"]["driver"]["rules"]}
    assert rule_ids == {r["ruleId"] for r in run["results"]}
