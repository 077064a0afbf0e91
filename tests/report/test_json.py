from __future__ import annotations

import orjson
from pydantic import TypeAdapter
from tests.report.sample import JA_MESSAGE, TD_ARN, XSS, report

from ecsguard.core.models import Finding
from ecsguard.posture.baseline import load_baseline
from ecsguard.report.base import render

FINDINGS = TypeAdapter(list[Finding])


def _key(f: Finding) -> tuple[str, str, str, str]:
    return (f.check_id, f.region, f.resource_arn, f.status.value)


def test_round_trips_to_the_same_findings() -> None:
    rep = report()
    data = orjson.loads(render(rep, "json"))
    assert isinstance(data, list)
    assert all("baseline" not in row for row in data)
    assert FINDINGS.validate_python(data) == sorted(rep.findings, key=_key)


def test_baseline_field_per_finding_and_readable_as_a_baseline(tmp_path) -> None:
    rep = report(baseline=True)
    data = orjson.loads(render(rep, "json"))
    marks = {(row["check_id"], row["resource_arn"], row["status"]): row["baseline"] for row in data}
    assert marks[("ecs.container_privileged", TD_ARN, "FAIL")] == "new"
    assert (
        marks[("ecs.task_user", "arn:aws:ecs:ap-northeast-1:123456789012:service/prod/web", "FAIL")]
        == "unchanged"
    )
    assert marks[("logging.awslogs", TD_ARN, "MUTED")] is None
    path = tmp_path / "last.json"
    path.write_bytes(render(rep, "json"))
    assert load_baseline(path) == sorted(rep.findings, key=_key)


def test_japanese_is_utf8_not_escaped() -> None:
    out = render(report("ja"), "json")
    assert JA_MESSAGE.encode() in out
    assert b"\\u7279" not in out  # not ASCII-escaped (only control characters are)
    assert XSS.encode() in out  # JSON is data: no HTML escaping here


def test_deterministic_whatever_the_input_order() -> None:
    rep = report()
    shuffled = report(findings=list(reversed(rep.findings)))
    assert render(rep, "json") == render(shuffled, "json")
    assert render(rep, "json").endswith(b"\n")


def test_empty_report_is_an_empty_array() -> None:
    assert orjson.loads(render(report(findings=[]), "json")) == []
