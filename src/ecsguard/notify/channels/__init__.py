"""Notification channels: one module each, registered under the word a user writes in YAML.

A channel module registers a `ChannelType`: its settings model (pydantic, extra="forbid"; it sits
under the key named like the type in the notify configuration) and `build(context) -> Channel`.
`Channel.send(message)` delivers one rendered message or raises `ChannelError` with a message a
person can act on and no secret in it. Building a channel does no I/O; sending does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel

from ecsguard.core.registry import Registry
from ecsguard.notify.messages import Message


class ChannelError(Exception):
    """A channel could not deliver: the outside world failed (recorded, retried, never raised
    to the caller of the dispatcher)."""


@dataclass(frozen=True)
class ChannelContext:
    """What a channel is built from: its configured name, validated settings and environment."""

    name: str
    settings: Any
    env: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 10.0  # seconds one send may take


class Channel(Protocol):
    name: str

    def send(self, message: Message) -> None:
        """Deliver `message` or raise ChannelError."""
        ...

    def describe(self) -> str:
        """One line for logs and the console, without secrets."""
        ...


@dataclass(frozen=True)
class ChannelType:
    name: str
    settings: type[BaseModel]
    build: Callable[[ChannelContext], Channel]
    summary: str = ""
    iam_actions: tuple[str, ...] = ()  # what ecsguard's role needs for this channel (AWS ones)


CHANNELS: Registry[ChannelType] = Registry("channel type")

# one line per channel module; each registers itself (imported after CHANNELS exists)
from ecsguard.notify.channels import email  # noqa: E402, F401, I001
from ecsguard.notify.channels import slack  # noqa: E402, F401
from ecsguard.notify.channels import teams  # noqa: E402, F401
from ecsguard.notify.channels import discord  # noqa: E402, F401
from ecsguard.notify.channels import webhook  # noqa: E402, F401
from ecsguard.notify.channels import sns  # noqa: E402, F401
from ecsguard.notify.channels import aws_lambda  # noqa: E402, F401
from ecsguard.notify.channels import command  # noqa: E402, F401
