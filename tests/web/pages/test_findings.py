"""The findings page against a real server: the audit of a saved demo snapshot, filters, mutes
(who may, CSRF, reasons), and the mutelist export the CLI reads."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.web.conftest import Console, Running, add_console_users, log_in, running
from tests.web.pages.estate_data import HOSTILE_CLUSTER_ARN, SCRIPT, save_into

from ecsguard.posture.audit import audit
from ecsguard.posture.mutelist import load_mutelist

PRIVILEGED = "ecs.container_privileged"


@pytest.fixture(scope="module")
def estate_srv(tmp_path_factory: pytest.TempPathFactory, demo_snapshot: Any) -> Iterator[Running]:
    data_dir = tmp_path_factory.mktemp("findings")
    add_console_users(data_dir)
    save_into(data_dir, demo_snapshot)
    with running(data_dir) as server:
        yield server


@pytest.fixture
def as_role(estate_srv: Running) -> Iterator[Callable[[str], Console]]:
    opened: list[Console] = []

    def open_as(role: str) -> Console:
        opened.append(log_in(estate_srv.url, role))
        return opened[-1]

    yield open_as
    for console in opened:
        console.client.close()


def twin(console: Console, **params: str) -> dict[str, Any]:
    return console.twin("findings", **params)


def one(console: Console, check: str) -> dict[str, Any]:
    """The one failed (or muted) finding of `check`."""
    everything = twin(console, check=check, status="all")["findings"]
    rows = [r for r in everything if r["status"] in ("FAIL", "MUTED")]
    assert len(rows) == 1, rows
    row: dict[str, Any] = rows[0]
    return row


def test_failed_findings_with_evidence_and_counts(as_role: Callable[[str], Console]) -> None:
    console = as_role("viewer")
    data = twin(console)
    assert data["filters"]["status"] == "FAIL"
    assert data["snapshot"]["account"] == "123456789012"
    rows = data["findings"]
    assert rows and {r["status"] for r in rows} == {"FAIL"}
    assert sum(data["counts"].values()) == data["total"] == len(rows)
    privileged = next(r for r in rows if r["check_id"] == PRIVILEGED)
    assert privileged["message"] and privileged["remediation"] and privileged["controls"]
    # severity first: no row is more severe than the one before it
    order = ["critical", "high", "medium", "low", "info"]
    ranks = [order.index(r["severity"]) for r in rows]
    assert ranks == sorted(ranks)


def test_filters(as_role: Callable[[str], Console]) -> None:
    console = as_role("viewer")
    everything = twin(console, status="all")
    failed = twin(console)
    assert everything["total"] > failed["total"]
    high = twin(console, severity="high")
    assert high["total"] == failed["counts"]["high"] > 0
    assert {r["severity"] for r in high["findings"]} == {"high"}
    assert high["counts"] == failed["counts"]  # counts ignore the severity filter
    iam = twin(console, pillar="iam")["findings"]
    assert iam and {r["pillar"] for r in iam} == {"iam"}
    ecr = twin(console, check="ecr.*")["findings"]
    assert ecr and all(r["check_id"].startswith("ecr.") for r in ecr)
    by_text = twin(console, resource="TRAIL/LEGACY")["findings"]
    assert by_text and all("trail/legacy" in r["resource_arn"] for r in by_text)
    assert twin(console, region="us-west-2")["total"] == 0
    assert twin(console, status="PASS")["findings"][0]["status"] == "PASS"
    assert len(twin(console, status="all", limit="3")["findings"]) == 3
    bad = console.client.get("/findings.json", params={"status": "BROKEN"})
    assert bad.status_code == 400 and "unknown status" in bad.json()["error"]
    assert console.client.get("/findings.json", params={"limit": "x"}).status_code == 400


def test_japanese_findings(as_role: Callable[[str], Console]) -> None:
    console = as_role("viewer")
    english = one(console, PRIVILEGED)
    reply = console.client.get(
        "/findings.json",
        params={"check": PRIVILEGED, "status": "all"},
        headers={"Accept-Language": "ja"},
    )
    japanese = next(r for r in reply.json()["findings"] if r["status"] == "FAIL")
    assert japanese["title"] != english["title"]
    assert any("\u3040" <= ch <= "\u30ff" for ch in japanese["title"])


def test_mute_needs_operator_csrf_and_reason(as_role: Callable[[str], Console]) -> None:
    target = {"check_id": "ecs.service_public_ip", "resource_arn": "", "reason": "accepted"}
    viewer = as_role("viewer")
    target["resource_arn"] = one(viewer, target["check_id"])["resource_arn"]
    refused = viewer.post("/findings/mute", json=target)
    assert refused.status_code == 403 and "needs operator" in refused.json()["error"]
    operator = as_role("operator")
    assert operator.client.post("/findings/mute", json=target).status_code == 403  # no CSRF
    forged = operator.client.post("/findings/mute", json=target, headers={"X-CSRF-Token": "forged"})
    assert forged.status_code == 403
    for reason in ("", "   "):
        missing = operator.post("/findings/mute", json={**target, "reason": reason})
        assert missing.status_code == 400 and "reason is required" in missing.json()["error"]
    long = operator.post("/findings/mute", json={**target, "reason": "x" * 1001})
    assert long.status_code == 400 and "longer than" in long.json()["error"]
    no_arn = operator.post("/findings/mute", json={**target, "resource_arn": ""})
    assert no_arn.status_code == 400 and "resource_arn" in no_arn.json()["error"]
    bad_date = operator.post("/findings/mute", json={**target, "expires": "next week"})
    assert bad_date.status_code == 400 and "YYYY-MM-DD" in bad_date.json()["error"]
    past = operator.post("/findings/mute", json={**target, "expires": "2020-01-01"})
    assert past.status_code == 400 and "in the past" in past.json()["error"]
    not_json = operator.post("/findings/mute", content=b"[1, 2]")
    assert not_json.status_code == 400 and "JSON object" in not_json.json()["error"]
    assert one(viewer, target["check_id"])["status"] == "FAIL"  # nothing was stored


def test_mute_shows_muted_with_who_and_why_then_unmute(
    as_role: Callable[[str], Console],
) -> None:
    operator = as_role("operator")
    arn = one(operator, PRIVILEGED)["resource_arn"]
    body = {"check_id": PRIVILEGED, "resource_arn": arn, "reason": "sidecar needs it until Q3"}
    open_before = operator.client.get("/overview.json").json()["posture"]["open_findings"]
    reply = operator.post("/findings/mute", json={**body, "expires": "2099-12-31"})
    assert reply.status_code == 200 and reply.json()["muted"]["muted_by"] == "otto"
    # the overview counts what the findings page shows as open
    assert operator.client.get("/overview.json").json()["posture"]["open_findings"] == (
        open_before - 1
    )
    muted = one(as_role("viewer"), PRIVILEGED)
    assert muted["status"] == "MUTED" and muted["mute_reason"] == body["reason"]
    assert muted["mute"]["muted_by"] == "otto" and muted["mute"]["expires"] == "2099-12-31"
    assert PRIVILEGED not in {r["check_id"] for r in twin(operator)["findings"]}
    assert PRIVILEGED in {r["check_id"] for r in twin(operator, status="MUTED")["findings"]}
    html = operator.client.get("/findings", params={"status": "MUTED"}).text
    assert "Muted by otto" in html and "sidecar needs it until Q3" in html
    # viewers cannot unmute; operators can, once
    viewer = as_role("viewer")
    key = {"check_id": PRIVILEGED, "resource_arn": arn}
    assert viewer.post("/findings/unmute", json=key).status_code == 403
    assert operator.client.post("/findings/unmute", json=key).status_code == 403  # no CSRF
    assert operator.post("/findings/unmute", json=key).status_code == 200
    assert one(viewer, PRIVILEGED)["status"] == "FAIL"
    again = operator.post("/findings/unmute", json=key)
    assert again.status_code == 404 and "no console mute" in again.json()["error"]


def test_mute_form_redirects_back_to_the_filtered_page(
    as_role: Callable[[str], Console],
) -> None:
    admin = as_role("admin")
    check = "iam.root_mfa"
    arn = one(admin, check)["resource_arn"]
    form = {
        "csrf": admin.csrf,
        "check_id": check,
        "resource_arn": arn,
        "reason": "break-glass account in a safe",
        "next": "/findings?pillar=iam",
    }
    reply = admin.client.post("/findings/mute", data=form)
    assert reply.status_code == 303 and reply.headers["location"] == "/findings?pillar=iam"
    assert one(admin, check)["status"] == "MUTED"
    elsewhere = admin.client.post(
        "/findings/unmute", data={**form, "next": "https://evil.example/"}
    )
    assert elsewhere.status_code == 303 and elsewhere.headers["location"] == "/findings"
    assert one(admin, check)["status"] == "FAIL"


def test_mutelist_export_is_what_the_cli_loads(
    as_role: Callable[[str], Console], tmp_path: Path, demo_snapshot: Any
) -> None:
    operator = as_role("operator")
    checks = ("ecs.task_role_admin", "cloudtrail.kms_encryption")
    for check in checks:
        arn = one(operator, check)["resource_arn"]
        body = {"check_id": check, "resource_arn": arn, "reason": f"accepted: {check}"}
        assert operator.post("/findings/mute", json=body).status_code == 200
    reply = as_role("viewer").client.get("/findings/mutelist.yaml")
    assert reply.status_code == 200 and "attachment" in reply.headers["content-disposition"]
    assert "# muted by otto" in reply.text
    path = tmp_path / "mutelist.yaml"
    path.write_text(reply.text)
    loaded = load_mutelist(path)
    assert {e.check for e in loaded.mutelist} >= set(checks)
    # the CLI's audit with the file mutes exactly what the console shows as MUTED
    console_muted = {
        (r["check_id"], r["resource_arn"]) for r in twin(operator, status="MUTED")["findings"]
    }
    from tests.web.pages.estate_data import hostile

    cli = audit(hostile(demo_snapshot), mutelist=loaded).findings
    assert {(f.check_id, f.resource_arn) for f in cli if f.status == "MUTED"} == console_muted
    for check in checks:
        arn = one(operator, check)["resource_arn"]
        operator.post("/findings/unmute", json={"check_id": check, "resource_arn": arn})
    empty = yaml.safe_load(as_role("viewer").client.get("/findings/mutelist.yaml").text)
    assert empty == {"mutelist": []}


def test_glob_characters_in_an_arn_mute_only_that_arn(
    as_role: Callable[[str], Console], tmp_path: Path
) -> None:
    from ecsguard.web.mutes import MuteStore, mutelist_yaml

    store = MuteStore(tmp_path)
    store.mute("ecs.x", "arn:aws:ecs:r:1:cluster/a*[b]?", "why", None, "otto")
    path = tmp_path / "m.yaml"
    path.write_text(mutelist_yaml(store.all()))
    entry = load_mutelist(path).mutelist[0]
    from fnmatch import fnmatchcase

    assert fnmatchcase("arn:aws:ecs:r:1:cluster/a*[b]?", entry.resource)
    assert not fnmatchcase("arn:aws:ecs:r:1:cluster/abcb?", entry.resource)


def test_hostile_resource_names_render_as_text(as_role: Callable[[str], Console]) -> None:
    console = as_role("operator")
    rows = twin(console, resource="cluster/batch")["findings"]
    assert HOSTILE_CLUSTER_ARN in {r["resource_arn"] for r in rows}
    html = console.client.get("/findings", params={"resource": "cluster/batch"}).text
    assert SCRIPT not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_no_snapshot_says_how_to_make_one(serve: Callable[..., Any]) -> None:
    with serve() as srv:
        add_console_users(srv.service.data_dir)
        console = log_in(srv.url, "viewer")
        assert console.client.get("/findings.json").json()["snapshot"] is None
        assert "ecsguard inventory" in console.client.get("/findings").text
        assert console.client.get("/findings/mutelist.yaml").status_code == 200
