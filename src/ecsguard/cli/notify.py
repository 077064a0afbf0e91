"""`ecsguard notify`: check the notification configuration and send a test message."""

from __future__ import annotations

import click

from ecsguard.cli.common import data_dir_option, stdout
from ecsguard.core.config import data_dir as resolve_data_dir
from ecsguard.core.errors import UserError


@click.group()
def notify() -> None:
    """Notification channels: mail, Slack, Teams, Discord, webhooks, SNS, Lambda, commands.

    The configuration file is described in docs/notify.md; `ecsguard serve --notify FILE`
    sends the alerts of its rules there.

    \b
    Examples:
      ecsguard notify validate notify.yaml
      ecsguard notify test ops-mail --config notify.yaml
    """


@notify.command("validate")
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
def validate(config: str) -> None:
    """Check a notification configuration: every error with file:line."""
    from ecsguard.notify.config import load_config

    loaded = load_config(config)
    stdout.print(
        f"{len(loaded.channels)} channel(s), {len(loaded.routes)} route(s): valid",
        markup=False,
        highlight=False,
    )


@notify.command("test")
@click.argument("channel")
@click.option("--config", required=True, type=click.Path(exists=True, dir_okay=False))
@data_dir_option
def test(channel: str, config: str, data_dir: str | None) -> None:
    """Send a test message through CHANNEL now; exit 1 if the channel refuses it."""
    from ecsguard.notify.config import load_config
    from ecsguard.notify.dispatcher import Dispatcher

    loaded = load_config(config)
    if channel not in loaded.channels:
        raise UserError(
            f"no channel {channel!r} in {config}", f"channels: {', '.join(loaded.channels)}"
        )
    dispatcher = Dispatcher(loaded, resolve_data_dir(data_dir))
    try:
        result = dispatcher.test_send(channel)
    finally:
        dispatcher.close()
    if not result.ok:
        stdout.print(
            f"{channel} ({result.description}) failed after {result.seconds:.1f} s: {result.error}",
            markup=False,
            highlight=False,
        )
        raise SystemExit(1)
    stdout.print(
        f"{channel} ({result.description}) accepted a test message in {result.seconds:.1f} s",
        markup=False,
        highlight=False,
    )
