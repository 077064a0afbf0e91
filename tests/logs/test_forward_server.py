"""The forward server on 127.0.0.1 with real clients: fluent-logger and hand-built msgpack."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import errno
import gzip
import hashlib
import ipaddress
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack
import pyarrow as pa
import pytest
from fluent import asyncsender, sender

from ecsguard.core.errors import UserError
from ecsguard.logs import forward_server, wal
from ecsguard.logs.forward_server import check_ping, is_loopback, start_forward_server
from ecsguard.logs.service import LogService

T = 1_700_000_000
KEY = "s3cret"


def event_time(seconds: int, nanos: int) -> msgpack.ExtType:
    return msgpack.ExtType(0, struct.pack(">II", seconds, nanos))


def packb(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


class Running:
    """The server on its own event loop in a thread, as `ecsguard serve` runs it."""

    def __init__(self, service: LogService, **kwargs: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        start = start_forward_server(service, "127.0.0.1", 0, **kwargs)
        self.server = asyncio.run_coroutine_threadsafe(start, self.loop).result(5)
        self.port: int = self.server.sockets[0].getsockname()[1]

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()
            await self.server.wait_closed()
            # closing must also end the open connections, promptly
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            await asyncio.wait_for(asyncio.gather(*others, return_exceptions=True), 3)

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[LogService]:
    svc = LogService(tmp_path / "data", flush_seconds=3600)
    yield svc
    svc.stop()


@pytest.fixture
def run(service: LogService) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(**kwargs: Any) -> Running:
        started.append(Running(service, **kwargs))
        return started[-1]

    yield start
    for running in started:
        running.close()


def messages(service: LogService) -> list[tuple[str, str]]:
    rows = service.connect().execute("select message, stream from logs order by message")
    return [(str(m), str(s)) for m, s in rows.fetchall()]


def wait_for_rows(service: LogService, count: int) -> list[tuple[str, str]]:
    """The stored rows once `count` are stored (clients without acks return before that)."""
    deadline = time.monotonic() + 5
    while service.stats.records["logs"] < count and time.monotonic() < deadline:
        time.sleep(0.005)
    return messages(service)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=3)
    return sock


def read_one(sock: socket.socket, unpacker: msgpack.Unpacker | None = None) -> Any:
    """One msgpack reply; EOFError when the server closed the connection."""
    unpacker = unpacker or msgpack.Unpacker(raw=False)
    while True:
        for value in unpacker:
            return value
        data = sock.recv(65536)
        if not data:
            raise EOFError
        unpacker.feed(data)


def closed_by_server(sock: socket.socket) -> bool:
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return True


# ---------------------------------------------------------------------------- real clients


def test_fluent_logger_sender(service: LogService, run: Callable[..., Running]) -> None:
    port = run().port
    plain = sender.FluentSender("app", host="127.0.0.1", port=port)
    precise = sender.FluentSender("app", host="127.0.0.1", port=port, nanosecond_precision=True)
    assert plain.emit("web", {"message": "GET / 200", "level": "info"})
    assert plain.emit("web", {"message": "GET / 200", "level": "info"})  # the same line again
    assert precise.emit_with_time("jobs", T + 0.5, {"log": "job done", "source": "stdout"})
    plain.close()
    precise.close()
    assert wait_for_rows(service, 3) == [
        ("GET / 200", "app.web"),
        ("GET / 200", "app.web"),
        ("job done", "stdout"),
    ]
    row = service.connect().execute("select epoch_us(time) from logs where stream='stdout'")
    assert row.fetchone() == ((T * 1_000_000 + 500_000),)


def test_fluent_logger_async_sender(service: LogService, run: Callable[..., Running]) -> None:
    port = run().port
    client = asyncsender.FluentSender("batch", host="127.0.0.1", port=port)
    for i in range(50):
        client.emit("worker", {"log": f"item {i:02d}"})
    client.close()
    found = wait_for_rows(service, 50)
    assert [m for m, _ in found] == [f"item {i:02d}" for i in range(50)]


# ------------------------------------------------------------------- every mode, with acks

TASK = "arn:aws:ecs:us-east-1:123456789012:task/prod/0123456789abcdef0123456789abcdef"


def firelens_record(text: str) -> dict[str, str]:
    return {"log": text, "source": "stdout", "container_name": "/web", "ecs_task_arn": TASK}


def test_every_mode_acknowledged_after_storing(
    service: LogService, run: Callable[..., Running]
) -> None:
    stored: list[str] = []
    service.add_listener(lambda table, batch: stored.extend(batch.column("message").to_pylist()))
    port = run().port
    blob = packb([event_time(T, 1), firelens_record("packed")])
    sent = [
        ["web-firelens-x", event_time(T, 0), firelens_record("message"), {"chunk": "c1"}],
        ["web-firelens-x", [[event_time(T, 0), firelens_record("forward")]], {"chunk": "c2"}],
        ["web-firelens-x", blob, {"chunk": "c3", "size": 1}],
        ["web-firelens-x", gzip.compress(blob[:9]) + gzip.compress(blob[9:]),
         {"chunk": b"c4", "size": 1, "compressed": "gzip"}],
    ]  # fmt: skip
    sock = connect(port)
    unpacker = msgpack.Unpacker(raw=False)
    expected = {"c1": "message", "c2": "forward", "c3": "packed", "c4": "packed"}
    for message in sent:
        sock.sendall(packb(None) + packb(message))  # a heartbeat first: ignored
        ack = read_one(sock, unpacker)
        chunk = message[-1]["chunk"]
        assert ack == {"ack": chunk}
        name = chunk.decode() if isinstance(chunk, bytes) else chunk
        # the listener runs once the batch is in the WAL: it ran before the ack arrived
        assert stored[-1] == expected[name]
    sock.close()
    assert sorted(messages(service)) == [
        ("forward", "stdout"),
        ("message", "stdout"),
        ("packed", "stdout"),
        ("packed", "stdout"),
    ]
    cluster, task = service.connect().execute("select cluster, task from logs").fetchone()  # type: ignore[misc]
    assert (cluster, task) == ("prod", "0123456789abcdef0123456789abcdef")


def test_ack_waits_for_the_store(service: LogService, run: Callable[..., Running]) -> None:
    """While accept() has not returned, no ack; the record is already in the WAL then."""
    stored = threading.Event()
    release = threading.Event()

    def hold(table: str, batch: pa.RecordBatch) -> None:  # runs after the WAL fsync
        stored.set()
        release.wait(5)

    service.add_listener(hold)
    sock = connect(run().port)
    sock.sendall(packb(["app", T, {"log": "durable first"}, {"chunk": "abc"}]))
    assert stored.wait(3)
    assert messages(service) == [("durable first", "app")]  # in the WAL
    sock.settimeout(0.2)
    with pytest.raises(TimeoutError):
        sock.recv(100)
    release.set()
    sock.settimeout(3)
    assert read_one(sock) == {"ack": "abc"}
    sock.close()


def test_resent_chunk_stored_once(service: LogService, run: Callable[..., Running]) -> None:
    port = run().port
    message = packb(["app", [[T, {"log": "once"}], [T, {"log": "once"}]], {"chunk": "same"}])
    for _ in range(2):  # e.g. the first ack was lost: the client sends the chunk again
        sock = connect(port)
        sock.sendall(message)
        assert read_one(sock) == {"ack": "same"}
        sock.close()
    assert messages(service) == [("once", "app"), ("once", "app")]


# ------------------------------------------------------------------------------ handshake


def handshake(sock: socket.socket, key: str, hostname: str = "flb.local") -> Any:
    helo = read_one(sock)
    assert helo[0] == "HELO" and len(helo[1]["nonce"]) == 16
    salt = bytes(range(240, 256))  # not UTF-8: Fluent Bit packs its salt as str all the same
    digest = hashlib.sha512(salt + hostname.encode() + helo[1]["nonce"] + key.encode())
    salt_as_str = b"\xb0" + salt  # fixstr of 16 bytes
    ping = (
        b"\x96"
        + packb("PING")
        + packb(hostname)
        + salt_as_str
        + packb(digest.hexdigest())
        + packb("")
        + packb("")
    )
    sock.sendall(ping)
    pong = read_one(sock, msgpack.Unpacker(raw=False))
    return pong, salt, helo[1]["nonce"]


def test_shared_key_handshake(service: LogService, run: Callable[..., Running]) -> None:
    port = run(shared_key=KEY).port
    sock = connect(port)
    pong, salt, nonce = handshake(sock, KEY)
    assert pong[:3] == ["PONG", True, ""]
    server_host = pong[3]
    assert pong[4] == hashlib.sha512(salt + server_host.encode() + nonce + KEY.encode()).hexdigest()
    sock.sendall(packb(["app", T, {"log": "authenticated"}, {"chunk": "k1"}]))
    assert read_one(sock) == {"ack": "k1"}
    sock.close()
    assert messages(service) == [("authenticated", "app")]


def test_wrong_key_refused(service: LogService, run: Callable[..., Running]) -> None:
    port = run(shared_key=KEY).port
    sock = connect(port)
    pong, _, _ = handshake(sock, "guess")
    assert pong == ["PONG", False, "shared key mismatch", "", ""]
    assert closed_by_server(sock)
    # a client that skips the handshake (fluent-logger cannot do it) stores nothing either
    client = sender.FluentSender("app", host="127.0.0.1", port=port)
    client.emit("x", {"log": "sneaky"})
    client.close()
    deadline = time.monotonic() + 3
    while service.stats.problems.get("unauthorized", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert service.stats.problems["unauthorized"] == 2
    assert service.stats.refused == {"401": 2}  # what /metrics reports
    assert messages(service) == []


def test_check_ping_rejects_odd_pings() -> None:
    nonce = b"n" * 16
    assert check_ping(["PING", "h"], nonce, KEY, "srv")[:2] == (False, "invalid ping message")
    assert check_ping(["PING", 1, b"s", "d", "", ""], nonce, KEY, "srv")[0] is False
    assert check_ping({"PING": 1}, nonce, KEY, "srv")[0] is False


def test_handshake_must_come_in_time(
    service: LogService, run: Callable[..., Running], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(forward_server, "HANDSHAKE_SECONDS", 0.1)
    monkeypatch.setattr(forward_server, "_POLL_SECONDS", 0.05)
    sock = connect(run(shared_key=KEY).port)
    assert read_one(sock)[0] == "HELO"
    assert closed_by_server(sock)  # no PING: dropped after the deadline
    assert service.stats.problems["unauthorized"] == 1


def test_closing_the_server_ends_idle_connections(
    service: LogService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(forward_server, "_POLL_SECONDS", 0.05)
    running = Running(service)
    sock = connect(running.port)
    sock.sendall(packb(["app", T, {"log": "hello"}, {"chunk": "h"}]))
    assert read_one(sock) == {"ack": "h"}
    running.close()  # waits until every connection task has ended
    assert sock.recv(10) == b""


def test_is_loopback() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.8.9.10", "::1", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "10.0.0.5", "ecsguard.internal", ""]))


def test_key_required_off_loopback(service: LogService) -> None:
    with pytest.raises(UserError, match="needs a shared key"):
        asyncio.run(start_forward_server(service, "0.0.0.0", 0))


def test_port_in_use_is_a_user_error(service: LogService, run: Callable[..., Running]) -> None:
    port = run().port
    with pytest.raises(UserError, match=f"cannot listen for forward clients on 127.0.0.1:{port}"):
        asyncio.run(start_forward_server(service, "127.0.0.1", port))


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls_with_shared_key(
    service: LogService, run: Callable[..., Running], tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    port = run(shared_key=KEY, ssl=server_context).port
    client_context = ssl.create_default_context(cafile=str(cert))
    with client_context.wrap_socket(connect(port), server_hostname="127.0.0.1") as sock:
        pong, _, _ = handshake(sock, KEY)
        assert pong[1] is True
        sock.sendall(packb(["app", [[T, {"log": "over tls"}]], {"chunk": "t1"}]))
        assert read_one(sock) == {"ack": "t1"}
    assert messages(service) == [("over tls", "app")]


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        (b"\xc1", "invalid_msgpack"),  # a byte msgpack never uses
        (packb({"tag": "app"}), "bad_message"),
        (packb(["app", b"not gzip", {"compressed": "gzip", "chunk": "x"}]), "invalid_gzip"),
    ],
)
def test_malformed_input_closes_only_that_connection(
    service: LogService, run: Callable[..., Running], payload: bytes, kind: str
) -> None:
    port = run().port
    healthy = connect(port)  # opened before, still served after
    bad = connect(port)
    bad.sendall(payload)
    assert closed_by_server(bad)
    assert service.stats.problems[kind] == 1
    healthy.sendall(packb(["app", T, {"log": "still here"}, {"chunk": "ok"}]))
    assert read_one(healthy) == {"ack": "ok"}
    healthy.close()


def test_oversized_message_disconnects(service: LogService, run: Callable[..., Running]) -> None:
    port = run(max_message_bytes=4096).port
    sock = connect(port)
    with contextlib.suppress(ConnectionError):  # the server may close before all is written
        sock.sendall(packb(["app", T, {"log": "x" * 100_000}, {"chunk": "big"}]))
    assert closed_by_server(sock)
    assert service.stats.problems["too_large"] == 1
    assert messages(service) == []


def test_full_disk_sends_no_ack_and_the_retry_is_stored_once(
    service: LogService, run: Callable[..., Running], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_space(fd: int, *parts: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    port = run().port
    message = packb(["app", [[T, {"log": "precious"}]], {"chunk": "retry-me"}])
    with monkeypatch.context() as patch:
        patch.setattr(wal, "_write_all", no_space)
        sock = connect(port)
        sock.sendall(message)
        with pytest.raises(EOFError):  # closed without an ack
            read_one(sock)
        sock.close()
    assert messages(service) == []
    assert service.stats.refused == {"503": 1}  # what /metrics reports
    sock = connect(port)  # the client retries its chunk
    sock.sendall(message)
    assert read_one(sock) == {"ack": "retry-me"}
    sock.close()
    assert messages(service) == [("precious", "app")]
