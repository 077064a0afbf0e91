"""ecsguard's own least privilege: derived from declarations, read-only, and documented."""

from __future__ import annotations

import json
from pathlib import Path

import ecsguard.aws.collectors  # noqa: F401
from ecsguard.aws.collect import COLLECTORS, auditor_policy

DOC = Path(__file__).parents[2] / "docs" / "iam-policy.json"
READ_PREFIXES = ("Describe", "List", "Get", "GenerateCredentialReport")


def test_docs_policy_is_the_derived_policy() -> None:
    assert json.loads(DOC.read_text()) == auditor_policy(), "run `make docs` to refresh it"


def test_every_collector_declares_actions() -> None:
    assert len(COLLECTORS) >= 10
    for name, spec in COLLECTORS:
        assert spec.actions, f"collector {name} declares no IAM actions"


def test_policy_is_read_only_and_never_reads_secret_values() -> None:
    actions = [a for statement in auditor_policy()["Statement"] for a in statement["Action"]]
    assert "cloudwatch:GetMetricData" in actions  # what `ecsguard metrics poll` calls
    for action in actions:
        verb = action.split(":", 1)[1]
        assert verb.startswith(READ_PREFIXES), f"{action} is not a read action"
    assert "secretsmanager:GetSecretValue" not in actions
    assert "ssm:GetParameter" not in actions and "ssm:GetParameters" not in actions
