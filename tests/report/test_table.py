from __future__ import annotations

import pytest
from tests.report.sample import FORMULA, XSS, report

from ecsguard.report.base import render, short_name


@pytest.fixture(autouse=True)
def _fixed_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "160")


def test_counts_by_pillar_and_severity() -> None:
    out = render(report(), "table").decode()
    lines = out.splitlines()
    security = next(line for line in lines if line.strip().startswith("Security posture"))
    assert security.split()[2:] == ["-", "1", "1", "-", "-", "2"]
    iam = next(line for line in lines if line.strip().startswith("IAM"))
    assert iam.split()[1:] == ["1", "-", "-", "-", "-", "1"]
    total = next(line for line in lines if line.strip().startswith("Total"))
    assert total.split()[1:] == ["1", "1", "1", "0", "0", "3"]
    assert "FAIL 3" in out and "PASS 2" in out and "MUTED 1" in out


def test_failures_most_severe_first_then_unassessed() -> None:
    out = render(report(), "table").decode()
    assert out.index("iam.task_role_admin") < out.index("ecs.container_privileged")
    assert out.index("ecs.container_privileged") < out.index("ecs.task_user")
    assert "app-task" in out and "prod/web" in out  # short resource names
    assert "NOT ASSESSED  monitoring.container_insights" in out
    assert "ERROR  ecs.exec_disabled" in out


def test_untrusted_text_is_printed_as_is() -> None:
    out = render(report(), "table").decode()
    assert XSS in out
    assert FORMULA in out
    assert "\x1b" not in out  # escape sequences from AWS strings cannot drive the terminal
    assert "\\x1b[31mred" in out


def test_markup_in_messages_is_not_interpreted() -> None:
    rep = report()
    failing = [f.model_copy(update={"message": "[bold red]x[/]"}) for f in rep.findings]
    out = render(report(findings=failing), "table").decode()
    assert "[bold red]x[/]" in out


def test_japanese_headers_and_baseline() -> None:
    out = render(report("ja", baseline=True), "table").decode()
    for word in ("領域・重大度別の不合格件数", "重大度", "チェック", "リソース", "新規", "継続"):
        assert word in out
    assert "解消 1 件" in out


def test_no_failures() -> None:
    rep = report()
    passing = [f for f in rep.findings if f.status.value == "PASS"]
    out = render(report(findings=passing), "table").decode()
    assert "No failed findings." in out


@pytest.mark.parametrize(
    ("arn", "short"),
    [
        ("arn:aws:ecs:r:1:service/prod/web", "prod/web"),
        ("arn:aws:ecs:r:1:task-definition/web:3", "web:3"),
        ("arn:aws:iam::1:role/path/app", "path/app"),
        ("arn:aws:ecs:r:1", "arn:aws:ecs:r:1"),
        ("arn:aws:s3:::bucket", "bucket"),
        ("not-an-arn", "not-an-arn"),
    ],
)
def test_short_name(arn: str, short: str) -> None:
    assert short_name(arn) == short
