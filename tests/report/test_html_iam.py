"""The HTML report's IAM section: present only with an analysis, escaped, bilingual, offline."""

from __future__ import annotations

import base64
import hashlib
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from tests.iam.test_render import STRAY_JA, XSS, analysis
from tests.report.sample import report
from tests.report.test_html import ALLOWED_LINK_HOSTS, Page

from ecsguard.iam.usage import IdentityMap, Principal, ServiceIdentities, Use
from ecsguard.report.base import render
from ecsguard.report.writers.html import CSP, _inline_svg

REGION, ACCOUNT = "ap-northeast-1", "123456789012"
SERVICE_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/prod/web"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/web-task"


def hostile_map() -> dict[str, Any]:
    """A map whose principal name and policy are script tags."""
    td = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/web:1"
    imap = IdentityMap(
        principals={ROLE_ARN: Principal(ROLE_ARN, XSS, "role", managed_policies=(XSS + "2",))},
        uses={ROLE_ARN: (Use(ROLE_ARN, "task_role", REGION, "prod", "web", td),)},
        services=(
            ServiceIdentities(REGION, "prod", "web", SERVICE_ARN, td, "FARGATE", (ROLE_ARN,)),
        ),
        task_definitions=(td,),
    )
    return imap.to_dict()


def iam(**more: Any) -> dict[str, Any]:
    return {**analysis(), "identity_map": hostile_map(), **more}


def html(lang: str = "en", **iam_fields: Any) -> str:
    return render(report(lang, iam=iam(**iam_fields)), "html").decode("utf-8")


@pytest.fixture(scope="module")
def page_html() -> str:
    return html()


def section(text: str) -> str:
    start = text.index('<section id="iam">')
    return text[start : text.index("</section>", start)]


def test_no_section_without_an_analysis() -> None:
    text = render(report(), "html").decode("utf-8")
    assert 'id="iam"' not in text and 'href="#iam"' not in text


def test_section_with_figures_chart_and_one_row_per_principal(page_html: str) -> None:
    page = Page(page_html)
    assert 'href="#iam"' in page_html
    body = section(page_html)
    assert "5 principals; 2 admin-equivalent, 1 of them outside the IAM-administrator tier" in body
    cards = re.findall(r'<div class="card">(.*?)<b>(\d+)</b></div>', body)
    assert cards == [
        ("Principals", "5"),
        ("Admin-equivalent", "2"),
        ("Admin-equivalent outside the IAM-administrator tier", "1"),
        ("Escalation paths", "2"),
        ("Stray identities", "1"),
    ]
    bars = [a["class"] for a in page.all("rect") if (a.get("class") or "").startswith("tier-")]
    assert bars == [
        "tier-over-privileged",
        "tier-iam-admin",
        "tier-service-admin",
        "tier-service-user",
        "tier-unrelated",
    ]
    tables = [a for a in page.all("table") if a.get("class") == "principals"]
    assert len(tables) == 1
    assert body.count("<tr>") == 1 + len(analysis()["principals"])  # header + principals


def test_escalation_paths_stray_reasons_and_uses_are_shown(page_html: str) -> None:
    text = " ".join(" ".join(Page(section(page_html)).text).split())
    assert "ecs-deploy iam:PassRole ecs:RegisterTaskDefinition ecs:UpdateService" in text
    assert "via: admin-task gains: admin-task" in text  # role names; the ARNs in tooltips
    assert f'title="arn:aws:iam::{ACCOUNT}:role/admin-task"' in section(page_html)
    assert "narrowed: iam:PassedToService ecs-tasks.amazonaws.com" in text
    assert "conditional: a Condition decides it" in text
    assert "long-lived access key in a workload's environment" in text
    assert "task role (cluster prod, service web)" in text
    assert "can deploy 2 services through a blanket grant" in text
    assert "AdministratorAccess (managed)" in text  # tier reason
    assert "2024-05-01" in text and "2024-05-01T09" not in text  # last used: the day
    assert 'title="2024-05-01T09:00:00+00:00"' in section(page_html)


def test_least_privilege_commands_per_service(page_html: str) -> None:
    commands = re.findall(r"<li><code>(ecsguard iam template[^<]*)</code></li>", page_html)
    assert commands == [
        "ecsguard iam template --tier ci --cluster prod --service web --snapshot FILE"
    ]
    assert "FILE is the snapshot this report was made from." in page_html
    named = html(snapshot_file="/data/snap shot.json.gz")
    assert "--snapshot &#39;/data/snap shot.json.gz&#39;" in named
    assert "FILE is the snapshot" not in named


