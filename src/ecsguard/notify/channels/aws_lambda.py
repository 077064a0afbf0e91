"""`lambda`: invoke an AWS Lambda function asynchronously (InvocationType=Event) with the message
JSON as its event (boto3, through ecsguard's AWS session).

    type: lambda
    lambda:
      function: ecsguard-responder   # name, name:alias or ARN
      qualifier: live                # optional version or alias
      region: ap-northeast-1         # default: the ARN's, else the AWS session's

The event is the message's JSON (`kind`, `severity`, `alerts` with evidence and console links)
plus `subject` and `text`. Needs lambda:InvokeFunction.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from ecsguard.notify.channels import CHANNELS, ChannelContext, ChannelError, ChannelType
from ecsguard.notify.channels._aws import aws_client
from ecsguard.notify.messages import Message

IAM_ACTIONS = ("lambda:InvokeFunction",)


class LambdaSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    function: str = Field(pattern=r"^[A-Za-z0-9:_.-]{1,170}$")
    qualifier: str | None = Field(default=None, pattern=r"^[A-Za-z0-9$_-]{1,128}$")
    region: str | None = None
    endpoint_url: str | None = None

    @property
    def effective_region(self) -> str | None:
        if self.region:
            return self.region
        parts = self.function.split(":")
        return parts[3] if self.function.startswith("arn:") and len(parts) > 3 else None


class LambdaChannel:
    def __init__(self, context: ChannelContext) -> None:
        self.name = context.name
        self.settings: LambdaSettings = context.settings
        self.timeout = context.timeout
        self._client: Any = None

    def describe(self) -> str:
        return f"lambda {self.settings.function}"

    def send(self, message: Message) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        s = self.settings
        event = {**message.json, "subject": message.subject, "text": message.text}
        request: dict[str, Any] = {
            "FunctionName": s.function,
            "InvocationType": "Event",
            "Payload": orjson.dumps(event),
        }
        if s.qualifier:
            request["Qualifier"] = s.qualifier
        try:
            if self._client is None:
                self._client = aws_client(
                    "lambda", s.effective_region, s.endpoint_url, self.timeout
                )
            reply = self._client.invoke(**request)
        except ClientError as err:
            info = err.response.get("Error", {})
            raise ChannelError(
                f"Lambda Invoke of {s.function}: {info.get('Code')}: {info.get('Message')}"
            ) from None
        except BotoCoreError as err:
            raise ChannelError(f"Lambda Invoke of {s.function}: {err}") from None
        status = reply.get("StatusCode")
        if status != 202 or reply.get("FunctionError"):
            raise ChannelError(
                f"Lambda Invoke of {s.function}: status {status}"
                + (f", {reply['FunctionError']}" if reply.get("FunctionError") else "")
                + " (an asynchronous invocation answers 202)"
            )


CHANNELS.add(
    "lambda",
    ChannelType(
        name="lambda",
        settings=LambdaSettings,
        build=LambdaChannel,
        summary="AWS Lambda asynchronous invoke",
        iam_actions=IAM_ACTIONS,
    ),
)
