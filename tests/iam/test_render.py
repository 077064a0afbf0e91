"""`ecsguard iam report` renderers: table, CSV, JSON and DOT of the account analysis."""

from __future__ import annotations

import csv as csvlib
import io
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from tests.iam.test_usage import SCOPED_DEPLOY, deploy_estate, user
from tests.posture.builders import ACCOUNT, REGION

from ecsguard.iam import render
from ecsguard.iam.graph import to_dot
from ecsguard.iam.usage import IdentityMap, Use, identity_map

XSS = "<script>alert(1)</script>"
FORMULA = "=1+2@x"
MARKUP = "[red]boom[/red]"
ESCAPE = "\x1b[31mred"
STRAY_JA = "ワークロードの環境変数に長期アクセスキーがある"
IAM = f"arn:aws:iam::{ACCOUNT}"
ECS = f"arn:aws:ecs:{REGION}:{ACCOUNT}"


def use(arn: str, kind: str, cluster: str = "", service: str = "", **more: Any) -> dict[str, Any]:
    return Use(arn, kind, REGION, cluster, service, **more).to_dict()  # type: ignore[arg-type]


def principal(name: str, kind: str, tier: str, **more: Any) -> dict[str, Any]:
    arn = f"{IAM}:{kind}/{name}"
    return {
        "arn": arn,
        "name": name,
        "type": kind,
        "tier": tier,
        "role": None,
        "tier_reasons": [],
        "admin_equivalent": False,
        "escalation_paths": [],
        "stray_reasons": [],
        "used_by": [],
        "last_used": None,
        "access_levels": {},
        "findings": [],
        **more,
    }


def analysis() -> dict[str, Any]:
    """Every tier, hostile names, both escalation notes, a stray reason in two languages."""
    admin = principal(
        "alice",
        "user",
        "iam-admin",
        admin_equivalent=True,
        tier_reasons=["AdministratorAccess (managed)"],
        last_used="2024-05-01T09:00:00+00:00",
        access_levels={"iam": {"Permissions management": 40, "Read": 12}},
        used_by=[
            use(f"{IAM}:user/alice", "deployer", "prod", "web", derived=True, incidental=True),
            use(f"{IAM}:user/alice", "deployer", "prod", "api", derived=True, incidental=True),
        ],
    )
    task = principal(
        "web-task",
        "role",
        "over-privileged",
        role="workload",
        admin_equivalent=True,
        tier_reasons=["iam:* on *"],
        escalation_paths=[
            {
                "method": "ecs-deploy",
                "actions": ["iam:PassRole", "ecs:RegisterTaskDefinition", "ecs:UpdateService"],
                "via": [f"{IAM}:role/admin-task"],
                "gains": f"{IAM}:role/admin-task",
                "conditional": False,
                "narrowed": "iam:PassedToService ecs-tasks.amazonaws.com",
            }
        ],
        used_by=[use(f"{IAM}:role/web-task", "task_role", "prod", "web")],
    )
    hostile = principal(
        XSS,
        "user",
        "service-user",
        role="ci",
        escalation_paths=[
            {
                "method": "CreateAccessKey",
                "actions": ["iam:CreateAccessKey"],
                "via": [],
                "gains": "",
                "conditional": True,
                "narrowed": True,
            }
        ],
        stray_reasons=[
            {
                "code": "access_key_in_workload",
                "en": f"long-lived access key in a workload's environment {MARKUP}",
                "ja": STRAY_JA,
                "evidence": ["AKIAIOSFODNN7EXAMPLE"],
            }
        ],
        used_by=[
            use(
                f"{IAM}:user/{XSS}",
                "access_key_in_env",
                "batch",
                "",
                task_definition=f"{ECS}:task-definition/nightly:3",
                container="report",
                variable="AWS_ACCESS_KEY_ID",
            )
        ],
        findings=[{"check_id": "iam.user_key_in_env", "title": "key in env"}],
    )
    formula = principal(FORMULA, "user", "service-admin", tier_reasons=[ESCAPE])
    group = principal("devs", "group", "unrelated")
    principals = [group, hostile, formula, admin, task]
    return {
        "summary": {
            "principals": len(principals),
            "by_tier": {
                "iam-admin": 1,
                "service-admin": 1,
                "service-user": 1,
                "unrelated": 1,
                "over-privileged": 1,
            },
            "admin_equivalent": 2,
            "admin_equivalent_outside_iam_admin": 1,
            "escalation_paths": 2,
            "stray": 1,
        },
        "principals": principals,
    }


