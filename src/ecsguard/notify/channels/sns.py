"""`sns`: publish to an Amazon SNS topic (boto3, through ecsguard's AWS session).

    type: sns
    sns:
      topic_arn: arn:aws:sns:ap-northeast-1:123456789012:ecsguard-alerts
      region: ap-northeast-1      # default: the topic's region
      body: text                  # text (for mail subscriptions) | json (for SQS/Lambda/HTTPS)

The endpoint is AWS's, or `endpoint_url`, or $AWS_ENDPOINT_URL. The message carries the
attributes `severity` and `alert_count` so subscriptions can filter on them. Needs sns:Publish.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from ecsguard.notify.channels import CHANNELS, ChannelContext, ChannelError, ChannelType
from ecsguard.notify.channels._aws import aws_client
from ecsguard.notify.messages import Message

IAM_ACTIONS = ("sns:Publish",)
MAX_MESSAGE_BYTES = 256 * 1024
MAX_SUBJECT_CHARS = 99  # SNS: ASCII, no line breaks, under 100 characters


class SnsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    topic_arn: str = Field(pattern=r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_.-]{1,256}$")
    region: str | None = None
    endpoint_url: str | None = None
    body: Literal["text", "json"] = "text"

    @property
    def effective_region(self) -> str:
        return self.region or self.topic_arn.split(":")[3]


class SnsChannel:
    def __init__(self, context: ChannelContext) -> None:
        self.name = context.name
        self.settings: SnsSettings = context.settings
        self.timeout = context.timeout
        self._client: Any = None

    def describe(self) -> str:
        return f"sns {self.settings.topic_arn}"

    def send(self, message: Message) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        s = self.settings
        body = orjson.dumps(message.json).decode() if s.body == "json" else message.text
        try:
            client = self._client or self._make_client()
            client.publish(
                TopicArn=s.topic_arn,
                Subject=sns_subject(message),
                Message=_fit(body, MAX_MESSAGE_BYTES),
                MessageAttributes={
                    "severity": {"DataType": "String", "StringValue": message.severity.value},
                    "alert_count": {
                        "DataType": "Number",
                        "StringValue": str(message.json.get("alert_count", 1)),
                    },
                },
            )
        except ClientError as err:
            info = err.response.get("Error", {})
            raise ChannelError(
                f"SNS Publish to {s.topic_arn}: {info.get('Code')}: {info.get('Message')}"
            ) from None
        except BotoCoreError as err:
            raise ChannelError(f"SNS Publish to {s.topic_arn}: {err}") from None

    def _make_client(self) -> Any:
        s = self.settings
        self._client = aws_client("sns", s.effective_region, s.endpoint_url, self.timeout)
        return self._client


def sns_subject(message: Message) -> str:
    """The subject when SNS accepts it, else an ASCII one (Japanese subjects are refused)."""
    subject = message.subject
    if subject.isascii() and len(subject) <= MAX_SUBJECT_CHARS:
        return subject
    rules = sorted({a.get("rule_id", "") for a in message.json.get("alerts", [])} - {""})
    count = message.json.get("alert_count", 1)
    fallback = f"[{message.severity.value.upper()}] ecsguard: {count} alert(s) {', '.join(rules)}"
    fallback = "".join(c for c in fallback if c.isascii() and c.isprintable())
    return fallback[:MAX_SUBJECT_CHARS]


def _fit(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode("utf-8", "ignore") + "…"


CHANNELS.add(
    "sns",
    ChannelType(
        name="sns",
        settings=SnsSettings,
        build=SnsChannel,
        summary="Amazon SNS publish",
        iam_actions=IAM_ACTIONS,
    ),
)
