"""`webhook`: a JSON POST to any URL, through apprise's `json://` (http) and `jsons://` (https).

The body is apprise's JSON envelope (`version`, `title`, `message`, `type`, `attachments`) plus
`alert`: the structured message (kind, severity, alerts with their evidence and console links).
Headers come from the URL as apprise writes them (`?+X-Token=${HOOK_TOKEN}`).

    type: webhook
    webhook:
      url: "jsons://hooks.example.com/ecsguard?+Authorization=Bearer%20${HOOK_TOKEN}"
"""

from __future__ import annotations

from typing import Any

from ecsguard.notify.channels import CHANNELS, Channel, ChannelContext, ChannelType
from ecsguard.notify.channels._apprise import AppriseChannel, url_settings
from ecsguard.notify.messages import Message

WebhookSettings = url_settings("webhook", ("json", "jsons"))


def _payload(message: Message) -> dict[str, Any]:
    return {"alert": message.json}


def build(context: ChannelContext) -> Channel:
    return AppriseChannel(context, kind="webhook", plugins=("NotifyJSON",), payload=_payload)


CHANNELS.add(
    "webhook",
    ChannelType(
        name="webhook",
        settings=WebhookSettings,
        build=build,
        summary="JSON POST to a URL (apprise json:// or jsons://)",
    ),
)
