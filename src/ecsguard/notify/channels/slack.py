"""`slack`: a Slack incoming webhook or bot token, through apprise.

type: slack
slack:
  url: "${SLACK_WEBHOOK_URL}"   # https://hooks.slack.com/services/T…/B…/… or slack://…
"""

from __future__ import annotations

from ecsguard.notify.channels import CHANNELS, Channel, ChannelContext, ChannelType
from ecsguard.notify.channels._apprise import AppriseChannel, url_settings

SlackSettings = url_settings("slack", ("slack", "https"))


def build(context: ChannelContext) -> Channel:
    return AppriseChannel(context, kind="slack", plugins=("NotifySlack",))


CHANNELS.add(
    "slack",
    ChannelType(
        name="slack", settings=SlackSettings, build=build, summary="Slack webhook (apprise)"
    ),
)