@pytest.fixture(autouse=True)
def _fixed_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")


# --- table ------------------------------------------------------------------------------------


def test_table_headline_and_one_row_per_principal_in_order_of_concern() -> None:
    out = render.table(analysis()).decode()
    assert out.splitlines()[0] == (
        "5 principals; 2 admin-equivalent, 1 of them outside the IAM-administrator tier"
    )
    for header in ("Name", "Type", "Tier / role", "Admin", "Escalation paths", "Used by"):
        assert header in out
    order = [out.index(name) for name in ("web-task", "alice", FORMULA, XSS, "devs")]
    assert order == sorted(order)  # over-privileged, iam-admin, service-admin, ...
    assert "over-privileged (workload)" in out and "service-user (ci)" in out
    assert "task role prod/web" in out  # used by, short
    assert "can deploy 2 services through a blanket grant" in out
    assert "access key in environment nightly:3" in out


def test_table_prints_untrusted_text_as_it_is() -> None:
    out = render.table(analysis()).decode()
    assert XSS in out and FORMULA in out
    assert MARKUP in out  # rich markup in a reason is not interpreted
    data = analysis()
    data["principals"][0]["name"] = ESCAPE
    out = render.table(data).decode()
    assert "\x1b" not in out and "\\x1b[31mred" in out


def test_table_in_japanese_keeps_tier_identifiers() -> None:
    out = render.table(analysis(), "ja").decode()
    assert (
        out.splitlines()[0] == "プリンシパル 5 件、うち管理者相当 2 件（IAM 管理者層の外に 1 件）"
    )
    for header in ("名前", "種類", "層 / 役割", "権限昇格パス", "放置の理由", "利用元"):
        assert header in out
    assert STRAY_JA in out and "はい" in out
    assert "over-privileged" in out and "タスクロール prod/web" in out


def test_table_of_an_empty_account() -> None:
    out = render.table({"summary": {}, "principals": []}).decode()
    assert out.startswith("0 principals; 0 admin-equivalent, 0 of them outside")
    assert "No principals." in out


# --- CSV --------------------------------------------------------------------------------------


