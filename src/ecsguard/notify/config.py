"""The notification configuration (YAML): channels, routes, a default route and silences.

    lang: en                                  # en | ja, for channels that do not say
    console_url: https://ecsguard.example.com # links in messages: {console_url}/alerts/{id}
    channels:
      ops-mail:
        type: email                           # a registered channel type
        lang: ja
        max_per_minute: 10                    # throttle; the rest goes into one digest
        timeout: 10s                          # one send
        email: {host: smtp.example.com, from: ecsguard@example.com, to: [ops@example.com]}
    routes:                                   # first match wins, unless `continue: true`
      - match: {min_severity: high, rules: ["iam-*"], tags: [security]}
        channels: [ops-mail]
        group_wait: 30s                       # same rule and key within 30 s: one message
    default: {channels: [ops-mail]}           # alerts no route matched
    silences:
      - {rule: "ecs-task-oom*", key: [prod, "*"], expires: 2026-12-01T00:00:00Z,
         reason: load test, by: alice}

Every error names the file and line it comes from.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ecsguard.core.errors import UserError
from ecsguard.core.files import parse_yaml
from ecsguard.core.models import Severity
from ecsguard.logs.query.timerange import parse_duration
from ecsguard.notify.channels import CHANNELS

Lang = Literal["en", "ja"]
WHAT = "notify config"
HINT = "see docs/notify.md"


def _seconds(value: Any) -> float:
    """`30s`, `5m` or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError("write a duration such as 30s or 5m")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        try:
            return parse_duration(value).total_seconds()
        except UserError as err:
            raise ValueError(f"{err.problem}: {err.hint}") from None
    raise ValueError("write a duration such as 30s or 5m")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ChannelSpec(_Model):
    """A configured channel: the common fields; `settings` is the type's own model."""

    name: str
    type: str
    lang: Lang | None = None
    max_per_minute: int = Field(default=30, ge=1, le=10_000)
    timeout: float = 10.0
    settings: Any = None
    source: str = ""

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, value: Any) -> float:
        seconds = _seconds(value)
        if not 0 < seconds <= 300:
            raise ValueError("timeout must be more than 0 s and at most 5m")
        return seconds


class Match(_Model):
    """All given conditions must hold; inside a list, any value does."""

    severity: list[Severity] = Field(default_factory=list)
    min_severity: Severity | None = None
    rules: list[str] = Field(default_factory=list)  # rule id globs
    tags: list[str] = Field(default_factory=list)  # the alert has at least one of these


class Route(_Model):
    match: Match = Field(default_factory=Match)
    channels: list[str] = Field(min_length=1)
    group_wait: float = 0.0
    continue_: bool = Field(default=False, alias="continue")
    source: str = ""

    _group_wait = field_validator("group_wait", mode="before")(_seconds)


class DefaultRoute(_Model):
    channels: list[str] = Field(min_length=1)
    group_wait: float = 0.0
    source: str = ""

    _group_wait = field_validator("group_wait", mode="before")(_seconds)


