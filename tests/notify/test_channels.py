"""Each channel against a real receiver: SMTP (aiosmtpd), HTTP (apprise's JSON to http.server),
SNS (the moto server, through an SQS subscription), Lambda (a local HTTP endpoint speaking the
Invoke API, since moto runs functions only with docker), a local command."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest

from ecsguard.demo.emulator import MotoServer, free_port
from ecsguard.notify.channels import CHANNELS, Channel, ChannelContext, ChannelError
from ecsguard.notify.messages import render, render_group

from .conftest import HttpRecorder, Reply, SmtpServer, make_alert

CONSOLE = "https://console.example.com"


def channel(
    kind: str, settings: dict[str, Any], env: dict[str, str] | None = None, timeout: float = 5.0
) -> Channel:
    channel_type = CHANNELS.get(kind)
    model = channel_type.settings.model_validate(settings)
    return channel_type.build(ChannelContext(f"test-{kind}", model, env or {}, timeout))


# -- email ------------------------------------------------------------------------------------
def mail_settings(server: SmtpServer, **extra: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": server.port,
        "security": "none",
        "from": "ecsguard <ecsguard@example.com>",
        "to": ["ops@example.com", "sec@example.com"],
        **extra,
    }


def test_mail_reaches_the_smtp_server_in_english_and_japanese(smtp_server: SmtpServer) -> None:
    mail = channel(
        "email",
        mail_settings(smtp_server, username="ecsguard", password_env="SMTP_PASSWORD"),
        env={"SMTP_PASSWORD": smtp_server.password},
    )
    alert = make_alert(evidence=[{"message": "<b>OOMKilled</b>"}])
    mail.send(render(alert, "en", CONSOLE))
    mail.send(render(alert, "ja", CONSOLE))

    assert smtp_server.box.logins == [("ecsguard", smtp_server.password)] * 2
    envelope = smtp_server.box.envelopes[0]
    assert envelope.mail_from == "ecsguard@example.com"
    assert envelope.rcpt_tos == ["ops@example.com", "sec@example.com"]
    en, ja = smtp_server.box.messages()
    assert en["Subject"] == "[HIGH] A task ran out of memory"
    assert en["To"] == "ops@example.com, sec@example.com"
    text = en.get_body(("plain",)).get_content()
    html = en.get_body(("html",)).get_content()
    assert "Rule: ecs-task-oom" in text and f"{CONSOLE}/alerts/a1" in text
    assert "&lt;b&gt;OOMKilled&lt;/b&gt;" in html
    assert b"Subject: =?utf-8?" in smtp_server.box.envelopes[1].original_content  # RFC 2047
    assert ja["Subject"] == "[高] A task ran out of memory"
    assert "重大度: 高" in ja.get_body(("plain",)).get_content()


def test_mail_errors_are_clear_and_hold_no_password(smtp_server: SmtpServer) -> None:
    wrong = channel(
        "email",
        mail_settings(smtp_server, username="ecsguard", password_env="SMTP_PASSWORD"),
        env={"SMTP_PASSWORD": "wrong-password-123"},
    )
    with pytest.raises(ChannelError, match=r"refused the login of 'ecsguard': 535") as info:
        wrong.send(render(make_alert()))
    assert "wrong-password-123" not in str(info.value)

    unset = channel("email", mail_settings(smtp_server, username="u", password_env="NOPE"))
    with pytest.raises(ChannelError, match=r"environment variable NOPE .* is not set"):
        unset.send(render(make_alert()))

    down = channel("email", {**mail_settings(smtp_server), "port": free_port()})
    with pytest.raises(ChannelError, match=r"cannot reach the mail server 127.0.0.1:\d+"):
        down.send(render(make_alert()))

    tls = channel("email", {**mail_settings(smtp_server), "security": "starttls"})
    with pytest.raises(ChannelError, match="STARTTLS"):
        tls.send(render(make_alert()))
    assert smtp_server.box.envelopes == []


# -- webhook (apprise json://) ------------------------------------------------------------------
def test_webhook_posts_the_alert_json(http_hook: HttpRecorder) -> None:
    hook = channel(
        "webhook",
        {"url": f"json://127.0.0.1:{http_hook.port}/in/${{HOOK_PATH}}?+X-Token=${{HOOK_TOKEN}}"},
        env={"HOOK_PATH": "p4th-s3cret-9", "HOOK_TOKEN": "t0ken-s3cret-1"},
    )
    alerts = [make_alert("a1"), make_alert("a2")]
    hook.send(render_group(alerts, "ja", CONSOLE))
    (request,) = http_hook.requests
    assert request.path == "/in/p4th-s3cret-9"
    assert request.headers["X-Token"] == "t0ken-s3cret-1"
    body = request.json()
    assert body["title"] == "[高] 2 件のアラート: A task ran out of memory"
    assert "ルール: ecs-task-oom" in body["message"]
    assert body["type"] == "failure"  # high severity
    assert body["alert"]["kind"] == "group"
    assert [a["id"] for a in body["alert"]["alerts"]] == ["a1", "a2"]
    assert body["alert"]["alerts"][0]["url"] == f"{CONSOLE}/alerts/a1"
    assert "p4th-s3cret-9" not in hook.describe()


def test_webhook_failures_never_show_the_secret(
    http_hook: HttpRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    http_hook.reply = Reply(status=503)
    secret = "s3cr3t-token-123456"
    hook = channel(
        "webhook",
        {"url": f"json://127.0.0.1:{http_hook.port}/hook/${{HOOK_SECRET}}"},
        env={"HOOK_SECRET": secret},
    )
    with pytest.raises(ChannelError, match="503") as info:
        hook.send(render(make_alert()))
    assert http_hook.requests[0].path == f"/hook/{secret}"  # the secret was used...
    assert secret not in str(info.value)  # ...but is in no error
    assert "JSON POST URL" in caplog.text  # apprise logged the URL at debug level...
    assert secret not in caplog.text  # ...with the secret masked

    missing = channel("webhook", {"url": "json://127.0.0.1/${HOOK_SECRET}"})
    with pytest.raises(ChannelError, match="environment variable HOOK_SECRET is not set"):
        missing.send(render(make_alert()))

    refused = channel("webhook", {"url": f"json://127.0.0.1:{free_port()}/x"})
    with pytest.raises(ChannelError, match="Connection error"):
        refused.send(render(make_alert()))


@pytest.mark.parametrize(
    ("kind", "url", "expected"),
    [
        ("slack", "https://discord.com/api/webhooks/1234567890/abcdefTOKEN", "not slack"),
        ("discord", "https://hooks.slack.com/services/T0000000/B0000000/XXXXXXXX", "not discord"),
        ("teams", "https://hooks.slack.com/services/T0000000/B0000000/XXXXXXXX", "not teams"),
        ("webhook", "${HOOK_URL}", "for Slack, not webhook"),
    ],
)
def test_apprise_channels_refuse_another_services_url(kind: str, url: str, expected: str) -> None:
    env = {"HOOK_URL": "https://hooks.slack.com/services/T0000000/B0000000/XXXXXXXX"}
    with pytest.raises(ChannelError, match=expected) as info:
        channel(kind, {"url": url}, env=env).send(render(make_alert()))
    assert "XXXXXXXX" not in str(info.value) and "abcdefTOKEN" not in str(info.value)


@pytest.mark.parametrize(
    ("kind", "url", "plugin"),
    [
        (
            "slack",
            "https://hooks.slack.com/services/T0000000/B0000000/XXXXXXXXXXXXXXXXXXXXXXXX",
            "NotifySlack",
        ),
        ("discord", "https://discord.com/api/webhooks/1234567890/abcdefTOKEN", "NotifyDiscord"),
        (
            "teams",
            "workflows://prod-01.westus.logic.azure.com:443/abc123/sigXYZ",
            "NotifyWorkflows",
        ),
    ],
)
def test_service_urls_are_understood_and_described_without_tokens(
    kind: str, url: str, plugin: str
) -> None:
    import apprise

    assert type(apprise.Apprise.instantiate(url)).__name__ == plugin
    description = channel(kind, {"url": url}).describe()
    assert "XXXX" not in description and "TOKEN" not in description and "sigXYZ" not in description


# -- SNS on the moto server ----------------------------------------------------------------------
def test_sns_publishes_to_the_topic(aws_env: MotoServer) -> None:
    sns = boto3.client("sns", endpoint_url=aws_env.endpoint)
    sqs = boto3.client("sqs", endpoint_url=aws_env.endpoint)
    topic = sns.create_topic(Name="ecsguard-notify-test")["TopicArn"]
    queue = sqs.create_queue(QueueName="ecsguard-notify-test")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

    channel("sns", {"topic_arn": topic}).send(render(make_alert(), "en", CONSOLE))
    channel("sns", {"topic_arn": topic, "body": "json"}).send(render(make_alert(), "ja"))

    got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    envelopes = [orjson.loads(m["Body"]) for m in got["Messages"]]
    assert len(envelopes) == 2
    text, json_body = sorted(envelopes, key=lambda e: e["Message"].startswith("{"))
    assert text["Subject"] == "[HIGH] A task ran out of memory"
    assert "Rule: ecs-task-oom" in text["Message"]
    assert text["MessageAttributes"]["severity"]["Value"] == "high"
    # SNS takes ASCII subjects only: the Japanese one becomes a plain ASCII summary
    assert json_body["Subject"] == "[HIGH] ecsguard: 1 alert(s) ecs-task-oom"
    assert orjson.loads(json_body["Message"])["lang"] == "ja"


def test_sns_errors_are_channel_errors(aws_env: MotoServer) -> None:
    missing = "arn:aws:sns:ap-northeast-1:123456789012:no-such-topic"
    with pytest.raises(ChannelError, match=f"SNS Publish to {missing}: NotFound"):
        channel("sns", {"topic_arn": missing}).send(render(make_alert()))
    down = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ChannelError, match="Could not connect"):
        channel("sns", {"topic_arn": missing, "endpoint_url": down}, timeout=1).send(
            render(make_alert())
        )


# -- Lambda against a local Invoke endpoint ------------------------------------------------------
@pytest.fixture
def aws_dummy_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("aws_dummy_credentials")
def test_lambda_invokes_asynchronously_with_the_message_json(http_hook: HttpRecorder) -> None:
    http_hook.reply = Reply(status=202, body=b"")
    responder = channel(
        "lambda",
        {
            "function": "arn:aws:lambda:ap-northeast-1:123456789012:function:responder",
            "qualifier": "live",
            "endpoint_url": f"http://127.0.0.1:{http_hook.port}",
        },
    )
    responder.send(render(make_alert(), "en", CONSOLE))
    (request,) = http_hook.requests
    assert request.path.startswith("/2015-03-31/functions/arn%3Aaws%3Alambda%3Aap-northeast-1")
    assert request.path.endswith("/invocations?Qualifier=live")
    assert request.headers["X-Amz-Invocation-Type"] == "Event"
    assert "ap-northeast-1/lambda/aws4_request" in request.headers["Authorization"]
    event = request.json()
    assert event["subject"] == "[HIGH] A task ran out of memory"
    assert event["alerts"][0]["url"] == f"{CONSOLE}/alerts/a1"


@pytest.mark.usefixtures("aws_dummy_credentials")
def test_lambda_errors_are_channel_errors(http_hook: HttpRecorder) -> None:
    endpoint = f"http://127.0.0.1:{http_hook.port}"
    http_hook.reply = Reply(
        status=404,
        headers={"x-amzn-ErrorType": "ResourceNotFoundException"},
        body=b'{"Type": "User", "Message": "Function not found: responder"}',
    )
    settings = {"function": "responder", "region": "ap-northeast-1", "endpoint_url": endpoint}
    with pytest.raises(ChannelError, match="ResourceNotFoundException: Function not found"):
        channel("lambda", settings).send(render(make_alert()))
    http_hook.reply = Reply(status=200, body=b"null")  # a synchronous answer: not what we asked
    with pytest.raises(ChannelError, match="status 200"):
        channel("lambda", settings).send(render(make_alert()))


# -- command -------------------------------------------------------------------------------------
def test_command_gets_the_alert_json_on_stdin(tmp_path: Path) -> None:
    out = tmp_path / "got.json"
    script = "import sys, pathlib; pathlib.Path(sys.argv[1]).write_bytes(sys.stdin.buffer.read())"
    runner = channel("command", {"argv": [sys.executable, "-c", script, str(out)]})
    runner.send(render(make_alert(), "ja", CONSOLE))
    document = orjson.loads(out.read_bytes())
    assert document["subject"] == "[高] A task ran out of memory"
    assert document["alerts"][0]["rule_id"] == "ecs-task-oom"
    assert "重大度" in document["text"] and document["html"].startswith("<html>")


def test_command_failures(tmp_path: Path) -> None:
    failing = "import sys; print('first', file=sys.stderr); sys.exit('pager said no')"
    with pytest.raises(ChannelError, match="exited with status 1: pager said no"):
        channel("command", {"argv": [sys.executable, "-c", failing]}).send(render(make_alert()))
    slow = "import time; time.sleep(5)"
    with pytest.raises(ChannelError, match=r"did not finish within 0.2 s \(killed\)"):
        channel("command", {"argv": [sys.executable, "-c", slow]}, timeout=0.2).send(
            render(make_alert())
        )
    with pytest.raises(ChannelError, match="cannot run command /no/such/program"):
        channel("command", {"argv": ["/no/such/program"]}).send(render(make_alert()))


def test_aws_channels_declare_the_rights_they_need() -> None:
    rights = {name: t.iam_actions for name, t in CHANNELS}
    assert rights["sns"] == ("sns:Publish",)
    assert rights["lambda"] == ("lambda:InvokeFunction",)
    assert all(not actions for name, actions in rights.items() if name not in ("sns", "lambda"))


def test_descriptions_of_variable_urls_name_the_variable() -> None:
    assert channel("slack", {"url": "${SLACK_WEBHOOK_URL}"}).describe() == (
        "slack ${SLACK_WEBHOOK_URL}"
    )
    assert channel("webhook", {"url": "jsons://user:pw@h.example:8443/x?y=1"}).describe() == (
        "webhook jsons://h.example:8443/***"
    )