def rows(data: bytes) -> list[dict[str, str]]:
    return list(csvlib.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


def test_csv_one_row_per_principal_lists_joined() -> None:
    data = render.csv(analysis())
    assert data.startswith(b"arn,name,type,tier,") and b"\r\n" in data
    found = {r["name"]: r for r in rows(data)}
    assert list(found) == ["devs", XSS, "'" + FORMULA, "alice", "web-task"]  # analysis order
    task = found["web-task"]
    assert list(task) == list(render.CSV_COLUMNS)
    assert task["tier"] == "over-privileged" and task["role"] == "workload"
    assert task["admin_equivalent"] == "true"
    assert task["escalation_paths"] == (
        "ecs-deploy: iam:PassRole, ecs:RegisterTaskDefinition, ecs:UpdateService"
        f" via {IAM}:role/admin-task -> {IAM}:role/admin-task"
        " (narrowed: iam:PassedToService ecs-tasks.amazonaws.com)"
    )
    assert task["used_by"] == "task role (cluster prod, service web)"
    alice = found["alice"]
    assert alice["access_levels"] == "iam: Permissions management 40, Read 12"
    assert alice["last_used"] == "2024-05-01T09:00:00+00:00"
    assert alice["used_by"] == "can deploy 2 services through a blanket grant"
    hostile = found[XSS]
    assert (
        hostile["escalation_paths"]
        == "CreateAccessKey: iam:CreateAccessKey (conditional, narrowed)"
    )
    assert hostile["stray_codes"] == "access_key_in_workload"
    assert hostile["stray_reasons"].startswith("long-lived access key")
    assert hostile["findings"] == "key in env"
    assert found["devs"]["role"] == "" and found["devs"]["escalation_paths"] == ""


def test_csv_neutralises_formulas() -> None:
    data = analysis()
    data["principals"][0]["tier_reasons"] = ["-2+3", "plain"]
    found = rows(render.csv(data))
    assert found[0]["tier_reasons"] == "'-2+3; plain"
    assert found[2]["name"] == "'" + FORMULA


# --- JSON and DOT -----------------------------------------------------------------------------


def test_json_is_the_analysis_indented_with_japanese_kept() -> None:
    data = analysis()
    data["principals"][3]["last_used"] = datetime(2024, 5, 1, 9, tzinfo=UTC)
    out = render.json(data)
    assert out.endswith(b"}\n") and b'\n  "summary": {' in out
    assert STRAY_JA.encode() in out  # not \u escaped
    back = orjson.loads(out)
    assert back["principals"][3]["last_used"] == "2024-05-01T09:00:00+00:00"
    assert back["principals"][1]["name"] == XSS
    assert back["principals"][4]["escalation_paths"][0]["via"] == [f"{IAM}:role/admin-task"]


def test_dot_draws_the_snapshots_identity_map() -> None:
    snap = deploy_estate(user("ops", *SCOPED_DEPLOY))
    dot = render.dot(snap)
    assert dot == to_dot(identity_map(snap))
    assert f'"{IAM}:user/ops" -> "service:{ECS}:service/prod/web"' in dot


def test_html_section_carries_the_map_as_data() -> None:
    snap = deploy_estate(user("ops", *SCOPED_DEPLOY))
    section = render.html_section(analysis(), snap, "snap.json.gz")
    assert section["summary"] == analysis()["summary"]
    assert section["snapshot_file"] == "snap.json.gz"
    assert IdentityMap.from_dict(section["identity_map"]) == identity_map(snap)


# --- shared words -----------------------------------------------------------------------------


def test_figures_fall_back_to_counting_the_principals() -> None:
    data = analysis()
    data["summary"] = {}
    assert render.figures(data) == {
        "principals": 5,
        "admin_equivalent": 2,
        "admin_equivalent_outside_iam_admin": 1,
        "escalation_paths": 2,
        "stray": 1,
    }
    data["summary"] = {"principals": 9}
    assert render.figures(data)["principals"] == 9  # the summary wins


def test_by_tier_lists_every_tier_then_unknown_ones() -> None:
    counts = render.by_tier({"summary": {"by_tier": {"service-user": 3, "mystery": 1}}})
    assert list(counts) == [
        "over-privileged",
        "iam-admin",
        "service-admin",
        "service-user",
        "unrelated",
        "mystery",
    ]
    assert counts["service-user"] == 3 and counts["iam-admin"] == 0
    counted = render.by_tier({"principals": analysis()["principals"]})
    assert set(counted.values()) == {1}


def test_words_and_reasons() -> None:
    assert render.words(None) == "" and render.words(False) == "" and render.words(True) == "yes"
    assert render.words(["a", None, "b"]) == "a, b"
    assert render.words({"code": "x"}) == "x" and render.words({"n": 1}) == '{"n":1}'
    assert render.words(3) == "3"
    assert render.reason_text({"code": "c", "en": "E", "ja": "J"}, "ja") == "J"
    assert render.reason_text({"code": "c", "en": "E"}, "ja") == "E"
    assert render.reason_text("plain", "ja") == "plain"
    assert render.tier_and_role({"tier": "unrelated", "role": None}) == "unrelated"
