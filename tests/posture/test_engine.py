"""The check engine: messages with evidence, languages, gaps, errors, mutes, order, selection."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from tests.posture.builders import REGION, findings, snapshot, task_definition

from ecsguard.aws.snapshot import Gap
from ecsguard.core.errors import UserError
from ecsguard.core.models import Status
from ecsguard.posture.check import CHECKS, Check
from ecsguard.posture.engine import all_checks, run, select
from ecsguard.posture.mutelist import Mutelist, load_mutelist

PRIV = "ecs.container_privileged"


def estate():  # type: ignore[no-untyped-def]
    bad = task_definition("legacy", container={"privileged": True})
    return snapshot(ecs={"task_definitions": [task_definition("web"), bad]})


def test_pass_and_fail_with_evidence() -> None:
    result = {f.resource_arn.rsplit("/", 1)[1]: f for f in findings(estate(), PRIV)}
    assert result["web:1"].status == Status.PASS
    assert result["legacy:1"].status == Status.FAIL
    assert result["legacy:1"].message == "privileged containers: legacy"
    assert result["legacy:1"].controls == ["FSBP:ECS.4"]
    assert result["legacy:1"].pillar == "security"


def test_japanese() -> None:
    bad = next(f for f in findings(estate(), PRIV, lang="ja") if f.status == Status.FAIL)
    assert bad.message == "特権モードのコンテナ: legacy"
    assert "特権" in bad.title


def test_gap_makes_the_check_not_assessed() -> None:
    snap = estate()
    snap.gaps.append(
        Gap(
            service="ecs",
            action="DescribeTaskDefinition",
            region=REGION,
            error_code="AccessDeniedException",
        )
    )
    result = findings(snap, PRIV)
    assert [f.status for f in result] == [Status.NOT_ASSESSED]
    assert "AccessDeniedException on ecs:DescribeTaskDefinition" in result[0].message


def test_a_broken_check_is_an_error_finding_not_a_crash() -> None:
    snap = snapshot(
        ecs={"task_definitions": [{"taskDefinitionArn": "x:1", "containerDefinitions": 5}]}
    )
    result = findings(snap, PRIV)
    assert [f.status for f in result] == [Status.ERROR]
    assert "check failed" in result[0].message


def test_deterministic_order() -> None:
    first = run(estate())
    assert first == run(estate())
    keys = [(f.check_id, f.region, f.resource_arn) for f in first]
    assert keys == sorted(keys)


def test_selection_and_unknown_ids() -> None:
    assert [c.meta.id for c in select(include=[PRIV])] == [PRIV]
    assert PRIV not in [c.meta.id for c in select(exclude=[PRIV])]
    with pytest.raises(UserError, match=r"unknown check 'ecs\.nope'"):
        select(include=["ecs.nope"])


def test_every_check_has_metadata_in_both_languages() -> None:
    checks: list[Check] = all_checks()
    assert len(checks) == len(CHECKS)
    for chk in checks:
        for text in (chk.meta.title, chk.meta.description, chk.meta.remediation):
            assert text.en.strip() and text.ja.strip(), chk.meta.id


def test_mutelist_mutes_with_reason_and_expired_entries_stop(tmp_path: Path) -> None:
    path = tmp_path / "mute.yaml"
    path.write_text(
        "mutelist:\n"
        f"  - check: {PRIV}\n"
        '    resource: "*task-definition/legacy:*"\n'
        "    reason: sandbox only\n"
        "  - check: 'ecs.*'\n"
        "    reason: old waiver\n"
        "    expires: 2020-01-01\n"
    )
    mutes = load_mutelist(path)
    assert len(mutes.expired()) == 1
    muted = [f for f in run(estate(), select(include=[PRIV]), mutes) if f.status == Status.MUTED]
    assert [(f.resource_arn.rsplit("/", 1)[1], f.mute_reason) for f in muted] == [
        ("legacy:1", "sandbox only")
    ]


def test_mutelist_tags_must_match() -> None:
    mutes = Mutelist.model_validate(
        {"mutelist": [{"check": PRIV, "tags": {"team": "legacy"}, "reason": "r"}]}
    )
    bad = task_definition("legacy", container={"privileged": True})
    untagged = run(snapshot(ecs={"task_definitions": [bad]}), select(include=[PRIV]), mutes)
    assert untagged[0].status == Status.FAIL
    bad["tags"] = [{"key": "team", "value": "legacy"}]
    tagged = run(snapshot(ecs={"task_definitions": [bad]}), select(include=[PRIV]), mutes)
    assert tagged[0].status == Status.MUTED


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("mutelist:\n\t- check: x\n", ":2: invalid YAML"),
        ("mutelist:\n  - check: x\n", "mutelist.0.reason"),
        ("mutelist:\n  - check: x\n    reason: r\n    expires: someday\n", "expires"),
        ("mutelist:\n  - check: x\n    reason: r\n    colour: red\n", "colour"),
    ],
)
def test_malformed_mutelist_names_file_and_problem(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "mute.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as caught:
        load_mutelist(path)
    assert str(path) in caught.value.problem and needle in caught.value.problem


def test_expiry_uses_today() -> None:
    entry = {"check": PRIV, "reason": "r", "expires": "2026-01-01"}
    before = Mutelist.model_validate({"mutelist": [entry], "today": dt.date(2025, 12, 31)})
    after = Mutelist.model_validate({"mutelist": [entry], "today": dt.date(2026, 1, 2)})
    assert before.active and not after.active
