"""`command`: run a local program with the message JSON on its standard input.

    type: command
    command:
      argv: [/usr/local/bin/page-oncall, --team, ops]   # no shell: arguments as a list
      cwd: /var/lib/ecsguard                            # optional
      env: {PAGER_TOKEN_FILE: /run/secrets/pager}       # optional, added to ecsguard's environment

Standard input is one JSON document: the message JSON (`kind`, `severity`, `alerts`, …) plus
`subject`, `text` and `html`. Exit status 0 means delivered; anything else, or running past the
channel's `timeout`, is a failure (retried) whose error carries the last line of standard error.
"""

from __future__ import annotations

import os
import subprocess

import orjson
from pydantic import BaseModel, ConfigDict, Field

from ecsguard.notify import secrets
from ecsguard.notify.channels import CHANNELS, ChannelContext, ChannelError, ChannelType
from ecsguard.notify.messages import Message

MAX_ERROR_CHARS = 300


class CommandSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    argv: list[str] = Field(min_length=1)
    cwd: str | None = None
    env: dict[str, str] = Field(default_factory=dict)


class CommandChannel:
    def __init__(self, context: ChannelContext) -> None:
        self.name = context.name
        self.settings: CommandSettings = context.settings
        self.timeout = context.timeout
        self.base_env = context.env

    def describe(self) -> str:
        return f"command {self.settings.argv[0]}"

    def send(self, message: Message) -> None:
        s = self.settings
        document = {
            **message.json,
            "subject": message.subject,
            "text": message.text,
            "html": message.html,
        }
        env = {**(self.base_env or os.environ), **s.env}
        try:
            done = subprocess.run(
                s.argv,
                input=orjson.dumps(document),
                capture_output=True,
                cwd=s.cwd,
                env=env,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ChannelError(
                f"{self.describe()} did not finish within {self.timeout:g} s (killed)"
            ) from None
        except OSError as err:
            raise ChannelError(f"cannot run {self.describe()}: {err.strerror or err}") from None
        if done.returncode != 0:
            lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
            last = lines[-1][:MAX_ERROR_CHARS] if lines else "no error output"
            how = (
                f"was killed by signal {-done.returncode}"
                if done.returncode < 0
                else f"exited with status {done.returncode}"
            )
            raise ChannelError(secrets.scrub(f"{self.describe()} {how}: {last}"))


CHANNELS.add(
    "command",
    ChannelType(
        name="command",
        settings=CommandSettings,
        build=CommandChannel,
        summary="a local program with the alert JSON on standard input",
    ),
)
