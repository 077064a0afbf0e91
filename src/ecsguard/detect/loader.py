"""Rule files → validated `Rule`s, with every problem reported at once as `file:line: message`.

A file holds one rule mapping, or `rules:` with a list of them. A directory is read recursively
(`*.yaml`, `*.yml`). The common fields are checked by `Rule`, the type's block (the key named like
the type) by the type's own settings model; line numbers come from the YAML node of the field.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

import ecsguard.detect.types  # noqa: F401  (registers every rule type)
from ecsguard.core.errors import UserError
from ecsguard.detect.rules import TYPES, Rule

_COMMON = set(Rule.model_fields) - {"settings", "source"}


@dataclass
class Loaded:
    rules: list[Rule] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def raise_errors(self) -> None:
        if self.errors:
            shown = "\n  ".join(self.errors[:20])
            more = f"\n  ... and {len(self.errors) - 20} more" if len(self.errors) > 20 else ""
            raise UserError(
                f"{len(self.errors)} problem(s) in the rules:\n  {shown}{more}",
                "fix them; `ecsguard rules validate DIR` lists them all",
            )


BUILTIN = "builtin:"


def builtin_packs() -> dict[str, Path]:
    """The rule packs shipped with ecsguard (`builtin:ecs-operations`)."""
    folder = Path(__file__).with_name("pack")
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def rule_files(paths: Iterable[str | Path]) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        if isinstance(raw, str) and raw.startswith(BUILTIN):
            packs = builtin_packs()
            name = raw.removeprefix(BUILTIN)
            if name not in packs:
                raise UserError(f"no built-in rule pack {name!r}", f"known: {', '.join(packs)}")
            found.append(packs[name])
            continue
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml")))
        elif path.is_file():
            found.append(path)
        else:
            raise UserError(f"no rule file or directory at {path}", "check the path")
    return found


def _line_of(node: yaml.Node, loc: tuple[Any, ...]) -> int:
    """The 1-based line of the YAML node at `loc` (as deep as it exists)."""
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            child = node.value[part] if part < len(node.value) else None
        else:
            child = None
        if child is None:
            break
        node = child
    return node.start_mark.line + 1


def _problems(
    err: ValidationError, node: yaml.Node, name: str, prefix: tuple[Any, ...]
) -> list[str]:
    out = []
    for problem in err.errors():
        loc = (*prefix, *problem["loc"])
        path = ".".join(str(p) for p in loc) or "rule"
        out.append(f"{name}:{_line_of(node, loc)}: {path}: {problem['msg']}")
    return out


def _rule(data: Any, node: yaml.Node, name: str) -> tuple[Rule | None, list[str]]:
    line = node.start_mark.line + 1
    if not isinstance(data, dict):
        return None, [f"{name}:{line}: a rule must be a mapping with id, title and type"]
    kind = data.get("type")
    try:
        rule_type = TYPES.get(str(kind)) if kind is not None else None
    except UserError as err:
        return None, [f"{name}:{_line_of(node, ('type',))}: {err.problem} ({err.hint})"]
    if rule_type is None:
        return None, [f"{name}:{line}: type: a rule needs a type ({', '.join(TYPES.names())})"]
    errors: list[str] = []
    unknown = sorted(set(data) - _COMMON - {rule_type.name})
    for key in unknown:
        errors.append(
            f"{name}:{_line_of(node, (key,))}: {key}: unknown field (the type's settings go "
            f"under `{rule_type.name}:`)"
        )
    settings = None
    block = data.get(rule_type.name, {})
    try:
        settings = rule_type.settings.model_validate(
            block if block is not None else {},
            context={"base_dir": Path(name).parent},  # relative paths read beside the rule
        )
    except ValidationError as err:
        errors.extend(_problems(err, node, name, (rule_type.name,)))
    except UserError as err:  # a settings validator that compiles a pattern explains itself
        errors.append(f"{name}:{_line_of(node, (rule_type.name,))}: {err.problem}")
    common = {k: v for k, v in data.items() if k in _COMMON}
    try:
        rule = Rule.model_validate({**common, "settings": settings, "source": f"{name}:{line}"})
    except ValidationError as err:
        return None, errors + _problems(err, node, name, ())
    return (rule if not errors else None), errors


def load_text(text: str, name: str) -> Loaded:
    """The rules of one file's text."""
    loaded = Loaded()
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark is not None else name
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        loaded.errors.append(f"{where}: invalid YAML: {problem}")
        return loaded
    if node is None:
        return loaded  # an empty file holds no rules
    if isinstance(data, dict) and "rules" in data and set(data) == {"rules"}:
        items = data["rules"]
        rules_node = next(v for k, v in node.value if k.value == "rules")
        if not isinstance(items, list) or not isinstance(rules_node, yaml.SequenceNode):
            line = rules_node.start_mark.line + 1
            loaded.errors.append(f"{name}:{line}: rules: expected a list of rules")
            return loaded
        pairs = list(zip(items, rules_node.value, strict=True))
    else:
        pairs = [(data, node)]
    for item, item_node in pairs:
        rule, errors = _rule(item, item_node, name)
        loaded.errors.extend(errors)
        if rule is not None:
            loaded.rules.append(rule)
    return loaded


def load_rules(paths: Iterable[str | Path]) -> Loaded:
    """Every rule under `paths`; ids must be unique across files."""
    loaded = Loaded()
    seen: dict[str, str] = {}
    for path in rule_files(paths):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            loaded.errors.append(f"{path}: cannot read: {err}")
            continue
        part = load_text(text, str(path))
        loaded.errors.extend(part.errors)
        for rule in part.rules:
            if rule.id in seen:
                loaded.errors.append(
                    f"{rule.source}: id {rule.id!r} is also used at {seen[rule.id]}"
                )
                continue
            seen[rule.id] = rule.source
            loaded.rules.append(rule)
    return loaded
