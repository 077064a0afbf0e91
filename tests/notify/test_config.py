from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ecsguard.core.errors import UserError
from ecsguard.core.models import Severity
from ecsguard.notify.channels.email import EmailSettings
from ecsguard.notify.config import load_config, parse_config

GOOD = """\
lang: ja
console_url: https://ecsguard.example.com
channels:
  ops-mail:
    type: email
    lang: en
    max_per_minute: 5
    timeout: 15s
    email:
      host: smtp.example.com
      username: ecsguard
      password_env: SMTP_PASSWORD
      from: ecsguard@example.com
      to: [ops@example.com]
  hook:
    type: webhook
    webhook: {url: "jsons://hooks.example.com/in?+X-Token=${HOOK_TOKEN}"}
routes:
  - match: {min_severity: high, rules: ["iam-*"], tags: [security]}
    channels: [hook]
    group_wait: 30s
    continue: true
default: {channels: [ops-mail], group_wait: 1m}
silences:
  - {rule: "ecs-*", key: [prod, 42], expires: 2026-12-01T00:00:00Z, reason: load test, by: alice}
"""


def parse(text: str) -> object:
    return parse_config(textwrap.dedent(text), "notify.yaml")


def error_of(text: str) -> str:
    with pytest.raises(UserError) as info:
        parse(text)
    return str(info.value)


def test_a_full_configuration(tmp_path: Path) -> None:
    path = tmp_path / "notify.yaml"
    path.write_text(GOOD)
    config = load_config(path)
    mail = config.channels["ops-mail"]
    assert isinstance(mail.settings, EmailSettings)
    assert mail.settings.sender == "ecsguard@example.com" and mail.settings.effective_port == 587
    assert (mail.timeout, mail.max_per_minute, mail.source) == (15.0, 5, f"{path}:4")
    assert config.channel_lang("ops-mail") == "en" and config.channel_lang("hook") == "ja"
    route = config.routes[0]
    assert route.group_wait == 30 and route.continue_ and route.match.min_severity is Severity.HIGH
    assert route.source == f"{path}:19"
    assert config.default is not None and config.default.group_wait == 60
    silence = config.silences[0]
    assert silence.key == ["prod", "42"] and silence.by == "alice"
    assert silence.source == f"{path}:25"


def test_an_empty_file_is_an_empty_configuration() -> None:
    config = parse_config("", "notify.yaml")
    assert config.channels == {} and config.default is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            """\
            channels:
              x:
                type: pager
            """,
            "notify config notify.yaml:3: channels.x.type: unknown channel type 'pager' "
            "(known: command, discord, email, lambda, slack, sns, teams, webhook)",
        ),
        (
            """\
            channels:
              x:
                lang: en
            """,
            "notify.yaml:2: channels.x: missing `type` (one of: command, discord, email",
        ),
        (
            """\
            channels:
              m:
                type: email
                email:
                  host: smtp.example.com
                  port: 99999
                  from: a@example.com
                  to: [b@example.com]
            """,
            "notify.yaml:6: channels.m.email.port: Input should be less than or equal to 65535",
        ),
        (
            """\
            channels:
              m:
                type: email
                email:
                  host: smtp.example.com
                  from: a@example.com
                  to: [b@example.com]
                  password: hunter2
            """,
            "notify.yaml:8: channels.m.email.password: unknown field",
        ),
        (
            """\
            channels:
              m:
                type: email
                email: {host: h, from: not-an-address, to: [b@example.com]}
            """,
            "notify.yaml:4: channels.m.email.from: Value error, not a mail address",
        ),
        (
            """\
            channels:
              s:
                type: slack
                slack: {url: "http://hooks.slack.com/x"}
            """,
            "channels.s.slack.url: Value error, a slack URL starts with slack:// or https://",
        ),
        (
            """\
            channels:
              h:
                type: webhook
                timeout: 10 minutes
                webhook: {url: "json://h/"}
            """,
            "notify.yaml:4: channels.h.timeout: Value error, cannot read the duration",
        ),
        (
            """\
            channels:
              h: {type: webhook, webhook: {url: "json://h/"}}
            routes:
              - channels: [h]
              - match: {severity: [urgent]}
                channels: [h]
            """,
            "notify.yaml:5: routes[1].match.severity[0]: Input should be 'critical'",
        ),
        (
            """\
            channels:
              h: {type: webhook, webhook: {url: "json://h/"}}
            routes:
              - channels: [h]
                group_wait: soon
            default:
              channels: [h, mail]
            """,
            "notify.yaml:5: routes[0].group_wait: Value error, cannot read the duration 'soon'",
        ),
        (
            """\
            channels:
              h: {type: webhook, webhook: {url: "json://h/"}}
            default:
              channels: [h, mail]
            """,
            "notify.yaml:4: default.channels[1]: unknown channel 'mail' (defined channels: h)",
        ),
        (
            """\
            silences:
              - rule: "x*"
                expires: 2026-01-01
            """,
            "notify.yaml:2: silences[0].reason: Field required (and 1 more problem)",
        ),
        (
            """\
            chanels: {}
            """,
            "notify.yaml:1: chanels: unknown field",
        ),
        ("- a list\n", "notify.yaml:1: the file must be a mapping"),
        ("channels: {a: [\n", "notify config notify.yaml:2: invalid YAML"),
    ],
)
def test_errors_name_the_file_and_line(text: str, expected: str) -> None:
    message = error_of(text)
    assert expected in message, message


def test_an_unreadable_file() -> None:
    with pytest.raises(UserError, match=r"cannot read notify config /nonexistent/n\.yaml"):
        load_config("/nonexistent/n.yaml")


def test_a_secret_written_into_the_config_is_not_possible_for_mail() -> None:
    # the password is read from the environment only: the model has no field for it
    assert "password" not in EmailSettings.model_fields
    assert "password_env" in EmailSettings.model_fields
