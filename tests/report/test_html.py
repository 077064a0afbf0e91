"""The HTML report: self-contained, escaped everywhere, bilingual, usable without JS."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from html.parser import HTMLParser
from typing import Any

import pytest
from tests.report.sample import HOSTILE_ARN, JA_MESSAGE, report

from ecsguard.report.base import render

ALLOWED_LINK_HOSTS = ("https://docs.aws.amazon.com/", "https://aws.amazon.com/")


class Page(HTMLParser):
    """Tags with their attributes, and the text of each <script> and <style>."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.raw: dict[str, list[str]] = {"script": [], "style": []}
        self._in: str | None = None
        self.text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in self.raw:
            self._in = tag
            self.raw[tag].append("")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in:
            self.raw[self._in][-1] += data
        else:
            self.text.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def _html(**kwargs: Any) -> str:
    return render(report(**kwargs), "html").decode("utf-8")


@pytest.fixture(scope="module")
def html() -> str:
    return _html(baseline=True)


def test_hostile_strings_are_escaped(html: str) -> None:
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'onmouseover="alert' not in html
    page = Page(html)
    for _, attrs in page.tags:
        assert not any(name.startswith("on") for name in attrs), attrs
    titles = [a["title"] for a in page.all("td") if a.get("title")]
    assert HOSTILE_ARN in titles  # the whole value stayed inside its attribute
    assert len(page.all("script")) == 2


def test_nothing_is_loaded_from_the_network(html: str) -> None:
    page = Page(html)
    for tag, attrs in page.tags:
        for name in ("src", "srcset", "data", "poster", "action", "formaction"):
            assert name not in attrs, (tag, attrs)
        href = attrs.get("href") or attrs.get("xlink:href")
        if href and not href.startswith("#"):
            assert tag == "a" and href.startswith(ALLOWED_LINK_HOSTS), (tag, href)
    assert not page.all("link") and not page.all("iframe") and not page.all("img")
    for style in page.raw["style"]:
        assert "url(" not in style and "@import" not in style
    outside_links = html.replace('<a href="https://', "<a ")
    assert re.search(r"""(src|href)=["']?(https?:)?//""", outside_links) is None


def test_content_security_policy_pins_the_inline_code(html: str) -> None:
    page = Page(html)
    (csp,) = [
        a["content"] for a in page.all("meta") if a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert csp is not None and "default-src 'none'" in csp
    (style,) = page.raw["style"]
    code = [s for s, a in zip(page.raw["script"], page.all("script"), strict=True) if not a]
    for kind, source in (("style-src", style), ("script-src", code[0])):
        digest = base64.b64encode(hashlib.sha256(source.encode()).digest()).decode()
        assert f"{kind} 'sha256-{digest}'" in csp


def test_script_builds_no_html_and_data_block_is_safe_json() -> None:
    hostile = "</script><script>alert(3)</script>&'"
    html = _html(account=hostile)
    page = Page(html)
    blocks = [a for a in page.all("script") if a.get("type") == "application/json"]
    assert len(blocks) == 1
    data_text, code = page.raw["script"]
    assert "<" not in data_text and ">" not in data_text and "&" not in data_text
    assert json.loads(data_text)["account"] == hostile
    assert "innerHTML" not in code and "outerHTML" not in code and "insertAdjacentHTML" not in code
    assert "document.write" not in code and "eval(" not in code
    assert "textContent" in code and "JSON.parse" in code


def test_structure_and_filters(html: str) -> None:
    page = Page(html)
    assert 'lang="en"' in html
    ids = {a.get("id") for _, a in page.tags}
    assert {"summary", "findings", "resolved", "not-collected", "responsibility"} <= ids
    selects = {a["name"] for a in page.all("select")}
    assert selects == {"pillar", "severity", "status"}
    assert any(a.get("name") == "mark" for a in page.all("input"))  # "new" filter with a baseline
    rows = [a for a in page.all("tbody") if a.get("class") == "finding"]
    assert len(rows) == len(report().findings)
    assert rows[0]["data-status"] == "FAIL" and rows[0]["data-severity"] == "critical"
    assert len(page.all("details")) == len(rows)
    assert len(page.all("svg")) == 3
    assert "@media print" in page.raw["style"][0]
    assert "no-js" in html  # filters hidden until the script runs


def test_without_baseline_there_is_no_new_filter() -> None:
    page = Page(_html())
    assert not any(a.get("name") == "mark" for a in page.all("input"))
    assert "resolved" not in {a.get("id") for _, a in page.tags}


def test_gaps_evidence_and_shared_responsibility(html: str) -> None:
    text = " ".join(Page(html).text)
    assert "not collected: AccessDenied on ecs:ListServices" in text
    assert "AWS Artifact" in text and "security OF the cloud" in text
    assert "Security posture" in text and "Monitoring" in text
    assert "FSBP:ECS.4" in text and "CIS:1.16" in text
    assert "accepted <script>alert(1)</script>" in text  # mute reason, as text
    assert "fix ecs.container_privileged" in text  # remediation
    assert "why ecs.container_privileged matters" in text  # description


def test_pillar_evidence_counts() -> None:
    page = Page(_html())
    text = " ".join(" ".join(page.text).split())
    # security: ecs.container_privileged and ecs.task_user fail, ecs.exec_disabled errored
    assert "Checks passing 0 Checks failing 2 Checks not assessed, errored or muted 1" in text
    assert "Findings: 1 passed, 2 failed" in text
    assert "Controls covered: FSBP:ECS.4, SecurityHub:ECS.20" in text  # natural order


def test_japanese_report() -> None:
    html = _html(lang="ja", baseline=True)
    assert '<html lang="ja"' in html
    headings = [h.strip() for h in re.findall(r"<h2>(.*?)</h2>", html)]
    assert headings == [
        "概要",
        "検出結果",
        "ベースライン以降に解消された項目",
        "未収集の項目",
        "責任共有モデル",
    ]
    assert JA_MESSAGE in html
    assert "クラウドのセキュリティ" in html and "クラウドにおけるセキュリティ" in html
    assert "AWS Artifact" in html


def test_deterministic(html: str) -> None:
    assert _html(baseline=True) == html


def test_empty_report() -> None:
    html = _html(findings=[], gaps=[])
    assert "No findings." in html
    assert "Everything the checks need was collected." in html
