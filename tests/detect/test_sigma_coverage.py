"""SigmaHQ's CloudTrail rules over the Stratus Red Team detonations: every technique a loaded
rule names is detected (or the reason it is not is on record), and docs/sigma-coverage.md is
current."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecsguard.detect.sigma.coverage import NOT_FIRING, Coverage, markdown, stratus_coverage

ROOT = Path(__file__).parents[2]
TESTDATA = ROOT.parent / "shared" / "testdata"


@pytest.fixture(scope="module")
def coverage() -> Coverage:
    return stratus_coverage(
        TESTDATA / "sigma", TESTDATA / "cloudtrail" / "stratus-red-team-detonation-logs"
    )


def test_every_sigmahq_document_is_loaded_or_reported(coverage: Coverage) -> None:
    files = sorted((TESTDATA / "sigma").rglob("*.yml"))
    assert len(coverage.rules) + len(coverage.problems) == len(files) == 66
    assert len(coverage.rules) == 56
    for problem in coverage.problems:
        assert problem.reason and problem.rule and problem.line > 1
    unsupported = [p for p in coverage.problems if p.path.startswith("aws/unsupported/")]
    assert len(unsupported) == 8
    assert all("aggregation" in p.reason or "timeframe" in p.reason for p in unsupported)


def test_every_technique_a_rule_names_is_detected(coverage: Coverage) -> None:
    assert len(coverage.techniques) == 35
    missed = [t.technique_id for t in coverage.techniques if t.must_detect and not t.fired]
    assert missed == []
    detected = {t.technique_id for t in coverage.techniques if t.fired}
    assert {
        "aws.defense-evasion.cloudtrail-stop",
        "aws.defense-evasion.cloudtrail-delete",
        "aws.defense-evasion.vpc-remove-flow-logs",
        "aws.exfiltration.ec2-share-ebs-snapshot",
        "aws.persistence.lambda-layer-extension",
        "aws.initial-access.console-login-without-mfa",  # additionalEventData.MFAUsed
    } <= detected
    assert len(detected) >= 12


def test_each_recorded_silence_is_true(coverage: Coverage) -> None:
    by_id = {t.technique_id: t for t in coverage.techniques}
    for (technique, rule), reason in NOT_FIRING.items():
        assert rule in by_id[technique].named_by, (technique, rule)
        assert rule not in by_id[technique].fired, (technique, rule, reason)


def test_rules_fire_only_where_they_name_the_events_or_pin_none(coverage: Coverage) -> None:
    pinned = {r.name for r in coverage.rules if r.compiled.names_events is not None}
    for technique in coverage.techniques:
        for rule in technique.fired:
            assert rule in technique.named_by or rule not in pinned, (technique, rule)


def test_the_coverage_document_is_current(coverage: Coverage) -> None:
    expected = markdown(coverage)
    assert (ROOT / "docs" / "sigma-coverage.md").read_text() == expected, (
        "run `python -m ecsguard.detect.sigma.coverage > docs/sigma-coverage.md`"
    )
    assert "| `aws.defense-evasion.cloudtrail-stop` | StopLogging | 1 |" in expected
