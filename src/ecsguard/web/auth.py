"""The bearer token every API and ingest route requires when the server has one.

Clients send `Authorization: Bearer T`; Amazon Data Firehose sends its configured access key in
`X-Amz-Firehose-Access-Key`, which is accepted the same way. Tokens are compared in constant time
and never logged or echoed. A logged-in console session counts as well (its state changes carry
the CSRF header). Requests a browser sends from another site (an `Origin` that is not ours) are
refused whatever they carry: a web page must not post log lines into a loopback server.
"""

from __future__ import annotations

from starlette.requests import Request

from ecsguard.web.users import Session, same_secret

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


def check_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin is None:
        return  # not a browser's cross-origin request (CLI, Fluent Bit, Firehose)
    ours = f"{request.url.scheme}://{request.headers.get('host', '')}"
    if origin != ours:
        raise ApiError(403, f"requests from {origin} are not accepted (a different site)")


def _console_session(request: Request) -> Session | None:
    console = getattr(request.app.state, "console", None)
    cookie = request.cookies.get("ecsguard_session")
    if console is None or not cookie:
        return None
    session: Session | None = console.users.session(cookie)
    return session


def _csrf_ok(request: Request, session: Session) -> bool:
    """A session's request may change state only with its CSRF header."""
    if request.method in ("GET", "HEAD"):
        return True
    return same_secret(request.headers.get("x-csrf-token"), session.csrf)


def _console_session_ok(request: Request) -> bool:
    session = _console_session(request)
    return session is not None and _csrf_ok(request, session)


def check_admin(request: Request, expected: str | None) -> None:
    """`check_token`, and a request made with a console session (rather than the token) must
    also carry the CSRF header and be an admin's, even on a server without a token."""
    check_token(request, expected)
    if presented_token(request) is not None:
        return
    session = _console_session(request)
    if session is None:
        return  # a tokenless server's local client: as trusted as for every other route
    if not _csrf_ok(request, session):
        raise ApiError(403, "the console's request lacks its CSRF token")
    if not session.user.may("admin"):
        raise ApiError(403, f"the {session.user.role} role may not do this; it needs admin")


def check_token(request: Request, expected: str | None) -> None:
    """Raise a 401 ApiError unless `expected` is None or the request presents it (or a console
    session); 403 for a request from another site."""
    check_origin(request)
    if expected is None:
        return
    given = presented_token(request)
    if given is None and _console_session_ok(request):
        return
    if given is None:
        raise ApiError(
            401,
            "this server requires a token: send 'Authorization: Bearer <token>' "
            "(Firehose: set the access key)",
            {"WWW-Authenticate": "Bearer"},
        )
    if not same_secret(given, expected):
        raise ApiError(401, "the token is not valid", {"WWW-Authenticate": "Bearer"})
