"""Drift between two snapshots: resources added, removed and changed, with the changed fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ecsguard.aws.snapshot import Section, Snapshot


@dataclass(frozen=True)
class Change:
    kind: str  # "ecs.services"
    region: str
    key: str
    change: Literal["added", "removed", "changed"]
    fields: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "region": self.region,
            "key": self.key,
            "change": self.change,
            "fields": self.fields,
        }


def resource_key(item: dict[str, Any], spec: str) -> str:
    """`a|b` takes the first present field, `a+b` joins fields: the identity of an item."""
    for option in spec.split("|"):
        parts = [str(item.get(name, "")) for name in option.split("+")]
        if all(parts):
            return "/".join(parts)
    return repr(sorted(item.items()))[:200]


def changed_paths(old: Any, new: Any, ignore: frozenset[str], path: str = "") -> list[str]:
    """Dotted paths where `old` and `new` differ, ignoring keys named in `ignore` at any depth."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            if key in ignore:
                continue
            sub = f"{path}.{key}" if path else key
            if key not in old or key not in new:
                out.append(sub)
            else:
                out.extend(changed_paths(old[key], new[key], ignore, sub))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = []
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            out.extend(changed_paths(a, b, ignore, f"{path}[{index}]"))
        return out
    return [] if old == new else [path or "."]


def diff(old: Snapshot, new: Snapshot, include_ephemeral: bool = False) -> list[Change]:
    """Every resource-level change from `old` to `new`, sorted by kind, region and key."""
    before = {(region, name): section for region, name, section in old.sections()}
    changes: list[Change] = []
    for region, name, section in new.sections():
        previous = before.get((region, name)) or type(section)()
        changes.extend(_diff_section(region, name, previous, section, include_ephemeral))
    new_keys = {(region, name) for region, name, _ in new.sections()}
    for (region, name), section in before.items():
        if (region, name) not in new_keys:  # a region audited before but not now
            changes.extend(_diff_section(region, name, section, type(section)(), include_ephemeral))
    return sorted(changes, key=lambda c: (c.kind, c.region, c.key, c.change))


def _diff_section(
    region: str, name: str, old: Section, new: Section, include_ephemeral: bool
) -> list[Change]:
    changes: list[Change] = []
    for list_name, key_spec in type(new).keys.items():
        if list_name in type(new).ephemeral and not include_ephemeral:
            continue
        kind = f"{name}.{list_name}"
        olds = {resource_key(i, key_spec): i for i in getattr(old, list_name)}
        news = {resource_key(i, key_spec): i for i in getattr(new, list_name)}
        for key in news.keys() - olds.keys():
            changes.append(Change(kind, region, key, "added"))
        for key in olds.keys() - news.keys():
            changes.append(Change(kind, region, key, "removed"))
        for key in olds.keys() & news.keys():
            paths = changed_paths(olds[key], news[key], type(new).volatile)
            if paths:
                changes.append(Change(kind, region, key, "changed", paths))
    for setting in type(new).model_fields.keys() - type(new).keys.keys():
        paths = changed_paths(getattr(old, setting), getattr(new, setting), type(new).volatile)
        if paths:
            changes.append(Change(f"{name}.{setting}", region, setting, "changed", paths))
    return changes
