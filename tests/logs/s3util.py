"""Helpers for tests of the S3 store against the session's moto server: fresh buckets, and S3's
own error answers injected at botocore's send hook (so the client's parsing and retries run)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse

from ecsguard.demo.emulator import REGION, MotoServer


def new_bucket(server: MotoServer) -> str:
    name = f"ecsguard-test-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3", endpoint_url=server.endpoint, region_name=REGION)
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    return name


def keys(server: MotoServer, bucket: str) -> list[str]:
    s3 = boto3.client("s3", endpoint_url=server.endpoint, region_name=REGION)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def s3_error(
    client: Any, code: str, status: int, operation: str = "*", times: int = 10**9
) -> dict[str, int]:
    """The next `times` HTTP attempts of `operation` (e.g. PutObject; * for all) are answered
    with S3's XML error `code`; the returned dict counts them."""
    state = {"sent": 0, "all": 0}
    event = "before-send.s3" + ("" if operation == "*" else f".{operation}")

    def handler(request: Any, **_: Any) -> AWSResponse | None:
        state["all"] += 1
        if state["sent"] >= times:
            return None
        state["sent"] += 1
        body = (
            f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
            f"<Message>injected {code}</Message><RequestId>t</RequestId></Error>"
        ).encode()
        return AWSResponse(request.url, status, {"Content-Type": "application/xml"}, _Raw(body))

    client.meta.events.register(event, handler)
    return state
