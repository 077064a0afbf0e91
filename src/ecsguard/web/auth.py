"""The bearer token every route but /healthz requires when the server has one.

Clients send `Authorization: Bearer T`; Amazon Data Firehose sends its configured access key in
`X-Amz-Firehose-Access-Key`, which is accepted the same way. Tokens are compared in constant time
and never logged or echoed.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request

FIREHOSE_KEY_HEADER = "x-amz-firehose-access-key"


class ApiError(Exception):
    """An answer other than 2xx, with the text a client can act on."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def presented_token(request: Request) -> str | None:
    """The token the request carries, from either header."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return request.headers.get(FIREHOSE_KEY_HEADER) or None


def check_token(request: Request, expected: str | None) -> None:
    """Raise a 401 ApiError unless `expected` is None or the request presents it."""
    if expected is None:
        return
    given = presented_token(request)
    if given is None:
        raise ApiError(
            401,
            "this server requires a token: send 'Authorization: Bearer <token>' "
            "(Firehose: set the access key)",
            {"WWW-Authenticate": "Bearer"},
        )
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiError(401, "the token is not valid", {"WWW-Authenticate": "Bearer"})
