"""Drawing the service-to-identity map: DOT for Graphviz, SVG for the HTML report."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from tests.iam.test_usage import allow, deploy_estate, role_arn, td_arn, user, user_arn
from tests.posture.builders import ACCOUNT, REGION, snapshot

from ecsguard.iam.graph import to_dot, to_svg
from ecsguard.iam.usage import IdentityMap, Principal, ServiceIdentities, Use, identity_map

ECS = f"arn:aws:ecs:{REGION}:{ACCOUNT}"


def drawn_map() -> IdentityMap:
    """A hand-built map whose names hold characters DOT and XML must escape."""
    svc = f"{ECS}:service/prod/web"
    odd = 'weird"<b>&\\name\n'
    role_a, user_b = role_arn("web-task"), user_arn("bot")
    return IdentityMap(
        principals={
            role_a: Principal(role_a, odd, "role", managed_policies=("<script>alert(1)</script>",)),
            user_b: Principal(user_b, "bot", "user"),
        },
        uses={
            role_a: (Use(role_a, "task_role", REGION, "prod", "web", td_arn("web")),),
            user_b: (Use(user_b, "access_key_in_env", REGION, "", "", td_arn("job")),),
        },
        services=(
            ServiceIdentities(
                REGION, "prod", "web", svc, td_arn("web"), "FARGATE", task_roles=(role_a,)
            ),
        ),
        task_definitions=(td_arn("web"), td_arn("job")),
    )


def test_dot_escapes_labels_and_groups_services_by_cluster() -> None:
    dot = to_dot(drawn_map())
    assert dot.startswith("digraph ecs_identities {") and dot.rstrip().endswith("}")
    assert 'label="weird\\"<b>&\\\\name\\n"' in dot
    assert "subgraph cluster_" in dot and 'label="prod (ap-northeast-1)"' in dot
    assert f'"service:{ECS}:service/prod/web" -> "{role_arn("web-task")}"' in dot
    assert 'label="access key in environment", color="red"' in dot


def test_svg_is_well_formed_escaped_script_free_and_deterministic() -> None:
    svg = to_svg(drawn_map())
    assert svg == to_svg(drawn_map())
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert "<script" not in svg and "&lt;script&gt;" in svg
    texts = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert 'role: weird"<b>&\\name\n' in texts
    assert "prod / web" in texts and "task definition job:1" in texts


def test_svg_third_column_takes_given_labels() -> None:
    svg = to_svg(drawn_map(), labels={role_arn("web-task"): ["service-user"]}, third_column="Tiers")
    texts = {t.text for t in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}text")}
    assert {"Tiers", "service-user"} <= texts
    assert "<script>alert(1)</script>" not in texts


def test_an_empty_map_draws_an_empty_graph() -> None:
    imap = identity_map(snapshot())
    assert "no identities in use" in to_svg(imap)
    assert to_dot(imap).count("->") == 0
    ET.fromstring(to_svg(imap))


def test_incidental_deployers_are_drawn_only_when_asked() -> None:
    imap = identity_map(deploy_estate(user("root-like", allow("*"))))
    assert user_arn("root-like") not in to_dot(imap)
    assert f'"{user_arn("root-like")}" -> ' in to_dot(imap, incidental_deployers=True)
