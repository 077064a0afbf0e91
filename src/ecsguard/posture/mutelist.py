"""Mutelist: accepted risks, as YAML entries (check, resource glob, tags, reason, expiry).

```yaml
mutelist:
  - check: ecs.container_privileged      # check id or glob
    resource: "arn:aws:ecs:*:*:task-definition/legacy-*:*"
    tags: {environment: sandbox}         # optional: the resource must carry these tags
    reason: "sandbox only, removed in Q3"
    expires: 2027-03-31                  # optional; expired entries warn and stop muting
```
"""

from __future__ import annotations

import datetime as dt
from fnmatch import fnmatchcase
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ecsguard.aws.snapshot import Snapshot
from ecsguard.core.errors import UserError
from ecsguard.core.files import first_error, parse_yaml
from ecsguard.core.models import Finding, Status


class MuteEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    check: str
    resource: str = "*"
    tags: dict[str, str] = Field(default_factory=dict)
    reason: str = Field(min_length=1)
    expires: dt.date | None = None

    def matches(self, finding: Finding, tags: dict[str, str]) -> bool:
        return (
            fnmatchcase(finding.check_id, self.check)
            and fnmatchcase(finding.resource_arn, self.resource)
            and all(tags.get(k) == v for k, v in self.tags.items())
        )


class Mutelist(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mutelist: list[MuteEntry] = Field(default_factory=list)
    today: dt.date = Field(default_factory=lambda: dt.datetime.now(dt.UTC).date(), exclude=True)

    @cached_property
    def active(self) -> list[MuteEntry]:
        return [e for e in self.mutelist if e.expires is None or e.expires >= self.today]

    def expired(self) -> list[MuteEntry]:
        return [e for e in self.mutelist if e.expires is not None and e.expires < self.today]

    def apply(self, findings: list[Finding], snapshot: Snapshot) -> list[Finding]:
        """FAIL findings an active entry matches become MUTED, keeping the entry's reason."""
        tags = resource_tags(snapshot) if any(e.tags for e in self.active) else {}
        return [self._mute(f, tags.get(f.resource_arn, {})) for f in findings]

    def _mute(self, finding: Finding, tags: dict[str, str]) -> Finding:
        if finding.status != Status.FAIL:
            return finding
        for entry in self.active:
            if entry.matches(finding, tags):
                return finding.model_copy(
                    update={"status": Status.MUTED, "mute_reason": entry.reason}
                )
        return finding


def load_mutelist(path: str | Path) -> Mutelist:
    source = Path(path)
    try:
        text = source.read_text()
    except OSError as err:
        raise UserError(
            f"cannot read mutelist {source}: {err.strerror}", "check the path"
        ) from None
    doc = parse_yaml(text, str(source), "mutelist") or {}
    try:
        return Mutelist.model_validate(doc)
    except ValidationError as err:
        raise UserError(
            f"mutelist {source}: {first_error(err)}",
            "each entry needs check and reason; optional resource, tags, expires (YYYY-MM-DD)",
        ) from None


def resource_tags(snapshot: Snapshot) -> dict[str, dict[str, str]]:
    """ARN -> tags, for the resources that carry tags in the snapshot (ECS, IAM)."""
    index: dict[str, dict[str, str]] = {}
    for _, _, section in snapshot.sections():
        for list_name, key_spec in type(section).keys.items():
            arn_field = key_spec.split("|")[0]
            for item in getattr(section, list_name):
                tags = _tags_of(item)
                if tags and arn_field in item:
                    index[item[arn_field]] = tags
    return index


def _tags_of(item: dict[str, Any]) -> dict[str, str]:
    raw = item.get("tags") or item.get("Tags") or []
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    return {str(t.get("key", t.get("Key"))): str(t.get("value", t.get("Value"))) for t in raw}
