from __future__ import annotations

from typing import Any

import orjson
from tests.report.sample import ACCOUNT, ROLE_ARN, SERVICE_ARN, TD_ARN, report

from ecsguard.report.base import finding_uid, render


def _events(**kwargs: Any) -> list[dict[str, Any]]:
    events = orjson.loads(render(report(**kwargs), "ocsf"))
    assert isinstance(events, list)
    return events


def _find(events: list[dict[str, Any]], check_id: str, status: str) -> dict[str, Any]:
    return next(
        e
        for e in events
        if e["metadata"]["event_code"] == check_id and e["compliance"]["status_code"] == status
    )


def test_one_compliance_finding_per_finding_with_the_class_fields() -> None:
    events = _events()
    assert len(events) == len(report().findings)
    for e in events:
        assert e["class_uid"] == 2003
        assert e["class_name"] == "Compliance Finding"
        assert e["category_uid"] == 2
        assert e["activity_id"] == 1
        assert e["type_uid"] == 200301
        assert isinstance(e["time"], int) and e["time"] == 1748770200000
        assert e["severity_id"] in {1, 2, 3, 4, 5}
        assert e["metadata"]["version"].startswith("1.")
        assert e["metadata"]["product"] == {
            "name": "ecsguard",
            "vendor_name": "ecsguard",
            "version": "0.1.0",
        }
        assert e["cloud"]["provider"] == "AWS"
        assert e["cloud"]["account"]["uid"] == ACCOUNT
        assert e["finding_info"]["uid"] and e["finding_info"]["title"]
        assert e["compliance"]["standards"]
        assert e["remediation"]["desc"]
        assert e["resources"][0]["uid"]


def test_status_and_severity_mapping() -> None:
    events = _events()
    privileged = _find(events, "ecs.container_privileged", "FAIL")
    assert privileged["severity_id"] == 4 and privileged["severity"] == "High"
    assert privileged["compliance"]["status_id"] == 3
    assert privileged["status_id"] == 1
    admin = _find(events, "iam.task_role_admin", "FAIL")
    assert admin["severity_id"] == 5
    assert admin["cloud"]["region"] == "global"
    passed = _find(events, "logging.awslogs", "PASS")
    assert passed["compliance"]["status_id"] == 1 and passed["severity_id"] == 2
    muted = _find(events, "logging.awslogs", "MUTED")
    assert muted["status_id"] == 3 and muted["status"] == "Suppressed"
    assert muted["compliance"]["status_detail"].startswith("accepted")
    unassessed = _find(events, "monitoring.container_insights", "NOT_ASSESSED")
    assert unassessed["compliance"]["status_id"] == 2 and unassessed["severity_id"] == 1
    error = _find(events, "ecs.exec_disabled", "ERROR")
    assert error["compliance"]["status_id"] == 99


def test_compliance_from_controls_and_resource() -> None:
    privileged = _find(_events(), "ecs.container_privileged", "FAIL")
    assert privileged["compliance"]["requirements"] == ["FSBP:ECS.4"]
    assert privileged["compliance"]["standards"] == ["AWS Foundational Security Best Practices"]
    assert privileged["compliance"]["control"] == "ecs.container_privileged"
    assert privileged["resources"] == [
        {
            "uid": TD_ARN,
            "name": "web:3",
            "type": "AWS::ECS::TaskDefinition",
            "region": "ap-northeast-1",
            "cloud_partition": "aws",
        }
    ]
    assert privileged["finding_info"]["desc"] == "why ecs.container_privileged matters"


def test_finding_uid_is_stable_and_distinct() -> None:
    first = _find(_events(), "ecs.task_user", "FAIL")["finding_info"]["uid"]
    again = _find(_events(lang="ja"), "ecs.task_user", "FAIL")["finding_info"]["uid"]
    assert first == again == finding_uid("ecs.task_user", SERVICE_ARN)
    assert finding_uid("ecs.task_user", TD_ARN) != first
    assert finding_uid("iam.task_role_admin", ROLE_ARN) != first


def test_baseline_mark_is_kept() -> None:
    privileged = _find(_events(baseline=True), "ecs.container_privileged", "FAIL")
    assert privileged["unmapped"]["baseline"] == "new"
