"""IAM: the latest snapshot's IAM analysis (`ecsguard iam report`) for people.

Tiers with their principals and the effective-permission reasons behind each tier, admin
sprawl (admin-equivalent principals outside the IAM-administrator tier), escalation paths,
stray identities, the service-to-identity map, and least-privilege policies per tier (what
`ecsguard iam template --snapshot FILE` prints). Filters: `tier`, `principal` (text in the name
or ARN); `cluster` scopes the suggested policies.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from typing import Any

from ecsguard.core.errors import UserError
from ecsguard.iam import render
from ecsguard.iam.graph import to_svg
from ecsguard.iam.templates import TIERS as TEMPLATE_TIERS
from ecsguard.iam.templates import Scope, scope_from_snapshot, template
from ecsguard.iam.usage import describe_uses
from ecsguard.report import i18n
from ecsguard.web import estate
from ecsguard.web.auth import ApiError
from ecsguard.web.page import PAGES, Page, PageContext


def _principal(principal: Mapping[str, Any], lang: str) -> dict[str, Any]:
    tier = str(principal.get("tier", ""))
    reasons = principal.get("tier_reasons_ja") if lang == "ja" else None
    return {
        "arn": str(principal.get("arn", "")),
        "name": str(principal.get("name", "")),
        "type": str(principal.get("type", "")),
        "tier": tier,
        "tier_and_role": render.tier_and_role(principal),
        "reasons": [render.words(r) for r in reasons or principal.get("tier_reasons", [])],
        "admin_equivalent": bool(principal.get("admin_equivalent")),
        "conditional": bool(principal.get("admin_equivalent_conditional")),
        "sprawl": bool(principal.get("admin_equivalent")) and tier != "iam-admin",
        "paths": [render.path_text(p) for p in principal.get("escalation_paths", [])],
        "stray": [render.reason_text(r, lang) for r in principal.get("stray_reasons", [])],
        "used_by": describe_uses(render.uses(principal), lang, short=True),
        "last_used": principal.get("last_used"),
    }


def _map_svg(found: estate.Estate, analysis: Mapping[str, Any], column: str) -> str:
    # the HTML report's check: the SVG may hold drawing elements only, no script, no event
    # attribute, no reference; `to_svg` XML-escapes every name it writes
    from ecsguard.report.writers.html import _inline_svg

    tiers = {p["arn"]: [render.tier_and_role(p)] for p in analysis.get("principals", [])}
    return str(_inline_svg(to_svg(estate.identity_map(found), tiers, third_column=column)))


def _suggestions(found: estate.Estate, cluster: str) -> list[dict[str, str]]:
    """`ecsguard iam template --tier T --snapshot FILE [--cluster C]` for every tier."""
    try:
        scope = scope_from_snapshot(found.snapshot, [cluster] if cluster else [], [])
    except UserError:
        if cluster:
            raise ApiError(400, f"no ECS service in cluster {cluster!r} in the snapshot") from None
        scope = Scope(account=found.snapshot.account)  # no services: account-wide ARNs
    # quoted for a shell: the line is meant to be copied
    command = f"ecsguard iam template --snapshot {shlex.quote(found.path.name)}"
    if cluster:
        command += f" --cluster {shlex.quote(cluster)}"
    return [
        {
            "tier": tier,
            "command": f"{command} --tier {tier}",
            "policy": json.dumps(template(tier, scope), indent=2, ensure_ascii=False),
        }
        for tier in TEMPLATE_TIERS
    ]


def data(ctx: PageContext) -> dict[str, Any]:
    params = ctx.params
    tier = params.get("tier", "")
    text = params.get("principal", "").strip()
    cluster = params.get("cluster", "").strip()
    filters = {"tier": tier, "principal": text, "cluster": cluster}
    found = estate.latest(ctx.console.data_dir)
    if found is None:
        return {"snapshot": None, "filters": filters}
    analysis = estate.iam_analysis(found)
    counts = render.by_tier(analysis)
    if tier and tier not in counts:
        raise ApiError(400, f"unknown tier {tier!r}; choose one of {', '.join(counts)}")
    rows = [_principal(p, ctx.lang) for p in render.by_concern(analysis.get("principals", []))]
    needle = text.lower()
    shown = [
        r
        for r in rows
        if (not tier or r["tier"] == tier)
        and (not needle or needle in r["name"].lower() or needle in r["arn"].lower())
    ]
    notes = i18n.strings(ctx.lang)["iam_tier_notes"]
    clusters = sorted({s.cluster for s in estate.identity_map(found).services})
    return {
        "snapshot": found.summary(),
        "filters": filters,
        "figures": render.figures(analysis),
        "headline": render.headline(analysis, ctx.lang),
        "tiers": [
            {
                "tier": name,
                "count": count,
                "note": notes.get(name, ""),
                "principals": [r for r in shown if r["tier"] == name],
            }
            for name, count in counts.items()
        ],
        "shown": len(shown),
        "sprawl": [r for r in shown if r["sprawl"]],
        "paths": [
            {"principal": r["name"], "arn": r["arn"], "tier": r["tier_and_role"], "path": path}
            for r in shown
            for path in r["paths"]
        ],
        "stray": [r for r in shown if r["stray"]],
        "clusters": clusters,
        "map_svg": _map_svg(found, analysis, ctx.t("tiers")),
        "suggestions": _suggestions(found, cluster),
    }


PAGES.add(
    "iam",
    Page(
        name="iam",
        order=40,
        data=data,
        words={
            "en": {
                "title": "IAM",
                "snapshot": "Snapshot {name} of account {account}, collected {at}",
                "tier": "Tier",
                "tiers": "Tiers",
                "principal": "Principal",
                "any": "any",
                "shown": "{shown} principals match the filter",
                "type": "Type",
                "reasons": "Why this tier (effective permissions)",
                "used_by": "Used by",
                "admin": "admin-equivalent",
                "conditional": "conditional",
                "sprawl": "Admin sprawl",
                "sprawl_note": "Admin-equivalent principals outside the IAM-administrator tier.",
                "paths": "Privilege-escalation paths",
                "stray": "Stray identities",
                "map": "Services and the identities they use",
                "suggestions": "Least-privilege policies per tier",
                "suggestions_note": "What `ecsguard iam template` prints for each tier, scoped "
                "to the snapshot's services (choose a cluster to narrow it).",
                "cluster": "Cluster",
                "all_clusters": "all clusters",
            },
            "ja": {
                "title": "IAM",
                "snapshot": "スナップショット {name} (アカウント {account}、{at} に収集)",
                "tier": "層",
                "tiers": "層",
                "principal": "プリンシパル",
                "any": "すべて",
                "shown": "条件に一致するプリンシパル: {shown} 件",
                "type": "種類",
                "reasons": "この層の理由 (実効権限)",
                "used_by": "利用元",
                "admin": "管理者相当",
                "conditional": "条件付き",
                "sprawl": "管理者権限の拡散",
                "sprawl_note": "IAM 管理者層以外にいる管理者相当のプリンシパル。",
                "paths": "権限昇格パス",
                "stray": "野良アイデンティティ",
                "map": "サービスと使用するアイデンティティ",
                "suggestions": "層ごとの最小権限ポリシー",
                "suggestions_note": "`ecsguard iam template` が層ごとに出力するポリシー "
                "(スナップショットのサービスに限定。クラスターを選ぶとさらに絞り込み)。",
                "cluster": "クラスター",
                "all_clusters": "すべてのクラスター",
            },
        },
    ),
)
