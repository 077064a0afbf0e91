"""Drawing the service-to-identity map (`ecsguard.iam.usage.identity_map`).

`to_dot` writes Graphviz DOT for `ecsguard iam report --output dot`; `to_svg` draws a fixed
three-column SVG for the HTML report without Graphviz (deterministic, so reports diff cleanly).
Both are pure functions of an `IdentityMap`. Every name in the map comes from AWS and is
untrusted: DOT strings are quoted and escaped, SVG text is XML-escaped, and the SVG holds no
script, no event attribute and no external reference, so the HTML report can embed it inline.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from ecsguard.iam.usage import KIND_LABELS, IdentityMap, Use, td_name


@dataclass(frozen=True)
class _Node:
    key: str
    label: str
    group: str  # "region/cluster" or "" for workloads; principal type for principals
    tooltip: str


@dataclass(frozen=True)
class _Graph:
    workloads: tuple[_Node, ...]
    principals: tuple[_Node, ...]
    #: (workload key, principal ARN, kind); deployers point the other way when drawn
    edges: tuple[tuple[str, str, str], ...]


def _graph(imap: IdentityMap, incidental_deployers: bool) -> _Graph:
    """Workloads (services; task definitions, rules and container instances outside a service)
    and the principals they use or are deployed by."""
    workloads: dict[str, _Node] = {}
    edges: set[tuple[str, str, str]] = set()
    for s in imap.services:
        key = f"service:{s.arn}"
        workloads[key] = _Node(key, s.service, f"{s.region}/{s.cluster}", s.arn)
        for kind, arns in (
            ("task_role", s.task_roles),
            ("execution_role", s.execution_roles),
            ("instance_role", s.instance_roles),
            ("access_key_in_env", s.env_key_users),
            ("deployer", s.deployers),
            ("deployer", s.incidental_deployers if incidental_deployers else ()),
        ):
            edges.update((key, arn, kind) for arn in arns)
    ec2_clusters = {(s.region, s.cluster) for s in imap.services if s.launch == "EC2"}
    for arn, uses in imap.uses.items():
        for use in uses:
            if use.service or use.kind in ("deployer", "service_linked", "trail_logs_role"):
                continue
            if use.kind == "instance_role" and (use.region, use.cluster) in ec2_clusters:
                continue
            node = _workload_of(use)
            workloads.setdefault(node.key, node)
            edges.add((node.key, arn, use.kind))
    drawn = {p for _, p, _ in edges}
    principals = []
    for arn in sorted(drawn):
        known = imap.principals.get(arn)
        name = known.name if known else arn.rsplit("/", 1)[-1]
        kind = known.type if known else "unknown"
        principals.append(_Node(arn, name, kind, arn))
    order = sorted(workloads.values(), key=lambda n: (n.group, n.key.split(":", 1)[0], n.label))
    return _Graph(tuple(order), tuple(principals), tuple(sorted(edges)))


def _workload_of(use: Use) -> _Node:
    group = f"{use.region}/{use.cluster}" if use.cluster else use.region
    if use.kind == "events_target_role" or (use.rule and not use.task_definition):
        name = use.rule.rsplit("/", 1)[-1]
        return _Node(f"rule:{use.rule}", f"rule {name}", group, use.rule)
    if use.task_definition:
        label = "task definition " + td_name(use.task_definition)
        return _Node(f"taskdef:{use.task_definition}", label, group, use.task_definition)
    label = f"container instances of {use.cluster}" if use.cluster else str(use)
    return _Node(f"instances:{group}", label, group, label)


def _dot_quote(text: str) -> str:
    """A DOT double-quoted string: backslashes and quotes escaped, newlines as \\n."""
    body = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + body.replace("\r", "").replace("\n", "\\n") + '"'


_DOT_SHAPES = {"user": "house", "group": "folder", "role": "ellipse", "unknown": "octagon"}


def to_dot(imap: IdentityMap, incidental_deployers: bool = False) -> str:
    """Graphviz DOT: one box per ECS cluster holding its services (and standalone task
    definitions, rules, container instances), edges to the roles and users they run under, and
    dashed edges from deployers to the services they can roll out. Administrators' incidental
    deploy rights are left out unless `incidental_deployers`."""
    graph = _graph(imap, incidental_deployers)
    lines = [
        "digraph ecs_identities {",
        '  graph [rankdir=LR, fontname="Helvetica", fontsize=11];',
        '  node [fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=8];',
    ]
    by_group: dict[str, list[_Node]] = defaultdict(list)
    for node in graph.workloads:
        by_group[node.group].append(node)
    for index, (group, nodes) in enumerate(sorted(by_group.items())):
        region, _, cluster = group.partition("/")
        label = f"{cluster} ({region})" if cluster else region or "no cluster"
        lines.append(f"  subgraph cluster_{index} {{")
        lines.append(f"    label={_dot_quote(label)};")
        for node in nodes:
            shape = "box" if node.key.startswith("service:") else "note"
            lines.append(
                f"    {_dot_quote(node.key)} [label={_dot_quote(node.label)}, shape={shape},"
                f" tooltip={_dot_quote(node.tooltip)}];"
            )
        lines.append("  }")
    for node in graph.principals:
        lines.append(
            f"  {_dot_quote(node.key)} [label={_dot_quote(node.label)},"
            f" shape={_DOT_SHAPES.get(node.group, 'ellipse')}, tooltip={_dot_quote(node.tooltip)}];"
        )
    for workload, principal, kind in graph.edges:
        label = _dot_quote(KIND_LABELS[kind])
        if kind == "deployer":
            lines.append(
                f"  {_dot_quote(principal)} -> {_dot_quote(workload)} [label={label},"
                " style=dashed];"
            )
        else:
            color = ', color="red"' if kind == "access_key_in_env" else ""
            lines.append(
                f"  {_dot_quote(workload)} -> {_dot_quote(principal)} [label={label}{color}];"
            )
    lines.append("}")
    return "\n".join(lines) + "\n"


_EDGE_COLORS = {
    "task_role": "#2b6cb0",
    "execution_role": "#718096",
    "instance_role": "#805ad5",
    "access_key_in_env": "#c53030",
    "events_target_role": "#2f855a",
    "service_role": "#718096",
    "deployer": "#a0aec0",
}
_COL_X = (10, 350, 690)
_BOX_W, _BOX_H, _ROW_H, _TOP = 300, 22, 30, 50
_MAX_LABEL = 42


def to_svg(
    imap: IdentityMap,
    labels: Mapping[str, Sequence[str]] | None = None,
    third_column: str = "Policies",
    incidental_deployers: bool = False,
) -> str:
    """A deterministic three-column SVG for the HTML report, drawn without Graphviz: workloads
    (services, ...) on the left, the roles and users they use in the middle, and on the right
    each principal's `labels` (default: its policies; pass tiers, for instance, with
    `third_column="Tiers"`). Rows are ordered by the mean position of their neighbours, so that
    edges cross little. Text is XML-escaped; the SVG has no scripts and no external references."""
    graph = _graph(imap, incidental_deployers)
    if labels is None:
        labels = {arn: p.policies for arn, p in imap.principals.items()}
    left = [n.key for n in graph.workloads]
    left_links: dict[str, list[int]] = defaultdict(list)
    for workload, principal, _ in graph.edges:
        left_links[principal].append(left.index(workload))
    middle = _barycentric([n.key for n in graph.principals], left_links)
    right_links: dict[str, list[int]] = defaultdict(list)
    for index, arn in enumerate(middle):
        for label in labels.get(arn, ()):
            right_links[label].append(index)
    right = _barycentric(list(right_links), right_links)

    rows = max(len(left), len(middle), len(right), 1)
    height = _TOP + rows * _ROW_H + 40
    # each column is spread over the same height, so that a short column sits beside a long one
    y = [_spread(column, rows) for column in (left, middle, right)]
    width = _COL_X[2] + _BOX_W + 10
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" role="img" aria-label="ECS services and their IAM'
        f' identities" font-family="sans-serif" font-size="12">',
        "<title>ECS services and their IAM identities</title>",
    ]
    for x, title in zip(
        _COL_X, ("Services and tasks", "Roles and users", third_column), strict=True
    ):
        out.append(f'<text x="{x}" y="20" font-weight="bold">{escape(title)}</text>')
    if not graph.edges:
        out.append(f'<text x="{_COL_X[0]}" y="{_TOP + 15}">no identities in use</text>')
    for workload, principal, kind in graph.edges:
        ends = (y[0][workload], y[1][principal])
        out.append(_svg_edge(0, ends, kind, KIND_LABELS[kind]))
    nodes = {n.key: n for n in (*graph.workloads, *graph.principals)}
    for arn in middle:
        for label in labels.get(arn, ()):
            tooltip = f"{nodes[arn].label}: {label}"
            out.append(_svg_edge(1, (y[1][arn], y[2][label]), "", tooltip))
    for key in left:
        node = nodes[key]
        cluster = node.group.partition("/")[2]  # workloads outside a cluster have none
        text = f"{cluster} / {node.label}" if cluster else node.label
        out.append(_svg_box(0, y[0][key], text, node.tooltip, "#ebf4ff"))
    for arn in middle:
        node = nodes[arn]
        fill = "#fff5f5" if node.group == "user" else "#f0fff4"
        out.append(_svg_box(1, y[1][arn], f"{node.group}: {node.label}", node.tooltip, fill))
    for label in right:
        out.append(_svg_box(2, y[2][label], label, label, "#fffff0"))
    out.append(_svg_legend(height - 20))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _barycentric(keys: list[str], neighbours: Mapping[str, Sequence[int]]) -> list[str]:
    """Keys ordered by the mean row of their neighbours in the previous column, then by name."""

    def mean(key: str) -> float:
        rows = neighbours.get(key, ())
        return sum(rows) / len(rows) if rows else float("inf")

    return sorted(keys, key=lambda k: (mean(k), k))


def _spread(keys: Sequence[str], rows: int) -> dict[str, int]:
    """The top of each key's box, the column spread evenly over `rows` rows."""
    pitch = _ROW_H * rows / max(len(keys), 1)
    return {key: _TOP + round(i * pitch + (pitch - _ROW_H) / 2) for i, key in enumerate(keys)}


