"""Every case of the shared EventBridge test data: matches as AWS (or event-ruler) says.

cases.json: pattern / event / expected outcome; `authority` records whether the outcome was
recorded against the AWS service or comes from aws/event-ruler's tests. Where a case gives
`pattern_text` (a repeated key, whose meaning depends on the text), the text is what is tested.
invalid_patterns.json: patterns AWS rejects, with AWS's message; ours must carry the same reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ecsguard.detect.eventpattern import (
    InvalidPatternError,
    PatternSet,
    compile_pattern,
    matches,
)

DATA = Path(__file__).parents[2].parent / "shared" / "testdata" / "eventbridge"
CASES: list[dict[str, Any]] = json.loads((DATA / "cases.json").read_text())
INVALID: list[dict[str, Any]] = json.loads((DATA / "invalid_patterns.json").read_text())


def pattern_of(case: dict[str, Any]) -> Any:
    return case.get("pattern_text") or case["pattern"]


def event_of(case: dict[str, Any]) -> dict[str, Any]:
    text = case.get("event_text")
    return json.loads(text) if text else case["event"]


def test_the_data_is_there() -> None:
    assert len(CASES) > 150 and len(INVALID) > 15
    authorities = {case["authority"].split(" ")[0] for case in CASES}
    assert {"aws-service", "event-ruler"} <= authorities


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_case(case: dict[str, Any]) -> None:
    assert matches(pattern_of(case), event_of(case)) is case["matches"], case["name"]


def test_all_cases_in_one_pattern_set() -> None:
    """The index gives the same answers as testing each pattern on its own, with every case's
    pattern in one set (so each event meets the postings of 170 other patterns)."""
    patterns = PatternSet({case["id"]: pattern_of(case) for case in CASES})
    wrong = [
        case["id"]
        for case in CASES
        if (case["id"] in patterns.match_all(event_of(case))) is not case["matches"]
    ]
    assert wrong == []


@pytest.mark.parametrize("case", INVALID, ids=[case["id"] for case in INVALID])
def test_invalid_pattern(case: dict[str, Any]) -> None:
    with pytest.raises(InvalidPatternError) as raised:
        compile_pattern(case["pattern"])
    assert raised.value.problem.startswith(case["expected_message"])
