"""Sigma rule files (one file, or a folder as SigmaHQ ships it) → compiled rules and problems.

Every YAML document is parsed by pySigma (`SigmaRule.from_dict`, errors collected), then
compiled for the cloudtrail table. A document that cannot be honoured is reported with its file,
line and reason, never dropped in silence: a pySigma error, an aggregation (`| count() by`) or
correlation, a Sigma filter, a `timeframe`, an unknown modifier, a placeholder, a field the table
does not keep, a regular expression RE2 refuses, a logsource other than AWS CloudTrail.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sigma.exceptions import SigmaError, SigmaRegularExpressionError, SigmaRuleLocation
from sigma.rule import SigmaRule

from ecsguard.core.models import Severity
from ecsguard.detect.sigma.compiler import Compiled, compile_rule
from ecsguard.detect.sigma.evaluate import BatchMatcher
from ecsguard.detect.sigma.values import Unsupported

#: Sigma `level` → ecsguard severity (a rule without a level is medium)
SEVERITY = {
    "informational": Severity.INFO,
    "low": Severity.LOW,
    "medium": Severity.MEDIUM,
    "high": Severity.HIGH,
    "critical": Severity.CRITICAL,
}


@dataclass(frozen=True)
class SigmaProblem:
    """A Sigma document that was not loaded, and why."""

    path: str
    line: int
    rule: str  # its title (or id), "" when the document has none
    reason: str

    def __str__(self) -> str:
        named = f" {self.rule}:" if self.rule else ""
        return f"{self.path}:{self.line}:{named} {self.reason}"


@dataclass
class SigmaSpec:
    """A loaded Sigma rule: its metadata, its source mapping and its compiled matcher."""

    sigma_id: str | None
    title: str
    level: str | None
    tags: tuple[str, ...]
    description: str
    path: str
    line: int
    mapping: dict[str, Any]  # the YAML document as written
    compiled: Compiled
    matcher: BatchMatcher = field(init=False)

    def __post_init__(self) -> None:
        self.matcher = BatchMatcher(self.compiled)

    @property
    def severity(self) -> Severity:
        return SEVERITY.get(self.level or "", Severity.MEDIUM)

    @property
    def name(self) -> str:
        """The rule's name in reports: its file stem."""
        return Path(self.path).stem


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: 5x faster


