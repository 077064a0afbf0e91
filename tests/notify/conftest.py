"""Shared pieces of the notification tests: alerts, a fake clock, real local servers."""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from ecsguard.core.models import Alert, Severity
from ecsguard.demo.emulator import free_port

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def make_alert(
    alert_id: str = "a1",
    *,
    rule_id: str = "ecs-task-oom",
    severity: Severity | str = Severity.HIGH,
    key: list[Any] | None = None,
    tags: list[str] | None = None,
    evidence: list[dict[str, Any]] | None = None,
    count: int = 1,
    state: str | None = None,
    title: str = "A task ran out of memory",
    summary: str = "task 1a2b stopped: OutOfMemoryError (exit 137)",
) -> Alert:
    return Alert(
        id=alert_id,
        rule_id=rule_id,
        title=title,
        severity=Severity(severity),
        summary=summary,
        first_seen=T0,
        last_seen=T0,
        count=count,
        key=["prod", "web"] if key is None else key,
        tags=["ecs"] if tags is None else tags,
        evidence=evidence or [],
        state=state,
    )


class FakeClock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self, start: float = T0.timestamp()) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"{}"


class HttpRecorder:
    """A real HTTP server on 127.0.0.1 that records every request and answers `reply`."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.answered: list[int] = []
        self.reply = Reply()
        self._cond = threading.Condition()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                reply = recorder.reply
                # recorded before answering: once the client has its answer, the test sees it
                with recorder._cond:
                    recorder.requests.append(
                        Received("POST", self.path, dict(self.headers.items()), body)
                    )
                    recorder.answered.append(reply.status)
                    recorder._cond.notify_all()
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    @property
    def ok(self) -> list[Received]:
        """Requests answered with a 2xx status."""
        return [r for r, s in zip(self.requests, self.answered, strict=True) if s < 300]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.requests) >= count, timeout)
            return list(self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def http_hook() -> Iterator[HttpRecorder]:
    recorder = HttpRecorder()
    yield recorder
    recorder.close()


class MailBox:
    """What the SMTP server received, parsed."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []
        self.logins: list[tuple[str, str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 OK"

    def messages(self) -> list[EmailMessage]:
        return [
            email.message_from_bytes(e.original_content, policy=email.policy.default)
            for e in self.envelopes
        ]


@dataclass
class SmtpServer:
    port: int
    box: MailBox
    password: str


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on a free loopback port; login ecsguard / the password."""
    box = MailBox()
    password = "pw-5up3r-s3cret"

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth: Any) -> Any:
        if not isinstance(auth, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, given = auth.login.decode(), auth.password.decode()
        box.logins.append((login, given))
        # handled=False: aiosmtpd answers 535 itself when the login is refused
        return AuthResult(success=login == "ecsguard" and given == password, handled=False)

    port = free_port()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield SmtpServer(port, box, password)
    finally:
        controller.stop()
