"""docs/rules.md is generated from the rule types and must be current (`make docs`)."""

from __future__ import annotations

from pathlib import Path

from ecsguard.detect.loader import TYPES
from ecsguard.detect.reference import markdown

DOC = Path(__file__).parents[2] / "docs" / "rules.md"


def test_the_rule_reference_is_current() -> None:
    text = markdown()
    for name, _ in TYPES:
        assert f"## `{name}`" in text
    assert DOC.read_text() == text, "run `make docs` to regenerate docs/rules.md"
