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


def test_report_json_shape_and_headline(demo_file: Path) -> None:
    run = ecsguard("iam", "report", "--snapshot", str(demo_file), "--output", "json")
    assert run.returncode == 0, run.stderr
    analysis = json.loads(run.stdout)
    assert analysis["summary"]["admin_equivalent"] >= 1
    keys = {
        "arn",
        "name",
        "type",
        "tier",
        "tier_reasons",
        "admin_equivalent",
        "escalation_paths",
        "stray_reasons",
        "used_by",
        "last_used",
    }
    assert all(keys <= set(p) for p in analysis["principals"])
    table = ecsguard("iam", "report", "--snapshot", str(demo_file))
    assert "admin-equivalent" in table.stdout.splitlines()[0] and "developers" in table.stdout


def test_report_html_dot_csv(demo_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "iam.html"
    run = ecsguard(
        "iam",
        "report",
        "--snapshot",
        str(demo_file),
        "--output",
        "html",
        "--lang",
        "ja",
        "-o",
        str(out),
    )
    assert run.returncode == 0, run.stderr
    html = out.read_text()
    assert 'id="iam"' in html and "<svg" in html
    dot = ecsguard("iam", "report", "--snapshot", str(demo_file), "--output", "dot")
    assert dot.stdout.startswith("digraph")
    csv_run = ecsguard("iam", "report", "--snapshot", str(demo_file), "--output", "csv")
    assert csv_run.stdout.splitlines()[0].startswith("arn,") or "name" in csv_run.stdout[:200]


def test_report_from_authorization_details(
    demo_snapshot: snapshots.Snapshot, tmp_path: Path
) -> None:
    iam = demo_snapshot.iam
    gaad = {
        "UserDetailList": iam.users,
        "GroupDetailList": iam.groups,
        "RoleDetailList": iam.roles,
        "Policies": iam.policies,
    }
    path = tmp_path / "gaad.json"
    path.write_text(json.dumps(gaad))
    run = ecsguard("iam", "report", "--authorization-details", str(path), "--output", "json")
    assert run.returncode == 0, run.stderr
    names = {p["name"] for p in json.loads(run.stdout)["principals"]}
    assert {"developers", "notifications-task", "legacy-batch-bot"} <= names
    bad = tmp_path / "bad.json"
    bad.write_text("[")
    assert_one_clear_error(ecsguard("iam", "report", "--authorization-details", str(bad)), str(bad))


def test_who_can(demo_file: Path) -> None:
    run = ecsguard("iam", "who-can", "iam:CreateUser", "--snapshot", str(demo_file))
    assert run.returncode == 0, run.stderr
    names = {entry["name"] for entry in json.loads(run.stdout)}
    assert {"iam-admin", "notifications-task"} <= names
    assert_one_clear_error(
        ecsguard("iam", "who-can", "ecs:Nope*", "--snapshot", str(demo_file)),
        "unknown IAM action",
    )
