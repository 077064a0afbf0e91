"""What the apprise-backed channels (slack, teams, discord, webhook) share.

Each takes one `url`: an apprise URL (`slack://…`, `workflows://…`, `discord://…`, `jsons://…`) or
the service's own webhook URL, which apprise recognises. Tokens belong in the environment:
`url: "${SLACK_WEBHOOK_URL}"` or `url: "slack://${SLACK_TOKEN}/#ops"`. Every secret part of the
URL is registered for scrubbing, so neither logs nor recorded errors show it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ecsguard.core.models import Severity
from ecsguard.notify import secrets
from ecsguard.notify.channels import ChannelContext, ChannelError
from ecsguard.notify.messages import Message


class UrlSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    url: str = Field(min_length=1, description="apprise URL or the service's webhook URL")


def url_settings(kind: str, schemes: tuple[str, ...]) -> type[UrlSettings]:
    """A settings model whose `url` must use one of `schemes` (unless it is all `${VAR}`)."""

    class Settings(UrlSettings):
        @field_validator("url")
        @classmethod
        def _scheme(cls, value: str) -> str:
            if value.startswith("${"):
                return value  # the scheme comes from the environment: checked when sending
            scheme = urlsplit(value).scheme.lower()
            if scheme not in schemes:
                raise ValueError(
                    f"a {kind} URL starts with {' or '.join(s + '://' for s in schemes)}"
                    f", not {scheme + '://' if scheme else value[:12]!r}"
                )
            return value

    Settings.__name__ = f"{kind.title()}Settings"
    return Settings


class AppriseChannel:
    """Sends through one apprise plugin of the expected kind."""

    def __init__(
        self,
        context: ChannelContext,
        *,
        kind: str,
        plugins: tuple[str, ...],
        payload: Callable[[Message], dict[str, Any]] | None = None,
    ) -> None:
        self.name = context.name
        self.template: str = context.settings.url
        self.env = context.env
        self.timeout = context.timeout
        self.kind = kind
        self.plugins = plugins  # apprise plugin class names this channel accepts
        self.payload = payload  # extra JSON fields (webhook)

    def describe(self) -> str:
        return f"{self.kind} {secrets.safe_url(self.template)}"

    def send(self, message: Message) -> None:
        import apprise  # imported on first send: the CLI starts without it

        url = self._url()
        target: str | dict[str, Any] = url
        if self.payload is not None:
            parsed = apprise.plugins.url_to_dict(url)
            if parsed is None:
                raise ChannelError(f"{self.describe()}: apprise cannot read this URL")
            parsed["payload"] = {**(parsed.get("payload") or {}), **self.payload(message)}
            target = parsed
        plugin = apprise.Apprise.instantiate(target)
        if plugin is None:
            raise ChannelError(f"{self.describe()}: apprise cannot read this URL")
        if type(plugin).__name__ not in self.plugins:
            raise ChannelError(
                f"{self.describe()}: the URL is for {plugin.service_name}, not {self.kind}"
            )
        plugin.socket_read_timeout = self.timeout
        plugin.socket_connect_timeout = min(self.timeout, 5.0)
        sender = apprise.Apprise()
        sender.add(plugin)
        result = sender.notify(
            body=message.text,
            title=message.subject,
            notify_type=_notify_type(apprise, message.severity),
            body_format=apprise.NotifyFormat.TEXT,
        )
        if not result:
            problems = [
                entry.message
                for entry in result.logs()
                if entry.level in ("WARNING", "ERROR", "CRITICAL")
            ]
            detail = "; ".join(dict.fromkeys(problems)) or "apprise reported a failure"
            raise ChannelError(secrets.scrub(f"{self.describe()}: {detail}"))

    def _url(self) -> str:
        try:
            url, used = secrets.expand(self.template, self.env)
        except secrets.MissingVariable as err:
            raise ChannelError(f"{self.describe()}: {err}") from None
        secrets.register([*used, *secrets.url_secrets(url), url])
        return url


def _notify_type(apprise: Any, severity: Severity) -> Any:
    if severity in (Severity.CRITICAL, Severity.HIGH):
        return apprise.NotifyType.FAILURE
    if severity is Severity.MEDIUM:
        return apprise.NotifyType.WARNING
    return apprise.NotifyType.INFO
