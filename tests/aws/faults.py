"""Fault injection at botocore's own hooks, against the real moto server.

`refuse` short-circuits a call before it is sent (what an IAM deny looks like to the client);
`throttle` answers the HTTP request with a throttling error, so botocore's retry machinery runs
for real and retries it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from botocore.awsrequest import AWSResponse


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


class _Http:
    status_code = 400
    headers: ClassVar[dict[str, str]] = {}
    content = b""


def refuse(session: Any, service: str, operation: str, code: str = "AccessDeniedException") -> None:
    """Every `service:operation` call fails with `code` (not retried: like an IAM deny)."""

    def handler(**_: Any) -> tuple[Any, dict[str, Any]]:
        return _Http(), {
            "Error": {"Code": code, "Message": f"User is not authorized to perform {operation}"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }

    session._session.events.register(f"before-call.{service}.{operation}", handler)


def throttle(session: Any, service: str, operation: str, times: int) -> dict[str, int]:
    """The first `times` HTTP attempts of `service:operation` get a ThrottlingException."""
    state = {"sent": 0}
    target = f"{operation}"

    def handler(request: Any, **_: Any) -> AWSResponse | None:
        action = request.headers.get("X-Amz-Target", b"")
        action = action.decode() if isinstance(action, bytes) else action
        if not action.endswith(f".{target}") or state["sent"] >= times:
            return None
        state["sent"] += 1
        body = b'{"__type":"ThrottlingException","message":"Rate exceeded"}'
        headers = {"Content-Type": "application/x-amz-json-1.1"}
        return AWSResponse(request.url, 400, headers, _Raw(body))

    session._session.events.register(f"before-send.{service}", handler)
    return state
