"""Rule files: valid ones load; every problem is reported with file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecsguard.core.errors import UserError
from ecsguard.core.models import Severity
from ecsguard.detect.loader import load_rules, load_text

GOOD = """
rules:
  - id: api-errors
    title: API errors
    type: log_filter
    severity: high
    group_by: [service]
    log_filter:
      pattern: ERROR
      service: api
  - id: oom
    title: Out of memory
    type: log_filter
    log_filter: {pattern: '"OutOfMemoryError"'}
"""


def test_a_list_of_rules_loads_with_sources() -> None:
    loaded = load_text(GOOD, "ops.yaml")
    assert loaded.errors == []
    first, second = loaded.rules
    assert (first.id, first.severity, first.group_by) == ("api-errors", Severity.HIGH, ("service",))
    assert first.settings.pattern == "ERROR" and first.settings.service == "api"
    assert first.source == "ops.yaml:3" and second.source == "ops.yaml:11"
    assert second.severity == Severity.MEDIUM  # the default


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("id: x\ntitle: t\ntype: nope\n", "x.yaml:3: unknown rule type 'nope'"),
        ("id: x\ntitle: t\n", "x.yaml:1: type: a rule needs a type"),
        (
            "id: x\ntitle: t\ntype: log_filter\nlog_filter:\n  pattern: '{ $.a = '\n",
            "x.yaml:5: log_filter.pattern: Value error, expected a value after",
        ),
        (
            "id: x\ntitle: t\ntype: log_filter\nlog_filter:\n  patern: ERROR\n",
            "x.yaml:5: log_filter.pattern: Field required",
        ),
        (
            "id: x\ntitle: t\ntype: log_filter\nlog_filter: {pattern: E}\nseverity: huge\n",
            "x.yaml:5: severity: Input should be",
        ),
        (
            "id: x\ntitle: t\ntype: log_filter\nlog_filter: {pattern: E}\npattern: E\n",
            "x.yaml:5: pattern: unknown field",
        ),
        (
            "id: 'bad id!'\ntitle: t\ntype: log_filter\nlog_filter: {pattern: E}\n",
            "x.yaml:1: id: String should match pattern",
        ),
        ("id: x\n  title: [\n", "x.yaml:2: invalid YAML"),
        ("rules: {a: 1}\n", "x.yaml:1: rules: expected a list of rules"),
        ("- 1\n", "x.yaml:1: a rule must be a mapping"),
    ],
)
def test_every_problem_names_file_and_line(text: str, expected: str) -> None:
    loaded = load_text(text, "x.yaml")
    assert loaded.rules == []
    assert any(error.startswith(expected) for error in loaded.errors), loaded.errors


def test_all_problems_are_collected_and_ids_are_unique(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yml").write_text(
        "id: oom\ntitle: again\ntype: log_filter\nlog_filter: {pattern: E}\n"
    )
    (tmp_path / "sub" / "c.yaml").write_text("id: y\ntitle: t\ntype: nope\n")
    (tmp_path / "empty.yaml").write_text("")
    loaded = load_rules([tmp_path])
    assert [r.id for r in loaded.rules] == ["api-errors", "oom"]
    assert len(loaded.errors) == 2
    assert any("id 'oom' is also used at" in e for e in loaded.errors)
    with pytest.raises(UserError, match="2 problem"):
        loaded.raise_errors()
    with pytest.raises(UserError, match="no rule file"):
        load_rules([tmp_path / "missing"])
