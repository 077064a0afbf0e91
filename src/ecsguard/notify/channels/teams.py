"""`teams`: Microsoft Teams through a Power Automate / Workflows webhook, through apprise.

Office 365 connectors (the old Teams incoming webhooks) are retired; apprise sends to the
Workflows trigger URL Teams gives for a channel.

    type: teams
    teams:
      url: "${TEAMS_WORKFLOW_URL}"  # https://….logic.azure.com/workflows/…/invoke?… or workflows://…
"""

from __future__ import annotations

from ecsguard.notify.channels import CHANNELS, Channel, ChannelContext, ChannelType
from ecsguard.notify.channels._apprise import AppriseChannel, url_settings

TeamsSettings = url_settings("teams", ("workflow", "workflows", "https"))


def build(context: ChannelContext) -> Channel:
    # NotifyMSTeams exists in apprise releases that still support connector webhooks
    return AppriseChannel(context, kind="teams", plugins=("NotifyWorkflows", "NotifyMSTeams"))


CHANNELS.add(
    "teams",
    ChannelType(
        name="teams",
        settings=TeamsSettings,
        build=build,
        summary="Microsoft Teams Workflows webhook (apprise)",
    ),
)
