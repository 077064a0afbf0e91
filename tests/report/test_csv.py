from __future__ import annotations

import csv
import io

from tests.report.sample import FORMULA, JA_MESSAGE, TD_ARN, XSS, report

from ecsguard.core.models import Finding
from ecsguard.report.base import render
from ecsguard.report.writers.csv import cell


def _rows(data: bytes, encoding: str = "utf-8") -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode(encoding), newline="")))


def test_one_row_per_finding_with_the_json_fields() -> None:
    rep = report()
    data = render(rep, "csv")
    rows = _rows(data)
    assert len(rows) == len(rep.findings)
    assert list(rows[0]) == list(Finding.model_fields)
    assert data.startswith(b"check_id,")
    assert b"\r\n" in data  # RFC 4180 line ends
    privileged = next(r for r in rows if r["check_id"] == "ecs.container_privileged")
    assert privileged["controls"] == "FSBP:ECS.4"
    assert privileged["message"].startswith(XSS)
    assert privileged["resource_arn"] == TD_ARN


def test_multiline_message_stays_one_record() -> None:
    rows = _rows(render(report(), "csv"))
    admin = next(r for r in rows if r["check_id"] == "iam.task_role_admin")
    assert admin["message"] == "role has *:*\nsecond line"


def test_formula_injection_is_neutralised() -> None:
    rows = _rows(render(report(), "csv"))
    messages = {r["message"] for r in rows}
    assert "'" + FORMULA in messages
    assert "'@SUM(1+1) no log driver" in messages
    assert "'+awslogs configured" in messages
    for row in rows:
        for value in row.values():
            assert not value.lstrip().startswith(("=", "+", "-", "@")), value


def test_cell_rules() -> None:
    assert cell("=1+1") == "'=1+1"
    assert cell("  =1+1") == "'  =1+1"
    assert cell("-2") == "'-2"
    assert cell("\tx") == "'\tx"
    assert cell("plain") == "plain"
    assert cell(None) == ""
    assert cell(["CIS:1.4", "FSBP:ECS.4"]) == "CIS:1.4;FSBP:ECS.4"


def test_japanese_has_a_bom_for_excel_and_baseline_column() -> None:
    data = render(report("ja", baseline=True), "csv")
    assert data.startswith("\ufeff".encode())
    rows = _rows(data, "utf-8-sig")
    assert "baseline" in rows[0]
    assert any(JA_MESSAGE in r["message"] for r in rows)
    assert {r["baseline"] for r in rows} == {"new", "unchanged", ""}
    assert not render(report("en"), "csv").startswith("\ufeff".encode())
