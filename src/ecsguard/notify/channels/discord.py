"""`discord`: a Discord webhook, through apprise.

type: discord
discord:
  url: "${DISCORD_WEBHOOK_URL}"  # https://discord.com/api/webhooks/ID/TOKEN or discord://ID/TOKEN
"""

from __future__ import annotations

from ecsguard.notify.channels import CHANNELS, Channel, ChannelContext, ChannelType
from ecsguard.notify.channels._apprise import AppriseChannel, url_settings

DiscordSettings = url_settings("discord", ("discord", "https"))


def build(context: ChannelContext) -> Channel:
    return AppriseChannel(context, kind="discord", plugins=("NotifyDiscord",))


CHANNELS.add(
    "discord",
    ChannelType(
        name="discord", settings=DiscordSettings, build=build, summary="Discord webhook (apprise)"
    ),
)
