"""`email`: mail over SMTP (smtplib), plain text with an HTML alternative.

type: email
email:
  host: smtp.example.com
  port: 587                    # default: 587 starttls, 465 ssl, 25 none
  security: starttls           # starttls | ssl | none
  username: ecsguard
  password_env: SMTP_PASSWORD  # the NAME of the variable holding the password
  from: ecsguard@example.com
  to: [ops@example.com]
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ecsguard.notify import secrets
from ecsguard.notify.channels import CHANNELS, ChannelContext, ChannelError, ChannelType
from ecsguard.notify.messages import Message

_DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


class EmailSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password_env: str | None = Field(default=None, pattern=secrets.ENV_NAME)
    sender: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    html: bool = True  # send the HTML alternative beside the text

    @field_validator("sender")
    @classmethod
    def _sender_address(cls, value: str) -> str:
        return _address(value)

    @field_validator("to")
    @classmethod
    def _recipient_addresses(cls, values: list[str]) -> list[str]:
        return [_address(v) for v in values]

    @model_validator(mode="after")
    def _password_needs_user(self) -> EmailSettings:
        if self.password_env and not self.username:
            raise ValueError("password_env needs a username")
        return self

    @property
    def effective_port(self) -> int:
        return self.port or _DEFAULT_PORTS[self.security]


def _address(value: str) -> str:
    _, address = parseaddr(value)
    if "@" not in address or any(c in value for c in "\r\n"):
        raise ValueError(f"not a mail address: {value!r}")
    return value


class EmailChannel:
    def __init__(self, context: ChannelContext) -> None:
        self.name = context.name
        self.settings: EmailSettings = context.settings
        self.env = context.env
        self.timeout = context.timeout

    def describe(self) -> str:
        s = self.settings
        return f"email via {s.host}:{s.effective_port} ({s.security}) to {', '.join(s.to)}"

    def send(self, message: Message) -> None:
        s = self.settings
        password = self._password()
        mail = EmailMessage()
        mail["Subject"] = message.subject
        mail["From"] = s.sender
        mail["To"] = ", ".join(s.to)
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = make_msgid(domain=parseaddr(s.sender)[1].split("@")[-1])
        mail.set_content(message.text)
        if s.html and message.html:
            mail.add_alternative(message.html, subtype="html")
        where = f"{s.host}:{s.effective_port}"
        try:
            with self._connect() as smtp:
                if s.security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if s.username:
                    smtp.login(s.username, password or "")
                refused = smtp.send_message(mail, from_addr=parseaddr(s.sender)[1])
        except smtplib.SMTPAuthenticationError as err:
            raise ChannelError(
                f"mail server {where} refused the login of {s.username!r}: {_reply(err)}"
            ) from None
        except smtplib.SMTPNotSupportedError as err:
            raise ChannelError(f"mail server {where}: {err} (check `security`)") from None
        except smtplib.SMTPException as err:
            raise ChannelError(f"mail server {where}: {_reply(err)}") from None
        except (OSError, ssl.SSLError) as err:
            raise ChannelError(f"cannot reach the mail server {where}: {err}") from None
        if refused:
            raise ChannelError(f"mail server {where} refused recipients: {', '.join(refused)}")

    def _password(self) -> str | None:
        name = self.settings.password_env
        if not name:
            return None
        value = self.env.get(name)
        if not value:
            raise ChannelError(f"environment variable {name} (the SMTP password) is not set")
        secrets.register([value])
        return value

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.security == "ssl":
            return smtplib.SMTP_SSL(
                s.host, s.effective_port, timeout=self.timeout, context=ssl.create_default_context()
            )
        return smtplib.SMTP(s.host, s.effective_port, timeout=self.timeout)


def _reply(err: smtplib.SMTPException) -> str:
    """The server's reply code and text, when it gave one."""
    code = getattr(err, "smtp_code", None)
    text = getattr(err, "smtp_error", b"")
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if code:
        return secrets.scrub(f"{code} {text}".strip())
    return secrets.scrub(str(err))


CHANNELS.add(
    "email",
    ChannelType(
        name="email",
        settings=EmailSettings,
        build=EmailChannel,
        summary="mail over SMTP (STARTTLS, SSL or plain), text and HTML",
    ),
)