def _svg_box(column: int, top: int, text: str, tooltip: str, fill: str) -> str:
    x = _COL_X[column]
    shown = text if len(text) <= _MAX_LABEL else text[: _MAX_LABEL - 1] + "…"
    return (
        f'<g><title>{escape(tooltip)}</title><rect x="{x}" y="{top}" width="{_BOX_W}"'
        f' height="{_BOX_H}" rx="4" fill="{fill}" stroke="#a0aec0"/>'
        f'<text x="{x + 6}" y="{top + 15}">{escape(shown)}</text></g>'
    )


def _svg_edge(column: int, tops: tuple[int, int], kind: str, tooltip: str) -> str:
    x1, x2 = _COL_X[column] + _BOX_W, _COL_X[column + 1]
    y1, y2 = tops[0] + _BOX_H // 2, tops[1] + _BOX_H // 2
    bend = (x1 + x2) // 2
    color = _EDGE_COLORS.get(kind, "#cbd5e0")
    dash = ' stroke-dasharray="4 3"' if kind == "deployer" else ""
    return (
        f'<path d="M{x1},{y1} C{bend},{y1} {bend},{y2} {x2},{y2}" fill="none"'
        f' stroke={quoteattr(color)} stroke-width="1.5"{dash}><title>{escape(tooltip)}</title>'
        "</path>"
    )


def _svg_legend(y: int) -> str:
    parts = []
    x = _COL_X[0]
    for kind in ("task_role", "execution_role", "instance_role", "access_key_in_env", "deployer"):
        dash = ' stroke-dasharray="4 3"' if kind == "deployer" else ""
        parts.append(
            f'<line x1="{x}" y1="{y}" x2="{x + 24}" y2="{y}" stroke="{_EDGE_COLORS[kind]}"'
            f' stroke-width="2"{dash}/><text x="{x + 28}" y="{y + 4}" font-size="10">'
            f"{escape(KIND_LABELS[kind])}</text>"
        )
        x += 170
    return "<g>" + "".join(parts) + "</g>"
