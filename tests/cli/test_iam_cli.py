"""`ecsguard iam` commands as a user runs them, including bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.cli.test_errors import assert_one_clear_error, ecsguard

from ecsguard.aws import snapshot as snapshots

ADMIN = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


@pytest.fixture(scope="module")
def demo_file(demo_snapshot: snapshots.Snapshot, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return snapshots.save(demo_snapshot, tmp_path_factory.mktemp("iam") / "demo.json.gz")


def test_analyze_policy_file_and_stdin(tmp_path: Path) -> None:
    path = tmp_path / "admin.json"
    path.write_text(json.dumps(ADMIN))
    run = ecsguard("iam", "analyze-policy", str(path))
    assert run.returncode == 0, run.stderr
    [result] = json.loads(run.stdout)
    assert result["admin_equivalent"] is True


def test_analyze_policy_bad_json_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"Statement": [')
    assert_one_clear_error(ecsguard("iam", "analyze-policy", str(bad)), str(bad))


def test_template_from_the_snapshot(demo_file: Path) -> None:
    run = ecsguard(
        "iam",
        "template",
        "--tier",
        "ci",
        "--cluster",
        "prod",
        "--service",
        "payments",
        "--snapshot",
        str(demo_file),
    )
    assert run.returncode == 0, run.stderr
    policy = json.loads(run.stdout)
    passing = next(s for s in policy["Statement"] if s["Action"] == ["iam:PassRole"])
    assert all(r.endswith(("payments-task", "payments-execution")) for r in passing["Resource"])


def test_template_needs_an_account_or_a_snapshot() -> None:
    assert_one_clear_error(ecsguard("iam", "template", "--tier", "operator"), "--account")


def test_suggest_lists_granted_but_unused(demo_file: Path, tmp_path: Path) -> None:
    trail = tmp_path / "trail.json"
    trail.write_text(
        json.dumps(
            {
                "Records": [
                    {
                        "eventSource": "ecs.amazonaws.com",
                        "eventName": "UpdateService",
                        "userIdentity": {
                            "type": "IAMUser",
                            "arn": "arn:aws:iam::123456789012:user/ci-deployer",
                        },
                        "resources": [
                            {"ARN": "arn:aws:ecs:ap-northeast-1:123456789012:service/prod/api"}
                        ],
                    }
                ]
            }
        )
    )
    run = ecsguard(
        "iam", "suggest", "ci-deployer", "--cloudtrail", str(trail), "--snapshot", str(demo_file)
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert [u["action"] for u in result["used"]] == ["ecs:UpdateService"]
    assert "ecr:PutImage" in result["granted_unused"]
    assert_one_clear_error(
        ecsguard(
            "iam", "suggest", "nobody", "--cloudtrail", str(trail), "--snapshot", str(demo_file)
        ),
        "no principal 'nobody'",
    )