class Silence(_Model):
    """Stops notifications (the alerts are still stored) until `expires`."""

    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12])
    rule: str = "*"  # rule id glob
    key: list[str] = Field(default_factory=list)  # globs against the alert's key, in order
    expires: datetime
    reason: str = Field(min_length=1)
    by: str = Field(min_length=1)
    created: datetime = Field(default_factory=lambda: datetime.now(UTC))
    source: str = ""

    @field_validator("expires", "created")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @field_validator("key", mode="before")
    @classmethod
    def _key_texts(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [
                v if isinstance(v, str) else orjson.dumps(v, default=str).decode() for v in value
            ]
        return value


class NotifyConfig(_Model):
    lang: Lang = "en"
    console_url: str = ""
    channels: dict[str, ChannelSpec] = Field(default_factory=dict)
    routes: list[Route] = Field(default_factory=list)
    default: DefaultRoute | None = None
    silences: list[Silence] = Field(default_factory=list)
    source: str = ""

    def channel_lang(self, name: str) -> Lang:
        return self.channels[name].lang or self.lang


# -- loading --------------------------------------------------------------------------------
def load_config(path: str | Path) -> NotifyConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise UserError(f"cannot read {WHAT} {path}: {err.strerror or err}", HINT) from None
    return parse_config(text, str(path))


def parse_config(text: str, name: str = "<notify config>") -> NotifyConfig:
    """YAML text -> NotifyConfig; errors read `notify config FILE:LINE: field: problem`."""
    data = parse_yaml(text, name, WHAT) or {}
    root = yaml.compose(text) if text.strip() else None
    where = _Locator(name, root)
    if not isinstance(data, dict):
        raise where.error((), "the file must be a mapping with channels, routes, default, silences")

    channels_raw = data.get("channels") or {}
    if not isinstance(channels_raw, dict):
        raise where.error(("channels",), "must be a mapping of channel names to channels")
    channels = {
        str(channel): _channel(str(channel), body, where) for channel, body in channels_raw.items()
    }
    rest = {k: v for k, v in data.items() if k != "channels"}
    for section in ("routes", "silences"):
        if isinstance(rest.get(section), list):
            for index in range(len(rest[section])):
                _set_source(rest, (section, index), where)
    _set_source(rest, ("default",), where)
    try:
        config = NotifyConfig.model_validate({**rest, "channels": channels, "source": where.at(())})
    except ValidationError as err:
        raise where.validation(err, ()) from None
    _check_references(config, where)
    return config


def _channel(name: str, body: Any, where: _Locator) -> ChannelSpec:
    loc: tuple[Any, ...] = ("channels", name)
    if not isinstance(body, dict):
        raise where.error(loc, "a channel is a mapping with `type` and its settings")
    kind = body.get("type")
    if not isinstance(kind, str):
        known = ", ".join(CHANNELS.names())
        raise where.error(loc, f"missing `type` (one of: {known})")
    try:
        channel_type = CHANNELS.get(kind)
    except UserError as err:
        raise where.error((*loc, "type"), f"{err.problem} ({err.hint})") from None
    block = body.get(kind, {})
    if block is None:
        block = {}
    if not isinstance(block, dict):
        raise where.error((*loc, kind), f"the {kind} settings must be a mapping")
    try:
        settings = channel_type.settings.model_validate(block)
    except ValidationError as err:
        raise where.validation(err, (*loc, kind)) from None
    common = {k: v for k, v in body.items() if k != kind}
    try:
        return ChannelSpec.model_validate(
            {**common, "name": name, "settings": settings, "source": where.at(loc)}
        )
    except ValidationError as err:
        raise where.validation(err, loc) from None


def _set_source(data: dict[str, Any], loc: tuple[Any, ...], where: _Locator) -> None:
    """Record file:line in a route or silence mapping, for later messages about it."""
    parent: Any = data
    for part in loc[:-1]:
        parent = parent[part]
    item = parent[loc[-1]] if isinstance(parent, list) else parent.get(loc[-1])
    if isinstance(item, dict) and "source" not in item:
        item["source"] = where.at(loc)


def _check_references(config: NotifyConfig, where: _Locator) -> None:
    defined = ", ".join(sorted(config.channels)) or "none"
    routes: list[tuple[tuple[Any, ...], list[str]]] = [
        (("routes", i), route.channels) for i, route in enumerate(config.routes)
    ]
    if config.default is not None:
        routes.append((("default",), config.default.channels))
    for loc, names in routes:
        for index, channel in enumerate(names):
            if channel not in config.channels:
                raise where.error(
                    (*loc, "channels", index),
                    f"unknown channel {channel!r} (defined channels: {defined})",
                )


class _Locator:
    """file:line of a path in the YAML document (the closest node that exists)."""

    def __init__(self, name: str, root: yaml.Node | None) -> None:
        self.name = name
        self.root = root

    def line(self, loc: tuple[Any, ...]) -> int | None:
        """The line of the last part of `loc` that exists: a mapping key's own line, or the
        start of a list item."""
        node = self.root
        if node is None:
            return None
        mark = node.start_mark
        for part in loc:
            found = _child(node, part)
            if found is None:
                break
            anchor, node = found
            mark = anchor.start_mark
        return mark.line + 1

    def at(self, loc: tuple[Any, ...]) -> str:
        line = self.line(loc)
        return f"{self.name}:{line}" if line else self.name

    def error(self, loc: tuple[Any, ...], problem: str) -> UserError:
        path = _dotted(loc)
        return UserError(f"{WHAT} {self.at(loc)}: {path + ': ' if path else ''}{problem}", HINT)

    def validation(self, err: ValidationError, prefix: tuple[Any, ...]) -> UserError:
        first = err.errors()[0]
        loc = (*prefix, *first["loc"])
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            message = "unknown field"
        more = len(err.errors()) - 1
        if more:
            message += f" (and {more} more problem{'s' if more > 1 else ''})"
        return self.error(loc, message)


def _child(node: yaml.Node, part: Any) -> tuple[yaml.Node, yaml.Node] | None:
    """(the node to point at, the node to descend into) for one step of a path."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                return key, value
        return None
    if (
        isinstance(node, yaml.SequenceNode)
        and isinstance(part, int)
        and 0 <= part < len(node.value)
    ):
        return node.value[part], node.value[part]
    return None


def _dotted(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
