"""The Fluentd forward protocol over TCP (port 24224): FireLens' `forward` output, unchanged.

Per connection: TLS when an `ssl.SSLContext` is given; the shared-key handshake when a key is set
(required off loopback), as the Forward Protocol v1 describes it:

    server  ["HELO", {"nonce": 16 random bytes, "auth": "", "keepalive": true}]
    client  ["PING", hostname, salt, sha512_hex(salt + hostname + nonce + key), user, pw digest]
    server  ["PONG", true, "", server hostname, sha512_hex(salt + server hostname + nonce + key)]
            or ["PONG", false, reason, "", ""] and the connection is closed

then a stream of msgpack messages. Each one is decoded (receivers/forward.py) and stored with
`LogService.accept` in a worker thread, so an fsync never stalls the other connections; only when
that returns is `{"ack": chunk}` sent, if the message asked for one. A full disk (WalFullError)
sends no ack and closes the connection, so the client keeps its chunk and retries.

A malformed message, bad msgpack or bad gzip counts a problem and closes that connection (its
stream cannot be trusted past that point); the server keeps serving the others. A message larger
than `max_message_bytes` as received disconnects the client: memory per connection is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import logging
import os
import socket
import ssl as ssl_module
import time
from dataclasses import replace
from typing import Any, NoReturn

import msgpack

from ecsguard.core.errors import UserError
from ecsguard.logs.receivers.forward import (
    MAX_MESSAGE_BYTES,
    ForwardError,
    decode_message,
    message_context,
    new_unpacker,
    pack,
    raw_bytes,
    to_parsed,
)
from ecsguard.logs.records import ReceiverOptions
from ecsguard.logs.service import LogService
from ecsguard.logs.wal import WalFullError

log = logging.getLogger(__name__)

DEFAULT_PORT = 24224
#: a client that has not passed the handshake after this many seconds is disconnected
HANDSHAKE_SECONDS = 10.0
#: how often an idle connection looks whether the server was closed
_POLL_SECONDS = 0.5
_READ_BYTES = 256 * 1024


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def start_forward_server(
    service: LogService,
    host: str,
    port: int,
    *,
    shared_key: str | None = None,
    ssl: ssl_module.SSLContext | None = None,
    options: ReceiverOptions | None = None,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
) -> asyncio.Server:
    """Listen for forward clients; close the returned server to stop (connections end within
    half a second). `options` carries constants and multiline settings for every record."""
    if not shared_key and not is_loopback(host):
        raise UserError(
            f"the forward receiver on {host}:{port} needs a shared key off loopback",
            "set a shared key (Fluent Bit forward output: Shared_Key with tls on) "
            "or bind to 127.0.0.1",
        )
    receiver = _Receiver(
        service, shared_key or None, options or ReceiverOptions(), max_message_bytes
    )
    try:
        server = await asyncio.start_server(receiver.serve, host, port, ssl=ssl)
    except OSError as exc:
        raise UserError(
            f"cannot listen for forward clients on {host}:{port}: {exc.strerror or exc}",
            "choose another port or stop the process using it",
        ) from None
    receiver.server = server
    return server


class _Closed(Exception):
    """End this connection; the reason is already logged and counted."""


class _Receiver:
    def __init__(
        self,
        service: LogService,
        shared_key: str | None,
        options: ReceiverOptions,
        max_message_bytes: int,
    ) -> None:
        self.service = service
        self.shared_key = shared_key
        self.options = options
        self.max_message_bytes = max_message_bytes
        self.server: asyncio.Server | None = None
        self.hostname = socket.gethostname()
        self.wal_full = False  # warn once per full-disk episode, not once per message

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer(writer)
        try:
            await _Connection(self, reader, writer, peer).run()
        except _Closed:
            pass
        except (ConnectionError, TimeoutError, ssl_module.SSLError) as exc:
            log.info("forward: connection from %s ended: %s", peer, exc)
        except Exception:  # a bug must cost one connection, never the server
            log.exception("forward: unexpected error on the connection from %s", peer)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, ssl_module.SSLError):
                await writer.wait_closed()

    def serving(self) -> bool:
        return self.server is None or self.server.is_serving()

    def problem(self, kind: str) -> None:
        stats = self.service.stats
        stats.problems[kind] = stats.problems.get(kind, 0) + 1
        if kind == "unauthorized":  # a wrong or missing shared key: refused, as HTTP's 401
            stats.refuse(401)

    def store(self, msg: Any, number: int, fallback_context: str, peer: str, size: int) -> Any:
        """Decode, map and store one message (in a worker thread); the chunk to acknowledge."""
        message = decode_message(msg)
        options = replace(self.options, input_name=f"forward {peer} message {number}")
        parsed = to_parsed(message, options, message_context(message, fallback_context))
        self.service.accept(parsed, size)
        return message.chunk


class _Connection:
    def __init__(
        self,
        receiver: _Receiver,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: str,
    ) -> None:
        self.receiver = receiver
        self.reader = reader
        self.writer = writer
        self.peer = peer
        self.id = os.urandom(8).hex()  # tells this connection's messages apart in record ids
        self.messages = 0

    async def run(self) -> None:
        receiver = self.receiver
        nonce = b""
        deadline: float | None = None
        if receiver.shared_key is not None:
            nonce = os.urandom(16)
            deadline = time.monotonic() + HANDSHAKE_SECONDS
            await self._send(["HELO", {"nonce": nonce, "auth": "", "keepalive": True}])
        unpacker = new_unpacker(receiver.max_message_bytes)
        consumed = 0
        while True:
            data = await self._read(deadline)
            if not data:
                return
            try:
                unpacker.feed(data)
            except msgpack.BufferFull:
                self._close("too_large", f"a message exceeds {receiver.max_message_bytes} bytes")
            while True:
                try:
                    msg = next(unpacker)
                except StopIteration:
                    break
                except (ValueError, TypeError, msgpack.UnpackException) as exc:
                    self._close("invalid_msgpack", f"not valid msgpack: {exc}")
                size = unpacker.tell() - consumed
                consumed = unpacker.tell()
                if deadline is not None:
                    await self._handshake(msg, nonce)
                    deadline = None
                elif msg is not None:  # nil is a heartbeat
                    await self._message(msg, size)

    async def _read(self, deadline: float | None) -> bytes:
        """The next bytes; b"" at end of stream or once the server was closed."""
        while self.receiver.serving():
            if deadline is not None and time.monotonic() > deadline:
                self._close("unauthorized", "no handshake within the time allowed")
            try:
                async with asyncio.timeout(_POLL_SECONDS):
                    return await self.reader.read(_READ_BYTES)
            except TimeoutError:
                continue
        return b""

    async def _handshake(self, msg: Any, nonce: bytes) -> None:
        key = self.receiver.shared_key
        assert key is not None
        ok, reason, pong = check_ping(msg, nonce, key, self.receiver.hostname)
        if not ok:
            self.receiver.problem("unauthorized")
            log.warning("forward: refused %s: %s", self.peer, reason)
            with contextlib.suppress(ConnectionError):  # the client may be gone already
                await self._send(pong)
            raise _Closed
        await self._send(pong)

    async def _message(self, msg: Any, size: int) -> None:
        receiver = self.receiver
        self.messages += 1
        fallback = f"conn {self.id} message {self.messages}"
        try:
            chunk = await asyncio.to_thread(
                receiver.store, msg, self.messages, fallback, self.peer, size
            )
        except ForwardError as exc:
            self._close(exc.kind, exc.detail)
        except WalFullError as exc:
            receiver.service.stats.refuse(503)
            if not receiver.wal_full:
                receiver.wal_full = True
                log.warning("forward: refusing records, nothing acknowledged: %s", exc)
            raise _Closed from None  # no ack: the client keeps its chunk and retries
        if receiver.wal_full:
            receiver.wal_full = False
            log.info("forward: storing records again")
        if chunk is not None:
            await self._send({"ack": chunk})

    async def _send(self, value: Any) -> None:
        self.writer.write(pack(value))
        await self.writer.drain()

    def _close(self, kind: str, detail: str) -> NoReturn:
        self.receiver.problem(kind)
        log.warning("forward: closing the connection from %s: %s", self.peer, detail)
        raise _Closed


def check_ping(
    msg: Any, nonce: bytes, shared_key: str, hostname: str
) -> tuple[bool, str, list[Any]]:
    """(accepted, reason, PONG to send) for a client's PING."""
    if type(msg) is not list or len(msg) != 6 or msg[0] != "PING":
        return False, "invalid ping message", ["PONG", False, "invalid ping message", "", ""]
    _, client_host, salt, digest = msg[:4]
    key = shared_key.encode()
    parts = (raw_bytes(salt), raw_bytes(client_host), raw_bytes(digest))
    if any(part is None for part in parts):
        return False, "invalid ping message", ["PONG", False, "invalid ping message", "", ""]
    salt_b, host_b, digest_b = parts
    assert salt_b is not None and host_b is not None and digest_b is not None
    expected = hashlib.sha512(salt_b + host_b + nonce + key).hexdigest().encode()
    if not hmac.compare_digest(expected, digest_b):
        return False, "shared key mismatch", ["PONG", False, "shared key mismatch", "", ""]
    ours = hashlib.sha512(salt_b + hostname.encode() + nonce + key).hexdigest()
    return True, "", ["PONG", True, "", hostname, ours]


def _peer(writer: asyncio.StreamWriter) -> str:
    address = writer.get_extra_info("peername")
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address)
