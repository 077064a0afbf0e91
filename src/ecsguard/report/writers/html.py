"""`--output html`: one self-contained, printable page for people, in English or Japanese.

Nothing is loaded at view time: CSS and JS are inline, charts are SVG computed here, fonts are the
system's. Everything from AWS or a finding is untrusted and only ever reaches the page through
Jinja's autoescape (attribute values included). The only script is a constant; its one input is a
`<script type="application/json">` block written with `tojson` (which escapes < > & ' as \\u
sequences), read with `textContent` and `JSON.parse`, and it writes with `textContent` only. A
Content-Security-Policy pins the style and the script by hash, so even an injection that slipped
past escaping could neither run a script nor load anything. Without JS the page is complete: only
the filters (hidden then) do nothing.

Sections: header, summary charts, findings (filters by pillar, severity, status and, with a
baseline, "new"; evidence, remediation, description and controls in a <details> per finding),
resolved findings (with a baseline), IAM governance (when the report has an IAM analysis: headline
figures, principals by tier, every principal with its escalation paths, stray reasons and uses, the
service-to-identity map, least-privilege commands), "not collected" gaps, and the shared
responsibility statement with this account's evidence per pillar.

The identity map is the one piece of markup not written by the template: `ecsguard.iam.graph.to_svg`
draws it with every text XML-escaped. It is embedded inline (so its tooltips work and its text can
be searched) only after `_inline_svg` has parsed it and found nothing but drawing elements: no
script, no foreignObject, no event attribute, no link, no style.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import shlex
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Mapping
from functools import cache
from typing import Any

from jinja2 import Environment, StrictUndefined, Template
from markupsafe import Markup

from ecsguard.core.models import Finding, Pillar, Severity, Status
from ecsguard.iam import render as iam_render
from ecsguard.iam.graph import to_svg
from ecsguard.iam.usage import IdentityMap, describe_uses
from ecsguard.report import i18n
from ecsguard.report.base import Report, fail_counts, short_name, utc, writer

STATUS_ORDER = [Status.FAIL, Status.MUTED, Status.ERROR, Status.NOT_ASSESSED, Status.PASS]

CSS = """
:root{--ink:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#fff;--panel:#f6f8fa;
--critical:#7d1a1a;--high:#cf222e;--medium:#bc6c00;--low:#0969da;--info:#6e7781;
--pass:#1a7f37;--fail:#cf222e;--other:#8c959f;}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;color:var(--ink);background:var(--bg);line-height:1.5;font-size:15px;
font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Hiragino Sans",
"Hiragino Kaku Gothic ProN","Yu Gothic UI","Yu Gothic",Meiryo,"Noto Sans CJK JP","Noto Sans JP",
sans-serif}
main,header.top{max-width:1180px;margin:0 auto;padding:0 24px}
header.top{padding-top:24px;border-bottom:1px solid var(--line)}
h1{font-size:1.6em;margin:0 0 8px}
h2{font-size:1.3em;margin:32px 0 12px;padding-bottom:4px;border-bottom:1px solid var(--line)}
h3{font-size:1.05em;margin:20px 0 8px}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:0 0 12px}
dl.meta dt{color:var(--muted)}
dl.meta dd{margin:0;overflow-wrap:anywhere}
nav.toc{margin:8px 0 16px}
nav.toc a{margin-right:16px;color:var(--low)}
[hidden]{display:none!important}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}
.card{border:1px solid var(--line);border-radius:6px;padding:8px 14px;min-width:110px;
background:var(--panel)}
.card b{display:block;font-size:1.5em}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:16px}
figure{margin:0;border:1px solid var(--line);border-radius:6px;padding:12px}
figcaption{font-weight:600;margin-bottom:6px}
svg{width:100%;height:auto;display:block}
svg text{font-size:11px;fill:var(--ink)}
svg .axis{stroke:var(--line)}
.sev-critical{fill:var(--critical);background:var(--critical)}
.sev-high{fill:var(--high);background:var(--high)}
.sev-medium{fill:var(--medium);background:var(--medium)}
.sev-low{fill:var(--low);background:var(--low)}
.sev-info{fill:var(--info);background:var(--info)}
.donut-bg{fill:none;stroke:var(--line)}
.donut-fail{fill:none;stroke:var(--fail)}
.donut-pass{fill:none;stroke:var(--pass)}
.donut-none{fill:none;stroke:var(--other)}
svg text.big{font-size:15px;font-weight:600}
.legend{display:flex;flex-wrap:wrap;gap:10px;font-size:.85em;color:var(--muted);margin-top:6px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
form.filters{display:flex;flex-wrap:wrap;gap:12px;align-items:center;padding:10px;
background:var(--panel);border:1px solid var(--line);border-radius:6px}
form.filters label{display:flex;gap:6px;align-items:center}
.no-js form.filters,.no-js #shown{display:none}
#shown{color:var(--muted);margin:6px 0}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;vertical-align:top;padding:6px 8px;border-bottom:1px solid var(--line)}
th{background:var(--panel);font-weight:600}
table.findings tr.more td{border-bottom:2px solid var(--line);padding-top:0}
td.res{overflow-wrap:anywhere}
.id{display:block;color:var(--muted);font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,
monospace;font-size:.85em}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:var(--panel);padding:8px;
border-radius:4px;margin:4px 0}
details summary{cursor:pointer;color:var(--low)}
details dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:8px 0}
details dt{color:var(--muted)}
details dd{margin:0;overflow-wrap:anywhere}
.badge{display:inline-block;padding:0 8px;border-radius:10px;font-size:.8em;font-weight:600;
color:#fff;white-space:nowrap}
.st-PASS{background:var(--pass)}
.st-FAIL{background:var(--fail)}
.st-MUTED,.st-NOT_ASSESSED,.st-ERROR{background:var(--other)}
.mark-new{color:var(--fail);font-weight:600}
.pillars{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:16px}
.pillar{border:1px solid var(--line);border-radius:6px;padding:12px}
.pillar h4{margin:0 0 6px;font-size:1em}
.pillar ul{padding-left:18px;margin:6px 0}
.evidence{background:var(--panel);border-radius:4px;padding:8px;margin-top:8px}
.evidence dl{display:grid;grid-template-columns:1fr max-content;gap:2px 12px;margin:0}
.evidence dd{margin:0;text-align:right;font-weight:600}
.controls{font-size:.85em;color:var(--muted);margin-top:6px;overflow-wrap:anywhere}
.two{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:16px}
.note{color:var(--muted);font-size:.9em}
.tier-over-privileged{fill:var(--high);background:var(--high)}
.tier-iam-admin{fill:#8250df;background:#8250df}
.tier-service-admin{fill:var(--low);background:var(--low)}
.tier-service-user{fill:var(--pass);background:var(--pass)}
.tier-unrelated,.tier-other{fill:var(--other);background:var(--other)}
table.principals ul{margin:0;padding-left:16px}
table.principals td{overflow-wrap:break-word}
table.principals th,table.principals td.flag{white-space:nowrap}
figure.narrow{max-width:480px}
.map{overflow-x:auto;border:1px solid var(--line);border-radius:6px;padding:8px}
.map svg{min-width:760px}
ul.commands{list-style:none;padding:0}
ul.commands code{display:block;background:var(--panel);padding:6px 8px;border-radius:4px;
margin:4px 0;overflow-wrap:anywhere}
footer{max-width:1180px;margin:32px auto;padding:12px 24px;border-top:1px solid var(--line);
color:var(--muted);font-size:.85em}
@media print{
body{font-size:10.5pt}
main,header.top,footer{max-width:none;padding:0}
nav.toc,form.filters,#shown{display:none!important}
tbody.finding,figure,.pillar,.card,tr{break-inside:avoid}
h2{break-after:avoid}
section.sr{break-before:page}
a[href^="https:"]::after{content:" (" attr(href) ")";font-size:.8em;color:var(--muted)}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}
"""

JS = """
(function () {
  "use strict";
  document.documentElement.classList.remove("no-js");
  var source = document.getElementById("ecsguard-data");
  var form = document.getElementById("filters");
  var counter = document.getElementById("shown");
  if (!source || !form || !counter) { return; }
  var data = JSON.parse(source.textContent);
  var rows = Array.prototype.slice.call(document.querySelectorAll("tbody.finding"));
  function chosen(name) {
    var field = form.elements.namedItem(name);
    if (!field) { return ""; }
    return field.type === "checkbox" ? (field.checked ? "new" : "") : field.value;
  }
  function apply() {
    var want = {pillar: chosen("pillar"), severity: chosen("severity"),
                status: chosen("status"), mark: chosen("mark")};
    var shown = 0;
    rows.forEach(function (row) {
      var keep = Object.keys(want).every(function (key) {
        return !want[key] || row.getAttribute("data-" + key) === want[key];
      });
      row.hidden = !keep;
      if (keep) { shown += 1; }
    });
    counter.textContent = data.labels.shown
      .replace("{shown}", String(shown)).replace("{total}", String(rows.length));
  }
  form.addEventListener("change", apply);
  form.addEventListener("submit", function (event) { event.preventDefault(); });
  window.addEventListener("beforeprint", function () {
    Array.prototype.forEach.call(document.querySelectorAll("details"), function (d) {
      d.open = true;
    });
  });
  apply();
})();
"""

TEMPLATE = """<!DOCTYPE html>
<html lang="{{ lang }}" class="no-js">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{{ csp }}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="ecsguard {{ meta.version }}">
<title>{{ L.title }} · {{ meta.account }}</title>
<style>{{ css }}</style>
</head>
<body>
<header class="top">
<h1>{{ L.title }}</h1>
<dl class="meta">
<dt>{{ L.account }}</dt><dd>{{ meta.account }}</dd>
<dt>{{ L.regions }}</dt><dd>{{ meta.regions|join(", ") or "-" }}</dd>
<dt>{{ L.collected_at }}</dt>
<dd><time datetime="{{ meta.collected_at }}">{{ meta.collected_at }}</time></dd>
<dt>{{ L.version }}</dt><dd>{{ meta.version or "-" }}</dd>
</dl>
<nav class="toc">
<a href="#summary">{{ L.summary }}</a>
<a href="#findings">{{ L.findings }}</a>
{% if baseline %}<a href="#resolved">{{ L.resolved }}</a>{% endif %}
{% if iam %}<a href="#iam">{{ L.iam_title }}</a>{% endif %}
<a href="#not-collected">{{ L.not_collected }}</a>
<a href="#responsibility">{{ L.sr_title }}</a>
</nav>
</header>
<main>
<section id="summary">
<h2>{{ L.summary }}</h2>
<div class="cards">
{% for card in status_cards %}
<div class="card"><span class="badge st-{{ card.status }}">{{ card.label }}</span>
<b>{{ card.count }}</b></div>
{% endfor %}
</div>
{% if baseline %}<p>{{ baseline.line }}</p>{% endif %}
<div class="charts">
<figure>
<figcaption>{{ L.chart_fail_severity }}</figcaption>
<svg viewBox="0 0 {{ sev_chart.width }} {{ sev_chart.height }}" role="img" aria-labelledby="c1">
<title id="c1">{{ L.chart_fail_severity }}</title>
<line class="axis" x1="0" y1="{{ sev_chart.base }}" x2="{{ sev_chart.width }}"
 y2="{{ sev_chart.base }}"/>
{% for bar in sev_chart.bars %}
<rect class="sev-{{ bar.severity }}" x="{{ bar.x }}" y="{{ bar.y }}" width="{{ bar.w }}"
 height="{{ bar.h }}"><title>{{ bar.label }}: {{ bar.count }}</title></rect>
<text x="{{ bar.cx }}" y="{{ bar.y - 4 }}" text-anchor="middle">{{ bar.count }}</text>
<text x="{{ bar.cx }}" y="{{ sev_chart.base + 16 }}" text-anchor="middle">{{ bar.label }}</text>
{% endfor %}
</svg>
</figure>
<figure>
<figcaption>{{ L.chart_fail_pillar }}</figcaption>
<svg viewBox="0 0 {{ pillar_chart.width }} {{ pillar_chart.height }}" role="img"
 aria-labelledby="c2">
<title id="c2">{{ L.chart_fail_pillar }}</title>
{% for row in pillar_chart.rows %}
<text x="0" y="{{ row.y + 14 }}">{{ row.label }}</text>
{% for seg in row.segments %}
<rect class="sev-{{ seg.severity }}" x="{{ seg.x }}" y="{{ row.y }}" width="{{ seg.w }}"
 height="20"><title>{{ row.label }} · {{ seg.label }}: {{ seg.count }}</title></rect>
{% endfor %}
<text x="{{ row.end + 6 }}" y="{{ row.y + 14 }}">{{ row.total }}</text>
{% endfor %}
</svg>
<div class="legend">
{% for item in legend %}
<span><i class="sev-{{ item.severity }}"></i>{{ item.label }}</span>
{% endfor %}
</div>
</figure>
<figure>
<figcaption>{{ L.chart_pass_rate }}</figcaption>
<svg viewBox="0 0 {{ donuts.width }} {{ donuts.height }}" role="img" aria-labelledby="c3">
<title id="c3">{{ L.chart_pass_rate }}</title>
{% for d in donuts.rings %}
<g><title>{{ d.label }}: {{ d.detail }}</title>
{% if d.rate is none %}
<circle class="donut-none" cx="{{ d.cx }}" cy="{{ d.cy }}" r="{{ donuts.r }}"
 stroke-width="{{ donuts.stroke }}"/>
{% else %}
<circle class="donut-fail" cx="{{ d.cx }}" cy="{{ d.cy }}" r="{{ donuts.r }}"
 stroke-width="{{ donuts.stroke }}"/>
<circle class="donut-pass" cx="{{ d.cx }}" cy="{{ d.cy }}" r="{{ donuts.r }}"
 stroke-width="{{ donuts.stroke }}" stroke-dasharray="{{ d.dash }}"
 transform="rotate(-90 {{ d.cx }} {{ d.cy }})"/>
{% endif %}
<text class="big" x="{{ d.cx }}" y="{{ d.cy + 5 }}" text-anchor="middle">{{ d.text }}</text>
<text x="{{ d.cx }}" y="{{ d.cy + donuts.r + 22 }}" text-anchor="middle">{{ d.label }}</text>
</g>
{% endfor %}
</svg>
</figure>
</div>
</section>

{% if iam %}
<section id="iam">
<h2>{{ L.iam_title }}</h2>
<p><b>{{ iam.headline }}</b></p>
<div class="cards">
{% for card in iam.cards %}
<div class="card">{{ card.label }}<b>{{ card.count }}</b></div>
{% endfor %}
</div>
<figure class="narrow">
<figcaption>{{ L.iam_chart_tiers }}</figcaption>
<svg viewBox="0 0 {{ iam.chart.width }} {{ iam.chart.height }}" role="img" aria-labelledby="c4">
<title id="c4">{{ L.iam_chart_tiers }}</title>
{% for row in iam.chart.rows %}
<g><title>{{ row.tier }}: {{ row.count }}{% if row.note %} · {{ row.note }}{% endif %}</title>
<text x="0" y="{{ row.y + 14 }}">{{ row.tier }}</text>
<rect class="tier-{{ row.css }}" x="{{ iam.chart.left }}" y="{{ row.y }}" width="{{ row.w }}"
 height="20"/>
<text x="{{ iam.chart.left + row.w + 6 }}" y="{{ row.y + 14 }}">{{ row.count }}</text>
</g>
{% endfor %}
</svg>
</figure>
<h3>{{ L.iam_principals }}</h3>
{% if iam.rows %}
<table class="principals">
<thead><tr>
<th>{{ L.iam_name }}</th><th>{{ L.iam_tier }}</th><th>{{ L.iam_admin_equivalent }}</th>
<th>{{ L.iam_escalation_paths }}</th><th>{{ L.iam_stray_reasons }}</th>
<th>{{ L.iam_used_by }}</th><th>{{ L.iam_last_used }}</th>
</tr></thead>
<tbody>
{% for p in iam.rows %}
<tr>
<td title="{{ p.arn }}">{{ p.name }}<span class="id">{{ p.type }}</span></td>
<td><span class="badge tier-{{ p.css }}">{{ p.tier }}</span>
{% if p.role %}<span class="id">{{ p.role }}</span>{% endif %}
{% if p.tier_reasons %}
<ul class="note">{% for r in p.tier_reasons %}<li>{{ r }}</li>{% endfor %}</ul>
{% endif %}
</td>
<td class="flag">{{ L.iam_yes if p.admin_equivalent else "-" }}</td>
<td>
{% if p.paths %}
<ul>
{% for path in p.paths %}
<li><b>{{ path.method }}</b>
{% for action in path.actions %}<br><code>{{ action }}</code>{% endfor %}
{% if path.via %}<br><span title="{{ path.via_arns }}">{{ L.iam_via }}: {{ path.via }}</span>
{% endif %}
{% if path.gains %}<br><span title="{{ path.gains_arn }}">{{ L.iam_gains }}: {{ path.gains }}</span>
{% endif %}
{% if path.conditional %}<br><span class="note">{{ L.iam_conditional }}</span>{% endif %}
{% if path.narrowed %}<br><span class="note">{{ L.iam_narrowed }}{% if path.narrowed_detail %}:
{{ path.narrowed_detail }}{% endif %}</span>{% endif %}
</li>
{% endfor %}
</ul>
{% else %}-{% endif %}
</td>
<td>
{% if p.stray %}
<ul>{% for r in p.stray %}<li>{{ r }}</li>{% endfor %}</ul>
{% else %}-{% endif %}
</td>
<td>
{% if p.used_by %}
<ul>{% for u in p.used_by %}<li>{{ u }}</li>{% endfor %}</ul>
{% else %}-{% endif %}
</td>
<td>{% if p.last_used %}<span title="{{ p.last_used }}">{{ p.last_used_day }}</span>
{% else %}-{% endif %}</td>
</tr>
{% endfor %}
</tbody>
</table>
{% else %}
<p>{{ L.iam_no_principals }}</p>
{% endif %}
<h3>{{ L.iam_map }}</h3>
{% if iam.map_svg %}
<p class="note">{{ L.iam_map_note }}</p>
<div class="map">{{ iam.map_svg }}</div>
{% else %}
<p class="note">{{ L.iam_map_missing }}</p>
{% endif %}
<h3>{{ L.iam_least_privilege }}</h3>
<p>{{ L.iam_least_privilege_intro }}</p>
{% if iam.commands %}
<ul class="commands">{% for c in iam.commands %}<li><code>{{ c }}</code></li>{% endfor %}</ul>
{% if iam.placeholder %}<p class="note">{{ L.iam_snapshot_placeholder }}</p>{% endif %}
{% else %}
<p>{{ L.iam_no_services }}</p>
{% endif %}
<p class="note">{{ L.iam_least_privilege_tiers }}</p>
</section>
{% endif %}

<section id="findings">
<h2>{{ L.findings }}</h2>
<form id="filters" class="filters" aria-label="{{ L.filters }}">
{% for f in filters %}
<label>{{ f.label }}
<select name="{{ f.name }}">
<option value="">{{ L.all }}</option>
{% for value, text in f.options %}<option value="{{ value }}">{{ text }}</option>{% endfor %}
</select></label>
{% endfor %}
{% if baseline %}
<label><input type="checkbox" name="mark" value="new"> {{ L.new_only }}</label>
{% endif %}
</form>
<p id="shown" aria-live="polite"></p>
{% if rows %}
<table class="findings">
<thead><tr>
<th>{{ L.status }}</th><th>{{ L.severity }}</th><th>{{ L.pillar }}</th><th>{{ L.check }}</th>
<th>{{ L.resource }}</th><th>{{ L.region }}</th>
{% if baseline %}<th>{{ L.baseline }}</th>{% endif %}
</tr></thead>
{% for r in rows %}
<tbody class="finding" data-status="{{ r.status }}" data-severity="{{ r.severity }}"
 data-pillar="{{ r.pillar }}" data-mark="{{ r.mark }}">
<tr>
<td><span class="badge st-{{ r.status }}">{{ r.status_label }}</span></td>
<td>{{ r.severity_label }}</td>
<td>{{ r.pillar_label }}</td>
<td>{{ r.title }}<span class="id">{{ r.check_id }}</span></td>
<td class="res" title="{{ r.resource_arn }}">{{ r.resource }}</td>
<td>{{ r.region }}</td>
{% if baseline %}<td class="mark-{{ r.mark }}">{{ r.mark_label }}</td>{% endif %}
</tr>
<tr class="more"><td colspan="{{ 7 if baseline else 6 }}">
<details>
<summary>{{ r.summary }}</summary>
<dl>
<dt>{{ L.evidence }}</dt><dd><pre>{{ r.message }}</pre></dd>
<dt>{{ L.resource }}</dt><dd><code>{{ r.resource_arn }}</code>
{% if r.resource_type %}<span class="note">({{ r.resource_type }})</span>{% endif %}</dd>
{% if r.mute_reason %}<dt>{{ L.mute_reason }}</dt><dd>{{ r.mute_reason }}</dd>{% endif %}
<dt>{{ L.remediation }}</dt><dd>{{ r.remediation }}</dd>
{% if r.description %}<dt>{{ L.description }}</dt><dd>{{ r.description }}</dd>{% endif %}
<dt>{{ L.controls }}</dt><dd>{{ r.controls|join(", ") or "-" }}</dd>
</dl>
</details>
</td></tr>
</tbody>
{% endfor %}
</table>
{% else %}
<p>{{ L.no_findings }}</p>
{% endif %}
</section>

{% if baseline %}
<section id="resolved">
<h2>{{ L.resolved }}</h2>
{% if resolved %}
<table>
<thead><tr><th>{{ L.severity }}</th><th>{{ L.check }}</th><th>{{ L.resource }}</th>
<th>{{ L.region }}</th></tr></thead>
<tbody>
{% for r in resolved %}
<tr><td>{{ r.severity_label }}</td><td>{{ r.title }}<span class="id">{{ r.check_id }}</span></td>
<td class="res"><code>{{ r.resource_arn }}</code></td><td>{{ r.region }}</td></tr>
{% endfor %}
</tbody>
</table>
{% else %}
<p>{{ L.resolved_none }}</p>
{% endif %}
</section>
{% endif %}



<section id="not-collected">
<h2>{{ L.not_collected }}</h2>
{% if gaps %}
<p>{{ L.not_collected_intro }}</p>
<ul>{% for gap in gaps %}<li><code>{{ gap }}</code></li>{% endfor %}</ul>
{% else %}
<p>{{ L.not_collected_none }}</p>
{% endif %}
</section>

<section id="responsibility" class="sr">
<h2>{{ L.sr_title }}</h2>
{% for p in L.sr_intro %}<p>{{ p }}</p>{% endfor %}
<h3>{{ L.sr_matrix_title }}</h3>
<table class="matrix">
<thead><tr>{% for h in L.sr_matrix_head %}<th>{{ h }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in L.sr_matrix_rows %}
<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}
</tbody>
</table>
<div class="two">
<div>
<h3>{{ L.sr_aws_title }}</h3>
<ul>{% for item in L.sr_aws_items %}<li>{{ item }}</li>{% endfor %}</ul>
{% for p in L.sr_aws_evidence %}<p>{{ p }}</p>{% endfor %}
<p>{{ L.sr_links_title }}:</p>
<ul>
{% for link in links %}
<li><a href="{{ link.url }}" rel="noopener noreferrer">{{ link.label }}</a></li>
{% endfor %}
</ul>
</div>
<div>
<h3>{{ L.sr_customer_title }}</h3>
{% for p in L.sr_customer_intro %}<p>{{ p }}</p>{% endfor %}
</div>
</div>
<div class="pillars">
{% for p in pillars %}
<div class="pillar">
<h4>{{ p.label }}</h4>
<ul>{% for item in p.bullets %}<li>{{ item }}</li>{% endfor %}</ul>
<div class="evidence">
<b>{{ L.sr_evidence }}</b>
<dl>
<dt>{{ L.sr_checks_passed }}</dt><dd>{{ p.checks_passed }}</dd>
<dt>{{ L.sr_checks_failed }}</dt><dd>{{ p.checks_failed }}</dd>
<dt>{{ L.sr_checks_other }}</dt><dd>{{ p.checks_other }}</dd>
</dl>
<div>{{ p.findings_line }}</div>
<div class="controls">{{ L.sr_controls }}: {{ p.controls|join(", ") or L.sr_controls_none }}</div>
</div>
</div>
{% endfor %}
</div>
{% for p in L.sr_note %}<p class="note">{{ p }}</p>{% endfor %}
</section>
</main>
<footer>{{ L.print_note }}</footer>
<script type="application/json" id="ecsguard-data">{{ data|tojson }}</script>
<script>{{ js }}</script>
</body>
</html>
"""


def _sha256(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


CSP = (
    "default-src 'none'; "
    f"style-src {_sha256(CSS)}; script-src {_sha256(JS)}; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)


@cache
def _template() -> Template:
    env = Environment(
        autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    return env.from_string(TEMPLATE)


def _order(finding: Finding) -> tuple[int, int, str, str, str]:
    return (
        STATUS_ORDER.index(finding.status),
        finding.severity.rank,
        finding.check_id,
        finding.region,
        finding.resource_arn,
    )


def _shorten(text: str, limit: int = 160) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit and line == text.strip() else line[: limit - 1] + "…"


def _row(report: Report, finding: Finding) -> dict[str, Any]:
    lang = report.lang
    meta = report.checks.get(finding.check_id)
    mark = report.baseline.get((finding.check_id, finding.resource_arn), "")
    return {
        "status": finding.status.value,
        "status_label": i18n.label(lang, "statuses", finding.status.value),
        "severity": finding.severity.value,
        "severity_label": i18n.label(lang, "severities", finding.severity.value),
        "pillar": finding.pillar.value,
        "pillar_label": i18n.label(lang, "pillars", finding.pillar.value),
        "check_id": finding.check_id,
        "title": finding.title,
        "resource": short_name(finding.resource_arn),
        "resource_arn": finding.resource_arn,
        "resource_type": finding.resource_type,
        "region": finding.region,
        "message": finding.message,
        "summary": _shorten(finding.message or finding.title),
        "remediation": finding.remediation,
        "description": meta.description.get(lang) if meta else "",
        "controls": list(finding.controls),
        "mute_reason": finding.mute_reason or "",
        "mark": mark,
        "mark_label": i18n.label(lang, "marks", mark) if mark else "",
    }


def _severity_chart(report: Report) -> dict[str, Any]:
    counts = Counter(f.severity for f in report.findings if f.status == Status.FAIL)
    width, height, base, top = 340, 190, 160, 20
    biggest = max(counts.values(), default=0) or 1
    slot = width / len(Severity)
    bars = []
    for n, severity in enumerate(Severity):
        h = round((base - top) * counts[severity] / biggest, 1)
        x = round(n * slot + slot * 0.2, 1)
        bars.append(
            {
                "severity": severity.value,
                "label": i18n.label(report.lang, "severities", severity.value),
                "count": counts[severity],
                "x": x,
                "w": round(slot * 0.6, 1),
                "cx": round(n * slot + slot / 2, 1),
                "y": round(base - h, 1),
                "h": h,
            }
        )
    return {"width": width, "height": height, "base": base, "bars": bars}


def _pillar_chart(report: Report) -> dict[str, Any]:
    counts = fail_counts(report.findings)
    totals = {p: sum(counts[(p, s)] for s in Severity) for p in Pillar}
    width, left, right, row_h = 360, 120, 40, 30
    span = width - left - right
    biggest = max(totals.values(), default=0) or 1
    rows = []
    for n, pillar in enumerate(Pillar):
        label = i18n.label(report.lang, "pillars", pillar.value)
        x, segments = float(left), []
        for severity in Severity:
            count = counts[(pillar, severity)]
            if not count:
                continue
            w = round(span * count / biggest, 1)
            segments.append(
                {
                    "severity": severity.value,
                    "label": i18n.label(report.lang, "severities", severity.value),
                    "count": count,
                    "x": round(x, 1),
                    "w": w,
                }
            )
            x += w
        rows.append(
            {
                "label": label,
                "y": 10 + n * row_h,
                "segments": segments,
                "total": totals[pillar],
                "end": round(x, 1),
            }
        )
    return {"width": width, "height": 20 + len(Pillar) * row_h, "rows": rows}


def _donuts(report: Report) -> dict[str, Any]:
    lang = report.lang
    r, stroke, slot = 30.0, 10, 90
    circumference = 2 * math.pi * r
    rings = []
    for n, pillar in enumerate(Pillar):
        statuses = Counter(f.status for f in report.findings if f.pillar == pillar)
        passed, failed = statuses[Status.PASS], statuses[Status.FAIL]
        judged = passed + failed
        rate = passed / judged if judged else None
        detail = (
            i18n.text(lang, "pass_rate_detail").format(passed=passed, failed=failed)
            if judged
            else i18n.text(lang, "pass_rate_none")
        )
        arc = round(circumference * rate, 2) if rate is not None else 0.0
        rings.append(
            {
                "label": i18n.label(lang, "pillars", pillar.value),
                "cx": slot / 2 + n * slot,
                "cy": 50,
                "rate": rate,
                "text": f"{round(rate * 100)}%" if rate is not None else "–",
                "dash": f"{arc} {round(circumference, 2)}",
                "detail": detail,
            }
        )
    return {"width": slot * len(Pillar), "height": 120, "r": r, "stroke": stroke, "rings": rings}


def _natural(control: str) -> list[tuple[int, str]]:
    """Sort key that puts CIS:4.9 before CIS:4.10."""
    return [
        (int(part), "") if part.isdigit() else (-1, part) for part in re.split(r"(\d+)", control)
    ]


def _pillar_evidence(report: Report) -> list[dict[str, Any]]:
    lang = report.lang
    by_check: dict[str, list[Finding]] = defaultdict(list)
    for finding in report.findings:
        by_check[finding.check_id].append(finding)
    pillar_of = {check_id: meta.pillar for check_id, meta in report.checks.items()}
    for check_id, group in by_check.items():
        pillar_of.setdefault(check_id, group[0].pillar)
    bullets = i18n.strings(lang)["sr_pillar_items"]
    out = []
    for pillar in Pillar:
        passed = failed = other = 0
        controls: set[str] = set()
        statuses: Counter[Status] = Counter()
        for check_id in sorted(c for c, p in pillar_of.items() if p == pillar):
            group = by_check.get(check_id, [])
            if not group:
                continue
            kinds = {f.status for f in group}
            statuses.update(f.status for f in group)
            if Status.FAIL in kinds:
                failed += 1
            elif kinds == {Status.PASS}:
                passed += 1
            else:
                other += 1
            if kinds & {Status.PASS, Status.FAIL, Status.MUTED}:
                meta = report.checks.get(check_id)
                controls.update(meta.controls if meta else group[0].controls)
        out.append(
            {
                "label": i18n.label(lang, "pillars", pillar.value),
                "bullets": bullets[pillar.value],
                "checks_passed": passed,
                "checks_failed": failed,
                "checks_other": other,
                "findings_line": i18n.text(lang, "sr_findings").format(
                    passed=statuses[Status.PASS], failed=statuses[Status.FAIL]
                ),
                "controls": sorted(controls, key=_natural),
            }
        )
    return out


# -- the IAM section ---------------------------------------------------------------------

#: what an identity map SVG may hold (local names): drawing, text and tooltips, nothing active
_SVG_ELEMENTS = frozenset({"svg", "g", "title", "text", "rect", "path", "line"})


def _inline_svg(svg: str) -> Markup:
    """`svg` as markup to embed in the page, after checking it holds only drawing elements.

    Marking it Markup is safe because `to_svg` XML-escapes every text it writes and builds its
    attributes from numbers and constants; this check makes that a verified property rather than
    a promise, so a future change to the drawing cannot smuggle a script into the report."""
    root = ET.fromstring(svg)
    for element in root.iter():
        name = element.tag.rpartition("}")[2]
        if name not in _SVG_ELEMENTS:
            raise ValueError(f"identity map SVG holds a <{name}> element")
        for attribute in element.attrib:
            local = attribute.rpartition("}")[2].lower()
            if local.startswith("on") or local in ("href", "style", "src"):
                raise ValueError(f"identity map SVG has a {attribute!r} attribute")
    return Markup(svg)  # checked above; see the docstring


def _tier_css(tier: str) -> str:
    return tier if tier in i18n.IAM_TIERS else "other"


def _tier_chart(counts: Mapping[str, int], lang: str) -> dict[str, Any]:
    notes = i18n.strings(lang)["iam_tier_notes"]
    width, left, right, row_h = 360, 120, 40, 30
    biggest = max(counts.values(), default=0) or 1
    rows = [
        {
            "tier": tier,
            "css": _tier_css(tier),
            "note": notes.get(tier, ""),
            "count": count,
            "y": 10 + n * row_h,
            "w": round((width - left - right) * count / biggest, 1),
        }
        for n, (tier, count) in enumerate(counts.items())
    ]
    return {"width": width, "height": 20 + len(rows) * row_h, "left": left, "rows": rows}


def _iam_row(principal: Mapping[str, Any], lang: str) -> dict[str, Any]:
    words = iam_render.words
    paths = []
    for path in principal.get("escalation_paths", []):
        narrowed = path.get("narrowed")
        via = [words(v) for v in path.get("via", [])]
        gains = words(path.get("gains", ""))
        paths.append(
            {
                "method": words(path.get("method", "?")),
                "actions": [words(a) for a in path.get("actions", [])],
                # role names read better in a table cell; the ARNs are in the tooltip
                "via": ", ".join(short_name(v) for v in via),
                "via_arns": ", ".join(via),
                "gains": short_name(gains),
                "gains_arn": gains,
                "conditional": bool(path.get("conditional")),
                "narrowed": bool(narrowed),
                "narrowed_detail": "" if narrowed is True else words(narrowed),
            }
        )
    tier = str(principal.get("tier", ""))
    last_used = words(principal.get("last_used"))
    return {
        "arn": str(principal.get("arn", "")),
        "name": str(principal.get("name", "")),
        "type": str(principal.get("type", "")),
        "tier": tier,
        "css": _tier_css(tier),
        "role": words(principal.get("role")),
        "tier_reasons": [words(r) for r in principal.get("tier_reasons", [])],
        "admin_equivalent": bool(principal.get("admin_equivalent")),
        "paths": paths,
        "stray": [iam_render.reason_text(r, lang) for r in principal.get("stray_reasons", [])],
        "used_by": describe_uses(iam_render.uses(principal), lang),
        "last_used": last_used,
        # the day is enough in a table; the whole time is in the tooltip
        "last_used_day": last_used[:10] if re.match(r"\d{4}-\d\d-\d\dT", last_used) else last_used,
    }


def _services(iam: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(cluster, service) of every ECS service: from the map when the report has it, else from
    the principals' uses."""
    if "identity_map" in iam:
        found = {(s["cluster"], s["service"]) for s in iam["identity_map"].get("services", [])}
    else:
        found = {
            (u.cluster, u.service)
            for p in iam.get("principals", [])
            for u in iam_render.uses(p)
            if u.service
        }
    return sorted(found)


def _template_command(cluster: str, service: str, snapshot_file: str) -> str:
    # names are quoted for a shell: the line is meant to be copied
    return (
        f"ecsguard iam template --tier ci --cluster {shlex.quote(cluster)}"
        f" --service {shlex.quote(service)}"
        f" --snapshot {shlex.quote(snapshot_file) if snapshot_file else 'FILE'}"
    )


def _iam_section(iam: Mapping[str, Any], lang: str) -> dict[str, Any]:
    strings = i18n.strings(lang)
    numbers = iam_render.figures(iam)
    snapshot_file = str(iam.get("snapshot_file") or "")
    imap = iam.get("identity_map")
    return {
        "headline": iam_render.headline(iam, lang),
        "cards": [
            {"label": strings[label], "count": numbers[key]}
            for key, label in (
                ("principals", "iam_principals"),
                ("admin_equivalent", "iam_admin_equivalent"),
                ("admin_equivalent_outside_iam_admin", "iam_outside_admin"),
                ("escalation_paths", "iam_escalation_paths"),
                ("stray", "iam_stray"),
            )
        ],
        "chart": _tier_chart(iam_render.by_tier(iam), lang),
        "rows": [_iam_row(p, lang) for p in iam_render.by_concern(iam.get("principals", []))],
        "map_svg": _inline_svg(to_svg(IdentityMap.from_dict(imap))) if imap else None,
        "commands": [_template_command(c, s, snapshot_file) for c, s in _services(iam)],
        "placeholder": not snapshot_file,
    }


def context(report: Report) -> dict[str, Any]:
    """Everything the template shows, as plain values (the template escapes all of them)."""
    lang = report.lang if report.lang in i18n.LANGUAGES else "en"
    strings = i18n.strings(lang)
    statuses = Counter(f.status for f in report.findings)
    collected = utc(report.collected_at).isoformat(timespec="seconds").replace("+00:00", "Z")
    baseline = None
    if report.baseline:
        new = sum(1 for mark in report.baseline.values() if mark == "new")
        baseline = {
            "line": strings["baseline_counts"].format(
                new=new, unchanged=len(report.baseline) - new, resolved=len(report.resolved)
            )
        }
    filters = [
        {
            "name": "pillar",
            "label": strings["pillar"],
            "options": [(p.value, i18n.label(lang, "pillars", p.value)) for p in Pillar],
        },
        {
            "name": "severity",
            "label": strings["severity"],
            "options": [(s.value, i18n.label(lang, "severities", s.value)) for s in Severity],
        },
        {
            "name": "status",
            "label": strings["status"],
            "options": [(s.value, i18n.label(lang, "statuses", s.value)) for s in STATUS_ORDER],
        },
    ]
    counts = fail_counts(report.findings)
    return {
        "lang": lang,
        "L": strings,
        "csp": CSP,
        "css": Markup(CSS),  # a constant of this module, never data
        "js": Markup(JS),  # a constant of this module, never data
        "meta": {
            "account": report.account,
            "regions": list(report.regions),
            "collected_at": collected,
            "version": report.ecsguard_version,
        },
        "status_cards": [
            {
                "status": s.value,
                "label": i18n.label(lang, "statuses", s.value),
                "count": statuses[s],
            }
            for s in STATUS_ORDER
        ],
        "baseline": baseline,
        "sev_chart": _severity_chart(report),
        "pillar_chart": _pillar_chart(report),
        "legend": [
            {"severity": s.value, "label": i18n.label(lang, "severities", s.value)}
            for s in Severity
        ],
        "donuts": _donuts(report),
        "filters": filters,
        "rows": [_row(report, f) for f in sorted(report.findings, key=_order)],
        "resolved": [
            _row(report, f)
            for f in sorted(report.resolved, key=lambda f: (f.severity.rank, f.check_id))
        ],
        "gaps": list(report.gaps),
        "iam": _iam_section(report.iam, lang) if report.iam is not None else None,
        "pillars": _pillar_evidence(report),
        "links": [{"label": strings[key], "url": url} for key, url in i18n.LINKS.items()],
        "data": {
            "labels": {"shown": strings["shown"]},
            "account": report.account,
            "regions": list(report.regions),
            "collected_at": collected,
            "statuses": {s.value: statuses[s] for s in Status},
            "failed": {
                p.value: {s.value: counts[(p, s)] for s in Severity if counts[(p, s)]}
                for p in Pillar
            },
        },
    }


@writer("html")
def write_html(report: Report) -> bytes:
    return _template().render(**context(report)).encode("utf-8")
