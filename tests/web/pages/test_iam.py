"""The IAM page against a real server: the analysis of a saved demo snapshot (tiers, admin
sprawl, escalation paths, stray identities, the identity map, policy templates), filters, and
hostile principal names."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.web.conftest import Console, Running, add_console_users, log_in, running
from tests.web.pages.estate_data import HOSTILE_ROLE, HOSTILE_USER, SCRIPT, save_into

from ecsguard.iam.templates import resource_star_violations


@pytest.fixture(scope="module")
def estate_srv(tmp_path_factory: pytest.TempPathFactory, demo_snapshot: Any) -> Iterator[Running]:
    data_dir = tmp_path_factory.mktemp("iam")
    add_console_users(data_dir)
    save_into(data_dir, demo_snapshot)
    with running(data_dir) as server:
        yield server


@pytest.fixture(scope="module")
def viewer(estate_srv: Running) -> Iterator[Console]:
    console = log_in(estate_srv.url, "viewer")
    yield console
    console.client.close()


def twin(console: Console, **params: str) -> dict[str, Any]:
    return console.twin("iam", **params)


def test_tiers_sprawl_paths_and_stray(viewer: Console) -> None:
    data = twin(viewer)
    figures = data["figures"]
    tiers = {row["tier"]: row for row in data["tiers"]}
    assert sum(row["count"] for row in tiers.values()) == figures["principals"] == data["shown"]
    for name, row in tiers.items():
        assert len(row["principals"]) == row["count"], name
        assert all(p["tier"] == name for p in row["principals"])
    assert tiers["iam-admin"]["note"] and tiers["over-privileged"]["count"] > 0
    every = [p for row in tiers.values() for p in row["principals"]]
    assert all(p["reasons"] for p in every if p["tier"] != "unrelated")
    # admin sprawl: admin-equivalent, outside the IAM-administrator tier, and no other
    sprawl = {p["arn"] for p in data["sprawl"]}
    expected = {p["arn"] for p in every if p["admin_equivalent"] and p["tier"] != "iam-admin"}
    assert sprawl == expected and len(sprawl) == figures["admin_equivalent_outside_iam_admin"]
    assert len(data["paths"]) == figures["escalation_paths"] > 0
    assert all(": " in row["path"] for row in data["paths"])  # `method: actions ...`
    assert len(data["stray"]) == figures["stray"] > 0
    assert all(p["stray"] for p in data["stray"])


def test_filters_by_tier_and_name(viewer: Console) -> None:
    admins = twin(viewer, tier="iam-admin")
    listed = [p for row in admins["tiers"] for p in row["principals"]]
    assert listed and {p["tier"] for p in listed} == {"iam-admin"}
    assert admins["sprawl"] == []  # nobody in the IAM-admin tier is sprawl
    by_name = twin(viewer, principal="TANAKA")
    names = [p["name"] for row in by_name["tiers"] for p in row["principals"]]
    assert names == ["tanaka.yuki"] and by_name["shown"] == 1
    bad = viewer.client.get("/iam.json", params={"tier": "root"})
    assert bad.status_code == 400 and "unknown tier" in bad.json()["error"]


def test_japanese_reasons(viewer: Console) -> None:
    reply = viewer.client.get("/iam.json", headers={"Accept-Language": "ja"})
    rows = [p for row in reply.json()["tiers"] for p in row["principals"] if p["reasons"]]
    assert any(re.search("[\u3040-\u30ff\u4e00-\u9fff]", r) for p in rows for r in p["reasons"])


def test_policy_templates_per_tier(viewer: Console) -> None:
    data = twin(viewer)
    suggestions = {s["tier"]: s for s in data["suggestions"]}
    assert set(suggestions) == {
        "deployer",
        "ci",
        "operator",
        "workload",
        "service-admin",
        "iam-admin",
    }
    ci = suggestions["ci"]
    assert ci["command"].startswith("ecsguard iam template --snapshot demo.json.gz")
    policy = json.loads(ci["policy"])
    assert policy["Version"] == "2012-10-17" and resource_star_violations(policy) == []
    assert "\n  " in ci["policy"]  # pretty JSON
    assert "prod" in data["clusters"]
    prod = twin(viewer, cluster="prod")["suggestions"][1]
    assert "--cluster prod" in prod["command"] and ":cluster/prod" in prod["policy"]
    unknown = viewer.client.get("/iam.json", params={"cluster": "nope"})
    assert unknown.status_code == 400 and "no ECS service" in unknown.json()["error"]


def test_identity_map_is_our_escaped_svg(viewer: Console) -> None:
    svg = twin(viewer)["map_svg"]
    root = ET.fromstring(svg)  # well-formed: every name was escaped
    texts = " ".join(t for t in root.itertext())
    assert "role: " + HOSTILE_ROLE in texts  # the name is text, not an element
    assert {e.tag.rpartition("}")[2] for e in root.iter()} <= {
        "svg",
        "g",
        "title",
        "text",
        "rect",
        "path",
        "line",
    }


def test_hostile_principal_names_render_as_text(viewer: Console) -> None:
    html = viewer.client.get("/iam").text
    body = html.split("<main>", 1)[1]
    assert SCRIPT not in body and "<img" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "bot&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in body
    names = [p["name"] for row in twin(viewer)["tiers"] for p in row["principals"]]
    assert HOSTILE_ROLE in names and HOSTILE_USER in names


def test_no_snapshot_says_how_to_make_one(serve: Callable[..., Any]) -> None:
    with serve() as srv:
        add_console_users(srv.service.data_dir)
        console = log_in(srv.url, "viewer")
        assert console.client.get("/iam.json").json()["snapshot"] is None
        assert "ecsguard inventory" in console.client.get("/iam").text