def test_without_the_map_services_come_from_the_uses_and_names_are_shell_quoted() -> None:
    data = analysis()
    data["principals"][0]["used_by"] = [
        Use("x", "task_role", REGION, "prod", "web; rm -rf /").to_dict()
    ]
    text = render(report(iam=data), "html").decode("utf-8")
    assert "The service-to-identity map was not included in this report." in text
    assert "--service &#39;web; rm -rf /&#39;" in text
    assert "--cluster prod --service web --snapshot FILE" in text  # from the task role's use


def test_hostile_names_are_escaped_in_the_table_and_in_the_map(page_html: str) -> None:
    body = section(page_html)
    assert "<script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    (svg,) = re.findall(r'<div class="map">(.*?)</div>', body, re.DOTALL)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in svg  # the principal's name, escaped
    assert "&lt;script&gt;alert(1)&lt;/script&gt;2" in svg  # its policy, escaped
    root = ET.fromstring(svg)
    texts = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert f"role: {XSS}" in texts
    page = Page(page_html)
    assert len(page.all("script")) == 2  # the data block and the constant script, still
    for _, attrs in page.tags:
        assert not any(name.startswith("on") for name in attrs), attrs


def test_nothing_is_loaded_and_the_csp_still_pins_the_inline_code(page_html: str) -> None:
    page = Page(page_html)
    for tag, attrs in page.tags:
        for name in ("src", "srcset", "data", "poster", "action", "formaction", "style"):
            assert name not in attrs, (tag, attrs)
        href = attrs.get("href") or attrs.get("xlink:href")
        if href and not href.startswith("#"):
            assert tag == "a" and href.startswith(ALLOWED_LINK_HOSTS), (tag, href)
    assert not page.all("img") and not page.all("foreignobject") and not page.all("link")
    outside_links = page_html.replace('<a href="https://', "<a ")
    assert re.search(r"""(src|href)=["']?(https?:)?//""", outside_links) is None
    (style,) = page.raw["style"]
    assert ".tier-iam-admin" in style
    code = [s for s, a in zip(page.raw["script"], page.all("script"), strict=True) if not a]
    for kind, source in (("style-src", style), ("script-src", code[0])):
        digest = base64.b64encode(hashlib.sha256(source.encode()).digest()).decode()
        assert f"{kind} 'sha256-{digest}'" in CSP


def test_japanese_section() -> None:
    text = html("ja")
    body = section(text)
    assert "<h2>IAM ガバナンス</h2>" in body
    assert "プリンシパル 5 件、うち管理者相当 2 件（IAM 管理者層の外に 1 件）" in body
    for word in ("権限昇格パス", "放置の理由", "利用元", "最小権限", "サービスと ID の対応"):
        assert word in body
    assert STRAY_JA in body
    assert "タスクロール (クラスター prod, サービス web)" in body
    assert "包括的な権限でサービス 2 件をデプロイ可能" in body
    assert "over-privileged" in body  # tier names stay identifiers
    assert "FILE はこのレポートの元になったスナップショットです。" in body
    headings = [h.strip() for h in re.findall(r"<h2>(.*?)</h2>", text)]
    assert headings[:3] == ["概要", "IAM ガバナンス", "検出結果"]


def test_an_empty_analysis_says_so() -> None:
    text = render(report(iam={"summary": {}, "principals": []}), "html").decode("utf-8")
    body = section(text)
    assert "0 principals; 0 admin-equivalent, 0 of them outside" in body
    assert "No principals." in body and "No ECS services in this account." in body


def test_deterministic(page_html: str) -> None:
    assert html() == page_html


@pytest.mark.parametrize(
    "svg",
    [
        '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg"><foreignObject/></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg"><rect onclick="alert(1)"/></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:x="http://www.w3.org/1999/xlink">'
        '<a x:href="https://example.com"><text>x</text></a></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg"><g style="fill:red"/></svg>',
    ],
)
def test_only_drawing_svg_is_embedded(svg: str) -> None:
    with pytest.raises(ValueError, match="identity map SVG"):
        _inline_svg(svg)


def test_a_drawing_svg_is_embedded_as_it_is() -> None:
    svg = '<svg xmlns="http://www.w3.org/2000/svg"><g><title>&lt;b&gt;</title></g></svg>'
    assert str(_inline_svg(svg)) == svg