def _documents(text: str) -> Iterator[tuple[Any, yaml.Node]]:
    loader = _YAML_LOADER(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                yield loader.construct_document(node), node
    finally:
        loader.dispose()


def _lines(node: yaml.Node) -> dict[str, int]:
    """1-based lines inside a rule document: detection names, field names, `condition`, ..."""
    found: dict[str, int] = {}

    def note(key: yaml.Node) -> None:
        if isinstance(key, yaml.ScalarNode):
            found.setdefault(str(key.value).split("|")[0], key.start_mark.line + 1)

    if not isinstance(node, yaml.MappingNode):
        return found
    for key, value in node.value:  # the detection first: its names win over top-level keys
        if getattr(key, "value", None) != "detection" or not isinstance(value, yaml.MappingNode):
            continue
        for name, body in value.value:
            note(name)
            items = body.value if isinstance(body, yaml.SequenceNode) else [body]
            for item in items:
                if isinstance(item, yaml.MappingNode):
                    for field_key, _ in item.value:
                        note(field_key)
    for key, _ in node.value:
        note(key)
    return found


def _label(data: dict[str, Any]) -> str:
    return str(data.get("title") or data.get("id") or "")


def compile_document(
    data: Any, path: str = "<inline>", node: yaml.Node | None = None
) -> SigmaSpec | SigmaProblem:
    """One YAML document → a loaded rule, or the reason it cannot be loaded."""
    lines = _lines(node) if node is not None else {}
    start = node.start_mark.line + 1 if node is not None else 1

    def problem(reason: str, where: str | None = None) -> SigmaProblem:
        label = _label(data) if isinstance(data, dict) else ""
        return SigmaProblem(path, lines.get(where or "", start), label, reason)

    if not isinstance(data, dict):
        return problem("a Sigma rule must be a YAML mapping")
    if "action" in data:
        return problem("Sigma collection actions (global/repeat/reset) are not supported", "action")
    if "correlation" in data:
        return problem(
            "Sigma correlation rules (event_count, value_count, temporal) are not supported",
            "correlation",
        )
    if "filter" in data:
        return problem("Sigma filters are not applied; put the exclusion in the rule", "filter")
    try:
        rule = SigmaRule.from_dict(data, collect_errors=True, source=SigmaRuleLocation(Path(path)))
    except SigmaError as err:  # what collect_errors still raises
        return problem(f"invalid Sigma rule: {_error_text(err)}")
    except (AttributeError, TypeError, ValueError, KeyError) as err:
        # pySigma itself trips on some odd values (`field|re|expand: null` raises
        # AttributeError inside it): still a rule we cannot read, not a crash of the loader
        return problem(f"pySigma cannot read this rule ({type(err).__name__}: {err})")
    if rule.errors:
        return problem("invalid Sigma rule: " + "; ".join(_error_text(e) for e in rule.errors))
    try:
        compiled = compile_rule(rule)
    except Unsupported as err:
        return problem(err.reason, err.where)
    except SigmaError as err:
        return problem(f"invalid Sigma rule: {_error_text(err)}")
    return SigmaSpec(
        sigma_id=str(rule.id) if rule.id is not None else None,
        title=rule.title,
        level=str(rule.level) if rule.level is not None else None,
        tags=tuple(str(t) for t in rule.tags),
        description=rule.description or "",
        path=path,
        line=start,
        mapping=data,
        compiled=compiled,
    )


def _error_text(err: Exception) -> str:
    """pySigma's message (without the absolute path it appends), explained where it helps."""
    text = (str(err.args[0]) if err.args else str(err)).strip()
    if isinstance(err, SigmaRegularExpressionError):
        text += " (regular expressions run on RE2, in linear time: backreferences and "
        text += "look-arounds are refused)"
    return text


def sigma_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())
    return [path]


def load_file(path: Path, shown: str | None = None) -> tuple[list[SigmaSpec], list[SigmaProblem]]:
    name = shown or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        return [], [SigmaProblem(name, 1, "", f"cannot read the file: {err}")]
    specs: list[SigmaSpec] = []
    problems: list[SigmaProblem] = []
    try:
        for data, node in _documents(text):
            result = compile_document(data, name, node)
            if isinstance(result, SigmaSpec):
                specs.append(result)
            else:
                problems.append(result)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        reason = getattr(err, "problem", None) or str(err).splitlines()[0]
        problems.append(SigmaProblem(name, line, "", f"invalid YAML: {reason}"))
    return specs, problems


def load_sigma(path: str | Path) -> tuple[list[SigmaSpec], list[SigmaProblem]]:
    """The Sigma rules in a file, or in a folder and its sub-folders (`*.yml`, `*.yaml`), with
    a problem for each document that could not be loaded. Paths in the results are shown
    relative to a folder given. A missing path is itself a problem."""
    root = Path(path)
    if not root.exists():
        return [], [SigmaProblem(str(root), 1, "", "no such file or directory")]
    specs: list[SigmaSpec] = []
    problems: list[SigmaProblem] = []
    seen: dict[str, str] = {}
    for file in sigma_files(root):
        shown = str(file.relative_to(root)) if root.is_dir() else str(file)
        loaded, trouble = load_file(file, shown)
        problems += trouble
        for spec in loaded:
            if spec.sigma_id is not None and spec.sigma_id in seen:
                reason = f"id {spec.sigma_id} is already used by {seen[spec.sigma_id]}"
                problems.append(SigmaProblem(spec.path, spec.line, spec.title, reason))
                continue
            if spec.sigma_id is not None:
                seen[spec.sigma_id] = spec.path
            specs.append(spec)
    return specs, problems
