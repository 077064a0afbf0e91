"""`ecsguard serve` options and refusals, and the forward receiver started by the app."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import msgpack
import pytest
from click.testing import CliRunner
from fluent.sender import FluentSender
from tests.web.conftest import Running

from ecsguard.cli.main import cli
from ecsguard.cli.serve import parse_size
from ecsguard.core.errors import UserError
from ecsguard.logs.records import ReceiverOptions


def serve_error(*args: str) -> UserError:
    result = CliRunner().invoke(cli, ["serve", *args], env={"ECSGUARD_TOKEN": ""})
    assert isinstance(result.exception, UserError), result.output
    return result.exception


def test_refuses_a_public_address_without_a_token() -> None:
    err = serve_error("--host", "0.0.0.0")
    assert "without a token" in err.problem and "ECSGUARD_TOKEN" in err.hint


def test_refuses_half_a_tls_pair_and_unreadable_files(tmp_path: Path) -> None:
    assert "go together" in serve_error("--tls-cert", "c.pem").problem
    (tmp_path / "c.pem").write_text("not a certificate")
    err = serve_error("--tls-cert", str(tmp_path / "c.pem"), "--tls-key", str(tmp_path / "c.pem"))
    assert "cannot load the TLS certificate" in err.problem


def test_refuses_ports_in_use() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        assert "--port" in serve_error("--port", port, "--forward-port", "0").hint
        assert "--forward-port" in serve_error("--port", "0", "--forward-port", port).hint


def test_max_body_sizes() -> None:
    assert parse_size("32MiB") == 32 * 1024 * 1024
    assert parse_size("500KB") == 500_000
    assert parse_size("1048576") == 1048576
    for bad in ("lots", "12 parsecs", "10"):
        with pytest.raises(UserError):
            parse_size(bad)
    assert "cannot read the size" in serve_error("--max-body", "huge").problem


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_forward_receiver_runs_with_the_app(
    serve: Callable[..., AbstractContextManager[Running]],
) -> None:
    port = free_port()
    with serve(forward_port=port) as srv:
        sender = FluentSender("app", host="127.0.0.1", port=port)
        assert sender.emit("stdout", {"log": "via forward", "container_name": "/web"})
        sender.close()
        deadline = time.monotonic() + 5
        while srv.service.stats.records["logs"] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert srv.query("SELECT container, message FROM logs") == [["web", "via forward"]]
    with socket.socket() as probe:  # closed with the app
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_forward_records_are_joined_with_multiline(
    serve: Callable[..., AbstractContextManager[Running]],
) -> None:
    port = free_port()
    options = ReceiverOptions(multiline=True)
    with serve(forward_port=port, forward_options=options) as srv:
        trace = [
            "2026-11-29 10:00:00 ERROR request failed",
            "java.lang.IllegalStateException: boom",
            "\tat com.example.Foo.bar(Foo.java:10)",
            "2026-11-29 10:00:01 INFO next",
        ]
        # one Forward-mode message, as Fluent Bit sends a chunk: records are joined within a
        # message (each message is acknowledged on its own, so none may wait for the next)
        entries = [[1800000000, {"log": line}] for line in trace]
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.sendall(msgpack.packb(["app", entries]))
        deadline = time.monotonic() + 5
        while srv.service.stats.records["logs"] < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        rows = srv.query("SELECT message FROM logs ORDER BY message")
        assert [r[0].count("\n") for r in rows] == [2, 0]


def test_refuses_a_multiline_start_pattern_re2_cannot_run() -> None:
    err = serve_error("--multiline-start", "(a)\\1")
    assert "invalid multiline start pattern" in err.problem and "RE2" in err.hint


def test_serve_flushes_at_the_services_default() -> None:
    """serve spells its default out (importing the service would slow every command's start);
    it must stay the service's."""
    from ecsguard.cli.serve import serve
    from ecsguard.logs.service import DEFAULT_FLUSH_SECONDS

    (option,) = [p for p in serve.params if p.name == "flush_seconds"]
    assert option.default == DEFAULT_FLUSH_SECONDS
